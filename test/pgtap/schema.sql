-- test/pgtap/schema.sql: the schema contract of durable, with pgTAP.
--
-- Run in a fresh database after CREATE EXTENSION durable; CREATE EXTENSION
-- pgtap (test/run does this), e.g.
--   pg_prove -h HOST -p PORT -U postgres -d DB test/pgtap/schema.sql
-- as a superuser.  Everything happens in one transaction that is rolled
-- back: the roles created here never outlive the test.
--
-- Covers: tables with their key columns and primary keys, the indexes the
-- hot paths rely on, every function with its signature and return type,
-- fixed search_path / no SECURITY DEFINER / comments on every function,
-- nothing granted to PUBLIC, and the three kinds of rights: a client role
-- and a worker role can each do their job and nothing more, and neither
-- can write a table.

\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
\pset pager off

BEGIN;
SELECT plan(230);

-- ------------------------------------------------------------------
-- tables, key columns, primary keys
-- ------------------------------------------------------------------
SELECT has_schema('durable');

SELECT has_table('durable', 'namespaces', 'table durable.namespaces exists');
SELECT col_is_pk('durable', 'namespaces', ARRAY['namespace'], 'namespaces: primary key is namespace');
SELECT has_column('durable', 'namespaces', 'retention', 'namespaces.retention exists');

SELECT has_table('durable', 'runs', 'table durable.runs exists');
SELECT col_is_pk('durable', 'runs', ARRAY['run_id'], 'runs: primary key is run_id');
SELECT col_type_is('durable', 'runs', 'run_id', 'bigint', 'runs.run_id is bigint');
SELECT col_not_null('durable', 'runs', 'namespace', 'runs.namespace is NOT NULL');
SELECT col_not_null('durable', 'runs', 'workflow_id', 'runs.workflow_id is NOT NULL');
SELECT col_not_null('durable', 'runs', 'workflow_type', 'runs.workflow_type is NOT NULL');
SELECT col_not_null('durable', 'runs', 'queue', 'runs.queue is NOT NULL');
SELECT col_not_null('durable', 'runs', 'status', 'runs.status is NOT NULL');
SELECT col_type_is('durable', 'runs', 'input', 'jsonb', 'runs.input is jsonb');
SELECT col_type_is('durable', 'runs', 'output', 'jsonb', 'runs.output is jsonb');
SELECT col_type_is('durable', 'runs', 'error', 'jsonb', 'runs.error is jsonb');

SELECT has_table('durable', 'tasks', 'table durable.tasks exists');
SELECT has_table('durable', 'updates', 'table durable.updates exists');
SELECT has_table('durable', 'search_attributes', 'table durable.search_attributes exists');
SELECT col_is_pk('durable', 'tasks', ARRAY['run_id', 'seq'], 'tasks: primary key is (run_id, seq)');
SELECT col_type_is('durable', 'tasks', 'token', 'bigint', 'tasks.token is bigint');
SELECT has_column('durable', 'tasks', 'state', 'tasks.state exists');
SELECT has_column('durable', 'tasks', 'visible_at', 'tasks.visible_at exists');
SELECT has_column('durable', 'tasks', 'priority', 'tasks.priority exists');
SELECT has_column('durable', 'tasks', 'attempt', 'tasks.attempt exists');

SELECT has_table('durable', 'steps', 'table durable.steps exists (the journal)');
SELECT col_is_pk('durable', 'steps', ARRAY['run_id', 'seq'], 'steps: primary key is (run_id, seq)');
SELECT col_not_null('durable', 'steps', 'kind', 'steps.kind is NOT NULL');
SELECT col_not_null('durable', 'steps', 'name', 'steps.name is NOT NULL');
SELECT col_not_null('durable', 'steps', 'status', 'steps.status is NOT NULL');
SELECT col_type_is('durable', 'steps', 'result', 'jsonb', 'steps.result is jsonb');

SELECT has_table('durable', 'events', 'table durable.events exists (history)');
SELECT col_is_pk('durable', 'events', ARRAY['event_id'], 'events: primary key is event_id');
SELECT col_not_null('durable', 'events', 'event_type', 'events.event_type is NOT NULL');

SELECT has_table('durable', 'signals', 'table durable.signals exists');
SELECT col_is_pk('durable', 'signals', ARRAY['signal_no'], 'signals: primary key is signal_no');

SELECT has_table('durable', 'schedules', 'table durable.schedules exists');
SELECT col_is_pk('durable', 'schedules', ARRAY['namespace', 'name'], 'schedules: primary key is (namespace, name)');

