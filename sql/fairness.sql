-- fairness: fairness keys share a queue in proportion to their weights
-- (start-time fair queuing, fairness.c).  A key that enqueues a backlog
-- does not hold back a key that enqueues a little; runs pass their key to
-- their workflow tasks, activities and children; a task ready only later
-- takes its place when it comes due.  Ids start with "fair-", queues
-- with "fq".
\i test/regress/common.sql
-- claim_order(queue, n): claim up to n tasks, complete them, and say
-- which workflows they were, in claim order
CREATE FUNCTION pg_temp.claim_order(q text, n int) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(workflow_id, ' ' ORDER BY ord)
      FROM durable.task_poll(q, 'w', n) WITH ORDINALITY AS p(token, kind, workflow_id, run_id,
           workflow_type, name, seq, input, attempt, journal, heartbeat, cancel_requested,
           lease_until, updates, ord),
           LATERAL durable.task_complete(p.token, NULL) c $$;

-- without keys: the order in which tasks became ready
SELECT count(*) FROM durable.wf_start_many('f', array_fill('{}'::jsonb, ARRAY[3]),
                                           ARRAY['fair-1', 'fair-2', 'fair-3'], 'fq0');
SELECT durable.wf_start('f', NULL, 'fair-4', 'fq0');
SELECT pg_temp.claim_order('fq0', 10);

-- key a enqueues a backlog of 6, then key b enqueues 2: b's tasks come
-- in between a's, not after them
SELECT count(*) FROM durable.wf_start_many('f', array_fill('{}'::jsonb, ARRAY[6]),
                                           ARRAY['fair-a1', 'fair-a2', 'fair-a3', 'fair-a4', 'fair-a5', 'fair-a6'],
                                           'fq1', '{"fairness_key": "a"}');
SELECT durable.wf_start('f', NULL, 'fair-b1', 'fq1', '{"fairness_key": "b"}');
SELECT durable.wf_start('f', NULL, 'fair-b2', 'fq1', '{"fairness_key": "b"}');
SELECT pg_temp.claim_order('fq1', 3);
-- a third key arriving now starts just behind the task last claimed
SELECT durable.wf_start('f', NULL, 'fair-c1', 'fq1', '{"fairness_key": "c"}');
SELECT pg_temp.claim_order('fq1', 10);
SELECT fairness_key, fairness_weight FROM durable.runs WHERE workflow_id IN ('fair-a1', 'fair-1') ORDER BY workflow_id;

-- weights: b (weight 2) gets two tasks for each one of a (weight 1)
SELECT count(*) FROM durable.wf_start_many('f', array_fill('{}'::jsonb, ARRAY[4]),
                                           ARRAY['fair-wa1', 'fair-wa2', 'fair-wa3', 'fair-wa4'],
                                           'fq2', '{"fairness_key": "a"}');
SELECT count(*) FROM durable.wf_start_many('f', array_fill('{}'::jsonb, ARRAY[4]),
                                           ARRAY['fair-wb1', 'fair-wb2', 'fair-wb3', 'fair-wb4'],
                                           'fq2', '{"fairness_key": "b", "fairness_weight": 2}');
SELECT pg_temp.claim_order('fq2', 6);
SELECT pg_temp.claim_order('fq2', 6) AS rest;

-- a run's key goes to its activities (unless the command names one) and
-- to its children (unless their options name one)
SELECT durable.wf_start('f', NULL, 'fair-parent', 'fq3', '{"fairness_key": "tenant-7", "fairness_weight": 3}');
SELECT durable.task_suspend(token, '[
    {"seq": 1, "type": "activity", "name": "inherits", "queue": "fq3-act"},
    {"seq": 2, "type": "activity", "name": "own", "queue": "fq3-act", "fairness_key": "bulk", "fairness_weight": 0.5},
    {"seq": 3, "type": "child", "name": "kid", "workflow_id": "fair-child", "queue": "fq3"},
    {"seq": 4, "type": "child", "name": "kid2", "workflow_id": "fair-child2", "queue": "fq3",
     "options": {"fairness_key": "other"}}]')
  FROM durable.task_poll('fq3', 'w', 1);
