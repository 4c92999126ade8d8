-- the one-row model: the run row is its own workflow task
INSERT INTO m_onerow (namespace, workflow_id, workflow_type, queue, input, visible_at)
VALUES ('default', gen_random_uuid()::text, 'bench', 'bench',
        '{"order": 1234, "to": "ada@example.com"}', now());
WITH c AS (SELECT run_id FROM m_onerow
            WHERE namespace = 'default' AND queue = 'bench' AND ready AND visible_at <= now()
            ORDER BY priority DESC, visible_at LIMIT 1 FOR UPDATE SKIP LOCKED),
     u AS (UPDATE m_onerow t SET ready = false, claims = t.claims + 1, worker = 'w',
                  claimed_at = now(), visible_at = now() + interval '5 min'
             FROM c WHERE t.run_id = c.run_id RETURNING (t.run_id << 20) | t.claims AS token)
SELECT coalesce((SELECT token FROM u), 0) AS tok \gset
\if :tok > 0
UPDATE m_onerow SET status = 'completed', output = '{"ok": true}', closed_at = now()
 WHERE run_id = :tok::bigint >> 20 AND claims = (:tok::bigint & 1048575)::int
   AND NOT ready AND status = 'running';
\endif