SELECT has_table('durable', 'grants', 'table durable.grants exists');
SELECT col_is_pk('durable', 'grants', ARRAY['role', 'kind', 'namespace', 'queue'],
                 'grants: primary key is (role, kind, namespace, queue)');

SELECT is_empty($$
    SELECT c.relname FROM pg_class c
     WHERE c.relnamespace = 'durable'::regnamespace AND c.relkind IN ('r', 'p')
       AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
$$, 'every table of durable has a primary key');

SELECT has_view('durable', 'workflows', 'view durable.workflows exists');
SELECT has_view('durable', 'journal', 'view durable.journal exists');
SELECT has_view('durable', 'history', 'view durable.history exists');
SELECT has_view('durable', 'task_list', 'view durable.task_list exists');
SELECT has_view('durable', 'queue_stats', 'view durable.queue_stats exists');
SELECT has_view('durable', 'queue_keys', 'view durable.queue_keys exists');

-- ------------------------------------------------------------------
-- indexes of the hot paths
-- ------------------------------------------------------------------
SELECT has_index('durable', 'tasks', 'tasks_claim', ARRAY['namespace', 'queue', '((- priority))', 'new_run', 'pass'],
                 'tasks_claim matches the claim order (namespace, queue, priority, runs in flight first, fair order)');
SELECT is((SELECT pg_get_indexdef('durable.tasks_claim'::regclass) ~ '\(namespace, queue, \(\(- priority\)\), new_run, pass\)'), true,
          'tasks_claim orders priority descending by its negation, so a claim can start at a row comparison');
SELECT is((SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'durable.tasks_claim'::regclass),
          '(state = ''ready''::text)', 'tasks_claim holds only ready tasks');
SELECT has_index('durable', 'tasks', 'tasks_token', ARRAY['token'], 'tasks_token indexes token');
SELECT index_is_unique('durable', 'tasks', 'tasks_token', 'tasks_token is unique: a token names one task');
SELECT set_eq($$SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'durable.tasks'::regclass$$,
              ARRAY['durable.tasks_pkey', 'durable.tasks_claim', 'durable.tasks_token',
                    'durable.tasks_delayed', 'durable.tasks_unplaced'],
              'tasks has five indexes: a claim writes entries in tasks_pkey and tasks_token only');
SELECT has_index('durable', 'runs', 'runs_workflow_id', ARRAY['namespace', 'workflow_id', 'run_number'],
                 'runs_workflow_id indexes (namespace, workflow_id, run_number)');
SELECT index_is_unique('durable', 'runs', 'runs_workflow_id',
                       'runs_workflow_id is unique: runs of a workflow id are numbered, one open at a time');
SELECT is((SELECT count(*)::int FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
            WHERE i.indrelid = 'durable.runs'::regclass
              AND a.attname IN ('status', 'output', 'error', 'closed_at')
              AND (a.attnum = ANY (i.indkey)
                   OR coalesce(pg_get_expr(i.indpred, i.indrelid), '') ~ ('\m' || a.attname || '\M')
                   OR coalesce(pg_get_expr(i.indexprs, i.indrelid), '') ~ ('\m' || a.attname || '\M'))),
          0, 'no index of runs names a column the close changes: the close is a HOT update');
SELECT is((SELECT reloptions FROM pg_class WHERE oid = 'durable.runs'::regclass), ARRAY['fillfactor=80'],
          'runs leaves room on each page for the close''s new row version');
SELECT has_index('durable', 'steps', 'steps_due', ARRAY['due_at'], 'steps_due indexes due timers and timeouts');
SELECT has_index('durable', 'events', 'events_run', ARRAY['run_id', 'event_id'], 'events_run indexes history by run');
SELECT has_index('durable', 'signals', 'signals_buffered', ARRAY['run_id', 'name', 'signal_no'],
                 'signals_buffered indexes buffered signals in order');
SELECT index_is_unique('durable', 'signals', 'signals_idempotency', 'signals_idempotency is unique');
SELECT has_index('durable', 'schedules', 'schedules_due', ARRAY['next_fire_at'], 'schedules_due indexes next fire times');

