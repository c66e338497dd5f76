-- Evidence integrity (DESIGN.md invariants 9-13): the database refuses on its
-- own what the services refuse, so that someone with SQL access cannot bend
-- the trial's result either.
--   * A case moves only along the state machine's transitions; eligibility
--     exclusions only before the reads lock, later only coded withdrawals
--     signed by the principal investigator (case_ends).
--   * The inputs that fed the model are frozen at the AI lock: a change is a
--     signed protocol deviation (deviations).
--   * One model, pinned by the PI before the first prediction (model_pins).
--   * Locks are interim or final; an unlock needs the PI's and the monitor's
--     signatures; a final lock is never undone; every look before the final
--     lock is listed (unlock_signatures, data_access).
--   * The audit chain's head is signed with a key kept outside the database
--     (audit_anchors).
--   * Whoever reads never gets a role that sees the outcome, and the reverse.
--   * INSERT OR REPLACE / REPLACE INTO would delete the row it replaces
--     without firing DELETE triggers (unless recursive_triggers is on, which
--     is a setting of each connection, not of the database): every protected
--     table refuses an INSERT that collides with an existing row.

-- ------------------------------------------------------------ the study kind

-- 'trial' (ChiCTR2500102778, study numbers P-/R-) or 'demo' (the
-- demonstration study: its own accounts, phantom cases and demo model,
-- numbers D-/DR-). Fixed when the database is created.
ALTER TABLE study ADD COLUMN kind TEXT NOT NULL DEFAULT 'trial' CHECK (kind IN ('trial', 'demo'));
-- A database made in demo mode before this column existed holds demo cases.
UPDATE study SET kind = 'demo'
WHERE EXISTS (SELECT 1 FROM screening_versions WHERE comment LIKE 'demo case:%');
CREATE TRIGGER study_kind_fixed BEFORE UPDATE ON study
WHEN NEW.kind IS NOT OLD.kind OR NEW.registration IS NOT OLD.registration
BEGIN SELECT RAISE(ABORT, 'the study''s registration and kind (trial or demonstration) never change'); END;
CREATE TRIGGER study_never_deleted BEFORE DELETE ON study
BEGIN SELECT RAISE(ABORT, 'the study record is never deleted'); END;

-- ------------------------------------------------------- case transitions

-- The legal moves of CaseState::apply (trial/src/case.rs); a test checks that
-- the two agree. Eligibility exclusions only before the reads lock; coded
-- withdrawals until pathology is entered; nothing leaves a final state except
-- a pathology correction of a complete case.
CREATE TABLE case_transitions (
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    PRIMARY KEY (from_state, to_state)
);
INSERT INTO case_transitions (from_state, to_state) VALUES
    ('enrolled', 'images_complete'),
    ('images_complete', 'crf_complete'),
    ('crf_complete', 'reads_locked'),
    ('reads_locked', 'ai_locked'),
    ('ai_locked', 'pathology_entered'),
    ('pathology_entered', 'complete'),
    ('complete', 'pathology_entered'),
    ('enrolled', 'excluded'),
    ('images_complete', 'excluded'),
    ('crf_complete', 'excluded'),
    ('enrolled', 'withdrawn'),
    ('images_complete', 'withdrawn'),
    ('crf_complete', 'withdrawn'),
    ('reads_locked', 'withdrawn'),
    ('ai_locked', 'withdrawn');
CREATE TRIGGER case_transitions_fixed_insert BEFORE INSERT ON case_transitions
BEGIN SELECT RAISE(ABORT, 'the case state machine is fixed'); END;
CREATE TRIGGER case_transitions_fixed_update BEFORE UPDATE ON case_transitions
BEGIN SELECT RAISE(ABORT, 'the case state machine is fixed'); END;
CREATE TRIGGER case_transitions_fixed_delete BEFORE DELETE ON case_transitions
BEGIN SELECT RAISE(ABORT, 'the case state machine is fixed'); END;

-- ------------------------------------------------------ the end of a case

