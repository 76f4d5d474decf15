-- E-mail verification. A user is verified once email_verified_at is set.
ALTER TABLE users ADD COLUMN email_verified_at TEXT;

-- Single-use verification tokens. Only the hex SHA-256 of a token is stored.
CREATE TABLE email_verification_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id),
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX email_verification_tokens_user ON email_verification_tokens (user_id);

-- Account deletion on request. A user with deletion_scheduled_at set is locked, and a background
-- job deletes the account once the time has passed.
ALTER TABLE users ADD COLUMN deletion_scheduled_at TEXT;
CREATE INDEX users_deletion_scheduled ON users (deletion_scheduled_at);

-- OAuth sign-ins between the redirect to the provider and the callback. Only the hex SHA-256 of
-- the state parameter is stored.
CREATE TABLE oauth_sign_ins (
    state_hash TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
