-- errors: bad input of every kind to every entry point gets its own
-- SQLSTATE and a clear message, never a crash, and changes nothing.
-- Each call runs through err(), which shows 'SQLSTATE: message'; each
-- group starts with mark() and ends with unchanged(), which compares row
-- counts and a fingerprint of every durable table with the mark.
-- Ids start with "err-", queues with "eq".

\i test/regress/common.sql
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT format('runs %s, tasks %s, steps %s, events %s, signals %s',
                  (SELECT count(*) FROM durable.runs), (SELECT count(*) FROM durable.tasks),
                  (SELECT count(*) FROM durable.steps), (SELECT count(*) FROM durable.events),
                  (SELECT count(*) FROM durable.signals)) $$;
CREATE TEMP TABLE mark (fingerprint text, counts text);
CREATE FUNCTION pg_temp.mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM pg_temp.mark;
    INSERT INTO pg_temp.mark VALUES (pg_temp.state(), pg_temp.counts()) $$;
CREATE FUNCTION pg_temp.unchanged() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN m.counts <> pg_temp.counts() THEN 'CHANGED: ' || m.counts || ' -> ' || pg_temp.counts()
                WHEN m.fingerprint <> pg_temp.state() THEN 'CHANGED rows'
                ELSE 'unchanged' END FROM pg_temp.mark m $$;
-- a payload bigger than 1 kB, for durable.max_payload_size = 1kB
CREATE FUNCTION pg_temp.big() RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('blob', repeat('x', 2000)) $$;

--
-- wf_start
--
SELECT pg_temp.mark();
SELECT pg_temp.err($$SELECT durable.wf_start(NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_start('')$$);
SELECT pg_temp.err(format('SELECT durable.wf_start(%L)', repeat('n', 256)));
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, '', 'eq')$$);
SELECT pg_temp.err(format('SELECT durable.wf_start(%L, NULL, %L, %L)', 'w', repeat('i', 1001), 'eq'));
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-q', NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-q', '')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-q', 'bad queue')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-q', 'eq;drop')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-q', 'a/b')$$);
SELECT pg_temp.err(format('SELECT durable.wf_start(%L, NULL, %L, %L)', 'w', 'err-q', repeat('q', 55)));
-- options: an object of known keys with values of the right type
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '[]')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '"fail"')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"priorty": 5}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"id_conflict_policy": "replace"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"id_conflict_policy": 1}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"id_reuse_policy": "sometimes"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"request_id": ""}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"request_id": 42}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"priority": 1001}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"priority": -1001}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"priority": 1.5}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"priority": "high"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-o', 'eq', '{"search_attributes": [1, 2]}')$$);
-- durations: positive, at most 10 years, seconds or "<n><unit>"
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": -5}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": "-5s"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": 0}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": "0s"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": "5 parsecs"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": "soon"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": ""}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": "5s 3m"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": true}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"start_delay": {"s": 5}}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"execution_timeout": "4000d"}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"execution_timeout": 1e300}')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-d', 'eq', '{"run_timeout": "0.0001s"}')$$);
-- payloads above durable.max_payload_size
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err($$SELECT durable.wf_start('w', pg_temp.big(), 'err-p', 'eq')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-p', 'eq', jsonb_build_object('memo', pg_temp.big()))$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-p', 'eq', jsonb_build_object('search_attributes', pg_temp.big()))$$);
RESET durable.max_payload_size;
-- an unknown namespace
SET durable.namespace = 'err_nowhere';
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'err-ns', 'eq')$$);
-- (a generated id takes another statement: the same error)
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, NULL, 'eq')$$);
RESET durable.namespace;
SELECT pg_temp.err(format('SET durable.namespace = %L', repeat('n', 256)));
SELECT pg_temp.err($$SET durable.namespace = ''$$);
SELECT current_setting('durable.namespace');
SELECT pg_temp.unchanged();
-- (accepted: NULL options and input, fractional and spelled-out durations)
SELECT durable.wf_start('w', NULL, 'err-ok', 'eq', NULL);
SELECT durable.wf_start('w', NULL, 'err-ok2', 'eq', '{"start_delay": "1.5 seconds", "run_timeout": 3600, "execution_timeout": "2 days"}');
SELECT options->'start_delay_ms' AS start_delay_ms, run_timeout,
       options->'execution_timeout_ms' AS execution_timeout_ms,
       execution_deadline - created_at AS execution_deadline_in
  FROM durable.runs WHERE workflow_id = 'err-ok2';
