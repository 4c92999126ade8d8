-- (s3) a workflow of three local steps then completion, on its cheapest
-- documented path: wf_start; task_poll (max_tasks 1); one task_complete
-- that records the three steps' results (steps) and closes the run.
-- 3 commits, 3 journal rows.
SELECT durable.wf_start('bench', '{"order": 1234, "to": "ada@example.com"}'::jsonb, NULL, 'bench');
SELECT coalesce((SELECT token FROM durable.task_poll('bench', 'bench-worker', 1)), 0) AS tok \gset
\if :tok > 0
SELECT durable.task_complete(:tok::bigint, '{"ok": true}'::jsonb,
    '[{"seq": 1, "name": "reserve", "result": {"reserved": true}},
      {"seq": 2, "name": "charge", "result": {"charged": 1234}},
      {"seq": 3, "name": "notify", "result": {"sent": "ada@example.com"}}]'::jsonb);
\endif
