-- Cases: one per enrolled patient, and every record of its way through the
-- trial. The invariants the trial rests on are enforced here as well as in
-- the services, so that no entry point can go around them:
--   * pathology only after the AI prediction and every assigned read are locked;
--   * a prediction and a signed read never change; versions never change;
--   * nothing clinical is written while the database is locked.

CREATE TABLE bone_rads_rules (
    version     TEXT PRIMARY KEY,
    -- The point table as JSON (osteo_trial::case::bonerads::RuleTable).
    rules       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE study_settings (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    -- Confirmed by the study before the first read; fixed once a read exists.
    rule_version      TEXT REFERENCES bone_rads_rules (version),
    readers_per_case  INTEGER NOT NULL DEFAULT 1 CHECK (readers_per_case BETWEEN 1 AND 3),
    bone_rads_source  TEXT NOT NULL DEFAULT 'primary_reader' CHECK (bone_rads_source IN ('primary_reader', 'consensus')),
    updated_at        TEXT,
    updated_by        INTEGER REFERENCES users (id)
);
INSERT INTO study_settings (id) VALUES (1);

CREATE TABLE cases (
    id            INTEGER PRIMARY KEY,
    screening_id  INTEGER NOT NULL UNIQUE REFERENCES screenings (id),
    site_id       INTEGER NOT NULL REFERENCES sites (id),
    arm           TEXT NOT NULL CHECK (arm IN ('prospective', 'retrospective')),
    study_no      INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('enrolled', 'images_complete', 'crf_complete', 'reads_locked',
                      'ai_locked', 'pathology_entered', 'complete', 'withdrawn', 'excluded')),
    end_reason    TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (arm, study_no)
);
CREATE INDEX cases_state ON cases (state);

-- Every patient enrolled before this table existed gets a case.
INSERT INTO cases (screening_id, site_id, arm, study_no, state, created_at, updated_at)
SELECT id, site_id, arm, study_no, 'enrolled', created_at, created_at FROM screenings WHERE study_no IS NOT NULL;

CREATE TABLE case_images (
    id        INTEGER PRIMARY KEY,
    case_id   INTEGER NOT NULL REFERENCES cases (id),
    view      TEXT NOT NULL CHECK (view IN ('frontal', 'lateral', 'oblique')),
    sha256    TEXT NOT NULL,
    added_at  TEXT NOT NULL,
    added_by  INTEGER REFERENCES users (id),
    UNIQUE (case_id, sha256)
);

CREATE TABLE crf_versions (
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    version            INTEGER NOT NULL,
    -- The form as JSON (osteo_trial::case::crf::ClinicalCrf).
    data               TEXT NOT NULL,
    complete           INTEGER NOT NULL CHECK (complete IN (0, 1)),
    reason_for_change  TEXT,
    created_at         TEXT NOT NULL,
    created_by         INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (case_id, version)
);

-- Electronic signatures (21 CFR 11.50): who (printed name), when, meaning.
-- A signature is never deleted; an edit of the signed data voids it.
CREATE TABLE signatures (
    id              INTEGER PRIMARY KEY,
    entity          TEXT NOT NULL CHECK (entity IN ('crf', 'read', 'pathology', 'database')),
    entity_id       INTEGER NOT NULL,
    entity_version  INTEGER NOT NULL,
    meaning         TEXT NOT NULL CHECK (meaning IN ('author', 'review', 'approval')),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    printed_name    TEXT NOT NULL,
    signed_at       TEXT NOT NULL,
    voided_at       TEXT,
    void_reason     TEXT
);
CREATE INDEX signatures_entity ON signatures (entity, entity_id);

CREATE TABLE read_assignments (
    case_id      INTEGER NOT NULL REFERENCES cases (id),
    reader_id    INTEGER NOT NULL REFERENCES users (id),
    assigned_at  TEXT NOT NULL,
    assigned_by  INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (case_id, reader_id)
);

