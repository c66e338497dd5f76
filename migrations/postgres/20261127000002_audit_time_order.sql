-- The time of the last audit row, so that every append can keep `at`
-- non-decreasing along the chain: a date filter then maps exactly onto a
-- range of sequence numbers, and `audit verify` can check the order.
ALTER TABLE audit_head ADD COLUMN at TEXT NOT NULL DEFAULT '';
UPDATE audit_head SET at = COALESCE((SELECT MAX(at) FROM audit_log), '');