-- How and when a case left the study, with the state it was in. An
-- exclusion (E1-E3) is the coordinator's, before the reads lock; a
-- withdrawal carries the principal investigator's signature.
CREATE TABLE case_ends (
    case_id       INTEGER PRIMARY KEY REFERENCES cases (id),
    kind          TEXT NOT NULL CHECK (kind IN ('withdrawn', 'excluded')),
    code          TEXT NOT NULL,
    from_state    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at            TEXT NOT NULL,
    by_user       INTEGER NOT NULL REFERENCES users (id),
    -- The PI's signature on a withdrawal (21 CFR 11.50: printed name, time, meaning).
    printed_name  TEXT,
    meaning       TEXT CHECK (meaning IS NULL OR meaning = 'approval'),
    CHECK ((kind = 'excluded' AND code IN ('E1', 'E2', 'E3'))
        OR (kind = 'withdrawn' AND code IN ('consent_withdrawn', 'lost_to_follow_up', 'pathology_not_obtained')))
);
CREATE TRIGGER case_ends_from_current_state BEFORE INSERT ON case_ends
WHEN NEW.from_state IS NOT (SELECT state FROM cases WHERE id = NEW.case_id)
BEGIN SELECT RAISE(ABORT, 'a case end records the state the case is in'); END;
CREATE TRIGGER case_ends_exclusion_before_reads BEFORE INSERT ON case_ends
WHEN NEW.kind = 'excluded' AND NEW.from_state NOT IN ('enrolled', 'images_complete', 'crf_complete')
BEGIN SELECT RAISE(ABORT, 'eligibility exclusions (E1-E3) are decided before the reads lock; after that only a coded withdrawal signed by the principal investigator'); END;
CREATE TRIGGER case_ends_withdrawal_signed BEFORE INSERT ON case_ends
WHEN NEW.kind = 'withdrawn' AND (NEW.printed_name IS NULL OR NEW.meaning IS NULL
  OR (SELECT role FROM users WHERE id = NEW.by_user) IS NOT 'principal_investigator')
BEGIN SELECT RAISE(ABORT, 'a withdrawal needs the principal investigator''s signature'); END;
CREATE TRIGGER case_ends_once BEFORE INSERT ON case_ends
WHEN EXISTS (SELECT 1 FROM case_ends WHERE case_id = NEW.case_id)
BEGIN SELECT RAISE(ABORT, 'a case ends once'); END;
CREATE TRIGGER case_ends_never_changed BEFORE UPDATE ON case_ends
BEGIN SELECT RAISE(ABORT, 'a case end never changes'); END;
CREATE TRIGGER case_ends_never_deleted BEFORE DELETE ON case_ends
BEGIN SELECT RAISE(ABORT, 'a case end is never deleted'); END;
CREATE TRIGGER case_ends_locked_insert BEFORE INSERT ON case_ends WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;

-- SQLite fires the trigger created last first: the transition rule is
-- checked before the others, so its message is the one a refusal shows.
CREATE TRIGGER cases_start_enrolled BEFORE INSERT ON cases WHEN NEW.state <> 'enrolled'
BEGIN SELECT RAISE(ABORT, 'a case starts at enrolled'); END;
CREATE TRIGGER cases_identity_fixed BEFORE UPDATE ON cases
WHEN NEW.id IS NOT OLD.id OR NEW.screening_id IS NOT OLD.screening_id OR NEW.site_id IS NOT OLD.site_id
  OR NEW.arm IS NOT OLD.arm OR NEW.study_no IS NOT OLD.study_no OR NEW.created_at IS NOT OLD.created_at
  OR (OLD.end_reason IS NOT NULL AND NEW.end_reason IS NOT OLD.end_reason)
BEGIN SELECT RAISE(ABORT, 'a case''s identity and end reason never change'); END;

