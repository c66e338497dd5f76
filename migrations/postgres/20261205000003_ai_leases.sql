-- The model's lease on a case (server/src/ai.rs, trial/src/case/store/
-- prediction.rs): with several servers on one database, one server runs the
-- model on a case at a time. A lease that runs out (its server stopped in
-- the middle of a run) is taken over by another. `claims` counts how often
-- the case was taken, for monitoring and for the test of two servers.
CREATE TABLE ai_leases (
    case_id     BIGINT PRIMARY KEY REFERENCES cases (id),
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    claims      BIGINT NOT NULL DEFAULT 1
);