CREATE TABLE reads (
    id            INTEGER PRIMARY KEY,
    case_id       INTEGER NOT NULL,
    reader_id     INTEGER NOT NULL,
    -- The read as JSON (osteo_trial::case::ReadInput).
    data          TEXT NOT NULL,
    points        INTEGER,
    category      INTEGER NOT NULL CHECK (category BETWEEN 0 AND 4),
    rule_version  TEXT NOT NULL REFERENCES bone_rads_rules (version),
    likelihood    INTEGER NOT NULL CHECK (likelihood BETWEEN 0 AND 100),
    call          TEXT NOT NULL CHECK (call IN ('benign', 'malignant')),
    signed_at     TEXT,
    signature_id  INTEGER REFERENCES signatures (id),
    updated_at    TEXT NOT NULL,
    UNIQUE (case_id, reader_id),
    FOREIGN KEY (case_id, reader_id) REFERENCES read_assignments (case_id, reader_id)
);

CREATE TABLE predictions (
    case_id           INTEGER PRIMARY KEY REFERENCES cases (id),
    probability       REAL NOT NULL CHECK (probability >= 0 AND probability <= 1),
    threshold         REAL NOT NULL CHECK (threshold >= 0 AND threshold <= 1),
    call              TEXT NOT NULL CHECK (call IN ('benign', 'malignant')),
    model_id          TEXT NOT NULL,
    weights_sha256    TEXT NOT NULL,
    -- JSON arrays.
    image_sha256      TEXT NOT NULL,
    heatmaps          TEXT NOT NULL,
    bone_rads_source  TEXT NOT NULL,
    record_sha256     TEXT NOT NULL,
    created_at        TEXT NOT NULL
);

CREATE TABLE pathology_versions (
    case_id            INTEGER NOT NULL REFERENCES cases (id),
    version            INTEGER NOT NULL,
    entity             TEXT NOT NULL,
    morphology         TEXT,
    behaviour          TEXT NOT NULL CHECK (behaviour IN ('0', '1', '3')),
    tier               TEXT NOT NULL CHECK (tier IN ('benign', 'intermediate', 'malignant')),
    procedure          TEXT NOT NULL CHECK (procedure IN ('biopsy', 'resection')),
    specimen_date      TEXT NOT NULL,
    pathologist        TEXT NOT NULL,
    comment            TEXT,
    reason_for_change  TEXT,
    created_at         TEXT NOT NULL,
    created_by         INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (case_id, version)
);

CREATE TABLE queries (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    field       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed', 'cancelled')),
    raised_by   INTEGER NOT NULL REFERENCES users (id),
    raised_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX queries_status ON queries (status);

CREATE TABLE query_messages (
    query_id    INTEGER NOT NULL REFERENCES queries (id),
    seq         INTEGER NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('raise', 'answer', 'close', 'reopen', 'cancel')),
    text        TEXT NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES users (id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (query_id, seq)
);

CREATE TABLE study_lock (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    locked         INTEGER NOT NULL CHECK (locked IN (0, 1)),
    changed_at     TEXT,
    export_sha256  TEXT
);
INSERT INTO study_lock (id, locked) VALUES (1, 0);

CREATE TABLE lock_events (
    id             INTEGER PRIMARY KEY,
    action         TEXT NOT NULL CHECK (action IN ('lock', 'unlock')),
    at             TEXT NOT NULL,
    by_user        INTEGER NOT NULL REFERENCES users (id),
    signature_id   INTEGER NOT NULL REFERENCES signatures (id),
    reason         TEXT,
    export_sha256  TEXT
);

-- Pathology waits for the locks (DESIGN.md invariant 2).
CREATE TRIGGER pathology_after_locks BEFORE INSERT ON pathology_versions
WHEN NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = NEW.case_id)
  OR NOT EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = NEW.case_id)
  OR EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = NEW.case_id AND NOT EXISTS (
        SELECT 1 FROM reads r WHERE r.case_id = a.case_id AND r.reader_id = a.reader_id AND r.signed_at IS NOT NULL))
BEGIN
    SELECT RAISE(ABORT, 'pathology can be entered only after the AI prediction and every blinded read of the case are locked');
END;

-- The model runs on locked reads, and no reader joins after it ran.
CREATE TRIGGER prediction_after_reads BEFORE INSERT ON predictions
WHEN NOT EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = NEW.case_id)
  OR EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = NEW.case_id AND NOT EXISTS (
        SELECT 1 FROM reads r WHERE r.case_id = a.case_id AND r.reader_id = a.reader_id AND r.signed_at IS NOT NULL))
