-- Evidence integrity (DESIGN.md invariants 9-13): the database refuses on its
-- own what the services refuse, so that someone with SQL access cannot bend
-- the trial's result either. The same rules as the SQLite migration of the
-- same name; see its header. On PostgreSQL, besides: TRUNCATE is refused on
-- every protected table, and the server connects as a role that owns no
-- table (docs/decisions.md, "Two database roles"), so it cannot disable or
-- drop a trigger.

CREATE FUNCTION osteo_check(failed BOOLEAN, message TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF failed THEN
        RAISE EXCEPTION '%', message USING ERRCODE = 'restrict_violation';
    END IF;
END;
$$;

-- ------------------------------------------------------------ the study kind

ALTER TABLE study ADD COLUMN kind TEXT NOT NULL DEFAULT 'trial' CHECK (kind IN ('trial', 'demo'));
UPDATE study SET kind = 'demo'
WHERE EXISTS (SELECT 1 FROM screening_versions WHERE comment LIKE 'demo case:%');
CREATE FUNCTION osteo_study_fixed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check(NEW.kind IS DISTINCT FROM OLD.kind OR NEW.registration IS DISTINCT FROM OLD.registration,
        'the study''s registration and kind (trial or demonstration) never change');
    RETURN NEW;
END;
$$;
CREATE TRIGGER study_kind_fixed BEFORE UPDATE ON study FOR EACH ROW EXECUTE FUNCTION osteo_study_fixed();
CREATE TRIGGER study_never_deleted BEFORE DELETE ON study
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('the study record is never deleted');

-- ------------------------------------------------------- case transitions

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
CREATE TRIGGER case_transitions_fixed BEFORE INSERT OR UPDATE OR DELETE ON case_transitions
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('the case state machine is fixed');

-- ------------------------------------------------------ the end of a case

CREATE TABLE case_ends (
    case_id       BIGINT PRIMARY KEY REFERENCES cases (id),
    kind          TEXT NOT NULL CHECK (kind IN ('withdrawn', 'excluded')),
    code          TEXT NOT NULL,
    from_state    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at            TEXT NOT NULL,
    by_user       BIGINT NOT NULL REFERENCES users (id),
    printed_name  TEXT,
    meaning       TEXT CHECK (meaning IS NULL OR meaning = 'approval'),
    CHECK ((kind = 'excluded' AND code IN ('E1', 'E2', 'E3'))
        OR (kind = 'withdrawn' AND code IN ('consent_withdrawn', 'lost_to_follow_up', 'pathology_not_obtained')))
);
CREATE FUNCTION osteo_case_end_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check(NEW.from_state IS DISTINCT FROM (SELECT state FROM cases WHERE id = NEW.case_id),
        'a case end records the state the case is in');
    PERFORM osteo_check(NEW.kind = 'excluded' AND NEW.from_state NOT IN ('enrolled', 'images_complete', 'crf_complete'),
        'eligibility exclusions (E1-E3) are decided before the reads lock; after that only a coded withdrawal signed by the principal investigator');
    PERFORM osteo_check(NEW.kind = 'withdrawn' AND (NEW.printed_name IS NULL OR NEW.meaning IS NULL
            OR (SELECT role FROM users WHERE id = NEW.by_user) IS DISTINCT FROM 'principal_investigator'),
        'a withdrawal needs the principal investigator''s signature');
    RETURN NEW;
END;
$$;
CREATE TRIGGER case_ends_rules BEFORE INSERT ON case_ends FOR EACH ROW EXECUTE FUNCTION osteo_case_end_rules();
CREATE TRIGGER case_ends_never_changed BEFORE UPDATE ON case_ends
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a case end never changes');
CREATE TRIGGER case_ends_never_deleted BEFORE DELETE ON case_ends
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a case end is never deleted');
CREATE TRIGGER case_ends_locked BEFORE INSERT ON case_ends FOR EACH ROW EXECUTE FUNCTION osteo_refuse_when_locked();

CREATE FUNCTION osteo_case_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM osteo_check(NEW.state <> 'enrolled', 'a case starts at enrolled');
        RETURN NEW;
    END IF;
    PERFORM osteo_check(NEW.state IS DISTINCT FROM OLD.state AND NOT EXISTS (
            SELECT 1 FROM case_transitions t WHERE t.from_state = OLD.state AND t.to_state = NEW.state),
        'illegal case transition: the state machine does not allow this move');
    PERFORM osteo_check(NEW.state IN ('withdrawn', 'excluded') AND NEW.state IS DISTINCT FROM OLD.state
            AND NOT EXISTS (SELECT 1 FROM case_ends e WHERE e.case_id = NEW.id AND e.kind = NEW.state),
        'a case ends only with its end recorded (coded reason; a withdrawal signed by the principal investigator)');
    PERFORM osteo_check(NEW.id IS DISTINCT FROM OLD.id OR NEW.screening_id IS DISTINCT FROM OLD.screening_id
            OR NEW.site_id IS DISTINCT FROM OLD.site_id OR NEW.arm IS DISTINCT FROM OLD.arm
            OR NEW.study_no IS DISTINCT FROM OLD.study_no OR NEW.created_at IS DISTINCT FROM OLD.created_at
            OR (OLD.end_reason IS NOT NULL AND NEW.end_reason IS DISTINCT FROM OLD.end_reason),
        'a case''s identity and end reason never change');
    RETURN NEW;
END;
$$;
CREATE TRIGGER cases_rules BEFORE INSERT OR UPDATE ON cases FOR EACH ROW EXECUTE FUNCTION osteo_case_rules();

-- ------------------------------------------- inputs frozen at the AI lock

CREATE TABLE deviations (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    case_id       BIGINT NOT NULL REFERENCES cases (id),
    crf_version   BIGINT NOT NULL,
    field         TEXT NOT NULL,
    old_value     TEXT,
    new_value     TEXT,
    reason        TEXT NOT NULL,
    at            TEXT NOT NULL,
    by_user       BIGINT NOT NULL REFERENCES users (id),
    printed_name  TEXT NOT NULL,
    meaning       TEXT NOT NULL CHECK (meaning = 'approval'),
    UNIQUE (case_id, crf_version, field)
);
CREATE FUNCTION osteo_deviation_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check((SELECT role FROM users WHERE id = NEW.by_user) IS DISTINCT FROM 'principal_investigator',
        'a protocol deviation is signed by the principal investigator');
    RETURN NEW;
END;
$$;
CREATE TRIGGER deviations_signed_by_pi BEFORE INSERT ON deviations FOR EACH ROW EXECUTE FUNCTION osteo_deviation_rules();
CREATE TRIGGER deviations_never_changed BEFORE UPDATE ON deviations
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a recorded deviation never changes');
CREATE TRIGGER deviations_never_deleted BEFORE DELETE ON deviations
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a recorded deviation is never deleted');
CREATE TRIGGER deviations_locked BEFORE INSERT ON deviations FOR EACH ROW EXECUTE FUNCTION osteo_refuse_when_locked();

-- The frozen fields (trial::case::crf::FROZEN_AT_AI_LOCK).
CREATE FUNCTION osteo_crf_frozen() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    prev JSONB;
    next JSONB := NEW.data::jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = NEW.case_id) THEN
        RETURN NEW;
    END IF;
    SELECT data::jsonb INTO prev FROM crf_versions WHERE case_id = NEW.case_id ORDER BY version DESC LIMIT 1;
    PERFORM osteo_check(prev IS NOT NULL AND (
            prev -> 'age_years' IS DISTINCT FROM next -> 'age_years'
         OR prev -> 'sex' IS DISTINCT FROM next -> 'sex'
         OR prev -> 'symptoms' IS DISTINCT FROM next -> 'symptoms'
         OR prev -> 'pathological_fracture' IS DISTINCT FROM next -> 'pathological_fracture'
         OR prev -> 'known_primary_malignancy' IS DISTINCT FROM next -> 'known_primary_malignancy'
         OR prev -> 'bone' IS DISTINCT FROM next -> 'bone'
         OR prev -> 'longitudinal' IS DISTINCT FROM next -> 'longitudinal')
        AND NOT EXISTS (SELECT 1 FROM deviations d WHERE d.case_id = NEW.case_id AND d.crf_version = NEW.version),
        'this CRF field fed the AI model or defines a subgroup and is frozen since the AI lock: a change needs a reason and the principal investigator''s signature (a protocol deviation)');
    RETURN NEW;
