-- hardening: what a hostile tester and a code review found in 0.1, each
-- kept fixed here.  Ids start with "hard-", queues with "hardq",
-- roles with regress_hard_.

\i test/regress/common.sql
\i test/regress/tasks.sql

--
-- retention is bounded: one huge retention overflowed the purge's
-- arithmetic and stopped every round of the periodic work
--
SELECT pg_temp.err($$SELECT durable.namespace_create('hard_ns_big', '10000 years')$$);
SELECT pg_temp.err($$SELECT durable.namespace_create('hard_ns_neg', '-1 day')$$);
SELECT pg_temp.err($$SELECT durable.namespace_create('hard_ns_null', NULL)$$);
SELECT durable.namespace_create('hard_ns', '10 years');
SELECT pg_temp.err($$SELECT durable.namespace_set_retention('hard_ns', '11 years')$$);
SELECT pg_temp.err($$UPDATE durable.namespaces SET retention = '10000 years' WHERE namespace = 'hard_ns'$$);
SELECT retention FROM durable.namespaces WHERE namespace = 'hard_ns';

--
-- the parts of a round are isolated: a purge that fails (here a broken
-- trigger on runs) is logged, and timers still fire in the same tick
--
SET durable.namespace = 'hard_ns';
SELECT durable.namespace_set_retention('hard_ns', '1 hour');
SELECT durable.wf_start('w', NULL, 'hard-old', 'hardq');
SELECT durable.wf_start('w', NULL, 'hard-sleeper', 'hardq');
SELECT kind, workflow_id FROM pg_temp.poll('hardq', 2) ORDER BY workflow_id;
SELECT durable.task_complete(pg_temp.tok('hard-old'), '"done"');
SELECT durable.task_suspend(pg_temp.tok('hard-sleeper'), '[{"seq": 1, "type": "sleep", "duration": "1h"}]');
CREATE FUNCTION pg_temp.broken() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'broken trigger'; END $$;
CREATE TRIGGER hard_broken BEFORE DELETE ON durable.runs
    FOR EACH ROW EXECUTE FUNCTION pg_temp.broken();
SET durable.clock_offset = '2h';
SELECT durable.tick() > 0 AS handled_something;
SELECT workflow_id, status FROM durable.workflows WHERE workflow_id LIKE 'hard-%' ORDER BY 1;
SELECT s.status AS timer FROM durable.journal s WHERE s.workflow_id = 'hard-sleeper';
SELECT count(*) AS sleeper_tasks FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id = 'hard-sleeper';
-- mended: the next tick purges the old run
DROP TRIGGER hard_broken ON durable.runs;
SELECT durable.tick() >= 1 AS purged;
SELECT workflow_id FROM durable.workflows WHERE workflow_id LIKE 'hard-%' ORDER BY 1;
RESET durable.clock_offset;
RESET durable.namespace;

--
-- names hold no control characters
--
SELECT pg_temp.err($$SELECT durable.wf_start(E'w\nx', NULL, 'hard-c1')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, E'hard-\x1b[2Jc2')$$);
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'hard-c3', E'q\tx')$$);
SELECT pg_temp.err($$SELECT durable.namespace_create(E'ns\nx')$$);
SELECT pg_temp.err($$SET durable.namespace = E'ns\nx'$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('hardq', E'worker\r1')$$);
SELECT durable.wf_start('w', NULL, 'hard-c4', 'hardq');
SELECT pg_temp.err($$SELECT durable.wf_signal('hard-c4', E'go\x07')$$);
SELECT kind, workflow_id FROM pg_temp.poll('hardq');
SELECT pg_temp.err(format($$SELECT durable.step_record(%s, 1, E'st\x01ep', '1')$$, pg_temp.tok('hard-c4')));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "activity", "name": "a\u0007b"}]')$$, pg_temp.tok('hard-c4')));
SELECT pg_temp.err(format($$SELECT durable.task_suspend(%s, '[{"seq": 1, "type": "signal", "name": "s\u001bb"}]')$$, pg_temp.tok('hard-c4')));
-- free text may hold line breaks and tabs, nothing else
SELECT durable.wf_cancel('hard-c4', E'line one\nline\ttwo');
SELECT pg_temp.err($$SELECT durable.wf_terminate('hard-c4', E'bell\x07')$$);
SELECT details->>'reason' AS reason FROM durable.wf_history('hard-c4') WHERE event_type = 'cancel_requested';
SELECT durable.wf_terminate('hard-c4', E'stop\tnow');
SELECT event_type, details->>'reason' AS reason FROM durable.wf_history('hard-c4')
 WHERE event_type IN ('terminate_requested', 'workflow_terminated');