SELECT durable.wf_terminate('err-ok'), durable.wf_terminate('err-ok2');

--
-- wf_signal, wf_cancel, wf_terminate, wf_result, wf_status, wf_history, wf_describe
--
SELECT durable.wf_start('w', NULL, 'err-1', 'eq');
SELECT pg_temp.mark();
SELECT pg_temp.err($$SELECT durable.wf_signal(NULL, 's')$$);
SELECT pg_temp.err($$SELECT durable.wf_signal('', 's')$$);
SELECT pg_temp.err($$SELECT durable.wf_signal('err-1', NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_signal('err-1', '')$$);
SELECT pg_temp.err(format('SELECT durable.wf_signal(%L, %L)', 'err-1', repeat('s', 256)));
SELECT pg_temp.err($$SELECT durable.wf_signal('err-1', 's', '1', '')$$);
SELECT pg_temp.err($$SELECT durable.wf_signal('err-nope', 's')$$);
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err($$SELECT durable.wf_signal('err-1', 's', pg_temp.big())$$);
RESET durable.max_payload_size;
SELECT pg_temp.err($$SELECT durable.wf_cancel(NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_cancel('')$$);
SELECT pg_temp.err($$SELECT durable.wf_cancel('err-1', '')$$);
SELECT pg_temp.err(format('SELECT durable.wf_cancel(%L, %L)', 'err-1', repeat('r', 10001)));
SELECT pg_temp.err($$SELECT durable.wf_cancel('err-nope')$$);
SELECT pg_temp.err($$SELECT durable.wf_terminate(NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_terminate('err-1', '')$$);
SELECT pg_temp.err($$SELECT durable.wf_terminate('err-nope')$$);
SELECT pg_temp.err($$SELECT durable.wf_result(NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_result('')$$);
SELECT pg_temp.err($$SELECT durable.wf_result('err-1', '-1 s')$$);
SELECT pg_temp.err($$SELECT durable.wf_result('err-1', '11 years')$$);
SELECT pg_temp.err($$SELECT durable.wf_result('err-nope')$$);
SELECT pg_temp.err($$SELECT durable.wf_status(NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_status('err-nope')$$);
SELECT pg_temp.err($$SELECT * FROM durable.wf_history(NULL)$$);
SELECT pg_temp.err($$SELECT durable.wf_describe(NULL)$$);
SELECT pg_temp.unchanged();
-- (accepted: wait 0 and NULL, a NULL payload, a NULL reason)
SELECT durable.wf_result('err-1', '0 s') IS NULL AS no_result, durable.wf_result('err-1', NULL) IS NULL AS no_result_either;

--
-- task_poll
--
SELECT pg_temp.mark();
SELECT pg_temp.err($$SELECT * FROM durable.task_poll(NULL, 'w')$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('', 'w')$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('e q', 'w')$$);
SELECT pg_temp.err(format('SELECT * FROM durable.task_poll(%L, %L)', repeat('q', 55), 'w'));
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', '')$$);
SELECT pg_temp.err(format('SELECT * FROM durable.task_poll(%L, %L)', 'eq', repeat('w', 256)));
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 0)$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', -1)$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1001)$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, '0 s')$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, '-5 s')$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, '11 years')$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, '1 s', NULL, ARRAY['1']::jsonb[])$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, '1 s', ARRAY[1, 2], ARRAY['1']::jsonb[])$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, '1 s', ARRAY[NULL::bigint])$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('eq', 'w', 1, '1 s', ARRAY[[1], [2]])$$);
SELECT pg_temp.unchanged();

--
-- calls that take a token: a workflow task and an activity task to aim at
--
SELECT durable.wf_start('w', NULL, 'err-2', 'eq');
SELECT count(*) FROM (SELECT * FROM durable.task_poll('eq', 'w', 2)) p;
SELECT token AS wtok FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'err-2' \gset
SELECT token AS w1tok FROM durable.tasks t JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'err-1' \gset
SELECT durable.task_suspend(:w1tok, '[{"seq": 1, "type": "activity", "name": "a", "queue": "eq-act"}]');
SELECT token AS atok FROM durable.task_poll('eq-act', 'w') \gset
SELECT pg_temp.mark();

-- step_record
SELECT pg_temp.err($$SELECT durable.step_record(NULL, 1, 'x', '1')$$);
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, NULL, 'x', '1')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 0, 'x', '1')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, -1, 'x', '1')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, NULL, '1')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, '', '1')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, %L, '1')$$, :wtok, repeat('n', 256)));
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, 'x', pg_temp.big())$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, jsonb_build_array(jsonb_build_object('seq', 1, 'name', 'x', 'result', pg_temp.big())))$$, :wtok));
RESET durable.max_payload_size;
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, NULL::jsonb)$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '{"seq": 1, "name": "x"}')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '"steps"')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[1]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 1}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"name": "x"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": "1", "name": "x"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 1.5, "name": "x"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 0, "name": "x"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 3000000000, "name": "x"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 1, "name": 7}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 1, "name": "x", "resul": 1}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, '[{"seq": 1, "name": "x"}, {"seq": 1, "name": "y"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, (SELECT jsonb_agg(jsonb_build_object('seq', i, 'name', 's')) FROM generate_series(1, 1001) i))$$, :wtok));
SELECT pg_temp.unchanged();
-- (accepted: an empty array records nothing)
SELECT durable.step_record(:wtok, '[]');

