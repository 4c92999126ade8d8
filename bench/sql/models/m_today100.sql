-- today's rows batched by 100: one statement starts 100 (runs + tasks),
-- one claims up to 100, one completes them (deletes the tasks, closes the
-- runs): 3 commits per 100 workflows, the shape of (c100) and (a100)
WITH r AS (INSERT INTO m_today_runs (namespace, workflow_id, workflow_type, queue, input)
           SELECT 'default', gen_random_uuid()::text, 'bench', 'bench',
                  '{"order": 1234, "to": "ada@example.com"}' FROM generate_series(1, 100)
           RETURNING run_id)
INSERT INTO m_today_tasks (run_id, seq, kind, namespace, queue, visible_at, created_at, new_run)
SELECT run_id, 0, 'workflow', 'default', 'bench', now(), now(), true FROM r;
WITH c AS (SELECT run_id, seq FROM m_today_tasks
            WHERE namespace = 'default' AND queue = 'bench' AND state = 'ready' AND visible_at <= now()
            ORDER BY priority DESC, new_run, visible_at LIMIT 100 FOR UPDATE SKIP LOCKED),
     u AS (UPDATE m_today_tasks t SET state = 'leased', token = nextval('m_token'), worker = 'w',
                  attempt = t.attempt + 1, claimed_at = now(), new_run = false,
                  visible_at = now() + interval '5 min'
             FROM c WHERE t.run_id = c.run_id AND t.seq = c.seq RETURNING t.token)
SELECT count(*) AS n, coalesce(array_agg(token), '{}') AS toks FROM u \gset
\if :n > 0
WITH t AS (DELETE FROM m_today_tasks WHERE token = ANY (:toks::bigint[]) AND state = 'leased' RETURNING run_id)
UPDATE m_today_runs SET status = 'completed', output = '{"ok": true}', closed_at = now()
 WHERE run_id IN (SELECT run_id FROM t) AND status = 'running';
\endif
