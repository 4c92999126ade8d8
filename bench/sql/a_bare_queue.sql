-- (a) baseline: one pgbench transaction = one job = 3 commits (autocommit):
-- enqueue, claim (SKIP LOCKED), delete.  The claim always returns one row
-- (id 0 when another client took every ready job) so \gset works.
INSERT INTO jobs (payload) VALUES ('{"order": 1234, "to": "ada@example.com"}');
WITH c AS (
    UPDATE jobs SET state = 'claimed', worker = 'bench', claimed_at = now()
     WHERE id = (SELECT id FROM jobs WHERE state = 'ready'
                  ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, payload)
SELECT coalesce((SELECT id FROM c), 0) AS job \gset
\if :job > 0
DELETE FROM jobs WHERE id = :job;
\endif