-- ------------------------------------------------------------------
-- functions: existence, signature, return type
-- ------------------------------------------------------------------
SELECT has_function('durable', 'wf_start', ARRAY['text', 'jsonb', 'text', 'text', 'jsonb']);
SELECT function_returns('durable', 'wf_start', ARRAY['text', 'jsonb', 'text', 'text', 'jsonb'], 'text');
SELECT has_function('durable', 'wf_start_many', ARRAY['text', 'jsonb[]', 'text[]', 'text', 'jsonb']);
SELECT has_function('durable', 'activity_complete', ARRAY['text', 'integer', 'jsonb']);
SELECT has_function('durable', 'task_publish', ARRAY['bigint', 'text', 'jsonb']);
SELECT has_function('durable', 'wf_published', ARRAY['text']);
SELECT has_function('durable', 'wf_query', ARRAY['text', 'text', 'jsonb', 'interval']);
SELECT has_function('durable', 'wf_update', ARRAY['text', 'text', 'jsonb', 'text']);
SELECT has_function('durable', 'wf_update_result', ARRAY['text', 'text', 'interval']);
SELECT has_function('durable', 'task_updates', ARRAY['bigint', 'jsonb']);
SELECT has_function('durable', 'search_attribute_add', ARRAY['text', 'text']);
SELECT has_function('durable', 'search_attribute_remove', ARRAY['text']);
SELECT has_function('durable', 'task_answer_query', ARRAY['bigint', 'jsonb', 'jsonb']);
SELECT has_function('durable', 'activity_fail', ARRAY['text', 'integer', 'jsonb', 'boolean']);
SELECT function_returns('durable', 'wf_start_many', ARRAY['text', 'jsonb[]', 'text[]', 'text', 'jsonb'], 'setof text');
SELECT has_function('durable', 'wf_signal', ARRAY['text', 'text', 'jsonb', 'text']);
SELECT has_function('durable', 'wf_signal_with_start',
                    ARRAY['text', 'jsonb', 'text', 'text', 'jsonb', 'text', 'jsonb', 'text']);
SELECT has_function('durable', 'wf_cancel', ARRAY['text', 'text']);
SELECT has_function('durable', 'wf_terminate', ARRAY['text', 'text']);
SELECT has_function('durable', 'wf_pause', ARRAY['text', 'text']);
SELECT has_function('durable', 'wf_unpause', ARRAY['text', 'text']);
SELECT has_function('durable', 'wf_reset', ARRAY['text', 'integer', 'text']);
SELECT has_function('durable', 'wf_fork', ARRAY['text', 'integer', 'text']);
SELECT has_function('durable', 'wf_list', ARRAY['text', 'integer', 'text']);
SELECT has_function('durable', 'wf_count', ARRAY['text']);
SELECT has_function('durable', 'task_upsert_search_attributes', ARRAY['bigint', 'integer', 'jsonb']);
SELECT has_function('durable', 'batch_start', ARRAY['text', 'text', 'text', 'text', 'jsonb']);
SELECT has_function('durable', 'batch_run', ARRAY['bigint', 'integer']);
SELECT has_function('durable', 'batch_stop', ARRAY['bigint']);
SELECT has_table('durable', 'batches', 'batch operations keep their progress in a table');
SELECT has_view('durable', 'batch_list', 'clients see their batches');
SELECT has_column('durable', 'runs', 'paused', 'runs record whether wf_pause holds them');
SELECT has_function('durable', 'wf_result', ARRAY['text', 'interval']);
SELECT function_returns('durable', 'wf_result', ARRAY['text', 'interval'], 'jsonb');
SELECT has_function('durable', 'wf_status', ARRAY['text']);
SELECT function_returns('durable', 'wf_status', ARRAY['text'], 'text');
SELECT has_function('durable', 'wf_history', ARRAY['text']);
SELECT function_returns('durable', 'wf_history', ARRAY['text'], 'setof record');
SELECT has_function('durable', 'wf_describe', ARRAY['text']);
SELECT function_returns('durable', 'wf_describe', ARRAY['text'], 'jsonb');
SELECT has_function('durable', 'may_read', ARRAY['text']);

SELECT has_function('durable', 'task_poll', ARRAY['text', 'text', 'integer', 'interval', 'bigint[]', 'jsonb[]']);
SELECT function_returns('durable', 'task_poll', ARRAY['text', 'text', 'integer', 'interval', 'bigint[]', 'jsonb[]'],
                        'setof record');
SELECT has_function('durable', 'step_record', ARRAY['bigint', 'integer', 'text', 'jsonb']);
SELECT has_function('durable', 'step_record', ARRAY['bigint', 'jsonb']);
SELECT has_function('durable', 'task_suspend', ARRAY['bigint', 'jsonb', 'jsonb']);
SELECT has_function('durable', 'task_complete', ARRAY['bigint', 'jsonb', 'jsonb', 'jsonb']);
SELECT has_function('durable', 'task_complete_many', ARRAY['bigint[]', 'jsonb[]']);
SELECT has_function('durable', 'task_fail', ARRAY['bigint', 'jsonb', 'boolean']);
SELECT has_function('durable', 'task_heartbeat', ARRAY['bigint', 'jsonb', 'interval']);
SELECT function_returns('durable', 'task_heartbeat', ARRAY['bigint', 'jsonb', 'interval'], 'boolean');
SELECT has_function('durable', 'task_release', ARRAY['bigint']);

