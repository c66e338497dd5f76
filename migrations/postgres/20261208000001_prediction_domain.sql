-- The out-of-domain flag of a prediction (osteo-model's `domain` module):
-- whether the case's views fell outside what the model was trained on, and
-- why, as a JSON array of lines. Written with the prediction and, like it,
-- never changed (the predictions table's triggers refuse every update); its
-- canonical record (record_sha256) covers both. NULL on a prediction of a
-- model whose card records no training domain, and on those recorded before
-- this column existed.
ALTER TABLE predictions ADD COLUMN out_of_domain BIGINT CHECK (out_of_domain IN (0, 1));
ALTER TABLE predictions ADD COLUMN domain_reasons TEXT;
