-- (b) one-step workflow through durable, one pgbench transaction = one
-- workflow = 3 commits: wf_start, task_poll (max_tasks 1), task_complete.
-- A client completes whatever it claimed; an empty poll skips the complete.
SELECT durable.wf_start('bench', '{"order": 1234, "to": "ada@example.com"}'::jsonb, NULL, 'bench');
SELECT coalesce((SELECT token FROM durable.task_poll('bench', 'bench-worker', 1)), 0) AS tok \gset
\if :tok > 0
SELECT durable.task_complete(:tok::bigint, '{"ok": true}'::jsonb);
\endif