CREATE TRIGGER cases_end_recorded BEFORE UPDATE OF state ON cases
WHEN NEW.state IN ('withdrawn', 'excluded') AND NEW.state IS NOT OLD.state
 AND NOT EXISTS (SELECT 1 FROM case_ends e WHERE e.case_id = NEW.id AND e.kind = NEW.state)
BEGIN SELECT RAISE(ABORT, 'a case ends only with its end recorded (coded reason; a withdrawal signed by the principal investigator)'); END;
CREATE TRIGGER cases_legal_transition BEFORE UPDATE OF state ON cases
WHEN NEW.state IS NOT OLD.state
 AND NOT EXISTS (SELECT 1 FROM case_transitions t WHERE t.from_state = OLD.state AND t.to_state = NEW.state)
BEGIN SELECT RAISE(ABORT, 'illegal case transition: the state machine does not allow this move'); END;
-- ------------------------------------------- inputs frozen at the AI lock

-- A change, after the case's prediction is locked, of a CRF field that fed
-- the model or defines a subgroup: signed by the PI, with a reason, and
-- reported as a protocol deviation. One row per changed field.
CREATE TABLE deviations (
    id            INTEGER PRIMARY KEY,
    case_id       INTEGER NOT NULL REFERENCES cases (id),
    crf_version   INTEGER NOT NULL,
    field         TEXT NOT NULL,
    old_value     TEXT,
    new_value     TEXT,
    reason        TEXT NOT NULL,
    at            TEXT NOT NULL,
    by_user       INTEGER NOT NULL REFERENCES users (id),
    printed_name  TEXT NOT NULL,
    meaning       TEXT NOT NULL CHECK (meaning = 'approval'),
    UNIQUE (case_id, crf_version, field)
);
CREATE TRIGGER deviations_signed_by_pi BEFORE INSERT ON deviations
WHEN (SELECT role FROM users WHERE id = NEW.by_user) IS NOT 'principal_investigator'
BEGIN SELECT RAISE(ABORT, 'a protocol deviation is signed by the principal investigator'); END;
CREATE TRIGGER deviations_no_replace BEFORE INSERT ON deviations
WHEN EXISTS (SELECT 1 FROM deviations WHERE id = NEW.id
             OR (case_id = NEW.case_id AND crf_version = NEW.crf_version AND field = NEW.field))
BEGIN SELECT RAISE(ABORT, 'a recorded deviation is never replaced'); END;
CREATE TRIGGER deviations_never_changed BEFORE UPDATE ON deviations
BEGIN SELECT RAISE(ABORT, 'a recorded deviation never changes'); END;
CREATE TRIGGER deviations_never_deleted BEFORE DELETE ON deviations
BEGIN SELECT RAISE(ABORT, 'a recorded deviation is never deleted'); END;
CREATE TRIGGER deviations_locked_insert BEFORE INSERT ON deviations WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;

-- The frozen fields (trial::case::crf::FROZEN_AT_AI_LOCK): a new CRF version
-- that changes one of them after the prediction needs its deviation rows.
CREATE TRIGGER crf_frozen_after_ai BEFORE INSERT ON crf_versions
WHEN EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = NEW.case_id)
 AND EXISTS (
    SELECT 1 FROM (SELECT data FROM crf_versions WHERE case_id = NEW.case_id ORDER BY version DESC LIMIT 1) prev
    WHERE json_extract(prev.data, '$.age_years') IS NOT json_extract(NEW.data, '$.age_years')
       OR json_extract(prev.data, '$.sex') IS NOT json_extract(NEW.data, '$.sex')
       OR json_extract(prev.data, '$.symptoms') IS NOT json_extract(NEW.data, '$.symptoms')
       OR json_extract(prev.data, '$.pathological_fracture') IS NOT json_extract(NEW.data, '$.pathological_fracture')
       OR json_extract(prev.data, '$.known_primary_malignancy') IS NOT json_extract(NEW.data, '$.known_primary_malignancy')
       OR json_extract(prev.data, '$.bone') IS NOT json_extract(NEW.data, '$.bone')
       OR json_extract(prev.data, '$.longitudinal') IS NOT json_extract(NEW.data, '$.longitudinal'))
 AND NOT EXISTS (SELECT 1 FROM deviations d WHERE d.case_id = NEW.case_id AND d.crf_version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'this CRF field fed the AI model or defines a subgroup and is frozen since the AI lock: a change needs a reason and the principal investigator''s signature (a protocol deviation)'); END;

