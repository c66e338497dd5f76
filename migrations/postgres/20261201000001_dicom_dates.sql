-- How the dates inside stored radiographs are de-identified (DICOM PS3.15
-- Annex E): 'keep' (Retain Longitudinal Temporal Information with Full
-- Dates Option) or 'shift' (... with Modified Dates Option: every date of a
-- case moved back by the same number of days, so intervals survive).
-- Fixed once the first radiograph is stored.
ALTER TABLE study_settings ADD COLUMN dicom_dates TEXT NOT NULL DEFAULT 'keep'
    CHECK (dicom_dates IN ('keep', 'shift'));

-- Each case's date shift, drawn at random when its first radiograph is
-- stored under 'shift'. Like the UID map it stays in the database and is
-- never exported; it never changes.
CREATE TABLE case_date_shifts (
    case_id     BIGINT PRIMARY KEY REFERENCES cases (id),
    days        BIGINT NOT NULL CHECK (days BETWEEN -3650 AND -1),
    created_at  TEXT NOT NULL
);

CREATE TRIGGER case_date_shifts_never_changed BEFORE UPDATE ON case_date_shifts
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a date shift never changes');
CREATE TRIGGER case_date_shifts_never_deleted BEFORE DELETE ON case_date_shifts
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('date shifts are never deleted');