BEGIN
    SELECT RAISE(ABORT, 'the AI prediction is recorded only after every blinded read of the case is locked');
END;
CREATE TRIGGER assignment_before_prediction BEFORE INSERT ON read_assignments
WHEN EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = NEW.case_id)
BEGIN
    SELECT RAISE(ABORT, 'readers are assigned before the AI prediction, never after');
END;

-- Locked means immutable (DESIGN.md invariant 3).
CREATE TRIGGER predictions_never_updated BEFORE UPDATE ON predictions
BEGIN SELECT RAISE(ABORT, 'a locked AI prediction never changes'); END;
CREATE TRIGGER predictions_never_deleted BEFORE DELETE ON predictions
BEGIN SELECT RAISE(ABORT, 'a locked AI prediction is never deleted'); END;
CREATE TRIGGER signed_reads_never_updated BEFORE UPDATE ON reads WHEN OLD.signed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a signed read is locked and never changes'); END;
CREATE TRIGGER reads_never_deleted BEFORE DELETE ON reads
BEGIN SELECT RAISE(ABORT, 'reads are never deleted'); END;
CREATE TRIGGER assignments_never_deleted BEFORE DELETE ON read_assignments
BEGIN SELECT RAISE(ABORT, 'read assignments are never deleted'); END;
CREATE TRIGGER crf_versions_never_updated BEFORE UPDATE ON crf_versions
BEGIN SELECT RAISE(ABORT, 'CRF versions never change; save a new version with a reason'); END;
CREATE TRIGGER crf_versions_never_deleted BEFORE DELETE ON crf_versions
BEGIN SELECT RAISE(ABORT, 'CRF versions are never deleted'); END;
CREATE TRIGGER pathology_never_updated BEFORE UPDATE ON pathology_versions
BEGIN SELECT RAISE(ABORT, 'pathology versions never change; record a correction with a reason'); END;
CREATE TRIGGER pathology_never_deleted BEFORE DELETE ON pathology_versions
BEGIN SELECT RAISE(ABORT, 'pathology versions are never deleted'); END;
CREATE TRIGGER cases_never_deleted BEFORE DELETE ON cases
BEGIN SELECT RAISE(ABORT, 'cases are never deleted; withdraw or exclude the case instead'); END;
CREATE TRIGGER case_images_never_deleted BEFORE DELETE ON case_images
BEGIN SELECT RAISE(ABORT, 'stored radiographs are never deleted'); END;
CREATE TRIGGER rules_never_updated BEFORE UPDATE ON bone_rads_rules
BEGIN SELECT RAISE(ABORT, 'a Bone-RADS rule table never changes; add a new version'); END;
CREATE TRIGGER rules_never_deleted BEFORE DELETE ON bone_rads_rules
BEGIN SELECT RAISE(ABORT, 'a Bone-RADS rule table is never deleted'); END;
CREATE TRIGGER query_messages_never_changed BEFORE UPDATE ON query_messages
BEGIN SELECT RAISE(ABORT, 'query messages never change'); END;
CREATE TRIGGER query_messages_never_deleted BEFORE DELETE ON query_messages
BEGIN SELECT RAISE(ABORT, 'query messages are never deleted'); END;
CREATE TRIGGER queries_never_deleted BEFORE DELETE ON queries
BEGIN SELECT RAISE(ABORT, 'queries are never deleted; cancel the query instead'); END;
CREATE TRIGGER lock_events_never_changed BEFORE UPDATE ON lock_events
BEGIN SELECT RAISE(ABORT, 'lock events never change'); END;
CREATE TRIGGER lock_events_never_deleted BEFORE DELETE ON lock_events
BEGIN SELECT RAISE(ABORT, 'lock events are never deleted'); END;
CREATE TRIGGER signatures_never_deleted BEFORE DELETE ON signatures
BEGIN SELECT RAISE(ABORT, 'signatures are never deleted'); END;
-- The only change a signature takes is being voided, once.
CREATE TRIGGER signatures_only_voided BEFORE UPDATE ON signatures
WHEN OLD.voided_at IS NOT NULL OR NEW.voided_at IS NULL
  OR NEW.entity IS NOT OLD.entity OR NEW.entity_id IS NOT OLD.entity_id OR NEW.entity_version IS NOT OLD.entity_version
  OR NEW.meaning IS NOT OLD.meaning OR NEW.user_id IS NOT OLD.user_id OR NEW.printed_name IS NOT OLD.printed_name
  OR NEW.signed_at IS NOT OLD.signed_at