SELECT has_function('durable', 'tick', ARRAY[]::name[]);
SELECT function_returns('durable', 'tick', ARRAY[]::name[], 'integer');
SELECT function_returns('durable', 'fair_pass', ARRAY['text', 'text', 'text', 'real', 'integer', 'boolean'], 'double precision');
SELECT function_returns('durable', 'queue_set_key_concurrency', ARRAY['text', 'integer', 'jsonb', 'text'], 'void');
SELECT function_returns('durable', 'queue_set_key_rate', ARRAY['text', 'double precision', 'integer'], 'void');
SELECT function_returns('durable', 'queue_set_priority_aging', ARRAY['text', 'interval', 'integer'], 'void');
SELECT function_returns('durable', 'metrics', ARRAY[]::text[], 'setof record');
SELECT function_returns('durable', 'metrics_reset', ARRAY[]::text[], 'void');
SELECT has_table('durable', 'key_buckets', 'table durable.key_buckets exists');
SELECT has_function('durable', 'schedule_create', ARRAY['text', 'text', 'text', 'jsonb', 'jsonb']);
SELECT has_function('durable', 'schedule_update', ARRAY['text', 'text', 'text', 'jsonb', 'jsonb']);
SELECT has_function('durable', 'schedule_pause', ARRAY['text', 'text']);
SELECT has_function('durable', 'schedule_unpause', ARRAY['text', 'text']);
SELECT has_function('durable', 'schedule_trigger', ARRAY['text']);
SELECT has_function('durable', 'schedule_backfill', ARRAY['text', 'timestamp with time zone', 'timestamp with time zone']);
SELECT has_function('durable', 'schedule_delete', ARRAY['text']);
SELECT has_function('durable', 'schedule_next_times', ARRAY['text', 'integer', 'text', 'timestamp with time zone']);
SELECT has_function('durable', 'namespace_create', ARRAY['text', 'interval']);
SELECT has_function('durable', 'namespace_set_retention', ARRAY['text', 'interval']);
SELECT has_function('durable', 'grant_client', ARRAY['regrole', 'text']);
SELECT has_function('durable', 'grant_worker', ARRAY['regrole', 'text', 'text']);
SELECT has_function('durable', 'grant_admin', ARRAY['regrole']);
SELECT has_function('durable', 'revoke_all', ARRAY['regrole']);

-- every function: invoker rights, a fixed search_path, a comment
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'durable'::regnamespace AND p.prosecdef
$$, 'no function of durable is SECURITY DEFINER (rights are checked, then the engine acts as owner)');
-- (may_read and fair_pass are left out: they are called once per row, by
-- the views and by the engine's statements, so they protect themselves
-- inside; the search_path hijacking tests at the end check may_read, and
-- fair_pass is granted to no role and qualifies its one query)
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'durable'::regnamespace
       AND p.oid <> 'durable.may_read(text)'::regprocedure
       AND p.oid <> 'durable.fair_pass(text, text, text, real, int, boolean)'::regprocedure
       AND NOT coalesce(p.proconfig::text[] && ARRAY['search_path=pg_catalog, pg_temp',
                                                       'search_path=pg_catalog,pg_temp'], false)
$$, 'every function of durable but may_read runs with search_path = pg_catalog, pg_temp');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'durable'::regnamespace
       AND obj_description(p.oid, 'pg_proc') IS NULL
$$, 'every function of durable has a comment');
-- the engine's kept plans must never be bitmap scans of the queue tables
-- (wf_list and wf_count keep no plan: each query is planned afresh over
-- durable.runs, where a bitmap scan may serve its filter best)
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'durable'::regnamespace
       AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
       AND p.prorettype <> 'trigger'::regtype
       AND p.oid <> 'durable.may_read(text)'::regprocedure
       AND p.oid <> 'durable.fair_pass(text, text, text, real, int, boolean)'::regprocedure
       AND p.oid <> 'durable.wf_list(text, int, text)'::regprocedure
       AND p.oid <> 'durable.wf_count(text)'::regprocedure
       AND NOT coalesce(p.proconfig::text[] @> ARRAY['enable_bitmapscan=off'], false)
