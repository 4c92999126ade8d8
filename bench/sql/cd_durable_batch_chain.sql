-- (c+d) batched finish-and-claim: 10 starts in one commit, then one poll
-- that completes the 10 tasks held from the previous iteration and claims
-- up to 10 more: 2 commits per 10 workflows.
-- Run with -D held={} -D nheld=0.
SELECT durable.wf_start('bench', '{"order": 1234, "to": "ada@example.com"}'::jsonb, NULL, 'bench')
  FROM generate_series(1, 10);
SELECT count(*) AS nheld, coalesce(array_agg(token), '{}') AS held
  FROM durable.task_poll('bench', 'bench-worker', 10, '30 s',
           CASE WHEN :nheld::int > 0 THEN :held::bigint[] END,
           CASE WHEN :nheld::int > 0 THEN array_fill('{"ok": true}'::jsonb, ARRAY[:nheld::int]) END) \gset
