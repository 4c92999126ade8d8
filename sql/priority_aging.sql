-- priority_aging: queue_set_priority_aging raises a ready task one
-- priority for each interval it has waited, up to a cap, so a stream of
-- higher-priority work cannot starve it; a claim takes the task back to
-- its own priority.  Ids start with "pa-", queues with "paq".
\i test/regress/common.sql
CREATE FUNCTION pg_temp.prio(id text) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s %s (+%s)', t.state, t.priority, t.aged)
      FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = id $$;

SELECT durable.queue_set_priority_aging('paq1', '10 seconds');
SELECT aging_every, aging_up_to FROM durable.queue_stats WHERE queue = 'paq1';
-- a low-priority task waits 45 s; then three high-priority tasks arrive
SELECT durable.wf_start('p', NULL, 'pa-low', 'paq1');
SET durable.clock_offset = '45s';
SELECT durable.wf_start('p', NULL, 'pa-high' || i, 'paq1', '{"priority": 3}') FROM generate_series(1, 3) i;
SELECT durable.tick() >= 1 AS ticked;
SELECT pg_temp.prio('pa-low') AS low, pg_temp.prio('pa-high1') AS high;
-- it has waited longest: it goes first, then back to its own priority
SELECT string_agg(workflow_id, ' ' ORDER BY ord) AS claim_order
  FROM durable.task_poll('paq1', 'w', 2) WITH ORDINALITY AS p(token, kind, workflow_id, run_id,
       workflow_type, name, seq, input, attempt, journal, heartbeat, cancel_requested,
       lease_until, updates, ord);
SELECT pg_temp.prio('pa-low') AS low_claimed;
-- another tick changes nothing yet
SELECT durable.tick() AS nothing_to_age;
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows WHERE queue = 'paq1' AND status = 'running';

-- up_to caps the raise; a task at or above it is left alone
SELECT durable.queue_set_priority_aging('paq2', '10 seconds', 2);
SELECT durable.wf_start('p', NULL, 'pa-cap', 'paq2');
SELECT durable.wf_start('p', NULL, 'pa-top', 'paq2', '{"priority": 5}');
SET durable.clock_offset = '200s';
SELECT durable.tick() >= 1 AS ticked;
SELECT pg_temp.prio('pa-cap') AS capped, pg_temp.prio('pa-top') AS above_cap;
-- lifted: nothing ages any more
SELECT durable.queue_set_priority_aging('paq2', NULL);
SELECT durable.wf_start('p', NULL, 'pa-after', 'paq2');
SET durable.clock_offset = '400s';
SELECT durable.tick() AS nothing_aged;
SELECT pg_temp.prio('pa-after') AS not_aged, pg_temp.prio('pa-cap') AS kept;
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows WHERE queue = 'paq2' AND status = 'running';
RESET durable.clock_offset;

-- bad input changes nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.errd($$SELECT durable.queue_set_priority_aging('paq3', '500 ms')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_priority_aging('paq3', '0 s')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_priority_aging('paq3', '-1 min')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_priority_aging('paq3', '1 min', 2000)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_priority_aging('paq3', '1 min', NULL)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_priority_aging('bad queue', '1 min')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_priority_aging(NULL, '1 min')$$);
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT count(*) AS no_row FROM durable.queues WHERE queue = 'paq3';