--
-- grants validate their input, and a granted admin can grant
--
CREATE ROLE regress_hard_admin;
CREATE ROLE regress_hard_app;
CREATE ROLE regress_hard_gone;
SELECT pg_temp.err($$SELECT durable.grant_client(NULL)$$);
SELECT pg_temp.err($$SELECT durable.grant_client('regress_hard_app', NULL)$$);
SELECT pg_temp.err($$SELECT durable.grant_client('regress_hard_app', '')$$);
SELECT pg_temp.err($$SELECT durable.grant_client('regress_hard_app', repeat('n', 10 * 1024 * 1024))$$);
SELECT pg_temp.err($$SELECT durable.grant_client('regress_hard_app', E'ns\x01')$$);
SELECT pg_temp.err($$SELECT durable.grant_client('regress_hard_app', 'no_such_ns')$$);
SELECT pg_temp.err($$SELECT durable.grant_worker('regress_hard_app', NULL)$$);
SELECT pg_temp.err($$SELECT durable.grant_worker('regress_hard_app', 'bad queue')$$);
SELECT pg_temp.err($$SELECT durable.grant_worker('regress_hard_app', 'hardq', 'no_such_ns')$$);
SELECT pg_temp.err($$SELECT durable.grant_admin(NULL)$$);
SELECT pg_temp.err($$SELECT durable.revoke_all(NULL)$$);
SELECT count(*) AS grants_of_app FROM durable.grants WHERE role = 'regress_hard_app'::regrole;
SELECT durable.grant_admin('regress_hard_admin');
SET ROLE regress_hard_admin;
SELECT durable.grant_client('regress_hard_app', 'hard_ns');
SELECT durable.grant_worker('regress_hard_app', 'hardq', '*');
SELECT durable.grant_client('regress_hard_gone');
RESET ROLE;
SELECT role, kind, namespace, queue FROM durable.grants
 WHERE role::text LIKE 'regress_hard_%' ORDER BY role::text, kind, namespace;
SELECT has_function_privilege('regress_hard_app', 'durable.wf_start(text, jsonb, text, text, jsonb)', 'EXECUTE') AS app_can_start,
       has_function_privilege('regress_hard_app', 'durable.task_poll(text, text, int, interval, bigint[], jsonb[])', 'EXECUTE') AS app_can_poll,
       has_function_privilege('regress_hard_app', 'durable.tick()', 'EXECUTE') AS app_can_tick;
SET ROLE regress_hard_admin;
SELECT durable.revoke_all('regress_hard_app');
RESET ROLE;
SELECT count(*) AS grants_of_app FROM durable.grants WHERE role = 'regress_hard_app'::regrole;
SELECT has_function_privilege('regress_hard_app', 'durable.wf_start(text, jsonb, text, text, jsonb)', 'EXECUTE') AS app_can_start;
-- a client cannot grant
SELECT durable.grant_client('regress_hard_app', 'hard_ns');
SET ROLE regress_hard_app;
SELECT pg_temp.err($$SELECT durable.grant_client('regress_hard_app', '*')$$);
RESET ROLE;
-- a dropped role's grants go with the next round of periodic work
DROP OWNED BY regress_hard_gone;
DROP ROLE regress_hard_gone;
SELECT count(*) AS rows_of_dropped_roles FROM durable.grants g
 WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.role);
