-- Account features: the audit log of every mutation.

CREATE TABLE audit_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    -- NULL once the acting user's account is deleted; the entry itself is kept.
    user_id BLOB,
    event_type TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX audit_logs_org ON audit_logs (org_id, seq);

-- Telemetry from edges. Several edges report for the same deployment and minute, so every
-- write adds to the stored counts.
CREATE TABLE deployment_metrics (
    deployment_id BLOB NOT NULL REFERENCES deployments (id),
    org_id BLOB NOT NULL REFERENCES organizations (id),
    -- Start of the minute in seconds since the Unix epoch.
    minute BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    latency_ms_sum DOUBLE PRECISION NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, minute)
);
CREATE INDEX deployment_metrics_org ON deployment_metrics (org_id, minute);

CREATE TABLE deployment_status_counts (
    deployment_id BLOB NOT NULL REFERENCES deployments (id),
    minute BIGINT NOT NULL,
    status INTEGER NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, minute, status)
);

-- Bucket i counts latencies up to LATENCY_BUCKETS_MS[i]; the last bucket counts the rest.
CREATE TABLE deployment_latency_buckets (
    deployment_id BLOB NOT NULL REFERENCES deployments (id),
    minute BIGINT NOT NULL,
    bucket INTEGER NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, minute, bucket)
);

-- Requests served per organization and UTC day, summed into 30-day usage periods.
CREATE TABLE org_usage_daily (
    org_id BLOB NOT NULL REFERENCES organizations (id),
    -- Days since the Unix epoch.
    day BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    PRIMARY KEY (org_id, day)
);

-- Telemetry batches already stored, so a batch an edge retries is not counted twice.
CREATE TABLE telemetry_batches (
    node TEXT NOT NULL,
    window_start_unix_ms BIGINT NOT NULL,
    window_end_unix_ms BIGINT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (node, window_start_unix_ms, window_end_unix_ms)
);

-- Served requests, newest kept per deployment.
CREATE TABLE request_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL,
    deployment_id BLOB NOT NULL REFERENCES deployments (id),
    org_id BLOB NOT NULL REFERENCES organizations (id),
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    request_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX request_logs_deployment ON request_logs (deployment_id, seq);

-- Billing: one subscription per organization, driven by Stripe webhooks or set by a platform
-- admin. The organization's plan itself stays in organizations.plan.
CREATE TABLE subscriptions (
    org_id BLOB PRIMARY KEY NOT NULL REFERENCES organizations (id),
    status TEXT NOT NULL,
    stripe_customer_id TEXT,
    stripe_subscription_id TEXT,
    current_period_end TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (stripe_customer_id);
CREATE INDEX subscriptions_subscription ON subscriptions (stripe_subscription_id);

-- Stripe events already processed, so a redelivered event changes nothing.
CREATE TABLE stripe_events (
    event_id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    processed_at TEXT NOT NULL
);

-- Security. A JWT carries its user's token generation at issue time; incrementing the
-- generation (logout, account deletion) revokes every JWT issued before.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;

-- Failed logins of the last minutes, for the login lock.
CREATE TABLE login_failures (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX login_failures_email ON login_failures (email, created_at);
CREATE INDEX login_failures_ip ON login_failures (ip_address, created_at);

-- Addresses each user has logged in from, to notice logins from a new address.
CREATE TABLE login_addresses (
    user_id BLOB NOT NULL REFERENCES users (id),
    ip_address TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    PRIMARY KEY (user_id, ip_address)
);

CREATE TABLE suspicious_activities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    user_id BLOB,
    activity_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    ip_address TEXT,
    resolved BOOLEAN NOT NULL DEFAULT FALSE,
    resolved_by BLOB,
    resolved_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX suspicious_activities_org ON suspicious_activities (org_id, seq);

-- Bring-your-own-key settings of an organization. The key is stored only encrypted with
-- AES-256-GCM under the control plane's master key (base64 of nonce and ciphertext).
CREATE TABLE byok_settings (
    org_id BLOB PRIMARY KEY NOT NULL REFERENCES organizations (id),
    provider TEXT NOT NULL,
    key_encrypted TEXT NOT NULL,
    key_masked TEXT NOT NULL,
    monthly_token_limit BIGINT,
    updated_at TEXT NOT NULL
);

CREATE TABLE support_tickets (
    id BLOB PRIMARY KEY NOT NULL,
    -- TKT- and six digits, shown to the customer.
    ticket_number TEXT NOT NULL,
    org_id BLOB NOT NULL REFERENCES organizations (id),
    user_id BLOB,
    category TEXT NOT NULL,
    priority TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT support_tickets_number_key UNIQUE (ticket_number)
);
