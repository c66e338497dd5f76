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
    id          BIGSERIAL PRIMARY KEY,
    ae_title    TEXT NOT NULL CHECK (length(ae_title) BETWEEN 1 AND 16),
    -- The IP address it must call from; NULL: any address.
    address     TEXT,
    added_at    TEXT NOT NULL,
    added_by    BIGINT REFERENCES users (id),
    retired_at  TEXT,
    retired_by  BIGINT REFERENCES users (id)
);

CREATE TABLE dicom_routes (
    id          BIGSERIAL PRIMARY KEY,
    case_id     BIGINT NOT NULL REFERENCES cases (id),
    kind        TEXT NOT NULL CHECK (kind IN ('accession_number', 'patient_id')),
    key_hmac    TEXT NOT NULL CHECK (length(key_hmac) = 64),
    added_at    TEXT NOT NULL,
    added_by    BIGINT REFERENCES users (id),
    retired_at  TEXT,
    retired_by  BIGINT REFERENCES users (id)
);
-- One live route per identifier: an image never has two cases to go to.
CREATE UNIQUE INDEX dicom_routes_live ON dicom_routes (kind, key_hmac) WHERE retired_at IS NULL;

CREATE TABLE dicom_quarantine (
    id               BIGSERIAL PRIMARY KEY,
    received_at      TEXT NOT NULL,
    calling_ae       TEXT NOT NULL,
    peer_address     TEXT NOT NULL,
    original_sha256  TEXT NOT NULL UNIQUE CHECK (length(original_sha256) = 64),
    size_bytes       BIGINT NOT NULL,
    -- Why it was not routed.
    reason           TEXT NOT NULL,
    outcome          TEXT CHECK (outcome IN ('assigned', 'discarded')),
    case_id          BIGINT REFERENCES cases (id),
    resolved_at      TEXT,
    resolved_by      BIGINT REFERENCES users (id),
    resolution       TEXT,
    CHECK ((outcome IS NULL) = (resolved_at IS NULL)),
    CHECK (outcome IS DISTINCT FROM 'assigned' OR case_id IS NOT NULL)
);

CREATE TRIGGER dicom_peers_never_deleted BEFORE DELETE ON dicom_peers
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a DICOM peer is retired, never deleted');
CREATE TRIGGER dicom_routes_never_deleted BEFORE DELETE ON dicom_routes
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a DICOM route is retired, never deleted');
CREATE TRIGGER dicom_quarantine_never_deleted BEFORE DELETE ON dicom_quarantine
    FOR EACH ROW EXECUTE FUNCTION osteo_refuse('a quarantined image is resolved, never deleted');
CREATE FUNCTION osteo_quarantine_resolved_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.outcome IS NOT NULL THEN
        RAISE EXCEPTION 'a quarantined image is resolved once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER dicom_quarantine_resolved_once BEFORE UPDATE ON dicom_quarantine
    FOR EACH ROW EXECUTE FUNCTION osteo_quarantine_resolved_once();
CREATE TRIGGER dicom_peers_no_truncate BEFORE TRUNCATE ON dicom_peers
    FOR EACH STATEMENT EXECUTE FUNCTION osteo_refuse('the trial record is never truncated (dicom_peers)');
CREATE TRIGGER dicom_routes_no_truncate BEFORE TRUNCATE ON dicom_routes
    FOR EACH STATEMENT EXECUTE FUNCTION osteo_refuse('the trial record is never truncated (dicom_routes)');
CREATE TRIGGER dicom_quarantine_no_truncate BEFORE TRUNCATE ON dicom_quarantine
    FOR EACH STATEMENT EXECUTE FUNCTION osteo_refuse('the trial record is never truncated (dicom_quarantine)');
