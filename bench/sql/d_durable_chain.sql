-- (d) finish-and-claim: the poll completes the task claimed by the
-- previous iteration (done_tokens/done_results) and claims the next one,
-- so a workflow costs 2 commits: wf_start and one poll.
-- Run with -D prev=0; :prev carries the held token across iterations.
SELECT durable.wf_start('bench', '{"order": 1234, "to": "ada@example.com"}'::jsonb, NULL, 'bench');
SELECT coalesce((SELECT token FROM durable.task_poll('bench', 'bench-worker', 1, '30 s',
           CASE WHEN :prev::bigint > 0 THEN ARRAY[:prev::bigint] END,
           CASE WHEN :prev::bigint > 0 THEN ARRAY['{"ok": true}'::jsonb] END)), 0) AS prev \gset
