-- (c100) batched by 100: one wf_start_many of 100, one poll claiming up to
-- 100, one task_complete_many: 3 commits per 100 workflows, beside (a100).
SELECT count(*) FROM durable.wf_start_many('bench',
    array_fill('{"order": 1234, "to": "ada@example.com"}'::jsonb, ARRAY[100]), NULL, 'bench');
SELECT count(*) AS n, coalesce(array_agg(token), '{}') AS toks
  FROM durable.task_poll('bench', 'bench-worker', 100) \gset
\if :n > 0
SELECT durable.task_complete_many(:toks::bigint[], array_fill('{"ok": true}'::jsonb, ARRAY[:n::int]));
\endif
