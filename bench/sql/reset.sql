-- bench/sql/reset.sql: start a point fresh.  Empty every queue, then give
-- durable the history a running system keeps (closed runs within the
-- retention period: psql variable history, default 10000; 0 = a brand-new
-- install), and statistics for it, so the plans every new connection builds
-- are those of a system in service.  psql runs each statement in its own
-- transaction.
\if :{?history}
\else
\set history 10000
\endif
TRUNCATE durable.runs, durable.tasks, durable.steps, durable.events, durable.signals;
TRUNCATE jobs RESTART IDENTITY;
INSERT INTO durable.runs (namespace, workflow_id, workflow_type, queue, status,
                          input, output, created_at, closed_at, run_number)
SELECT 'default', 'history-' || i, 'history', 'bench', 'completed',
       '{"order": 1234, "to": "ada@example.com"}', '{"ok": true}',
       now() - interval '1 hour', now() - interval '1 hour', 1
  FROM generate_series(1, :history) i;
-- statistics for the history only: the truncated queue tables keep "never
-- vacuumed" statistics (reltuples -1), so the planner assumes a few pages
-- instead of an empty table.  With VACUUM ANALYZE of the empty tables the
-- cached generic plans of both sides become seq scans, which get slower
-- with every dead tuple until autovacuum comes (measured: the baseline
-- loses half its speed, durable a little).
ANALYZE durable.runs;
CHECKPOINT;