$$, 'every engine function in C runs with enable_bitmapscan = off');
SELECT has_trigger('durable', 'queues', 'queues_changed',
                   'a change to durable.queues invalidates the limits every backend cached');
SELECT has_trigger('durable', 'grants', 'grants_changed',
                   'a change to durable.grants invalidates the rights every backend cached');

-- ------------------------------------------------------------------
-- nothing for PUBLIC
-- ------------------------------------------------------------------
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'durable'::regnamespace
       AND has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'no function of durable is executable by PUBLIC');
SELECT is_empty($$
    SELECT c.relname FROM pg_class c
     WHERE c.relnamespace = 'durable'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
       AND has_table_privilege('public', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
$$, 'no table or view of durable is readable or writable by PUBLIC');
SELECT is_empty($$
    SELECT c.relname FROM pg_class c
     WHERE c.relnamespace = 'durable'::regnamespace
       AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege('public', c.oid, 'USAGE,SELECT,UPDATE') END
$$, 'no sequence of durable is usable by PUBLIC');
-- monitoring roles read the metrics and nothing else
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'durable'::regnamespace
                   AND has_function_privilege('pg_monitor', p.oid, 'EXECUTE')
                 ORDER BY 1), ARRAY['metrics'], 'pg_monitor may execute durable.metrics() only');

-- ------------------------------------------------------------------
-- roles (rolled back with everything else)
-- ------------------------------------------------------------------
CREATE ROLE durable_tap_client;
CREATE ROLE durable_tap_worker;
CREATE ROLE durable_tap_admin;
CREATE ROLE durable_tap_member;          -- member of the client role
CREATE ROLE durable_tap_nobody;
CREATE ROLE durable_tap_other;           -- client of another namespace only
GRANT durable_tap_client TO durable_tap_member;
SELECT lives_ok($$ SELECT durable.namespace_create('tap_ns') $$, 'namespace_create makes a second namespace');
SELECT lives_ok($$ SELECT durable.grant_client('durable_tap_client', 'default') $$, 'grant_client');
SELECT lives_ok($$ SELECT durable.grant_worker('durable_tap_worker', 'tap_q1', 'default') $$, 'grant_worker on queue tap_q1');
SELECT lives_ok($$ SELECT durable.grant_admin('durable_tap_admin') $$, 'grant_admin');
SELECT lives_ok($$ SELECT durable.grant_client('durable_tap_other', 'tap_ns') $$, 'grant_client on namespace tap_ns');

