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
CREATE TRIGGER case_arm_transitions_fixed_insert BEFORE INSERT ON case_arm_transitions
BEGIN SELECT RAISE(ABORT, 'the case state machine is fixed'); END;
CREATE TRIGGER case_arm_transitions_fixed_update BEFORE UPDATE ON case_arm_transitions
BEGIN SELECT RAISE(ABORT, 'the case state machine is fixed'); END;
CREATE TRIGGER case_arm_transitions_fixed_delete BEFORE DELETE ON case_arm_transitions
BEGIN SELECT RAISE(ABORT, 'the case state machine is fixed'); END;

DROP TRIGGER cases_legal_transition;
CREATE TRIGGER cases_legal_transition BEFORE UPDATE OF state ON cases
WHEN NEW.state IS NOT OLD.state
 AND NOT EXISTS (SELECT 1 FROM case_arm_transitions t
                 WHERE t.arm = NEW.arm AND t.from_state = OLD.state AND t.to_state = NEW.state)
BEGIN SELECT RAISE(ABORT, 'illegal case transition: the state machine does not allow this move'); END;

-- The model never runs on a retrospective case.
CREATE TRIGGER predictions_prospective_only BEFORE INSERT ON predictions
WHEN (SELECT arm FROM cases WHERE id = NEW.case_id) IS NOT 'prospective'
BEGIN SELECT RAISE(ABORT, 'the AI prediction is recorded only for prospective cases: the retrospective arm trains the model'); END;

-- Pathology of a retrospective case: once its clinical CRF is complete and
-- every read assigned to it (if any) is signed. The prospective gate
-- (pathology_after_locks) is unchanged for the prospective arm.
DROP TRIGGER pathology_after_locks;
CREATE TRIGGER pathology_after_locks BEFORE INSERT ON pathology_versions
WHEN (SELECT arm FROM cases WHERE id = NEW.case_id) = 'prospective' AND (
     NOT EXISTS (SELECT 1 FROM predictions p WHERE p.case_id = NEW.case_id)
  OR NOT EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = NEW.case_id)
  OR EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = NEW.case_id AND NOT EXISTS (
        SELECT 1 FROM reads r WHERE r.case_id = a.case_id AND r.reader_id = a.reader_id AND r.signed_at IS NOT NULL)))
BEGIN
    SELECT RAISE(ABORT, 'pathology can be entered only after the AI prediction and every blinded read of the case are locked');
END;
CREATE TRIGGER pathology_retrospective_gate BEFORE INSERT ON pathology_versions
WHEN (SELECT arm FROM cases WHERE id = NEW.case_id) = 'retrospective' AND (
     (SELECT state FROM cases WHERE id = NEW.case_id) NOT IN ('crf_complete', 'reads_locked', 'pathology_entered', 'complete')
  OR EXISTS (SELECT 1 FROM read_assignments a WHERE a.case_id = NEW.case_id AND NOT EXISTS (
        SELECT 1 FROM reads r WHERE r.case_id = a.case_id AND r.reader_id = a.reader_id AND r.signed_at IS NOT NULL)))
BEGIN
    SELECT RAISE(ABORT, 'pathology of a retrospective case is entered once its clinical CRF is complete and every read assigned to it is signed');
END;
