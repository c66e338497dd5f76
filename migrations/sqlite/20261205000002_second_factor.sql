-- The second factor (trial/src/accounts/second_factor.rs): a TOTP secret
-- (base32) once enrolment is confirmed, the one being enrolled, the last
-- time step accepted (a code is accepted once), and single-use recovery
-- codes, of which only the SHA-256 is kept.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;

CREATE TABLE recovery_codes (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    code_hash   TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
CREATE TRIGGER recovery_codes_no_delete BEFORE DELETE ON recovery_codes
BEGIN SELECT RAISE(ABORT, 'recovery codes are never deleted: they are used or made void'); END;
CREATE TRIGGER recovery_codes_used_once BEFORE UPDATE OF used_at ON recovery_codes
WHEN OLD.used_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a recovery code is used once'); END;
