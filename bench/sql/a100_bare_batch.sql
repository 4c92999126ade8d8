-- (a100) the baseline batched by 100: one statement enqueues 100 jobs,
-- one claims up to 100 (SKIP LOCKED), one deletes them: 3 commits per
-- 100 jobs, the same shape as (c100).
INSERT INTO jobs (payload)
SELECT '{"order": 1234, "to": "ada@example.com"}' FROM generate_series(1, 100);
WITH c AS (
    UPDATE jobs SET state = 'claimed', worker = 'bench', claimed_at = now()
     WHERE id IN (SELECT id FROM jobs WHERE state = 'ready'
                   ORDER BY priority DESC, id LIMIT 100 FOR UPDATE SKIP LOCKED)
    RETURNING id)
SELECT count(*) AS n, coalesce(array_agg(id), '{}') AS ids FROM c \gset
\if :n > 0
DELETE FROM jobs WHERE id = ANY (:ids::bigint[]);
\endif