-- task_suspend: the commands array
SELECT pg_temp.err($$SELECT durable.task_suspend(NULL, '[]')$$);
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, NULL)$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '{}')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '"sleep"')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[1]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[[]]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": 5}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "teleport"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"type": "sleep", "duration": 1}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 0, "type": "sleep", "duration": 1}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": "2", "type": "sleep", "duration": 1}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, (SELECT jsonb_agg(jsonb_build_object('seq', i, 'type', 'sleep', 'duration', 60)) FROM generate_series(1, 1001) i))$$, :wtok));
-- a bad command after good ones: none of them is applied
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "duration": 1}, {"seq": 2, "type": "activity", "name": "a", "queue": "eq-act"}, {"seq": 3, "type": "nap"}]')$$, :wtok));
-- the same seq twice with different names is nondeterminism
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a"}, {"seq": 1, "type": "activity", "name": "b"}]')$$, :wtok));
-- steps riding on the suspend are checked too
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[]', '{"seq": 1}')$$, :wtok));
SELECT pg_temp.unchanged();

-- activity commands
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": ""}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": ["a"]}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, jsonb_build_array(jsonb_build_object('seq', 1, 'type', 'activity', 'name', repeat('a', 256))))$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "queue": "no queue"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "queue": ""}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "timeout": "1m"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": "fast"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"max_attempts": 3}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"initial_interval": "10s", "maximum_interval": "5s"}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"initial_interval": 0}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"backoff_coefficient": 0.5}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"backoff_coefficient": 1000}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"maximum_attempts": -1}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"maximum_attempts": 2.5}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"non_retryable_error_types": "Fatal"}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "retry": {"non_retryable_error_types": ["Fatal", 1]}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "start_to_close": "-1s"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "schedule_to_close": 0}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "schedule_to_start": "eventually"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "heartbeat": "20y"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a", "priority": 5000}]')$$, :wtok));
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, jsonb_build_array(jsonb_build_object('seq', 1, 'type', 'activity', 'name', 'a', 'input', pg_temp.big())))$$, :wtok));
RESET durable.max_payload_size;
SELECT pg_temp.unchanged();

