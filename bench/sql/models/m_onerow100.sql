-- the one-row model batched by 100 (see m_today100.sql)
INSERT INTO m_onerow (namespace, workflow_id, workflow_type, queue, input, visible_at)
SELECT 'default', gen_random_uuid()::text, 'bench', 'bench',
       '{"order": 1234, "to": "ada@example.com"}', now() FROM generate_series(1, 100);
WITH c AS (SELECT run_id FROM m_onerow
            WHERE namespace = 'default' AND queue = 'bench' AND ready AND visible_at <= now()
            ORDER BY priority DESC, visible_at LIMIT 100 FOR UPDATE SKIP LOCKED),
     u AS (UPDATE m_onerow t SET ready = false, claims = t.claims + 1, worker = 'w',
                  claimed_at = now(), visible_at = now() + interval '5 min'
             FROM c WHERE t.run_id = c.run_id RETURNING (t.run_id << 20) | t.claims AS token)
SELECT count(*) AS n, coalesce(array_agg(token), '{}') AS toks FROM u \gset
\if :n > 0
UPDATE m_onerow m SET status = 'completed', output = '{"ok": true}', closed_at = now()
  FROM unnest(:toks::bigint[]) tok
 WHERE m.run_id = tok >> 20 AND m.claims = (tok & 1048575)::int AND NOT m.ready AND m.status = 'running';
\endif
