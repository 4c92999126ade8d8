-- (c) batched: 10 starts in one commit, one poll claiming up to 10, one
-- call (task_complete_many) completing them all: 3 commits per 10 workflows.
SELECT durable.wf_start('bench', '{"order": 1234, "to": "ada@example.com"}'::jsonb, NULL, 'bench')
  FROM generate_series(1, 10);
SELECT count(*) AS n, coalesce(array_agg(token), '{}') AS toks
  FROM durable.task_poll('bench', 'bench-worker', 10) \gset
\if :n > 0
SELECT durable.task_complete_many(:toks::bigint[], array_fill('{"ok": true}'::jsonb, ARRAY[:n::int]));
\endif