-- The views the model saw: radiographs are added only while the case is enrolled.
CREATE TRIGGER case_images_while_enrolled BEFORE INSERT ON case_images
WHEN (SELECT state FROM cases WHERE id = NEW.case_id) IS NOT 'enrolled'
BEGIN SELECT RAISE(ABORT, 'radiographs are added while the case is enrolled and its images are not yet complete'); END;

-- --------------------------------------------------------- the pinned model

-- The trial's model, pinned by the PI with a signature before the first
-- prediction (in the demonstration study the system pins the demo model).
CREATE TABLE model_pins (
    id              INTEGER PRIMARY KEY,
    model_id        TEXT NOT NULL,
    weights_sha256  TEXT NOT NULL CHECK (length(weights_sha256) = 64),
    card_sha256     TEXT NOT NULL CHECK (length(card_sha256) = 64),
    -- The model card as JSON (osteo_model::ModelCard).
    card            TEXT NOT NULL,
    pinned_at       TEXT NOT NULL,
    by_user         INTEGER REFERENCES users (id),
    printed_name    TEXT,
    meaning         TEXT CHECK (meaning IS NULL OR meaning = 'approval')
);
CREATE TRIGGER model_pins_before_predictions BEFORE INSERT ON model_pins
WHEN EXISTS (SELECT 1 FROM predictions)
BEGIN SELECT RAISE(ABORT, 'the trial''s model is pinned before the first prediction and never changes after it'); END;
CREATE TRIGGER model_pins_signed_by_pi BEFORE INSERT ON model_pins
WHEN (SELECT kind FROM study WHERE id = 1) IS NOT 'demo'
 AND (NEW.printed_name IS NULL OR NEW.meaning IS NULL
      OR (SELECT role FROM users WHERE id = NEW.by_user) IS NOT 'principal_investigator')
BEGIN SELECT RAISE(ABORT, 'the trial''s model is pinned with the principal investigator''s signature'); END;
CREATE TRIGGER model_pins_no_replace BEFORE INSERT ON model_pins
WHEN EXISTS (SELECT 1 FROM model_pins WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'a model pin is never replaced'); END;
CREATE TRIGGER model_pins_never_changed BEFORE UPDATE ON model_pins
BEGIN SELECT RAISE(ABORT, 'a model pin never changes'); END;
CREATE TRIGGER model_pins_never_deleted BEFORE DELETE ON model_pins
BEGIN SELECT RAISE(ABORT, 'a model pin is never deleted'); END;
CREATE TRIGGER model_pins_locked_insert BEFORE INSERT ON model_pins WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;

-- A prediction comes from the pinned model, and says which Bone-RADS score it took.
CREATE TRIGGER predictions_from_pinned_model BEFORE INSERT ON predictions
WHEN NOT EXISTS (SELECT 1 FROM model_pins p WHERE p.id = (SELECT MAX(id) FROM model_pins)
                 AND p.weights_sha256 = NEW.weights_sha256 AND p.model_id = NEW.model_id)
BEGIN SELECT RAISE(ABORT, 'a prediction is recorded only from the model the principal investigator pinned'); END;
CREATE TRIGGER predictions_source_known BEFORE INSERT ON predictions
WHEN NEW.bone_rads_source NOT IN ('primary_reader', 'consensus')
BEGIN SELECT RAISE(ABORT, 'the Bone-RADS source of a prediction is primary_reader or consensus'); END;

