-- Each failed attempt of the server's model run on a case, shown on the case
-- and retried; a successful run is the locked prediction itself.

CREATE TABLE ai_failures (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    model_id    TEXT NOT NULL,
    error       TEXT NOT NULL,
    at          TEXT NOT NULL,
    UNIQUE (case_id, attempt)
);

CREATE TRIGGER ai_failures_never_changed BEFORE UPDATE ON ai_failures
BEGIN SELECT RAISE(ABORT, 'a recorded model failure never changes'); END;
CREATE TRIGGER ai_failures_never_deleted BEFORE DELETE ON ai_failures
BEGIN SELECT RAISE(ABORT, 'recorded model failures are never deleted'); END;