SELECT durable.tick() >= 1 AS handled;
SELECT count(*) AS rows_of_dropped_roles FROM durable.grants g
 WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.role);

--
-- the row-filtered views are security barriers: a cheap leaky function
-- in a client's WHERE clause sees only rows of its namespaces
--
SELECT c.relname, c.reloptions FROM pg_class c
 WHERE c.relnamespace = 'durable'::regnamespace AND c.relname IN ('workflows', 'journal', 'history')
 ORDER BY 1;
SET durable.namespace = 'hard_ns';
SELECT durable.wf_start('w', NULL, 'hard-secret-visible', 'hardq');
RESET durable.namespace;
SELECT durable.wf_start('w', NULL, 'hard-secret-hidden', 'hardq');
CREATE TABLE pg_temp.leaked (v text);
GRANT ALL ON pg_temp.leaked TO regress_hard_app;
CREATE FUNCTION pg_temp.leak(v text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN INSERT INTO pg_temp.leaked VALUES (v); RETURN true; END $$;
SET ROLE regress_hard_app;
SELECT count(*) AS visible FROM durable.workflows WHERE pg_temp.leak(workflow_id) AND workflow_id LIKE 'hard-secret-%';
SELECT count(*) AS journal_rows FROM durable.journal WHERE pg_temp.leak(workflow_id);
SELECT count(*) > 0 AS history_rows FROM durable.history WHERE pg_temp.leak(workflow_id);
RESET ROLE;
SELECT count(*) FILTER (WHERE v = 'hard-secret-hidden') AS leaked_hidden,
       count(*) FILTER (WHERE v = 'hard-secret-visible') > 0 AS saw_visible
  FROM pg_temp.leaked;

--
-- wf_describe of an activity waiting for its next attempt: when it is
-- due and the last attempt's error
--
SELECT durable.wf_start('w', NULL, 'hard-retry', 'hardq2');
SELECT kind, workflow_id FROM pg_temp.poll('hardq2');
SELECT durable.task_suspend(pg_temp.tok('hard-retry'), '[{"seq": 1, "type": "activity", "name": "flaky", "retry": {"initial_interval": "1h"}}]');
SELECT kind, name FROM pg_temp.poll('hardq2');
SELECT jsonb_path_query(durable.wf_describe('hard-retry'), '$.pending_steps[0]') - 'scheduled_at' AS started;
SELECT durable.task_fail(pg_temp.tok('hard-retry', 1), '{"type": "Flaky", "message": "try 1"}');
SELECT p - 'scheduled_at' - 'next_attempt_at' AS backoff,
       (p->>'next_attempt_at')::timestamptz - now() BETWEEN '59 min' AND '61 min' AS due_in_an_hour
  FROM jsonb_path_query(durable.wf_describe('hard-retry'), '$.pending_steps[0]') p;

-- leave nothing outstanding (nor anything to purge) for the files after this one
SELECT durable.namespace_set_retention('hard_ns', '10 years');
SELECT count(*) AS terminated FROM (SELECT durable.wf_terminate(workflow_id, 'cleanup')
  FROM durable.workflows WHERE workflow_id LIKE 'hard-%' AND status = 'running'
   AND namespace = 'default') x;
SET durable.namespace = 'hard_ns';
SELECT count(*) AS terminated FROM (SELECT durable.wf_terminate(workflow_id, 'cleanup')
  FROM durable.workflows WHERE workflow_id LIKE 'hard-%' AND status = 'running'
   AND namespace = 'hard_ns') x;
RESET durable.namespace;
SELECT count(*) AS outstanding_tasks FROM durable.tasks t JOIN durable.runs r USING (run_id)
 WHERE r.workflow_id LIKE 'hard-%';

SELECT durable.revoke_all('regress_hard_admin'), durable.revoke_all('regress_hard_app');
DROP OWNED BY regress_hard_admin, regress_hard_app;
DROP ROLE regress_hard_admin, regress_hard_app;