-- no write privilege on any table, view or sequence for clients and workers
SELECT is_empty($$
    SELECT r.rolname || ' ' || c.relname FROM pg_class c,
           (VALUES ('durable_tap_client'), ('durable_tap_worker'), ('durable_tap_member'),
                   ('durable_tap_other'), ('durable_tap_admin')) r(rolname)
     WHERE c.relnamespace = 'durable'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
       AND has_table_privilege(r.rolname, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
$$, 'no granted role may write any table or view of durable');
SELECT is_empty($$
    SELECT r.rolname || ' ' || c.relname FROM pg_class c,
           (VALUES ('durable_tap_client'), ('durable_tap_worker')) r(rolname)
     WHERE c.relnamespace = 'durable'::regnamespace AND c.relkind IN ('r', 'p', 'S')
       AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(r.rolname, c.oid, 'USAGE,SELECT,UPDATE')
                ELSE has_table_privilege(r.rolname, c.oid, 'SELECT') END
$$, 'clients and workers cannot read the tables or use the sequences directly');
SELECT set_eq($$
    SELECT c.relname::text FROM pg_class c
     WHERE c.relnamespace = 'durable'::regnamespace
       AND has_table_privilege('durable_tap_client', c.oid, 'SELECT')
$$, ARRAY['workflows', 'journal', 'history', 'published_state', 'batch_list',
          'search_attribute_list', 'search_attribute_values'],
   'a client reads exactly the views workflows, journal, history, published_state, batch_list, search_attribute_list and search_attribute_values');
SELECT is_empty($$
    SELECT c.relname FROM pg_class c
     WHERE c.relnamespace = 'durable'::regnamespace
       AND has_table_privilege('durable_tap_worker', c.oid, 'SELECT')
$$, 'a worker reads no table or view');

-- a run in namespace tap_ns and a task on queue tap_q2, made by the superuser
SET durable.namespace = 'tap_ns';
SELECT lives_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-ns-1', 'tap_q1') $$, 'superuser starts a run in tap_ns');
RESET durable.namespace;
SELECT lives_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-q2', 'tap_q2') $$, 'superuser starts a run on queue tap_q2');
SELECT is((SELECT count(*)::int FROM (
             SELECT set_config('tap.q2_token', token::text, false)
               FROM durable.task_poll('tap_q2', 'tap-admin')) x), 1,
          'superuser claims the tap_q2 workflow task');

-- ------------------------------------------------------------------
-- the client: start, read, signal; nothing of a worker's or admin's
-- ------------------------------------------------------------------
SET ROLE durable_tap_client;
SELECT is(durable.wf_start('tap_wf', '{"n": 1}', 'tap-1', 'tap_q1'), 'tap-1', 'client: wf_start');
SELECT is(durable.wf_status('tap-1'), 'running', 'client: wf_status');
SELECT is(durable.wf_published('tap-1'), '{}'::jsonb, 'client: wf_published');
SELECT throws_ok($$ SELECT durable.wf_query('tap-1', 'state', NULL, '20 ms') $$, 'DU016', NULL,
                 'client: wf_query (no worker answers here: DU016)');
SELECT is(durable.wf_update('tap-1', 'rename', '{"to": "x"}', 'tap-u1'), 'tap-u1', 'client: wf_update');
SELECT ok(durable.wf_update_result('tap-1', 'tap-u1', '0 s') IS NULL,
          'client: wf_update_result (not handled yet: NULL)');
SELECT is((SELECT count(*)::int FROM durable.search_attribute_list), 0,
          'client: reads durable.search_attribute_list');
SELECT throws_ok($$ SELECT durable.search_attribute_add('Region', 'keyword') $$, '42501', NULL,
                 'client: cannot declare search attributes');
SELECT is((SELECT count(*) FROM durable.wf_start_many('tap_wf', ARRAY['{"n": 2}']::jsonb[], ARRAY['tap-many'], 'tap_many')),
          1::bigint, 'client: wf_start_many');
SELECT is(durable.wf_result('tap-1'), NULL, 'client: wf_result is NULL while running');
SELECT lives_ok($$ SELECT durable.wf_signal('tap-1', 'hello', '{}') $$, 'client: wf_signal');
SELECT ok(durable.wf_describe('tap-1') ->> 'status' = 'running', 'client: wf_describe');
SELECT ok((SELECT count(*) FROM durable.wf_history('tap-1')) >= 1, 'client: wf_history');
SELECT results_eq($$ SELECT workflow_id FROM durable.workflows ORDER BY workflow_id $$,
                  ARRAY['tap-1', 'tap-many', 'tap-q2'], 'client: durable.workflows shows runs of its namespace only');
SELECT throws_ok($$ SELECT durable.wf_status('tap-ns-1') $$, 'DU005', NULL,
                 'client: a run of another namespace does not exist for it');
SELECT throws_ok($$ SELECT * FROM durable.task_poll('tap_q1', 'client') $$, '42501', NULL,
                 'client: cannot poll tasks');
SELECT throws_ok($$ SELECT durable.task_complete(1::bigint, '{}'::jsonb) $$, '42501', NULL,
                 'client: cannot complete tasks');
SELECT throws_ok($$ SELECT durable.tick() $$, '42501', NULL, 'client: cannot tick');
SELECT throws_ok($$ SELECT durable.grant_admin('durable_tap_client') $$, '42501', NULL,
                 'client: cannot grant itself admin');
SELECT throws_ok($$ SELECT durable.schedule_create('s', '@every 1h', 'tap_wf') $$, '42501', NULL,
                 'client: cannot create schedules');
SELECT throws_ok($$ SELECT durable.namespace_create('tap_ns2') $$, '42501', NULL,
                 'client: cannot create namespaces');
SELECT throws_ok($$ SELECT * FROM durable.task_list $$, '42501', NULL, 'client: cannot read task_list');
SELECT throws_ok($$ SELECT * FROM durable.runs $$, '42501', NULL, 'client: cannot read durable.runs');
SELECT throws_ok($$ INSERT INTO durable.runs (namespace, workflow_id, workflow_type, queue, created_at)
                    VALUES ('default', 'x', 'x', 'x', now()) $$, '42501', NULL, 'client: cannot insert into durable.runs');
SELECT throws_ok($$ UPDATE durable.workflows SET status = 'completed' $$, '42501', NULL,
                 'client: cannot update through the workflows view');
SELECT throws_ok($$ DELETE FROM durable.grants $$, '42501', NULL, 'client: cannot delete grants');
SELECT throws_ok($$ INSERT INTO durable.grants VALUES ('durable_tap_client'::regrole, 'admin', '*', '*') $$,
                 '42501', NULL, 'client: cannot insert a grant');
SET durable.namespace = 'tap_ns';
SELECT throws_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-2') $$, 'DU009', NULL,
                 'client of default: wf_start in namespace tap_ns is denied (DU009)');
