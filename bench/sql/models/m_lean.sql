-- the lean two-row model: start (run + task), claim, complete (delete
-- the task, close the run)
WITH r AS (INSERT INTO m_lean_runs (namespace, workflow_id, workflow_type, queue, input)
           VALUES ('default', gen_random_uuid()::text, 'bench', 'bench',
                   '{"order": 1234, "to": "ada@example.com"}') RETURNING run_id)
INSERT INTO m_lean_tasks (run_id, seq, kind, namespace, queue, visible_at, created_at, new_run)
SELECT run_id, 0, 'workflow', 'default', 'bench', now(), now(), true FROM r;
WITH c AS (SELECT run_id, seq FROM m_lean_tasks
            WHERE namespace = 'default' AND queue = 'bench' AND state = 'ready' AND visible_at <= now()
            ORDER BY priority DESC, new_run, visible_at LIMIT 1 FOR UPDATE SKIP LOCKED),
     u AS (UPDATE m_lean_tasks t SET state = 'leased', token = nextval('m_token'), worker = 'w',
                  attempt = t.attempt + 1, claimed_at = now(), new_run = false,
                  visible_at = now() + interval '5 min'
             FROM c WHERE t.run_id = c.run_id AND t.seq = c.seq RETURNING t.token)
SELECT coalesce((SELECT token FROM u), 0) AS tok \gset
\if :tok > 0
WITH t AS (DELETE FROM m_lean_tasks WHERE token = :tok AND state = 'leased' RETURNING run_id)
UPDATE m_lean_runs SET status = 'completed', output = '{"ok": true}', closed_at = now()
 WHERE run_id = (SELECT run_id FROM t) AND status = 'running';
\endif
