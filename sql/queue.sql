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

--
-- concurrency limit: at most N of the queue's tasks leased at once
--
SELECT durable.wf_start('limited_wf', to_jsonb(i), 'ql-' || i, 'ql_queue')
  FROM generate_series(1, 5) i;
SELECT durable.queue_set_concurrency('ql_queue', 2);
SELECT ready, leased, max_concurrency FROM durable.queue_stats WHERE queue = 'ql_queue';
-- a poll for 10 gets 2; the next one gets none while both are held
CREATE TEMP TABLE ql_held AS
SELECT token, workflow_id FROM durable.task_poll('ql_queue', 'w', 10);
SELECT count(*) AS first_poll FROM ql_held;
SELECT count(*) AS second_poll FROM durable.task_poll('ql_queue', 'w', 10);
-- finishing one makes room for one, also when finishing and claiming in
-- one call (done_tokens are completed before the room is counted)
SELECT durable.task_complete((SELECT min(token) FROM ql_held), '"done"');
SELECT count(*) AS after_complete FROM durable.task_poll('ql_queue', 'w', 10);
SELECT count(*) AS finish_and_claim
  FROM durable.task_poll('ql_queue', 'w', 10, '30 s',
                         ARRAY[(SELECT max(token) FROM ql_held)], ARRAY['"done"'::jsonb]);
SELECT ready, leased FROM durable.queue_stats WHERE queue = 'ql_queue';
-- other queues are not limited
SELECT durable.wf_start('free_wf', NULL, 'qf-' || i, 'qf_queue') FROM generate_series(1, 3) i;
SELECT count(*) AS unlimited FROM durable.task_poll('qf_queue', 'w', 10);
-- lifting the limit hands out the rest
SELECT durable.queue_set_concurrency('ql_queue', NULL);
SELECT count(*) AS lifted FROM durable.task_poll('ql_queue', 'w', 10);
SELECT ready, leased, max_concurrency FROM durable.queue_stats WHERE queue = 'ql_queue';
-- bad input changes nothing
SELECT durable.queue_set_concurrency('ql_queue', 3);
SELECT pg_temp.err($$SELECT durable.queue_set_concurrency('ql_queue', 0)$$);
SELECT pg_temp.err($$SELECT durable.queue_set_concurrency('ql_queue', -3)$$);
SELECT pg_temp.err($$SELECT durable.queue_set_concurrency('bad queue', 1)$$);
SELECT pg_temp.err($$SELECT durable.queue_set_concurrency(NULL, 1)$$);
SELECT max_concurrency FROM durable.queues WHERE queue = 'ql_queue';

--
-- rate limit: a token bucket (rate per second, burst), on the durable clock
--
SELECT durable.wf_start('rated_wf', NULL, 'qr-' || i, 'qr_queue') FROM generate_series(1, 7) i;
SELECT durable.queue_set_rate('qr_queue', 0.5, 2);
SELECT ready, max_rate, rate_burst FROM durable.queue_stats WHERE queue = 'qr_queue';
-- the full bucket gives a burst of 2, then nothing
SELECT count(*) AS burst FROM durable.task_poll('qr_queue', 'w', 10);
SELECT count(*) AS empty_bucket FROM durable.task_poll('qr_queue', 'w', 10);
-- 3 s later: 1.5 tokens, one claim (0.5 left); 1 s more: 1.0, one;
-- then none
SET durable.clock_offset = '3s';
SELECT count(*) AS after_3s FROM durable.task_poll('qr_queue', 'w', 10);
SET durable.clock_offset = '4s';
SELECT count(*) AS after_4s FROM durable.task_poll('qr_queue', 'w', 10);
SELECT count(*) AS again_4s FROM durable.task_poll('qr_queue', 'w', 10);
-- a long pause refills the bucket only up to the burst
SET durable.clock_offset = '60s';
SELECT count(*) AS after_a_minute FROM durable.task_poll('qr_queue', 'w', 10);
RESET durable.clock_offset;
-- bad input changes nothing
SELECT pg_temp.err($$SELECT durable.queue_set_rate('qr_queue', 0)$$);
SELECT pg_temp.err($$SELECT durable.queue_set_rate('qr_queue', -1)$$);
SELECT pg_temp.err($$SELECT durable.queue_set_rate('qr_queue', 'NaN')$$);
SELECT pg_temp.err($$SELECT durable.queue_set_rate('qr_queue', 5, 0)$$);
SELECT pg_temp.err($$SELECT durable.queue_set_rate('qr_queue', NULL, 3)$$);
SELECT max_rate, rate_burst FROM durable.queues WHERE queue = 'qr_queue';
-- NULL lifts it: the rest at once
SELECT durable.queue_set_rate('qr_queue', NULL);
SELECT count(*) AS lifted FROM durable.task_poll('qr_queue', 'w', 10);

-- clean up
SELECT count(*) AS terminated FROM (
    SELECT durable.wf_terminate(workflow_id, 'test done') FROM durable.runs
     WHERE queue IN ('ql_queue', 'qf_queue', 'qr_queue') AND status = 'running') t;
DELETE FROM durable.queues;
