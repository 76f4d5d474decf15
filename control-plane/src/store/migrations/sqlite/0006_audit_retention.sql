-- Audit entries outlive their organization: deleting an account keeps, anonymised, the audit
-- entries of the organizations the account owned alone, so audit_logs.org_id no longer references
-- organizations. SQLite cannot drop a foreign key, so the table is rebuilt with its rows, and the
-- rename carries the AUTOINCREMENT sequence over.

CREATE TABLE audit_logs_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL,
    -- The organization, which may have been deleted since.
    org_id BLOB NOT NULL,
    -- NULL for system actions and once the acting user's account is deleted.
    user_id BLOB,
    event_type TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    ip_address TEXT,
    user_agent TEXT,
    created_at TEXT NOT NULL
);

INSERT INTO audit_logs_new (seq, id, org_id, user_id, event_type, description, metadata, ip_address, user_agent, created_at)
SELECT seq, id, org_id, user_id, event_type, description, metadata, ip_address, user_agent, created_at FROM audit_logs;

DROP TABLE audit_logs;
ALTER TABLE audit_logs_new RENAME TO audit_logs;
CREATE INDEX audit_logs_org ON audit_logs (org_id, seq);
