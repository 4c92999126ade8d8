-- debounce: start options that start at most one run per workflow id per
-- window.  "debounce": starts while a run waits for its debounced start
-- join it with their input, and push its start back; "throttle": a start
-- within the window of the latest run's start joins that run, first
-- input kept.  Ids start with "deb-"/"thr-", queues with "dbq"/"thq".
\i test/regress/common.sql

-- three starts 5 s apart, debounce 10 s: one run, the last input, started
-- 10 s after the last start
SELECT durable.wf_start('d', '{"n": 1}', 'deb-1', 'dbq', '{"debounce": "10s"}');
SET durable.clock_offset = '5s';
SELECT durable.wf_start('d', '{"n": 2}', 'deb-1', 'dbq', '{"debounce": "10s"}');
SET durable.clock_offset = '10s';
SELECT durable.wf_start('d', '{"n": 3}', 'deb-1', 'dbq', '{"debounce": "10s"}');
SELECT count(*) AS runs, max(input::text) AS input FROM durable.runs WHERE workflow_id = 'deb-1';
SET durable.clock_offset = '19s';
SELECT count(*) AS claimable_19s FROM durable.task_poll('dbq', 'w', 10);
SET durable.clock_offset = '21s';
SELECT durable.tick() >= 0 AS ticked;
SELECT workflow_id, input FROM durable.task_poll('dbq', 'w', 10);
-- once it started, a debounced start of the id follows the id policies
SELECT pg_temp.err($$SELECT durable.wf_start('d', '{"n": 4}', 'deb-1', 'dbq', '{"debounce": "10s"}')$$) AS while_running;
SELECT durable.wf_terminate('deb-1');
RESET durable.clock_offset;
-- wf_start_many with ids: each id is debounced on its own
SELECT count(*) FROM durable.wf_start_many('d', ARRAY['{"n": 1}', '{"n": 1}']::jsonb[], ARRAY['deb-2', 'deb-3'], 'dbq', '{"debounce": "1 min"}');
SELECT count(*) FROM durable.wf_start_many('d', ARRAY['{"n": 2}']::jsonb[], ARRAY['deb-2'], 'dbq', '{"debounce": "1 min"}');
SELECT workflow_id, input FROM durable.runs WHERE workflow_id IN ('deb-2', 'deb-3') ORDER BY 1;
SELECT durable.wf_terminate(id) FROM unnest(ARRAY['deb-2', 'deb-3']) id;

-- a debounced run's timeouts move with its start: run_timeout 15 s (the
-- start delay counts) and starts at 0 and 8 s: it times out at 23 s, not 15
SELECT durable.wf_start('d', '{"n": 1}', 'deb-t', 'dbq', '{"debounce": "10s", "run_timeout": "15s"}');
SET durable.clock_offset = '8s';
SELECT durable.wf_start('d', '{"n": 2}', 'deb-t', 'dbq', '{"debounce": "10s", "run_timeout": "15s"}');
SET durable.clock_offset = '20s';
SELECT durable.tick() >= 0 AS ticked;
SELECT status, input FROM durable.workflows WHERE workflow_id = 'deb-t';
SET durable.clock_offset = '34s';
SELECT durable.tick() >= 0 AS ticked;
SELECT status FROM durable.workflows WHERE workflow_id = 'deb-t';
RESET durable.clock_offset;
-- only a debounced run of the same type and queue is joined
SELECT durable.wf_start('d', '{"n": 1}', 'deb-plain', 'dbq', '{"start_delay": "1 min"}');
SELECT pg_temp.err($$SELECT durable.wf_start('d', '{"n": 2}', 'deb-plain', 'dbq', '{"debounce": "10s"}')$$) AS plain_delay;
SELECT durable.wf_start('d', '{"n": 1}', 'deb-q', 'dbq', '{"debounce": "1 min"}');
SELECT pg_temp.err($$SELECT durable.wf_start('d', '{"n": 2}', 'deb-q', 'dbq-other', '{"debounce": "1 min"}')$$) AS other_queue;
SELECT durable.wf_terminate(id) FROM unnest(ARRAY['deb-plain', 'deb-q']) id;
-- a child cannot be debounced or throttled (it would join another run)
SELECT durable.wf_start('d', NULL, 'deb-parent', 'dbq');
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "workflow_id": "deb-child", "options": {"throttle": "1h"}}]')$$, token)) AS child_throttle
  FROM durable.task_poll('dbq', 'w', 1);
SELECT durable.wf_terminate('deb-parent');

-- throttle 1 min: a second start joins the first run (first input), also
-- after it closed; a start a minute after the first starts a new run
SELECT durable.wf_start('t', '{"n": 1}', 'thr-1', 'thq', '{"throttle": "1 min"}');
SELECT durable.wf_start('t', '{"n": 2}', 'thr-1', 'thq', '{"throttle": "1 min"}');
SELECT count(*) AS runs, max(input::text) AS input FROM durable.runs WHERE workflow_id = 'thr-1';
SELECT count(durable.task_complete(token, NULL)) AS completed FROM durable.task_poll('thq', 'w', 10);
SET durable.clock_offset = '30s';
SELECT durable.wf_start('t', '{"n": 3}', 'thr-1', 'thq', '{"throttle": "1 min"}');
SELECT count(*) AS runs_at_30s FROM durable.runs WHERE workflow_id = 'thr-1';
SET durable.clock_offset = '61s';
SELECT durable.wf_start('t', '{"n": 4}', 'thr-1', 'thq', '{"throttle": "1 min"}');
SELECT run_number, status, input FROM durable.workflows WHERE workflow_id = 'thr-1' ORDER BY run_number;
SELECT durable.wf_terminate('thr-1');
RESET durable.clock_offset;

-- bad options change nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.errd($$SELECT durable.wf_start('d', NULL, NULL, 'dbq', '{"debounce": "10s"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start_many('d', ARRAY['1']::jsonb[], NULL, 'dbq', '{"throttle": "10s"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start_many('d', ARRAY['1', '2']::jsonb[], ARRAY['deb-x', NULL], 'dbq', '{"throttle": "10s"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('d', NULL, 'deb-x', 'dbq', '{"debounce": "10s", "start_delay": "1s"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('d', NULL, 'deb-x', 'dbq', '{"debounce": "10s", "throttle": "1s"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('d', NULL, 'deb-x', 'dbq', '{"debounce": "soon"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('d', NULL, 'deb-x', 'dbq', '{"throttle": -5}')$$);
SELECT pg_temp.state() = :'before' AS unchanged;
