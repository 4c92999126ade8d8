-- queue: pausing a queue stops claims from it (work still queues up);
-- unpausing hands the waiting tasks out again
\i test/regress/common.sql

SELECT durable.wf_start('paused_wf', '{"n": 1}', 'qp-1', 'qp_queue');
SELECT durable.queue_pause('qp_queue', 'deploy in progress');
SELECT paused, note, ready FROM durable.queue_stats WHERE queue = 'qp_queue';
-- no task while paused, even a new one
SELECT durable.wf_start('paused_wf', '{"n": 2}', 'qp-2', 'qp_queue');
SELECT count(*) AS claimed FROM durable.task_poll('qp_queue', 'w', 10);
-- other queues are not affected
SELECT durable.wf_start('other_wf', NULL, 'qp-3', 'qp_other');
SELECT count(*) AS claimed_other FROM durable.task_poll('qp_other', 'w', 10);
-- pausing twice keeps it paused with the new note
SELECT durable.queue_pause('qp_queue', 'still deploying');
SELECT paused, note FROM durable.queue_stats WHERE queue = 'qp_queue';
-- unpause: both waiting tasks are handed out, oldest first
SELECT durable.queue_unpause('qp_queue');
SELECT workflow_id FROM durable.task_poll('qp_queue', 'w', 10);
SELECT paused FROM durable.queue_stats WHERE queue = 'qp_queue';
-- bad input
SELECT pg_temp.err($$SELECT durable.queue_pause('no spaces allowed')$$);
SELECT pg_temp.err($$SELECT durable.queue_pause(NULL)$$);
SELECT pg_temp.err($$SELECT durable.queue_unpause('never_paused')$$);
-- clean up
SELECT durable.wf_terminate(w, 'test done') FROM unnest(ARRAY['qp-1', 'qp-2', 'qp-3']) w;
DELETE FROM durable.queues;
