-- async_activity: activity_complete and activity_fail finish a pending
-- activity by (workflow id, seq) instead of by its token (Temporal's
-- async completion).  A worker still holding the attempt gets DU004.
-- Ids start with "aa-", the queue is "aaq".
\i test/regress/common.sql

SELECT durable.wf_start('order', NULL, 'aa-1', 'aaq');
SELECT token AS wt FROM durable.task_poll('aaq', 'w') \gset
SELECT durable.task_suspend(:wt, '[{"seq": 1, "type": "activity", "name": "charge", "queue": "aaq"},
                                   {"seq": 2, "type": "activity", "name": "ship", "queue": "aaq",
                                    "retry": {"initial_interval": "1h"}}]');
-- a worker claims the first activity and leaves it open
SELECT token AS at1 FROM durable.task_poll('aaq', 'w', 1) \gset
SELECT durable.activity_complete('aa-1', 1, '{"charged": 5}');
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'aa-1' ORDER BY seq;
-- the worker's token is stale now; the workflow task is ready again
SELECT pg_temp.err(format('SELECT durable.task_complete(%s, %L)', :at1, '{"late": true}'));
SELECT kind, seq, state FROM durable.task_list WHERE workflow_id = 'aa-1' ORDER BY seq;

-- a failed attempt: the retry policy decides (retried after an hour) ...
SELECT durable.activity_fail('aa-1', 2, '{"type": "Carrier", "message": "no trucks"}');
SELECT seq, state, visible_at - now() > interval '59 minutes' AS backed_off
  FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'aa-1' AND seq = 2;
SELECT event_type, seq, details->'error'->>'type' AS error FROM durable.wf_history('aa-1')
 WHERE event_type = 'activity_attempt_failed';
-- ... and a non-retryable failure fails the step
SELECT durable.activity_fail('aa-1', 2, '"gave up"', false);
SELECT seq, status, error FROM durable.journal WHERE workflow_id = 'aa-1' AND seq = 2;

-- no pending activity there, bad input, unknown or closed workflow: a
-- clear error and nothing changed
SELECT token AS wt2 FROM durable.task_poll('aaq', 'w', 1) \gset
SELECT durable.step_record(:wt2, 3, 'local-step', '1');
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-1', 1, '{}')$$);
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-1', 3, '{}')$$);
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-1', 99, '{}')$$);
SELECT pg_temp.err($$SELECT durable.activity_fail('aa-1', 2, '{"type": "x"}')$$);
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-nope', 1, '{}')$$);
SELECT pg_temp.err($$SELECT durable.activity_complete(NULL, 1, '{}')$$);
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-1', NULL, '{}')$$);
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-1', 0, '{}')$$);
SELECT pg_temp.err($$SELECT durable.activity_fail('aa-1', 2, NULL)$$);
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-1', 2, jsonb_build_object('b', repeat('x', 2000)))$$);
RESET durable.max_payload_size;
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT durable.wf_terminate('aa-1');
SELECT pg_temp.err($$SELECT durable.activity_complete('aa-1', 2, '{}')$$);
