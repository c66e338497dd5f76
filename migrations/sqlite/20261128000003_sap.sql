-- The statistical analysis plan (versions and the signatures of the
-- statistician and the PI) and the snapshot of the data taken at each lock,
-- which the locked analysis reads.

CREATE TABLE sap_versions (
    version     INTEGER PRIMARY KEY,
    -- The settings as JSON (osteo_trial::study::sap::Sap).
    settings    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES users (id)
);

CREATE TABLE sap_signatures (
    version       INTEGER NOT NULL REFERENCES sap_versions (version),
    role          TEXT NOT NULL CHECK (role IN ('statistician', 'principal_investigator')),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    printed_name  TEXT NOT NULL,
    signed_at     TEXT NOT NULL,
    PRIMARY KEY (version, role)
);

CREATE TABLE lock_snapshots (
    lock_event_id  INTEGER PRIMARY KEY REFERENCES lock_events (id),
    -- The canonical export (JSON) whose SHA-256 the lock event records.
    export         TEXT NOT NULL
);

CREATE TRIGGER sap_versions_never_changed BEFORE UPDATE ON sap_versions
BEGIN SELECT RAISE(ABORT, 'a SAP version never changes; draft a new one'); END;
CREATE TRIGGER sap_versions_never_deleted BEFORE DELETE ON sap_versions
BEGIN SELECT RAISE(ABORT, 'SAP versions are never deleted'); END;
CREATE TRIGGER sap_signatures_never_changed BEFORE UPDATE ON sap_signatures
BEGIN SELECT RAISE(ABORT, 'a signature never changes'); END;
CREATE TRIGGER sap_signatures_never_deleted BEFORE DELETE ON sap_signatures
BEGIN SELECT RAISE(ABORT, 'signatures are never deleted'); END;
CREATE TRIGGER lock_snapshots_never_changed BEFORE UPDATE ON lock_snapshots
BEGIN SELECT RAISE(ABORT, 'a lock snapshot never changes'); END;
CREATE TRIGGER lock_snapshots_never_deleted BEFORE DELETE ON lock_snapshots
BEGIN SELECT RAISE(ABORT, 'a lock snapshot is never deleted'); END;
-- A plan signed by both is fixed: no new version after it.
CREATE TRIGGER sap_fixed_once_locked BEFORE INSERT ON sap_versions
WHEN EXISTS (SELECT 1 FROM sap_signatures s WHERE s.role = 'statistician'
             AND EXISTS (SELECT 1 FROM sap_signatures p WHERE p.version = s.version AND p.role = 'principal_investigator'))
BEGIN SELECT RAISE(ABORT, 'the SAP is signed by the statistician and the PI and can no longer change'); END;
CREATE TRIGGER sap_versions_locked_insert BEFORE INSERT ON sap_versions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER sap_signatures_locked_insert BEFORE INSERT ON sap_signatures WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