-- The primary reader is the first reader assigned: assignments are numbered.
ALTER TABLE read_assignments ADD COLUMN ordinal INTEGER;
CREATE TRIGGER read_assignments_numbered BEFORE INSERT ON read_assignments
WHEN NEW.ordinal IS NOT (SELECT COUNT(*) + 1 FROM read_assignments WHERE case_id = NEW.case_id)
BEGIN SELECT RAISE(ABORT, 'read assignments are numbered 1, 2, 3 in the order they are made'); END;
CREATE TRIGGER read_assignments_fixed BEFORE UPDATE ON read_assignments
BEGIN SELECT RAISE(ABORT, 'a read assignment never changes'); END;

-- ------------------------------------------------ roles never cross the blind

CREATE TRIGGER readers_are_radiologists BEFORE INSERT ON read_assignments
WHEN (SELECT role FROM users WHERE id = NEW.reader_id) IS NOT 'radiologist'
BEGIN SELECT RAISE(ABORT, 'only a radiologist reads'); END;
CREATE TRIGGER users_never_become_readers BEFORE UPDATE OF role ON users
WHEN NEW.role = 'radiologist' AND OLD.role <> 'radiologist'
BEGIN SELECT RAISE(ABORT, 'a user who held a role that sees pathology, AI output or other reads never becomes a reader'); END;
CREATE TRIGGER readers_never_unblinded BEFORE UPDATE OF role ON users
WHEN OLD.role = 'radiologist' AND NEW.role <> 'radiologist'
 AND EXISTS (SELECT 1 FROM read_assignments a WHERE a.reader_id = OLD.id)
BEGIN SELECT RAISE(ABORT, 'a radiologist who has been assigned to read never holds a role that sees pathology, AI output or other reads'); END;

-- --------------------------------------------------- interim and final locks

ALTER TABLE lock_events ADD COLUMN kind TEXT CHECK (kind IS NULL OR kind IN ('interim', 'final'));
-- A final lock before the enrolment target: the signed reason for stopping early.
ALTER TABLE lock_events ADD COLUMN early_stop_reason TEXT;
CREATE TRIGGER lock_events_kind BEFORE INSERT ON lock_events
WHEN (NEW.action = 'lock' AND NEW.kind IS NULL) OR (NEW.action = 'unlock' AND NEW.kind IS NOT NULL)
BEGIN SELECT RAISE(ABORT, 'a lock is interim or final; an unlock has no kind'); END;
CREATE TRIGGER lock_events_final_needs_target BEFORE INSERT ON lock_events
WHEN NEW.action = 'lock' AND NEW.kind = 'final' AND NEW.early_stop_reason IS NULL
 AND (SELECT COUNT(*) FROM cases WHERE arm = 'prospective') < 200
BEGIN SELECT RAISE(ABORT, 'a final lock needs the enrolment target (200 prospective patients) or a signed reason for stopping early'); END;
CREATE TRIGGER lock_events_after_final BEFORE INSERT ON lock_events
WHEN EXISTS (SELECT 1 FROM lock_events WHERE action = 'lock' AND kind = 'final')
BEGIN SELECT RAISE(ABORT, 'the database is locked for good (final lock): it is never unlocked'); END;
CREATE TRIGGER lock_events_no_replace BEFORE INSERT ON lock_events
WHEN EXISTS (SELECT 1 FROM lock_events WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'lock events never change'); END;

