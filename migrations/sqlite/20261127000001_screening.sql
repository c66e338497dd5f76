-- The screening log: every consecutively screened patient, enrolled or not.
-- An entry is never deleted; a correction adds a version with a reason.
-- Screening numbers run per site, study numbers per arm, both without gaps:
-- each is taken from a counter row in the same transaction as the entry.

CREATE TABLE screening_counters (
    site_id   INTEGER PRIMARY KEY REFERENCES sites (id),
    last_no   INTEGER NOT NULL
);

CREATE TABLE study_number_counters (
    arm       TEXT PRIMARY KEY CHECK (arm IN ('prospective', 'retrospective')),
    last_no   INTEGER NOT NULL
);
INSERT INTO study_number_counters (arm, last_no) VALUES ('prospective', 0), ('retrospective', 0);

CREATE TABLE screenings (
    id            INTEGER PRIMARY KEY,
    site_id       INTEGER NOT NULL REFERENCES sites (id),
    screening_no  INTEGER NOT NULL,
    arm           TEXT NOT NULL CHECK (arm IN ('prospective', 'retrospective')),
    -- Set once at enrolment, never changed.
    study_no      INTEGER,
    created_at    TEXT NOT NULL,
    created_by    INTEGER NOT NULL REFERENCES users (id),
    UNIQUE (site_id, screening_no),
    UNIQUE (arm, study_no)
);

CREATE TABLE screening_versions (
    screening_id        INTEGER NOT NULL REFERENCES screenings (id),
    version             INTEGER NOT NULL,
    screening_date      TEXT NOT NULL,
    inclusion_met       INTEGER NOT NULL CHECK (inclusion_met IN (0, 1)),
    -- Exclusion codes, comma-separated from E1, E2, E3 ('' for none).
    exclusions          TEXT NOT NULL,
    outcome             TEXT NOT NULL CHECK (outcome IN ('enrolled', 'excluded', 'not_enrolled')),
    not_enrolled_reason TEXT CHECK (not_enrolled_reason IN ('declined', 'missed', 'inclusion_not_met')),
    comment             TEXT,
    reason_for_change   TEXT,
    created_at          TEXT NOT NULL,
    created_by          INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (screening_id, version)
);

CREATE TRIGGER screenings_never_deleted BEFORE DELETE ON screenings
BEGIN
    SELECT RAISE(ABORT, 'screening log entries are never deleted; record a correction instead');
END;
CREATE TRIGGER screening_versions_never_deleted BEFORE DELETE ON screening_versions
BEGIN
    SELECT RAISE(ABORT, 'screening log versions are never deleted');
END;
CREATE TRIGGER screening_versions_never_updated BEFORE UPDATE ON screening_versions
BEGIN
    SELECT RAISE(ABORT, 'screening log versions are never changed; record a correction instead');
END;
CREATE TRIGGER screenings_study_no_fixed BEFORE UPDATE OF study_no ON screenings
WHEN OLD.study_no IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a study number, once given, never changes');
END;