END;
$$;
CREATE TRIGGER crf_frozen_after_ai BEFORE INSERT ON crf_versions FOR EACH ROW EXECUTE FUNCTION osteo_crf_frozen();

CREATE FUNCTION osteo_images_while_enrolled() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check((SELECT state FROM cases WHERE id = NEW.case_id) IS DISTINCT FROM 'enrolled',
        'radiographs are added while the case is enrolled and its images are not yet complete');
    RETURN NEW;
END;
$$;
CREATE TRIGGER case_images_while_enrolled BEFORE INSERT ON case_images
    FOR EACH ROW EXECUTE FUNCTION osteo_images_while_enrolled();

-- --------------------------------------------------------- the pinned model

CREATE TABLE model_pins (
    id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model_id        TEXT NOT NULL,
    weights_sha256  TEXT NOT NULL CHECK (length(weights_sha256) = 64),
    card_sha256     TEXT NOT NULL CHECK (length(card_sha256) = 64),
    card            TEXT NOT NULL,
    pinned_at       TEXT NOT NULL,
    by_user         BIGINT REFERENCES users (id),
    printed_name    TEXT,
    meaning         TEXT CHECK (meaning IS NULL OR meaning = 'approval')
);
CREATE FUNCTION osteo_model_pin_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check(EXISTS (SELECT 1 FROM predictions),
        'the trial''s model is pinned before the first prediction and never changes after it');
    PERFORM osteo_check((SELECT kind FROM study WHERE id = 1) IS DISTINCT FROM 'demo'
            AND (NEW.printed_name IS NULL OR NEW.meaning IS NULL
                 OR (SELECT role FROM users WHERE id = NEW.by_user) IS DISTINCT FROM 'principal_investigator'),
        'the trial''s model is pinned with the principal investigator''s signature');
    RETURN NEW;
