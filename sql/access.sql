-- access: clients, workers and admins get exactly their rights.
-- Roles are created here and dropped at the end.  Ids start with
-- "acc-", queues with "accq".

\i test/regress/common.sql

CREATE ROLE regress_durable_client;
CREATE ROLE regress_durable_member IN ROLE regress_durable_client;
CREATE ROLE regress_durable_worker;
CREATE ROLE regress_durable_worker_all;
CREATE ROLE regress_durable_admin;
CREATE ROLE regress_durable_nobody;
INSERT INTO durable.namespaces (namespace) VALUES ('acc_ns');
SELECT durable.grant_client('regress_durable_client');
SELECT durable.grant_worker('regress_durable_worker', 'accq');
SELECT durable.grant_worker('regress_durable_worker_all');
SELECT durable.grant_admin('regress_durable_admin');
-- granting twice is harmless
SELECT durable.grant_worker('regress_durable_worker', 'accq');
SELECT g.role::regrole, g.kind, g.namespace, g.queue FROM durable.grants g ORDER BY 1::text, 2, 3, 4;

--
-- a role without grants can do nothing
--
SET ROLE regress_durable_nobody;
SELECT pg_temp.err($$SELECT durable.wf_start('w', NULL, 'acc-0', 'accq')$$);
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('accq', 'w')$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.workflows$$);
SELECT pg_temp.err($$SELECT durable.tick()$$);
RESET ROLE;

--
-- a client: start, signal, read its namespace
--
SET ROLE regress_durable_client;
SELECT durable.wf_start('order', '{"n": 1}', 'acc-1', 'accq');
SELECT durable.wf_signal('acc-1', 'go', '"now"');
SELECT durable.wf_status('acc-1'), durable.wf_result('acc-1') IS NULL AS running;
SELECT d->>'status' AS status, d->'input' AS input FROM durable.wf_describe('acc-1') d;
SELECT event_type FROM durable.wf_history('acc-1');
SELECT workflow_id, status FROM durable.workflows WHERE workflow_id LIKE 'acc-%';
SELECT count(*) AS journal_rows FROM durable.journal WHERE workflow_id = 'acc-1';
SELECT count(*) AS history_rows FROM durable.history WHERE workflow_id = 'acc-1';
-- not a worker, not an admin
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('accq', 'w')$$);
SELECT pg_temp.err($$SELECT durable.task_complete(1, '1')$$);
SELECT pg_temp.err($$SELECT durable.tick()$$);
-- no direct table access, read or write
SELECT pg_temp.err($$SELECT count(*) FROM durable.runs$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.tasks$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.grants$$);
SELECT pg_temp.err($$UPDATE durable.runs SET status = 'completed' WHERE workflow_id = 'acc-1'$$);
SELECT pg_temp.err($$INSERT INTO durable.grants VALUES ('regress_durable_client'::regrole, 'admin', '*', '*')$$);
SELECT pg_temp.err($$DELETE FROM durable.signals$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.task_list$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.queue_stats$$);
-- nor the superuser settings
SELECT pg_temp.err($$SET durable.clock_offset = '1h'$$);
SELECT pg_temp.err($$SET durable.max_payload_size = '1MB'$$);
-- another namespace: not visible, not writable
SET durable.namespace = 'acc_ns';
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-ns-1', 'accq')$$);
SELECT pg_temp.err($$SELECT durable.wf_signal('acc-ns-0', 'go')$$);
SELECT pg_temp.err($$SELECT durable.wf_cancel('acc-ns-0')$$);
SELECT pg_temp.err($$SELECT durable.wf_terminate('acc-ns-0')$$);
SELECT pg_temp.err($$SELECT durable.wf_result('acc-ns-0')$$);
SELECT pg_temp.err($$SELECT durable.wf_status('acc-ns-0')$$);
RESET durable.namespace;
RESET ROLE;
-- a run the admin starts in acc_ns stays hidden from the client
SET durable.namespace = 'acc_ns';
SELECT durable.wf_start('order', NULL, 'acc-ns-0', 'accq');
RESET durable.namespace;
SET ROLE regress_durable_client;
SELECT count(*) AS visible_runs FROM durable.workflows WHERE namespace = 'acc_ns';
SELECT count(*) AS visible_history FROM durable.history WHERE namespace = 'acc_ns';
SET durable.namespace = 'acc_ns';
SELECT pg_temp.err($$SELECT durable.wf_status('acc-ns-0')$$);
SELECT pg_temp.err($$SELECT durable.wf_describe('acc-ns-0')$$);
SELECT pg_temp.err($$SELECT durable.wf_result('acc-ns-0')$$);
RESET durable.namespace;
RESET ROLE;
-- a member of the client role has its rights
SET ROLE regress_durable_member;
SELECT durable.wf_start('order', NULL, 'acc-2', 'accq');
SELECT durable.wf_cancel('acc-2', 'member changed its mind');
SELECT workflow_id, status, cancel_requested FROM durable.workflows WHERE workflow_id = 'acc-2';
RESET ROLE;