BEGIN SELECT RAISE(ABORT, 'a signature never changes; it can only be voided, once'); END;

-- Nothing clinical is written while the database is locked (DESIGN.md invariant 3).
CREATE TRIGGER screening_counters_locked_insert BEFORE INSERT ON screening_counters WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER screening_counters_locked_update BEFORE UPDATE ON screening_counters WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER study_number_counters_locked_insert BEFORE INSERT ON study_number_counters WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER study_number_counters_locked_update BEFORE UPDATE ON study_number_counters WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER screenings_locked_insert BEFORE INSERT ON screenings WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER screenings_locked_update BEFORE UPDATE ON screenings WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER screening_versions_locked_insert BEFORE INSERT ON screening_versions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER screening_versions_locked_update BEFORE UPDATE ON screening_versions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER cases_locked_insert BEFORE INSERT ON cases WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER cases_locked_update BEFORE UPDATE ON cases WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER case_images_locked_insert BEFORE INSERT ON case_images WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER case_images_locked_update BEFORE UPDATE ON case_images WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER crf_versions_locked_insert BEFORE INSERT ON crf_versions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER crf_versions_locked_update BEFORE UPDATE ON crf_versions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER read_assignments_locked_insert BEFORE INSERT ON read_assignments WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER read_assignments_locked_update BEFORE UPDATE ON read_assignments WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER reads_locked_insert BEFORE INSERT ON reads WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER reads_locked_update BEFORE UPDATE ON reads WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER predictions_locked_insert BEFORE INSERT ON predictions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER predictions_locked_update BEFORE UPDATE ON predictions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER pathology_versions_locked_insert BEFORE INSERT ON pathology_versions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER pathology_versions_locked_update BEFORE UPDATE ON pathology_versions WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER queries_locked_insert BEFORE INSERT ON queries WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER queries_locked_update BEFORE UPDATE ON queries WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER query_messages_locked_insert BEFORE INSERT ON query_messages WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER query_messages_locked_update BEFORE UPDATE ON query_messages WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER study_settings_locked_insert BEFORE INSERT ON study_settings WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER study_settings_locked_update BEFORE UPDATE ON study_settings WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER bone_rads_rules_locked_insert BEFORE INSERT ON bone_rads_rules WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER bone_rads_rules_locked_update BEFORE UPDATE ON bone_rads_rules WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER signatures_locked_insert BEFORE INSERT ON signatures WHEN NEW.entity <> 'database' AND (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
CREATE TRIGGER signatures_locked_update BEFORE UPDATE ON signatures WHEN NEW.entity <> 'database' AND (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;

-- The Bone-RADS point tables of PROTOCOL.md; published calculators differ on
-- the extra-osseous soft-tissue mass (4 or 2). The study confirms one.
INSERT INTO bone_rads_rules (version, rules, created_at) VALUES
('acr-2023-stm4', '{"margin_ia":1,"margin_ib":3,"margin_ii":5,"margin_iii":7,"periosteal_none":0,"periosteal_non_aggressive":2,"periosteal_aggressive":4,"erosion_under_one_third":0,"erosion_one_to_two_thirds":1,"erosion_over_two_thirds":2,"pathological_fracture":2,"soft_tissue_mass":4,"known_primary_malignancy":2,"category_min_points":[1,3,5,7]}', '2026-11-28T00:00:00.000000Z'),
('acr-2023-stm2', '{"margin_ia":1,"margin_ib":3,"margin_ii":5,"margin_iii":7,"periosteal_none":0,"periosteal_non_aggressive":2,"periosteal_aggressive":4,"erosion_under_one_third":0,"erosion_one_to_two_thirds":1,"erosion_over_two_thirds":2,"pathological_fracture":2,"soft_tissue_mass":2,"known_primary_malignancy":2,"category_min_points":[1,3,5,7]}', '2026-11-28T00:00:00.000000Z');
