-- The retrospective arm's own workflow (docs/retrospective-arm.md). Its cases
-- are the model's training set: pathology is known when the case is entered,
-- reads are optional, and the model never runs on them. So per arm:
--   prospective:   ... crf_complete -> reads_locked -> ai_locked -> pathology_entered
--   retrospective: ... crf_complete [-> reads_locked] -> pathology_entered
-- and no retrospective case ever reaches ai_locked or holds a prediction.
-- CaseState::apply_in (trial/src/case/record.rs) holds the same moves; a
-- test checks that the two agree.

CREATE TABLE case_arm_transitions (
    arm         TEXT NOT NULL CHECK (arm IN ('prospective', 'retrospective')),
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    PRIMARY KEY (arm, from_state, to_state)
);
INSERT INTO case_arm_transitions (arm, from_state, to_state)
SELECT 'prospective', from_state, to_state FROM case_transitions;
INSERT INTO case_arm_transitions (arm, from_state, to_state)
SELECT 'retrospective', from_state, to_state FROM case_transitions
WHERE to_state <> 'ai_locked' AND from_state <> 'ai_locked';
INSERT INTO case_arm_transitions (arm, from_state, to_state) VALUES
    ('retrospective', 'crf_complete', 'pathology_entered'),
    ('retrospective', 'reads_locked', 'pathology_entered');
CREATE TRIGGER case_arm_transitions_fixed BEFORE INSERT OR UPDATE OR DELETE ON case_arm_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION osteo_refuse('the case state machine is fixed');
CREATE TRIGGER case_arm_transitions_no_truncate BEFORE TRUNCATE ON case_arm_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION osteo_refuse('the trial record is never truncated (case_arm_transitions)');

CREATE OR REPLACE FUNCTION osteo_case_rules() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM osteo_check(NEW.state <> 'enrolled', 'a case starts at enrolled');
        RETURN NEW;
    END IF;
    PERFORM osteo_check(NEW.state IS DISTINCT FROM OLD.state AND NOT EXISTS (
            SELECT 1 FROM case_arm_transitions t
            WHERE t.arm = NEW.arm AND t.from_state = OLD.state AND t.to_state = NEW.state),
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

-- The model never runs on a retrospective case.
CREATE FUNCTION osteo_prediction_arm() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM osteo_check((SELECT arm FROM cases WHERE id = NEW.case_id) IS DISTINCT FROM 'prospective',
        'the AI prediction is recorded only for prospective cases: the retrospective arm trains the model');
    RETURN NEW;
END;
$$;
CREATE TRIGGER predictions_prospective_only BEFORE INSERT ON predictions
    FOR EACH ROW EXECUTE FUNCTION osteo_prediction_arm();

-- Pathology: the prospective gate is unchanged; a retrospective case takes
-- it once its clinical CRF is complete and every read assigned to it (if
-- any) is signed.
CREATE OR REPLACE FUNCTION osteo_pathology_gate() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    a TEXT;
    s TEXT;
BEGIN
    SELECT arm, state INTO a, s FROM cases WHERE id = NEW.case_id;
    IF a = 'retrospective' THEN
        IF s NOT IN ('crf_complete', 'reads_locked', 'pathology_entered', 'complete')
           OR EXISTS (SELECT 1 FROM read_assignments ra WHERE ra.case_id = NEW.case_id AND NOT EXISTS (
                SELECT 1 FROM reads r WHERE r.case_id = ra.case_id AND r.reader_id = ra.reader_id AND r.signed_at IS NOT NULL)) THEN
            RAISE EXCEPTION 'pathology of a retrospective case is entered once its clinical CRF is complete and every read assigned to it is signed'
                USING ERRCODE = 'restrict_violation';
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = NEW.case_id) OR NOT osteo_reads_locked(NEW.case_id) THEN
        RAISE EXCEPTION 'pathology can be entered only after the AI prediction and every blinded read of the case are locked'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