-- sleep, signal and child commands
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "duration": 5, "until": "2030-01-01T00:00:00Z"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "duration": "1 fortnight"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "duration": 0.0001}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "duration": -60}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "until": "tomorrow-ish"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "until": "2030-02-30T00:00:00Z"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "until": "infinity"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "until": 1893456000}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "until": ""}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "sleep", "duration": 5, "queue": "eq"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "signal"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "signal", "name": "go", "timeout": "0s"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "signal", "name": "go", "payload": 1}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "parent_close_policy": "orphan"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "options": "fast"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "options": {"priority": "top"}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "workflow_id": ""}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "options": {"id_conflict_policy": "use_existing"}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "options": {"request_id": "r1"}}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "child", "name": "c", "queue": "q q"}]')$$, :wtok));
SELECT pg_temp.unchanged();
-- (accepted: an "until" in the past fires at the next tick, whatever
-- the past time, including PostgreSQL's epoch)
SELECT durable.task_suspend(:wtok, '[{"seq": 1, "type": "sleep", "until": "2001-02-03 04:05:06+00"},
                                     {"seq": 2, "type": "sleep", "until": "2000-01-01T00:00:00Z"}]');
SELECT durable.tick() > 0 AS ticked;
SELECT s.seq, s.status, s.due_at IS NOT NULL AS has_due_time
  FROM durable.steps s JOIN durable.runs r USING (run_id) WHERE r.workflow_id = 'err-2' ORDER BY s.seq;
SELECT token AS wtok FROM durable.task_poll('eq', 'w') \gset
SELECT pg_temp.mark();

-- task_complete, task_fail, task_heartbeat
SELECT pg_temp.err($$SELECT durable.task_complete(NULL::bigint, '1')$$);
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '1', '{}')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '1', '[{"seq": 1, "name": "nap"}]')$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '1', '[{"seq": 1, "name": "x"}]')$$, :atok));
SET durable.max_payload_size = '1kB';
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, pg_temp.big())$$, :wtok));
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, pg_temp.big())$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[%s], ARRAY[pg_temp.big()])$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_fail(%s, pg_temp.big())$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_heartbeat(%s, pg_temp.big())$$, :atok));
RESET durable.max_payload_size;
SELECT pg_temp.err($$SELECT durable.task_complete_many(NULL::bigint[], NULL)$$);
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[%s, %s], ARRAY['1']::jsonb[])$$, :wtok, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[%s], ARRAY['1', '2']::jsonb[])$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[%s, NULL], NULL)$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[[%s]], NULL)$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[%s], ARRAY[['1']]::jsonb[])$$, :atok));
SELECT pg_temp.err($$SELECT durable.task_complete_many(ARRAY(SELECT -i::bigint FROM generate_series(1, 1001) i), NULL)$$);
-- the same token twice in one call: the second use is stale
SELECT pg_temp.err(format($$SELECT durable.task_complete_many(ARRAY[%s, %s], NULL)$$, :atok, :atok));
SELECT pg_temp.err($$SELECT durable.task_fail(NULL, '"e"')$$);
SELECT pg_temp.err(format($$SELECT durable.task_fail(%s, NULL)$$, :atok));
SELECT pg_temp.err($$SELECT durable.task_heartbeat(NULL)$$);
SELECT pg_temp.err(format($$SELECT durable.task_heartbeat(%s, NULL, '0 s')$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_heartbeat(%s, NULL, '-1 min')$$, :atok));
SELECT pg_temp.err(format($$SELECT durable.task_heartbeat(%s, NULL, '100 years')$$, :atok));
SELECT pg_temp.unchanged();
-- (accepted: an empty array completes nothing; a NULL lease is the
-- lease the task was claimed with)
SELECT durable.task_complete_many(ARRAY[]::bigint[], ARRAY[]::jsonb[]);
SELECT durable.task_heartbeat(:atok, NULL, NULL);

--
-- none of the above left anything behind
--
SELECT durable.task_complete(:atok, '"a"');
SELECT durable.task_complete(:wtok, '"done"');
SELECT durable.wf_terminate('err-1');
SELECT workflow_id, status FROM durable.runs WHERE workflow_id LIKE 'err-%' ORDER BY workflow_id;
SELECT count(*) AS tasks_left FROM durable.tasks WHERE queue IN ('eq', 'eq-act');
