-- key_limits: per-key concurrency limits (queue_set_key_concurrency): at
-- most N tasks of each fairness key of a queue leased at once, with
-- overrides for named keys (0 holds a key back); bad input changes
-- nothing.  Ids start with "kl-", queues with "klq".
\i test/regress/common.sql
CREATE FUNCTION pg_temp.leased(q text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s:%s', fairness_key, leased), ' ' ORDER BY fairness_key), '-')
      FROM durable.queue_keys WHERE queue = q AND leased > 0 $$;

-- 6 runs of key a, 6 of vip, 2 of blocked, 2 without a key ('')
SELECT count(*) FROM durable.wf_start_many('k', array_fill('{}'::jsonb, ARRAY[6]), NULL, 'klq', '{"fairness_key": "a"}');
SELECT count(*) FROM durable.wf_start_many('k', array_fill('{}'::jsonb, ARRAY[6]), NULL, 'klq', '{"fairness_key": "vip"}');
SELECT count(*) FROM durable.wf_start_many('k', array_fill('{}'::jsonb, ARRAY[2]), NULL, 'klq', '{"fairness_key": "blocked"}');
SELECT count(*) FROM durable.wf_start_many('k', array_fill('{}'::jsonb, ARRAY[2]), NULL, 'klq');
SELECT durable.queue_set_key_concurrency('klq', 2, '{"vip": 5, "blocked": 0}');
SELECT key_concurrency, key_concurrency_overrides FROM durable.queue_stats WHERE queue = 'klq';
-- one poll for 100: 2 of a, 5 of vip, none of blocked, 2 without a key
CREATE TEMP TABLE held AS SELECT token, workflow_id FROM durable.task_poll('klq', 'w', 100);
SELECT count(*) AS claimed FROM held;
SELECT pg_temp.leased('klq');
SELECT count(*) AS claimed_when_full FROM durable.task_poll('klq', 'w', 100);
-- a finished task of a frees one slot of a
SELECT durable.task_complete(h.token, NULL) FROM held h JOIN durable.runs r USING (workflow_id)
 WHERE r.fairness_key = 'a' LIMIT 1;
SELECT count(*) AS claimed_after_finish FROM durable.task_poll('klq', 'w', 100);
SELECT pg_temp.leased('klq');
SELECT fairness_key, ready, leased, max_concurrency FROM durable.queue_keys WHERE queue = 'klq' ORDER BY 1;
-- lifted: the rest comes out
SELECT durable.queue_set_key_concurrency('klq', NULL, NULL);
SELECT count(*) AS claimed_after_lift FROM durable.task_poll('klq', 'w', 100);
SELECT pg_temp.leased('klq');
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows WHERE queue = 'klq' AND status = 'running';

-- limits apply to activities by their own keys
SELECT durable.queue_set_key_concurrency('klq-act', 1);
SELECT durable.wf_start('k', NULL, 'kl-acts', 'klq2');
SELECT durable.task_suspend(token, '[
    {"seq": 1, "type": "activity", "name": "x", "queue": "klq-act", "fairness_key": "t1"},
    {"seq": 2, "type": "activity", "name": "x", "queue": "klq-act", "fairness_key": "t1"},
    {"seq": 3, "type": "activity", "name": "x", "queue": "klq-act", "fairness_key": "t2"}]')
  FROM durable.task_poll('klq2', 'w', 1);
SELECT count(*) AS activities_claimed FROM durable.task_poll('klq-act', 'w', 10);
SELECT pg_temp.leased('klq-act');
SELECT durable.wf_terminate('kl-acts');

-- on_limit cancel_newest: activities that find their key full are
-- cancelled (their steps end cancelled); workflow tasks still wait
SELECT durable.queue_set_key_concurrency('klq-new', 1, NULL, 'cancel_newest');
SELECT key_on_limit FROM durable.queue_stats WHERE queue = 'klq-new';
SELECT durable.wf_start('k', NULL, 'kl-new', 'klq3');
SELECT durable.task_suspend(token, '[
    {"seq": 1, "type": "activity", "name": "x", "queue": "klq-new", "fairness_key": "t1"},
    {"seq": 2, "type": "activity", "name": "x", "queue": "klq-new", "fairness_key": "t1"},
    {"seq": 3, "type": "activity", "name": "x", "queue": "klq-new", "fairness_key": "t1"},
    {"seq": 4, "type": "activity", "name": "x", "queue": "klq-new", "fairness_key": "t2"}]')
  FROM durable.task_poll('klq3', 'w', 1);
CREATE TEMP TABLE newest AS SELECT token, seq FROM durable.task_poll('klq-new', 'w', 10);
SELECT string_agg(seq::text, ',' ORDER BY seq) AS leased FROM newest;
SELECT seq, status, error->>'message' AS message FROM durable.journal
 WHERE workflow_id = 'kl-new' ORDER BY seq;
-- the run was woken to see the cancellations
SELECT count(*) AS workflow_task_ready FROM durable.task_poll('klq3', 'w', 1);
-- a finished activity frees the slot as before
SELECT durable.task_complete(token, '"ok"') FROM newest WHERE seq = 1;
SELECT count(*) AS nothing_left FROM durable.task_poll('klq-new', 'w', 10);
SELECT durable.wf_terminate('kl-new');
-- two workflows on a queue with cancel_newest: the second's workflow task waits
SELECT durable.queue_set_key_concurrency('klq-wf', 1, NULL, 'cancel_newest');
SELECT durable.wf_start('k', NULL, 'kl-wf' || i, 'klq-wf', '{"fairness_key": "w"}') FROM generate_series(1, 2) i;
SELECT count(*) AS workflow_tasks_claimed FROM durable.task_poll('klq-wf', 'w', 10);
SELECT count(*) AS still_running FROM durable.workflows WHERE workflow_id LIKE 'kl-wf%' AND status = 'running';
SELECT ready, leased FROM durable.queue_keys WHERE queue = 'klq-wf';
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows WHERE workflow_id LIKE 'kl-wf%';

-- on_limit cancel_oldest: a newer activity of a full key takes the slot
-- of the key's oldest leased one, whose worker then gets DU004
SELECT durable.queue_set_key_concurrency('klq-old', 1, NULL, 'cancel_oldest');
SELECT durable.wf_start('k', NULL, 'kl-old' || i, 'klq4') FROM generate_series(1, 2) i;
SELECT durable.task_suspend(token, '[{"seq": 1, "type": "activity", "name": "x", "queue": "klq-old", "fairness_key": "t1"}]')
  FROM durable.task_poll('klq4', 'w', 1);
CREATE TEMP TABLE oldest AS SELECT token, workflow_id FROM durable.task_poll('klq-old', 'w', 10);
SELECT workflow_id FROM oldest;
SELECT durable.task_suspend(token, '[{"seq": 1, "type": "activity", "name": "x", "queue": "klq-old", "fairness_key": "t1"}]')
  FROM durable.task_poll('klq4', 'w', 1);
SELECT workflow_id AS newer_leased FROM durable.task_poll('klq-old', 'w', 10);
SELECT workflow_id, status, error->>'message' AS message FROM durable.journal
 WHERE workflow_id LIKE 'kl-old%' ORDER BY workflow_id;
SELECT pg_temp.errd(format($$SELECT durable.task_complete(%s, '"late"')$$, token)) FROM oldest;
SELECT pg_temp.leased('klq-old');
SELECT count(durable.wf_terminate(workflow_id)) FROM durable.workflows WHERE workflow_id LIKE 'kl-old%';

-- bad input changes nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', -1)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, '[1, 2]')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, '{"a": -1}')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, '{"a": 1.5}')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, '{"a": "two"}')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, '{"a": 3000000000}')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, '{"a\u0001": 1}')$$);
SELECT pg_temp.errd(format($$SELECT durable.queue_set_key_concurrency('klq', 1, '{"%s": 1}')$$, repeat('k', 300)));
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency(NULL, 1)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('bad queue', 1)$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, NULL, 'cancel_all')$$);
SELECT pg_temp.errd($$SELECT durable.queue_set_key_concurrency('klq', 1, NULL, NULL)$$);
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT key_concurrency, key_concurrency_overrides FROM durable.queues WHERE queue = 'klq';
