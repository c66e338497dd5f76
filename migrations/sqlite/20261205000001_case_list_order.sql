-- The worklists list open cases longest-waiting first, a page at a time:
-- with this index the database walks cases in that order and stops at the
-- page's end instead of sorting every case of the study for each view.
CREATE INDEX cases_updated ON cases (updated_at, id);