END;
$$;
CREATE TRIGGER model_pins_rules BEFORE INSERT ON model_pins FOR EACH ROW EXECUTE FUNCTION osteo_model_pin_rules();
CREATE TRIGGER model_pins_never_changed BEFORE UPDATE ON model_pins
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a model pin never changes');
CREATE TRIGGER model_pins_never_deleted BEFORE DELETE ON model_pins
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a model pin is never deleted');
CREATE TRIGGER model_pins_locked BEFORE INSERT ON model_pins FOR EACH ROW EXECUTE FUNCTION osteo_refuse_when_locked();

CREATE FUNCTION osteo_prediction_model() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check(NOT EXISTS (SELECT 1 FROM model_pins p WHERE p.id = (SELECT MAX(id) FROM model_pins)
            AND p.weights_sha256 = NEW.weights_sha256 AND p.model_id = NEW.model_id),
        'a prediction is recorded only from the model the principal investigator pinned');
    PERFORM osteo_check(NEW.bone_rads_source NOT IN ('primary_reader', 'consensus'),
        'the Bone-RADS source of a prediction is primary_reader or consensus');
    RETURN NEW;
END;
$$;
CREATE TRIGGER predictions_from_pinned_model BEFORE INSERT ON predictions
    FOR EACH ROW EXECUTE FUNCTION osteo_prediction_model();

ALTER TABLE read_assignments ADD COLUMN ordinal BIGINT;
CREATE FUNCTION osteo_assignment_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check(NEW.ordinal IS DISTINCT FROM (SELECT COUNT(*) + 1 FROM read_assignments WHERE case_id = NEW.case_id),
        'read assignments are numbered 1, 2, 3 in the order they are made');
    PERFORM osteo_check((SELECT role FROM users WHERE id = NEW.reader_id) IS DISTINCT FROM 'radiologist',
        'only a radiologist reads');
    RETURN NEW;
END;
$$;
CREATE TRIGGER read_assignments_rules BEFORE INSERT ON read_assignments
    FOR EACH ROW EXECUTE FUNCTION osteo_assignment_rules();
CREATE TRIGGER read_assignments_fixed BEFORE UPDATE ON read_assignments
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a read assignment never changes');

-- ------------------------------------------------ roles never cross the blind

CREATE FUNCTION osteo_role_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role IS NOT DISTINCT FROM OLD.role THEN
        RETURN NEW;
    END IF;
    PERFORM osteo_check(NEW.role = 'radiologist' AND OLD.role <> 'radiologist',
        'a user who held a role that sees pathology, AI output or other reads never becomes a reader');
    PERFORM osteo_check(OLD.role = 'radiologist' AND NEW.role <> 'radiologist'
            AND EXISTS (SELECT 1 FROM read_assignments a WHERE a.reader_id = OLD.id),
        'a radiologist who has been assigned to read never holds a role that sees pathology, AI output or other reads');
    RETURN NEW;
END;
$$;
CREATE TRIGGER users_role_rules BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION osteo_role_rules();

-- --------------------------------------------------- interim and final locks

ALTER TABLE lock_events ADD COLUMN kind TEXT CHECK (kind IS NULL OR kind IN ('interim', 'final'));
ALTER TABLE lock_events ADD COLUMN early_stop_reason TEXT;
CREATE FUNCTION osteo_lock_event_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check((NEW.action = 'lock' AND NEW.kind IS NULL) OR (NEW.action = 'unlock' AND NEW.kind IS NOT NULL),
        'a lock is interim or final; an unlock has no kind');
    PERFORM osteo_check(NEW.action = 'lock' AND NEW.kind = 'final' AND NEW.early_stop_reason IS NULL
            AND (SELECT COUNT(*) FROM cases WHERE arm = 'prospective') < 200,
        'a final lock needs the enrolment target (200 prospective patients) or a signed reason for stopping early');
    PERFORM osteo_check(EXISTS (SELECT 1 FROM lock_events WHERE action = 'lock' AND kind = 'final'),
        'the database is locked for good (final lock): it is never unlocked');
    RETURN NEW;