SELECT throws_ok($$ SELECT durable.wf_signal('tap-ns-1', 'x', '{}') $$, 'DU009', NULL,
                 'client of default: wf_signal in namespace tap_ns is denied (DU009)');
RESET durable.namespace;
RESET ROLE;

-- a member of the client role inherits its rights
SET ROLE durable_tap_member;
SELECT is(durable.wf_start('tap_wf', '{}', 'tap-member-1', 'tap_q1'), 'tap-member-1',
          'member of the client role: wf_start');
RESET ROLE;

-- a client of another namespace only
SET ROLE durable_tap_other;
SELECT throws_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-o-1') $$, 'DU009', NULL,
                 'client of tap_ns: wf_start in default is denied (DU009)');
SELECT is((SELECT count(*)::int FROM durable.workflows WHERE namespace = 'default'), 0,
          'client of tap_ns: sees no run of default');
SET durable.namespace = 'tap_ns';
SELECT is(durable.wf_status('tap-ns-1'), 'running', 'client of tap_ns: reads its namespace');
RESET durable.namespace;
RESET ROLE;

-- a role with no grant at all
SET ROLE durable_tap_nobody;
SELECT throws_ok($$ SELECT durable.wf_start('tap_wf') $$, '42501', NULL, 'nobody: cannot start workflows');
SELECT throws_ok($$ SELECT * FROM durable.task_poll('tap_q1', 'nobody') $$, '42501', NULL, 'nobody: cannot poll');
SELECT throws_ok($$ SELECT * FROM durable.workflows $$, '42501', NULL, 'nobody: cannot read workflows');
RESET ROLE;

-- ------------------------------------------------------------------
-- the worker: poll and finish tasks of its queue; nothing else
-- ------------------------------------------------------------------
SET ROLE durable_tap_worker;
SELECT is((SELECT count(*)::int FROM (
             SELECT set_config('tap.token', token::text, false)
               FROM durable.task_poll('tap_q1', 'tap-worker', 10)
              WHERE workflow_id = 'tap-1') x), 1,
          'worker: task_poll on its queue claims the workflow task of tap-1');
SELECT lives_ok($$ SELECT durable.step_record(current_setting('tap.token')::bigint, 1, 'first', '"one"') $$,
                'worker: step_record');
SELECT lives_ok($$ SELECT durable.task_heartbeat(current_setting('tap.token')::bigint) $$, 'worker: task_heartbeat');
SELECT lives_ok($$ SELECT durable.task_complete(current_setting('tap.token')::bigint, '"done"') $$,
                'worker: task_complete');
SELECT throws_ok($$ SELECT durable.task_complete(current_setting('tap.token')::bigint, '"again"') $$, 'DU004', NULL,
                 'worker: a finished token is stale (DU004)');
SELECT throws_ok($$ SELECT * FROM durable.task_poll('tap_q2', 'tap-worker') $$, 'DU009', NULL,
                 'worker: polling another queue is denied (DU009)');
SELECT throws_ok($$ SELECT durable.task_complete(current_setting('tap.q2_token')::bigint, '"stolen"') $$,
                 'DU009', NULL, 'worker: finishing a task of another queue is denied (DU009)');
SET durable.namespace = 'tap_ns';
SELECT throws_ok($$ SELECT * FROM durable.task_poll('tap_q1', 'tap-worker') $$, 'DU009', NULL,
                 'worker: its queue in another namespace is denied (DU009)');
RESET durable.namespace;
SELECT throws_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-w-1', 'tap_q1') $$, '42501', NULL,
                 'worker: cannot start workflows');
SELECT throws_ok($$ SELECT durable.wf_result('tap-1') $$, '42501', NULL, 'worker: cannot read results');
SELECT throws_ok($$ SELECT durable.wf_query('tap-1', 'state') $$, '42501', NULL, 'worker: cannot query runs');
SELECT throws_ok($$ SELECT durable.wf_update('tap-1', 'rename') $$, '42501', NULL, 'worker: cannot send updates');
SELECT throws_ok($$ SELECT * FROM durable.updates $$, '42501', NULL, 'worker: cannot read durable.updates');
SELECT is(durable.task_answer_query(-65536, '1'), false,
          'worker: task_answer_query (of a query no one waits for: false)');
