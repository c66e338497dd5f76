-- What the image ingest records of each stored radiograph, and the UID
-- mapping of de-identification (kept here, never exported).

ALTER TABLE case_images ADD COLUMN original_sha256 TEXT;
ALTER TABLE case_images ADD COLUMN modality TEXT;
ALTER TABLE case_images ADD COLUMN transfer_syntax TEXT;
ALTER TABLE case_images ADD COLUMN rows_px INTEGER;
ALTER TABLE case_images ADD COLUMN columns_px INTEGER;
ALTER TABLE case_images ADD COLUMN photometric TEXT;
ALTER TABLE case_images ADD COLUMN body_part TEXT;
ALTER TABLE case_images ADD COLUMN laterality TEXT;
-- Quality warnings found on ingest, as a JSON array.
ALTER TABLE case_images ADD COLUMN warnings TEXT;
CREATE UNIQUE INDEX case_images_original ON case_images (original_sha256);

CREATE TABLE uid_map (
    original     TEXT PRIMARY KEY,
    replacement  TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
);
CREATE TRIGGER uid_map_never_changed BEFORE UPDATE ON uid_map
BEGIN SELECT RAISE(ABORT, 'a UID mapping never changes'); END;
CREATE TRIGGER uid_map_never_deleted BEFORE DELETE ON uid_map
BEGIN SELECT RAISE(ABORT, 'a UID mapping is never deleted'); END;
CREATE TRIGGER uid_map_locked_insert BEFORE INSERT ON uid_map WHEN (SELECT locked FROM study_lock WHERE id = 1) = 1
BEGIN SELECT RAISE(ABORT, 'the database is locked: no change is accepted until the principal investigator unlocks it'); END;