--
-- a worker: its queue only, through the functions only
--
SET ROLE regress_durable_worker;
SELECT token AS wtok, kind, workflow_id FROM durable.task_poll('accq', 'acc-worker') \gset
SELECT :'kind' AS kind, :'workflow_id' AS workflow_id;
SELECT durable.step_record(:wtok, 1, 'prepare', '"ready"');
SELECT durable.task_heartbeat(:wtok);
SELECT durable.task_suspend(:wtok, '[{"seq": 2, "type": "activity", "name": "ship", "queue": "accq-other"},
                                     {"seq": 3, "type": "signal", "name": "go"}]');
-- another queue, another namespace: no
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('accq-other', 'acc-worker')$$);
SET durable.namespace = 'acc_ns';
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('accq', 'acc-worker')$$);
RESET durable.namespace;
-- no client calls, no tables, no admin
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-w', 'accq')$$);
SELECT pg_temp.err($$SELECT durable.wf_signal('acc-1', 'go')$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.workflows$$);
SELECT pg_temp.err($$SELECT count(*) FROM durable.tasks$$);
SELECT pg_temp.err($$UPDATE durable.tasks SET state = 'ready'$$);
SELECT pg_temp.err($$DELETE FROM durable.steps$$);
SELECT pg_temp.err($$SELECT durable.tick()$$);
RESET ROLE;
-- a token of a task on a queue it may not work is refused, and the task
-- is left as it was
SET ROLE regress_durable_worker_all;
SELECT token AS otok, name FROM durable.task_poll('accq-other', 'acc-worker-all') \gset
SELECT :'name' AS name;
RESET ROLE;
SET ROLE regress_durable_worker;
SELECT pg_temp.err(format($$SELECT durable.task_complete(%s, '"stolen"')$$, :otok));
SELECT pg_temp.err(format($$SELECT durable.task_fail(%s, '"stolen"', false)$$, :otok));
SELECT pg_temp.err(format($$SELECT durable.task_heartbeat(%s)$$, :otok));
SELECT pg_temp.err(format($$SELECT * FROM durable.task_poll('accq', 'acc-worker', 1, '30 s', ARRAY[%s])$$, :otok));
RESET ROLE;
SELECT state, worker FROM durable.task_list WHERE workflow_id = 'acc-1' ORDER BY seq;
-- the worker granted every queue finishes it
SET ROLE regress_durable_worker_all;
SELECT durable.task_complete(:otok, '"shipped"');
RESET ROLE;