-- An unlock needs two signatures, the PI's and the monitor's, each with a reason.
CREATE TABLE unlock_signatures (
    lock_event_id  INTEGER NOT NULL REFERENCES lock_events (id),
    role           TEXT NOT NULL CHECK (role IN ('principal_investigator', 'monitor')),
    user_id        INTEGER NOT NULL REFERENCES users (id),
    printed_name   TEXT NOT NULL,
    reason         TEXT NOT NULL,
    signed_at      TEXT NOT NULL,
    PRIMARY KEY (lock_event_id, role)
);
CREATE TRIGGER unlock_signatures_by_role BEFORE INSERT ON unlock_signatures
WHEN (SELECT role FROM users WHERE id = NEW.user_id) IS NOT NEW.role
BEGIN SELECT RAISE(ABORT, 'an unlock is signed by the principal investigator and the monitor'); END;
CREATE TRIGGER unlock_signatures_no_replace BEFORE INSERT ON unlock_signatures
WHEN EXISTS (SELECT 1 FROM unlock_signatures WHERE lock_event_id = NEW.lock_event_id AND role = NEW.role)
BEGIN SELECT RAISE(ABORT, 'an unlock signature is never replaced'); END;
CREATE TRIGGER unlock_signatures_never_changed BEFORE UPDATE ON unlock_signatures
BEGIN SELECT RAISE(ABORT, 'an unlock signature never changes'); END;
CREATE TRIGGER unlock_signatures_never_deleted BEFORE DELETE ON unlock_signatures
BEGIN SELECT RAISE(ABORT, 'an unlock signature is never deleted'); END;

CREATE TRIGGER study_lock_no_replace BEFORE INSERT ON study_lock
BEGIN SELECT RAISE(ABORT, 'the lock record is changed only by locking and unlocking'); END;
CREATE TRIGGER study_lock_never_deleted BEFORE DELETE ON study_lock
BEGIN SELECT RAISE(ABORT, 'the lock record is never deleted'); END;
CREATE TRIGGER study_lock_follows_events BEFORE UPDATE ON study_lock
WHEN NEW.locked IS NOT OLD.locked AND (SELECT action FROM lock_events ORDER BY id DESC LIMIT 1)
     IS NOT CASE NEW.locked WHEN 1 THEN 'lock' ELSE 'unlock' END
BEGIN SELECT RAISE(ABORT, 'the database is locked and unlocked only with a signed lock event'); END;

CREATE TRIGGER study_lock_unlock_rules BEFORE UPDATE ON study_lock
WHEN OLD.locked = 1 AND NEW.locked = 0 AND (
    (SELECT kind FROM lock_events WHERE action = 'lock' ORDER BY id DESC LIMIT 1) IS 'final'
    OR (SELECT COUNT(*) FROM unlock_signatures u
        WHERE u.lock_event_id = (SELECT MAX(id) FROM lock_events WHERE action = 'lock')) < 2)
