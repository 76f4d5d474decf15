-- Audit entries outlive their organization: deleting an account keeps, anonymised, the audit
-- entries of the organizations the account owned alone, so audit_logs.org_id no longer references
-- organizations. The constraint is looked up because its name was left to PostgreSQL.

DO $$
DECLARE
    foreign_key TEXT;
BEGIN
    FOR foreign_key IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'audit_logs'::regclass AND contype = 'f' AND confrelid = 'organizations'::regclass
    LOOP
        EXECUTE format('ALTER TABLE audit_logs DROP CONSTRAINT %I', foreign_key);
    END LOOP;
END
$$;