SELECT throws_ok($$ SELECT * FROM durable.workflows $$, '42501', NULL, 'worker: cannot read the workflows view');
SELECT throws_ok($$ SELECT durable.tick() $$, '42501', NULL, 'worker: cannot tick');
SELECT throws_ok($$ SELECT durable.grant_worker('durable_tap_worker', '*') $$, '42501', NULL,
                 'worker: cannot widen its own grant');
SELECT throws_ok($$ UPDATE durable.tasks SET state = 'ready' $$, '42501', NULL, 'worker: cannot update durable.tasks');
SELECT throws_ok($$ DELETE FROM durable.tasks $$, '42501', NULL, 'worker: cannot delete from durable.tasks');
SELECT throws_ok($$ INSERT INTO durable.steps (run_id, seq, kind, name, status, scheduled_at)
                    VALUES (1, 1, 'local', 'x', 'completed', now()) $$, '42501', NULL,
                 'worker: cannot insert into durable.steps');
SELECT throws_ok($$ SELECT nextval('durable.token_seq') $$, '42501', NULL, 'worker: cannot draw tokens');
RESET ROLE;

-- the client sees the worker's result
SET ROLE durable_tap_client;
SELECT is(durable.wf_result('tap-1'), '"done"'::jsonb, 'client: wf_result returns the worker''s result');
SELECT is(durable.wf_status('tap-1'), 'completed', 'client: the run is completed');
RESET ROLE;

-- ------------------------------------------------------------------
-- admin
-- ------------------------------------------------------------------
SET ROLE durable_tap_admin;
SELECT lives_ok($$ SELECT durable.tick() $$, 'admin: tick');
SELECT ok((SELECT count(*) FROM durable.task_list) >= 1, 'admin: reads task_list');
SELECT ok((SELECT count(*) FROM durable.runs) >= 3, 'admin: reads durable.runs');
SET durable.namespace = 'tap_ns';
SELECT is(durable.wf_status('tap-ns-1'), 'running', 'admin: reads every namespace');
RESET durable.namespace;
SELECT lives_ok($$ SELECT durable.search_attribute_add('Region', 'keyword') $$,
                'admin: declares a search attribute');
SELECT throws_ok($$ DELETE FROM durable.runs $$, '42501', NULL, 'admin: still cannot write tables directly');
RESET ROLE;

-- ------------------------------------------------------------------
-- revoke_all takes everything back
-- ------------------------------------------------------------------
SELECT lives_ok($$ SELECT durable.revoke_all('durable_tap_client') $$, 'revoke_all');
SELECT is((SELECT count(*)::int FROM durable.grants WHERE role = 'durable_tap_client'::regrole), 0,
          'revoke_all removes the role''s grants');
SET ROLE durable_tap_client;
SELECT throws_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-3', 'tap_q1') $$, '42501', NULL,
                 'revoked client: cannot start workflows');
RESET ROLE;
SET ROLE durable_tap_member;
SELECT throws_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-4', 'tap_q1') $$, '42501', NULL,
                 'member of the revoked client: cannot start workflows');
RESET ROLE;

-- ------------------------------------------------------------------
-- search_path hijacking: a client's search_path never reaches the engine
-- ------------------------------------------------------------------
CREATE SCHEMA durable_tap_evil AUTHORIZATION durable_tap_other;
SET ROLE durable_tap_other;
CREATE FUNCTION durable_tap_evil.texteq(text, text) RETURNS boolean
LANGUAGE plpgsql AS $f$
BEGIN
    IF current_user <> 'durable_tap_other' THEN
        RAISE EXCEPTION 'hijacked: ran as %', current_user USING ERRCODE = 'XX999';
    END IF;
    RETURN $1 OPERATOR(pg_catalog.=) $2;
END
$f$;
CREATE OPERATOR durable_tap_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = durable_tap_evil.texteq);
SET search_path = durable_tap_evil, pg_catalog, public;
SELECT lives_ok($$ SELECT durable.may_read('tap_ns') $$,
                'may_read does not run operators from the caller''s search_path as the owner');
SELECT lives_ok($$ SELECT count(*) FROM durable.workflows $$,
                'the workflows view does not run operators from the caller''s search_path as the owner');
SET durable.namespace = 'tap_ns';
SELECT lives_ok($$ SELECT durable.wf_start('tap_wf', '{}', 'tap-ns-2', 'tap_q1') $$,
                'wf_start does not run operators from the caller''s search_path as the owner');
RESET durable.namespace;
RESET search_path;
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
