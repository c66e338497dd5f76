-- The PACS link (server/src/pacs.rs, trial/src/pacs.rs): the DICOM peers
-- allowed to send, the routes from an image's accession number or patient
-- ID to its case, and the quarantine of what matched no route.
--
-- No patient identifier is kept in the database: a route holds the
-- HMAC-SHA256 of the identifier under a key derived from the audit signing
-- key (kept outside the database), and a quarantined image's identifiers
-- stay in its file, in the quarantine folder, until a coordinator resolves
-- it. Rows are never deleted: a peer or a route is retired, a quarantined
-- image resolved, each with who and when.

CREATE TABLE dicom_peers (
    id          INTEGER PRIMARY KEY,
    ae_title    TEXT NOT NULL CHECK (length(ae_title) BETWEEN 1 AND 16),
    -- The IP address it must call from; NULL: any address.
    address     TEXT,
    added_at    TEXT NOT NULL,
    added_by    INTEGER REFERENCES users (id),
    retired_at  TEXT,
    retired_by  INTEGER REFERENCES users (id)
);

CREATE TABLE dicom_routes (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    kind        TEXT NOT NULL CHECK (kind IN ('accession_number', 'patient_id')),
    key_hmac    TEXT NOT NULL CHECK (length(key_hmac) = 64),
    added_at    TEXT NOT NULL,
    added_by    INTEGER REFERENCES users (id),
    retired_at  TEXT,
    retired_by  INTEGER REFERENCES users (id)
);
-- One live route per identifier: an image never has two cases to go to.
CREATE UNIQUE INDEX dicom_routes_live ON dicom_routes (kind, key_hmac) WHERE retired_at IS NULL;

CREATE TABLE dicom_quarantine (
    id               INTEGER PRIMARY KEY,
    received_at      TEXT NOT NULL,
    calling_ae       TEXT NOT NULL,
    peer_address     TEXT NOT NULL,
    original_sha256  TEXT NOT NULL UNIQUE CHECK (length(original_sha256) = 64),
    size_bytes       INTEGER NOT NULL,
    -- Why it was not routed.
    reason           TEXT NOT NULL,
    outcome          TEXT CHECK (outcome IN ('assigned', 'discarded')),
    case_id          INTEGER REFERENCES cases (id),
    resolved_at      TEXT,
    resolved_by      INTEGER REFERENCES users (id),
    resolution       TEXT,
    CHECK ((outcome IS NULL) = (resolved_at IS NULL)),
    CHECK (outcome IS NOT 'assigned' OR case_id IS NOT NULL)
);

CREATE TRIGGER dicom_peers_never_deleted BEFORE DELETE ON dicom_peers
BEGIN SELECT RAISE(ABORT, 'a DICOM peer is retired, never deleted'); END;
CREATE TRIGGER dicom_routes_never_deleted BEFORE DELETE ON dicom_routes
BEGIN SELECT RAISE(ABORT, 'a DICOM route is retired, never deleted'); END;
CREATE TRIGGER dicom_quarantine_never_deleted BEFORE DELETE ON dicom_quarantine
BEGIN SELECT RAISE(ABORT, 'a quarantined image is resolved, never deleted'); END;
CREATE TRIGGER dicom_quarantine_resolved_once BEFORE UPDATE ON dicom_quarantine
WHEN OLD.outcome IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a quarantined image is resolved once'); END;