BEGIN SELECT RAISE(ABORT, 'an unlock needs the principal investigator''s and the monitor''s signatures, and a final lock is never undone'); END;
-- Every look at the data before the final lock: locks, unlocks, analysis
-- views and export downloads (who, when, what).
CREATE TABLE data_access (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    user_id   INTEGER REFERENCES users (id),
    actor     TEXT NOT NULL,
    role      TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE TRIGGER data_access_no_replace BEFORE INSERT ON data_access
WHEN EXISTS (SELECT 1 FROM data_access WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'the data access history is append-only'); END;
CREATE TRIGGER data_access_never_changed BEFORE UPDATE ON data_access
BEGIN SELECT RAISE(ABORT, 'the data access history is append-only'); END;
CREATE TRIGGER data_access_never_deleted BEFORE DELETE ON data_access
BEGIN SELECT RAISE(ABORT, 'the data access history is append-only'); END;

-- ------------------------------------------------ signed audit chain heads

-- The chain's head (sequence number and hash) signed with an Ed25519 key
-- kept outside the database, at every lock, every export and at least
-- hourly while writes happen. Someone who rewrites the whole chain cannot
-- sign the new heads: `audit verify` finds the old signed ones.
CREATE TABLE audit_anchors (
    id             INTEGER PRIMARY KEY,
    seq            INTEGER NOT NULL,
    head_hash      TEXT NOT NULL,
    signed_at      TEXT NOT NULL,
    reason         TEXT NOT NULL,
    lock_event_id  INTEGER REFERENCES lock_events (id),
    -- Hex: the Ed25519 public key (32 bytes) and the signature (64 bytes)
    -- over the anchor's canonical text (trial::audit::anchor).
    public_key     TEXT NOT NULL,
    signature      TEXT NOT NULL
);
CREATE INDEX audit_anchors_seq ON audit_anchors (seq);
CREATE TRIGGER audit_anchors_no_replace BEFORE INSERT ON audit_anchors
WHEN EXISTS (SELECT 1 FROM audit_anchors WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'a signed anchor is never replaced'); END;
CREATE TRIGGER audit_anchors_never_changed BEFORE UPDATE ON audit_anchors
BEGIN SELECT RAISE(ABORT, 'a signed anchor never changes'); END;
CREATE TRIGGER audit_anchors_never_deleted BEFORE DELETE ON audit_anchors
BEGIN SELECT RAISE(ABORT, 'a signed anchor is never deleted'); END;

-- ------------------------------- no INSERT OR REPLACE over protected rows

CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: rows cannot be replaced'); END;
CREATE TRIGGER audit_head_no_replace BEFORE INSERT ON audit_head
BEGIN SELECT RAISE(ABORT, 'the audit chain head moves only by appending to the chain'); END;
CREATE TRIGGER predictions_no_replace BEFORE INSERT ON predictions
WHEN EXISTS (SELECT 1 FROM predictions WHERE case_id = NEW.case_id)
BEGIN SELECT RAISE(ABORT, 'a locked AI prediction is never replaced'); END;
CREATE TRIGGER reads_no_replace BEFORE INSERT ON reads
WHEN EXISTS (SELECT 1 FROM reads WHERE id = NEW.id OR (case_id = NEW.case_id AND reader_id = NEW.reader_id))
BEGIN SELECT RAISE(ABORT, 'a read is never replaced: it is saved again until signed, then locked'); END;
CREATE TRIGGER pathology_no_replace BEFORE INSERT ON pathology_versions
WHEN EXISTS (SELECT 1 FROM pathology_versions WHERE case_id = NEW.case_id AND version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'pathology versions are never replaced; record a correction with a reason'); END;
CREATE TRIGGER crf_versions_no_replace BEFORE INSERT ON crf_versions
WHEN EXISTS (SELECT 1 FROM crf_versions WHERE case_id = NEW.case_id AND version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'CRF versions are never replaced; save a new version with a reason'); END;
CREATE TRIGGER lock_snapshots_no_replace BEFORE INSERT ON lock_snapshots
WHEN EXISTS (SELECT 1 FROM lock_snapshots WHERE lock_event_id = NEW.lock_event_id)
BEGIN SELECT RAISE(ABORT, 'a lock snapshot is never replaced'); END;
CREATE TRIGGER signatures_no_replace BEFORE INSERT ON signatures
WHEN EXISTS (SELECT 1 FROM signatures WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'signatures are never replaced'); END;
CREATE TRIGGER screenings_no_replace BEFORE INSERT ON screenings
WHEN EXISTS (SELECT 1 FROM screenings WHERE id = NEW.id OR (site_id = NEW.site_id AND screening_no = NEW.screening_no)
             OR (arm = NEW.arm AND study_no = NEW.study_no))
BEGIN SELECT RAISE(ABORT, 'screening log entries are never replaced; record a correction instead'); END;
CREATE TRIGGER screening_versions_no_replace BEFORE INSERT ON screening_versions
WHEN EXISTS (SELECT 1 FROM screening_versions WHERE screening_id = NEW.screening_id AND version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'screening log versions are never replaced'); END;
CREATE TRIGGER cases_no_replace BEFORE INSERT ON cases
WHEN EXISTS (SELECT 1 FROM cases WHERE id = NEW.id OR screening_id = NEW.screening_id
             OR (arm = NEW.arm AND study_no = NEW.study_no))
BEGIN SELECT RAISE(ABORT, 'cases are never replaced'); END;
CREATE TRIGGER case_images_no_replace BEFORE INSERT ON case_images
WHEN EXISTS (SELECT 1 FROM case_images WHERE id = NEW.id OR (case_id = NEW.case_id AND sha256 = NEW.sha256)
             OR original_sha256 = NEW.original_sha256)
BEGIN SELECT RAISE(ABORT, 'stored radiographs are never replaced'); END;
CREATE TRIGGER read_assignments_no_replace BEFORE INSERT ON read_assignments
WHEN EXISTS (SELECT 1 FROM read_assignments WHERE case_id = NEW.case_id AND reader_id = NEW.reader_id)
BEGIN SELECT RAISE(ABORT, 'read assignments are never replaced'); END;
CREATE TRIGGER queries_no_replace BEFORE INSERT ON queries
WHEN EXISTS (SELECT 1 FROM queries WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'queries are never replaced'); END;
CREATE TRIGGER query_messages_no_replace BEFORE INSERT ON query_messages
WHEN EXISTS (SELECT 1 FROM query_messages WHERE query_id = NEW.query_id AND seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'query messages are never replaced'); END;
CREATE TRIGGER sap_versions_no_replace BEFORE INSERT ON sap_versions
WHEN EXISTS (SELECT 1 FROM sap_versions WHERE version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'a SAP version is never replaced'); END;
CREATE TRIGGER sap_signatures_no_replace BEFORE INSERT ON sap_signatures
WHEN EXISTS (SELECT 1 FROM sap_signatures WHERE version = NEW.version AND role = NEW.role)
BEGIN SELECT RAISE(ABORT, 'signatures are never replaced'); END;
CREATE TRIGGER ai_failures_no_replace BEFORE INSERT ON ai_failures
WHEN EXISTS (SELECT 1 FROM ai_failures WHERE id = NEW.id OR (case_id = NEW.case_id AND attempt = NEW.attempt))
BEGIN SELECT RAISE(ABORT, 'a recorded model failure is never replaced'); END;
CREATE TRIGGER quality_marks_no_replace BEFORE INSERT ON quality_marks
WHEN EXISTS (SELECT 1 FROM quality_marks WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'quality marks are never replaced'); END;
CREATE TRIGGER uid_map_no_replace BEFORE INSERT ON uid_map
WHEN EXISTS (SELECT 1 FROM uid_map WHERE original = NEW.original OR replacement = NEW.replacement)
BEGIN SELECT RAISE(ABORT, 'a UID mapping is never replaced'); END;
CREATE TRIGGER case_date_shifts_no_replace BEFORE INSERT ON case_date_shifts
WHEN EXISTS (SELECT 1 FROM case_date_shifts WHERE case_id = NEW.case_id)
BEGIN SELECT RAISE(ABORT, 'a date shift is never replaced'); END;
CREATE TRIGGER bone_rads_rules_no_replace BEFORE INSERT ON bone_rads_rules
WHEN EXISTS (SELECT 1 FROM bone_rads_rules WHERE version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'a Bone-RADS rule table is never replaced; add a new version'); END;
CREATE TRIGGER users_no_replace BEFORE INSERT ON users
WHEN EXISTS (SELECT 1 FROM users WHERE id = NEW.id OR username = NEW.username)
BEGIN SELECT RAISE(ABORT, 'accounts are never replaced or deleted'); END;
CREATE TRIGGER study_no_replace BEFORE INSERT ON study
WHEN EXISTS (SELECT 1 FROM study)
BEGIN SELECT RAISE(ABORT, 'the study record is never replaced'); END;
CREATE TRIGGER study_settings_no_replace BEFORE INSERT ON study_settings
WHEN EXISTS (SELECT 1 FROM study_settings)
BEGIN SELECT RAISE(ABORT, 'the study settings are changed, never replaced'); END;
CREATE TRIGGER sites_no_replace BEFORE INSERT ON sites
WHEN EXISTS (SELECT 1 FROM sites WHERE id = NEW.id OR code = NEW.code)
BEGIN SELECT RAISE(ABORT, 'a site is never replaced'); END;
CREATE TRIGGER sites_never_deleted BEFORE DELETE ON sites
BEGIN SELECT RAISE(ABORT, 'a site is never deleted'); END;
