-- claim_order: on a queue, claims take the highest priority first; within
-- a priority, the tasks of runs in flight (activities, later workflow
-- tasks, children) before the first tasks of new runs, each group in
-- ready-time order.  Ids start with "co-", the queue is "coq".
\i test/regress/common.sql
CREATE FUNCTION pg_temp.claim() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT workflow_id || ' ' || kind || coalesce(' ' || name, '')
                       FROM durable.task_poll('coq', 'w', 1)), 'nothing') $$;

SELECT durable.wf_start('co', NULL, 'co-' || i, 'coq') FROM generate_series(1, 3) i;
-- the oldest new run first
SELECT token AS t1 FROM durable.task_poll('coq', 'w', 1) \gset
SELECT workflow_id, new_run FROM durable.task_list t JOIN durable.tasks USING (run_id, seq)
 WHERE t.queue = 'coq' ORDER BY workflow_id;
-- co-1 schedules an activity on the same queue: it goes before co-2 and
-- co-3, though they have been ready longer
SELECT durable.task_suspend(:t1, '[{"seq": 1, "type": "activity", "name": "act", "queue": "coq"}]');
SELECT token AS t2, workflow_id || ' ' || kind AS claimed FROM durable.task_poll('coq', 'w', 1) \gset
SELECT :'claimed' AS claimed;
-- its completion makes co-1's next workflow task ready: also in flight
SELECT durable.task_complete(:t2, '{"done": 1}');
-- priority still comes first: a new run of priority 5 goes before it
SELECT durable.wf_start('co', NULL, 'co-urgent', 'coq', '{"priority": 5}');
SELECT pg_temp.claim() AS first, pg_temp.claim() AS second, pg_temp.claim() AS third,
       pg_temp.claim() AS fourth, pg_temp.claim() AS fifth;
-- a child's first task is part of its parent's run in flight
SELECT durable.wf_start('co', NULL, 'co-parent', 'coq2');
SELECT durable.wf_start('co', NULL, 'co-later', 'coq');
SELECT token AS tp FROM durable.task_poll('coq2', 'w', 1) \gset
SELECT durable.task_suspend(:tp, '[{"seq": 1, "type": "child", "name": "co", "workflow_id": "co-child", "queue": "coq"}]');
SELECT pg_temp.claim() AS first, pg_temp.claim() AS second;
-- clean up
SELECT count(*) AS terminated FROM (
    SELECT durable.wf_terminate(workflow_id) FROM durable.workflows
     WHERE workflow_id LIKE 'co-%' AND status = 'running' ORDER BY workflow_id) t;
