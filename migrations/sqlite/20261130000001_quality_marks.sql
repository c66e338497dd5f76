-- The coordinator's marks that a case's radiographs are of poor quality.
-- Each proposes exclusion E1; the exclusion itself is the case's end,
-- recorded with its reason like any other.

CREATE TABLE quality_marks (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    reason      TEXT NOT NULL,
    marked_at   TEXT NOT NULL,
    marked_by   INTEGER NOT NULL REFERENCES users (id)
);

CREATE TRIGGER quality_marks_never_changed BEFORE UPDATE ON quality_marks
BEGIN SELECT RAISE(ABORT, 'a quality mark never changes'); END;
CREATE TRIGGER quality_marks_never_deleted BEFORE DELETE ON quality_marks
BEGIN SELECT RAISE(ABORT, 'quality marks are never deleted'); END;