SELECT t.kind, coalesce(s.name, r.workflow_id) AS what, t.fairness_key, t.fairness_weight
  FROM durable.tasks t JOIN durable.runs r USING (run_id)
  LEFT JOIN durable.steps s ON s.run_id = t.run_id AND s.seq = t.seq
 WHERE r.workflow_id LIKE 'fair-parent' OR r.workflow_id LIKE 'fair-child%'
 ORDER BY t.kind, what;
SELECT workflow_id, fairness_key, fairness_weight FROM durable.runs
 WHERE workflow_id LIKE 'fair-child%' ORDER BY workflow_id;
SELECT durable.wf_terminate('fair-parent');
SELECT count(*) AS still_running FROM durable.runs WHERE workflow_id LIKE 'fair-%' AND status = 'running';

-- a queue's runs in flight and its new runs are separate lanes: the
-- second task of a run of key a (claimed before new runs) does not push
-- key b's new run behind a's backlog of new runs
SELECT count(*) FROM durable.wf_start_many('f', array_fill('{}'::jsonb, ARRAY[5]),
                                           ARRAY['fair-la1', 'fair-la2', 'fair-la3', 'fair-la4', 'fair-la5'],
                                           'fq7', '{"fairness_key": "a"}');
SELECT durable.task_suspend(token, '[{"seq": 1, "type": "activity", "name": "x"}]')
  FROM durable.task_poll('fq7', 'w', 1);
SELECT pg_temp.claim_order('fq7', 1) AS in_flight_first;
SELECT durable.wf_start('f', NULL, 'fair-lb1', 'fq7', '{"fairness_key": "b"}');
SELECT pg_temp.claim_order('fq7', 3);
SELECT pg_temp.claim_order('fq7', 10) AS rest;

-- a task ready only later waits at the end of the fair order until it
-- comes due; then the periodic work gives it its place
SELECT durable.wf_start('f', NULL, 'fair-late', 'fq4', '{"start_delay": "1 min", "fairness_key": "z"}');
SELECT pass = 'Infinity' AS last_until_due FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'fair-late';
SET durable.clock_offset = '2min';
SELECT durable.tick() >= 0 AS ticked;
SELECT pass < 'Infinity' AS placed_when_due FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'fair-late';
SELECT durable.wf_start('f', NULL, 'fair-after', 'fq4', '{"fairness_key": "y"}');
SELECT pg_temp.claim_order('fq4', 5);
RESET durable.clock_offset;

-- a retried activity waits for its backoff at the end, then takes a new place
SELECT durable.wf_start('f', NULL, 'fair-retry', 'fq5');
SELECT durable.task_suspend(token, '[{"seq": 1, "type": "activity", "name": "flaky", "queue": "fq5"}]')
  FROM durable.task_poll('fq5', 'w', 1);
SELECT durable.task_fail(token, '{"message": "once"}') FROM durable.task_poll('fq5', 'w', 1);
SELECT state, pass = 'Infinity' AS waits_at_end FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'fair-retry';
SET durable.clock_offset = '1min';
SELECT durable.tick() >= 0 AS ticked;
SELECT kind, name, attempt FROM durable.task_poll('fq5', 'w', 1);
RESET durable.clock_offset;
SELECT durable.wf_terminate('fair-retry');

-- bad options change nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.errd($$SELECT durable.wf_start('f', NULL, 'fair-bad', 'fq6', '{"fairness_key": 7}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('f', NULL, 'fair-bad', 'fq6', '{"fairness_key": "a\nb"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('f', NULL, 'fair-bad', 'fq6', '{"fairness_key": "$$ || repeat('k', 300) || $$"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('f', NULL, 'fair-bad', 'fq6', '{"fairness_weight": 0}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('f', NULL, 'fair-bad', 'fq6', '{"fairness_weight": -1}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('f', NULL, 'fair-bad', 'fq6', '{"fairness_weight": 1001}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start('f', NULL, 'fair-bad', 'fq6', '{"fairness_weight": "heavy"}')$$);
SELECT pg_temp.errd($$SELECT durable.wf_start_many('f', ARRAY['{}']::jsonb[], NULL, 'fq6', '{"fairness_weight": 0}')$$);
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT durable.wf_start('f', NULL, 'fair-cmd', 'fq6');
SELECT pg_temp.errd(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "x", "fairness_weight": 0}]')$$, token))
  FROM durable.task_poll('fq6', 'w', 1) \gset bad_
SELECT :'bad_errd';
SELECT durable.wf_terminate('fair-cmd');
