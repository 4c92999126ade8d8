-- published: a workflow task publishes named values of its run
-- (task_publish); clients read them with wf_published or the view
-- durable.published_state, running or closed, with no worker needed.
-- Ids start with "pub-", the queue is "pubq".
\i test/regress/common.sql

SELECT durable.wf_start('progress', NULL, 'pub-1', 'pubq');
SELECT durable.wf_published('pub-1') AS nothing_yet;
SELECT token AS wt FROM durable.task_poll('pubq', 'w') \gset
SELECT durable.task_publish(:wt, 'progress', '{"pct": 10}'),
       durable.task_publish(:wt, 'stage', '"charging"');
SELECT durable.wf_published('pub-1');
-- a later value replaces the earlier; NULL removes the name
SELECT durable.task_publish(:wt, 'progress', '{"pct": 50}'),
       durable.task_publish(:wt, 'stage', NULL);
SELECT durable.wf_published('pub-1');
SELECT namespace, workflow_id, name, value FROM durable.published_state WHERE workflow_id = 'pub-1';
-- an activity token cannot publish; a stale one neither
SELECT durable.task_suspend(:wt, '[{"seq": 1, "type": "activity", "name": "act", "queue": "pubq"}]');
SELECT token AS at FROM durable.task_poll('pubq', 'w') \gset
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err(format('SELECT durable.task_publish(%s, %L, %L)', :at, 'x', '1'));
SELECT pg_temp.err(format('SELECT durable.task_publish(%s, %L, %L)', :wt, 'x', '1'));
SELECT pg_temp.err($$SELECT durable.task_publish(NULL, 'x', '1')$$);
SELECT pg_temp.err(format('SELECT durable.task_publish(%s, NULL, %L)', :at, '1'));
SELECT pg_temp.err(format('SELECT durable.task_publish(%s, %L, %L)', :at, '', '1'));
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err(format('SELECT durable.task_publish(%s, %L, jsonb_build_object(%L, repeat(%L, 2000)))', :at, 'x', 'b', 'x'));
RESET durable.max_payload_size;
SELECT pg_temp.err($$SELECT durable.wf_published('pub-nope')$$);
SELECT pg_temp.err($$SELECT durable.wf_published(NULL)$$);
SELECT pg_temp.state() = :'before' AS unchanged;
-- the run closes: what it published stays readable
SELECT durable.task_complete(:at, '{"done": true}');
SELECT token AS wt2 FROM durable.task_poll('pubq', 'w') \gset
SELECT durable.task_publish(:wt2, 'progress', '{"pct": 100}');
SELECT durable.task_complete(:wt2, '"finished"');
SELECT durable.wf_status('pub-1'), durable.wf_published('pub-1');
