-- Facts name nobody (fact format version 2, shared/facts.py): the log drops the pseudonym version 1
-- facts carried, one per resident, which let whoever reads the log follow a person through their
-- facts (PIPL counts a stable pseudonym as personal information). Roll-ups never read it, so they
-- and `linli rollups rebuild` are unchanged.
--
-- DROP COLUMN alone only hides the column: the values stay in every row on disk until the row is
-- written again. Changing a column's type with a USING expression that is not the bare column makes
-- PostgreSQL rewrite the whole table, and a rewritten row stores nothing for a dropped column. The
-- old rows' space is then free, not merely marked dead.
ALTER TABLE facts_log DROP COLUMN subject;
ALTER TABLE facts_log ALTER COLUMN dims TYPE jsonb USING dims || '{}'::jsonb;

-- Refused batches are kept as evidence of what was sent; they keep it without the pseudonyms.
UPDATE rejected_batches
SET body = jsonb_set(body, '{facts}', (SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(f) = 'object'
                                                                     THEN f - 'subject' ELSE f END), '[]')
                                       FROM jsonb_array_elements(body -> 'facts') AS f))
WHERE jsonb_typeof(body -> 'facts') = 'array'
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(body -> 'facts') AS f
              WHERE jsonb_typeof(f) = 'object' AND f ? 'subject');
