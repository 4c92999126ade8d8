-- pause: wf_pause holds a running workflow's tasks until wf_unpause.
-- Ready tasks are parked, a leased one runs to its end, and a task the
-- run gets while paused (a timer fires, an activity finishes, a lease
-- expires) is never handed out.  Ids start with "pz-", the queue is "pzq".
\i test/regress/common.sql
CREATE FUNCTION pg_temp.tasks(wf text) RETURNS TABLE (seq int, kind text, state text)
LANGUAGE sql AS $$
    SELECT t.seq, t.kind, t.state FROM durable.tasks t JOIN durable.runs r USING (run_id)
     WHERE r.workflow_id = wf ORDER BY t.seq $$;

-- a fresh run: its first workflow task is parked, no poll gets it
SELECT durable.wf_start('order', '{"n": 1}', 'pz-1', 'pzq');
SELECT durable.wf_pause('pz-1', 'investigating a bad deploy');
SELECT * FROM pg_temp.tasks('pz-1');
SELECT count(*) AS claimed FROM durable.task_poll('pzq', 'w', 10);
SELECT paused FROM durable.workflows WHERE workflow_id = 'pz-1';
-- pausing again changes nothing and says so
SELECT pg_temp.state() AS before \gset
SELECT durable.wf_pause('pz-1');
SELECT pg_temp.state() = :'before' AS unchanged;
-- a signal while paused is kept, and the workflow does not run for it
SELECT durable.wf_signal('pz-1', 'approve', '{"by": "ada"}');
SELECT * FROM pg_temp.tasks('pz-1');
SELECT count(*) AS claimed FROM durable.task_poll('pzq', 'w', 10);
-- unpause: the task is ready again and a poll gets it
SELECT durable.wf_unpause('pz-1', 'fixed');
SELECT durable.wf_unpause('pz-1');
SELECT * FROM pg_temp.tasks('pz-1');
SELECT token AS wt FROM durable.task_poll('pzq', 'w', 1) \gset
SELECT event_type, details FROM durable.wf_history('pz-1')
 WHERE event_type IN ('workflow_paused', 'workflow_unpaused') ORDER BY event_time, event_type DESC;

-- paused while its workflow task is leased: that task finishes, and the
-- activity and timer it scheduled wait
SELECT durable.wf_pause('pz-1');
SELECT durable.task_suspend(:wt, '[{"seq": 1, "type": "activity", "name": "charge", "queue": "pzq"},
                                   {"seq": 2, "type": "sleep", "duration": "30s"}]');
SELECT * FROM pg_temp.tasks('pz-1');
SELECT count(*) AS claimed FROM durable.task_poll('pzq', 'w', 10);
-- the background worker's round parks what was made ready while paused
SELECT durable.tick() >= 1 AS parked;
SELECT * FROM pg_temp.tasks('pz-1');
SELECT seq, activity_state FROM durable.journal WHERE workflow_id = 'pz-1' ORDER BY seq;
-- the timer still fires on time, but the workflow does not run
SET durable.clock_offset = '31s';
SELECT durable.tick() >= 1 AS fired;
SELECT seq, status FROM durable.journal WHERE workflow_id = 'pz-1' ORDER BY seq;
SELECT count(*) AS claimed FROM durable.task_poll('pzq', 'w', 10);
SELECT durable.tick() >= 0;
SELECT * FROM pg_temp.tasks('pz-1');
-- unpause: both the activity and the workflow task are handed out
SELECT durable.wf_unpause('pz-1');
SELECT kind, seq FROM durable.task_poll('pzq', 'w', 10) ORDER BY seq;
RESET durable.clock_offset;

-- an activity in flight when its run pauses finishes; the workflow task
-- it makes ready waits
SELECT durable.wf_start('order', NULL, 'pz-2', 'pzq2');
SELECT durable.task_suspend((SELECT token FROM durable.task_poll('pzq2', 'w', 1)),
    '[{"seq": 1, "type": "activity", "name": "charge", "queue": "pzq2"}]');
SELECT token AS at FROM durable.task_poll('pzq2', 'w', 1) \gset
SELECT durable.wf_pause('pz-2');
SELECT durable.task_complete(:at, '{"charged": 5}');
SELECT seq, status, result FROM durable.journal WHERE workflow_id = 'pz-2';
SELECT count(*) AS claimed FROM durable.task_poll('pzq2', 'w', 10);
-- cancel and terminate still work on a paused run
SELECT durable.wf_cancel('pz-2', 'not needed');
SELECT count(*) AS claimed FROM durable.task_poll('pzq2', 'w', 10);
SELECT durable.wf_terminate('pz-2');
SELECT status, paused FROM durable.workflows WHERE workflow_id = 'pz-2';

-- bad input, unknown or closed workflow: a clear error and nothing changed
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT durable.wf_pause(NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_unpause(NULL, 'x')$$);
SELECT pg_temp.err($$SELECT durable.wf_pause('pz-nope')$$);
SELECT pg_temp.err($$SELECT durable.wf_pause('pz-2')$$);
SELECT pg_temp.err($$SELECT durable.wf_unpause('pz-2')$$);
SELECT pg_temp.err($$SELECT durable.wf_pause('pz-1', repeat('r', 20000))$$);
SELECT pg_temp.err($$SELECT durable.wf_pause(repeat('i', 2000))$$);
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT durable.wf_terminate('pz-1');
