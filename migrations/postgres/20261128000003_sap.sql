-- The statistical analysis plan (versions and the signatures of the
-- statistician and the PI) and the snapshot of the data taken at each lock,
-- which the locked analysis reads.

CREATE TABLE sap_versions (
    version     BIGINT PRIMARY KEY,
    -- The settings as JSON (osteo_trial::study::sap::Sap).
    settings    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  BIGINT NOT NULL REFERENCES users (id)
);

CREATE TABLE sap_signatures (
    version       BIGINT NOT NULL REFERENCES sap_versions (version),
    role          TEXT NOT NULL CHECK (role IN ('statistician', 'principal_investigator')),
    user_id       BIGINT NOT NULL REFERENCES users (id),
    printed_name  TEXT NOT NULL,
    signed_at     TEXT NOT NULL,
    PRIMARY KEY (version, role)
);

CREATE TABLE lock_snapshots (
    lock_event_id  BIGINT PRIMARY KEY REFERENCES lock_events (id),
    -- The canonical export (JSON) whose SHA-256 the lock event records.
    export         TEXT NOT NULL
);

CREATE TRIGGER sap_versions_never_changed BEFORE UPDATE ON sap_versions
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a SAP version never changes; draft a new one');
CREATE TRIGGER sap_versions_never_deleted BEFORE DELETE ON sap_versions
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('SAP versions are never deleted');
CREATE TRIGGER sap_signatures_never_changed BEFORE UPDATE ON sap_signatures
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a signature never changes');
CREATE TRIGGER sap_signatures_never_deleted BEFORE DELETE ON sap_signatures
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('signatures are never deleted');
CREATE TRIGGER lock_snapshots_never_changed BEFORE UPDATE ON lock_snapshots
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a lock snapshot never changes');
CREATE TRIGGER lock_snapshots_never_deleted BEFORE DELETE ON lock_snapshots
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a lock snapshot is never deleted');

-- A plan signed by both is fixed: no new version after it.
CREATE FUNCTION osteo_sap_fixed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sap_signatures s WHERE s.role = 'statistician'
               AND EXISTS (SELECT 1 FROM sap_signatures p WHERE p.version = s.version AND p.role = 'principal_investigator')) THEN
        RAISE EXCEPTION 'the SAP is signed by the statistician and the PI and can no longer change' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER sap_fixed_once_locked BEFORE INSERT ON sap_versions
    FOR EACH ROW EXECUTE FUNCTION osteo_sap_fixed();
CREATE TRIGGER sap_versions_locked BEFORE INSERT OR UPDATE ON sap_versions
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse_when_locked();
CREATE TRIGGER sap_signatures_locked BEFORE INSERT OR UPDATE ON sap_signatures
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse_when_locked();