END;
$$;
CREATE TRIGGER lock_events_rules BEFORE INSERT ON lock_events FOR EACH ROW EXECUTE FUNCTION osteo_lock_event_rules();

CREATE TABLE unlock_signatures (
    lock_event_id  BIGINT NOT NULL REFERENCES lock_events (id),
    role           TEXT NOT NULL CHECK (role IN ('principal_investigator', 'monitor')),
    user_id        BIGINT NOT NULL REFERENCES users (id),
    printed_name   TEXT NOT NULL,
    reason         TEXT NOT NULL,
    signed_at      TEXT NOT NULL,
    PRIMARY KEY (lock_event_id, role)
);
CREATE FUNCTION osteo_unlock_signature_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check((SELECT role FROM users WHERE id = NEW.user_id) IS DISTINCT FROM NEW.role,
        'an unlock is signed by the principal investigator and the monitor');
    RETURN NEW;
END;
$$;
CREATE TRIGGER unlock_signatures_by_role BEFORE INSERT ON unlock_signatures
    FOR EACH ROW EXECUTE FUNCTION osteo_unlock_signature_rules();
CREATE TRIGGER unlock_signatures_never_changed BEFORE UPDATE ON unlock_signatures
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('an unlock signature never changes');
CREATE TRIGGER unlock_signatures_never_deleted BEFORE DELETE ON unlock_signatures
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('an unlock signature is never deleted');

CREATE FUNCTION osteo_study_lock_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check(OLD.locked = 1 AND NEW.locked = 0 AND (
            (SELECT kind FROM lock_events WHERE action = 'lock' ORDER BY id DESC LIMIT 1) IS NOT DISTINCT FROM 'final'
            OR (SELECT COUNT(*) FROM unlock_signatures u
                WHERE u.lock_event_id = (SELECT MAX(id) FROM lock_events WHERE action = 'lock')) < 2),
        'an unlock needs the principal investigator''s and the monitor''s signatures, and a final lock is never undone');
    PERFORM osteo_check(NEW.locked IS DISTINCT FROM OLD.locked
            AND (SELECT action FROM lock_events ORDER BY id DESC LIMIT 1)
                IS DISTINCT FROM CASE NEW.locked WHEN 1 THEN 'lock' ELSE 'unlock' END,
        'the database is locked and unlocked only with a signed lock event');
    RETURN NEW;
END;
$$;
CREATE TRIGGER study_lock_rules BEFORE UPDATE ON study_lock FOR EACH ROW EXECUTE FUNCTION osteo_study_lock_rules();
CREATE TRIGGER study_lock_never_deleted BEFORE DELETE ON study_lock
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('the lock record is never deleted');

CREATE TABLE data_access (
    id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at        TEXT NOT NULL,
    user_id   BIGINT REFERENCES users (id),
    actor     TEXT NOT NULL,
    role      TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE TRIGGER data_access_append_only BEFORE UPDATE OR DELETE ON data_access
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('the data access history is append-only');

-- ------------------------------------------------ signed audit chain heads

CREATE TABLE audit_anchors (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    seq            BIGINT NOT NULL,
    head_hash      TEXT NOT NULL,
    signed_at      TEXT NOT NULL,
    reason         TEXT NOT NULL,
    lock_event_id  BIGINT REFERENCES lock_events (id),
    public_key     TEXT NOT NULL,
    signature      TEXT NOT NULL
);
CREATE INDEX audit_anchors_seq ON audit_anchors (seq);
CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE OR DELETE ON audit_anchors
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a signed anchor never changes and is never deleted');

CREATE TRIGGER sites_never_deleted BEFORE DELETE ON sites
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a site is never deleted');

-- ---------------------------------------- TRUNCATE on every protected table

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['study', 'sites', 'users', 'api_tokens', 'audit_head',
        'screening_counters', 'study_number_counters', 'screenings', 'screening_versions',
        'bone_rads_rules', 'study_settings', 'cases', 'case_images', 'crf_versions', 'signatures',
        'read_assignments', 'reads', 'predictions', 'pathology_versions', 'queries', 'query_messages',
        'study_lock', 'lock_events', 'uid_map', 'sap_versions', 'sap_signatures', 'lock_snapshots',
        'ai_failures', 'quality_marks', 'case_date_shifts', 'case_transitions', 'case_ends',
        'deviations', 'model_pins', 'unlock_signatures', 'data_access', 'audit_anchors']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION osteo_refuse(%L)',
            t || '_no_truncate', t, 'the trial record is never truncated (' || t || ')');
    END LOOP;
END;
$$;
