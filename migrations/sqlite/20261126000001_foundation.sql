-- Foundation: the study, sites, accounts, API tokens, server-side sessions and
-- the append-only, hash-chained audit trail. Timestamps are RFC 3339 UTC text
-- (fixed width, so text order is time order); booleans are 0/1 integers, the
-- same in both engines.

CREATE TABLE study (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    registration  TEXT NOT NULL,
    title_en      TEXT NOT NULL,
    title_zh      TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id                    INTEGER PRIMARY KEY,
    username              TEXT NOT NULL UNIQUE,
    display_name          TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('admin', 'principal_investigator', 'coordinator', 'radiologist', 'statistician', 'monitor')),
    site_id               INTEGER NOT NULL REFERENCES sites (id),
    password_hash         TEXT NOT NULL,
    must_change_password  INTEGER NOT NULL DEFAULT 1 CHECK (must_change_password IN (0, 1)),
    active                INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    failed_logins         INTEGER NOT NULL DEFAULT 0,
    locked_until          TEXT,
    locale                TEXT,
    session_epoch         INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    password_changed_at   TEXT NOT NULL
);

-- Accounts are deactivated, never deleted, so a username is never reused.
CREATE TRIGGER users_never_deleted BEFORE DELETE ON users
BEGIN
    SELECT RAISE(ABORT, 'accounts are never deleted; deactivate the account instead');
END;

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    data         TEXT NOT NULL,
    expiry_date  INTEGER NOT NULL -- milliseconds since 1970-01-01 UTC
);
CREATE INDEX sessions_expiry ON sessions (expiry_date);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_id    INTEGER,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('ui', 'api', 'cli', 'system')),
    action      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT,
    field       TEXT,
    old_value   TEXT,
    new_value   TEXT,
    reason      TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_entity ON audit_log (entity, seq);
CREATE INDEX audit_log_at ON audit_log (at, seq);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: rows cannot be updated');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only: rows cannot be deleted');
END;

-- The end of the chain: the last sequence number and hash. Every append locks
-- and advances it in the same transaction, so appends are serialised and a
-- removed tail row is detected by `audit verify`.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'the audit chain head cannot be deleted');
END;
