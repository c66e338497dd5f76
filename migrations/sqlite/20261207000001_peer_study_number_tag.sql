-- A DICOM peer may carry the study number (P-0007) in a tag of its own
-- choosing (server/src/pacs/mod.rs): images from that peer that match no
-- worklist route go to the case that tag names. NULL: routes only.
-- The tag is written as eight hexadecimal digits, group then element.
ALTER TABLE dicom_peers ADD COLUMN study_number_tag TEXT
    CHECK (study_number_tag IS NULL OR length(study_number_tag) = 8);