--
-- an admin: everything, but still no direct writes
--
SET ROLE regress_durable_admin;
SELECT durable.tick() >= 0 AS ticked;
SELECT status FROM durable.runs WHERE workflow_id = 'acc-1';
SELECT count(*) AS grants_rows FROM durable.grants;
SELECT queue, state FROM durable.task_list WHERE workflow_id = 'acc-1';
SELECT pg_temp.err($$UPDATE durable.runs SET status = 'completed' WHERE workflow_id = 'acc-1'$$);
SELECT pg_temp.err($$DELETE FROM durable.grants$$);
SET durable.namespace = 'acc_ns';
SELECT durable.wf_signal('acc-ns-0', 'go');
SELECT durable.wf_status('acc-ns-0');
SELECT count(*) AS claimed FROM durable.task_poll('accq', 'acc-admin');
SELECT durable.wf_terminate('acc-ns-0');
RESET durable.namespace;
SELECT durable.wf_signal('acc-1', 'go', '"again"');
-- administration of namespaces and queues, without rights on the tables
SELECT durable.namespace_create('acc_admin_ns', '1 day');
SELECT durable.namespace_set_retention('acc_admin_ns', '2 days');
SELECT durable.queue_pause('accq-admin', 'by the admin');
SELECT durable.queue_unpause('accq-admin');
SELECT pg_temp.err($$INSERT INTO durable.queues (namespace, queue) VALUES ('default', 'x')$$);
RESET ROLE;
SELECT namespace, retention FROM durable.namespaces WHERE namespace = 'acc_admin_ns';
SELECT queue, paused, note FROM durable.queues WHERE queue = 'accq-admin';
DELETE FROM durable.namespaces WHERE namespace = 'acc_admin_ns';
DELETE FROM durable.queues WHERE queue = 'accq-admin';
-- clients and workers may not administer
SET ROLE regress_durable_worker_all;
SELECT pg_temp.err($$SELECT durable.queue_pause('accq')$$);
SELECT pg_temp.err($$SELECT durable.namespace_create('acc_nope')$$);
RESET ROLE;
-- and EXECUTE alone does not make an admin: the function checks the grant
GRANT EXECUTE ON FUNCTION durable.queue_pause(text, text) TO regress_durable_worker_all;
SET ROLE regress_durable_worker_all;
SELECT pg_temp.err($$SELECT durable.queue_pause('accq')$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION durable.queue_pause(text, text) FROM regress_durable_worker_all;
SELECT count(*) AS paused_queues FROM durable.queues WHERE paused;

--
-- revoke_all takes every right away
--
SELECT durable.revoke_all('regress_durable_client');
SELECT durable.revoke_all('regress_durable_worker');
SELECT g.role::regrole, g.kind, g.namespace, g.queue FROM durable.grants g ORDER BY 1::text, 2, 3, 4;
SET ROLE regress_durable_client;
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-3', 'accq')$$);
SELECT pg_temp.err($$SELECT durable.wf_status('acc-1')$$);
RESET ROLE;
SET ROLE regress_durable_member;
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-3', 'accq')$$);
RESET ROLE;
SET ROLE regress_durable_worker;
SELECT pg_temp.err($$SELECT * FROM durable.task_poll('accq', 'acc-worker')$$);
RESET ROLE;
-- the grant table alone is not enough: EXECUTE was revoked too, and a
-- grant row without EXECUTE is useless
INSERT INTO durable.grants VALUES ('regress_durable_client'::regrole, 'client', 'default', '*');
SET ROLE regress_durable_client;
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-3', 'accq')$$);
RESET ROLE;
DELETE FROM durable.grants WHERE role = 'regress_durable_client'::regrole;
-- EXECUTE without a grant row is not enough either
GRANT USAGE ON SCHEMA durable TO regress_durable_client;
GRANT EXECUTE ON FUNCTION durable.wf_start(text, jsonb, text, text, jsonb) TO regress_durable_client;
SET ROLE regress_durable_client;
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-3', 'accq')$$);
RESET ROLE;
SELECT count(*) AS acc_3_runs FROM durable.runs WHERE workflow_id = 'acc-3';

--
-- long namespace names: at most 255 bytes (what durable.namespace
-- accepts), and the rights of one are not those of another that shares
-- all but its last byte
--
CREATE ROLE regress_durable_longns;
SELECT pg_temp.err($$SELECT durable.namespace_create(repeat('é', 128))$$) AS bytes_256;
SELECT durable.namespace_create(repeat('é', 127) || 'a');
SELECT durable.namespace_create(repeat('é', 127) || 'b');
SELECT durable.grant_client('regress_durable_longns', repeat('é', 127) || 'a');
SELECT set_config('durable.namespace', repeat('é', 127) || 'a', false) IS NOT NULL AS set_a;
SET ROLE regress_durable_longns;
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-long', 'accq')$$) AS start_in_a;
RESET ROLE;
SELECT set_config('durable.namespace', repeat('é', 127) || 'b', false) IS NOT NULL AS set_b;
SET ROLE regress_durable_longns;
SELECT pg_temp.err($$SELECT durable.wf_start('order', NULL, 'acc-long', 'accq')$$) AS start_in_b;
RESET ROLE;
RESET durable.namespace;
SELECT count(*) AS long_runs FROM durable.runs WHERE workflow_id = 'acc-long';
SELECT durable.revoke_all('regress_durable_longns');
DROP ROLE regress_durable_longns;
DELETE FROM durable.tasks WHERE namespace LIKE 'éé%';
DELETE FROM durable.runs WHERE namespace LIKE 'éé%';
DELETE FROM durable.namespaces WHERE namespace LIKE 'éé%';

--
-- clean up
--
SELECT durable.wf_terminate(workflow_id) FROM durable.runs
 WHERE namespace = 'default' AND workflow_id LIKE 'acc-%' AND status = 'running';
SELECT count(*) AS open_runs FROM durable.runs WHERE workflow_id LIKE 'acc-%' AND status = 'running';
SELECT durable.revoke_all(r) FROM unnest(ARRAY['regress_durable_client', 'regress_durable_member',
    'regress_durable_worker', 'regress_durable_worker_all', 'regress_durable_admin',
    'regress_durable_nobody']::regrole[]) r;
SELECT count(*) AS grants_left FROM durable.grants;
DROP ROLE regress_durable_member, regress_durable_client, regress_durable_worker,
    regress_durable_worker_all, regress_durable_admin, regress_durable_nobody;
DELETE FROM durable.runs WHERE namespace = 'acc_ns';
DELETE FROM durable.namespaces WHERE namespace = 'acc_ns';
