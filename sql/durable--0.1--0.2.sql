/* durable--0.1--0.2.sql: upgrade a database made by durable 0.1 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION durable UPDATE TO '0.2'" to load this file. \quit

/*
 * Hardening (issue 8)
 */

-- retention is at most ten years: the purge computes now - retention
UPDATE durable.namespaces SET retention = '3660 days'
 WHERE retention > '3660 days'::interval;
ALTER TABLE durable.namespaces DROP CONSTRAINT namespaces_retention_check;
ALTER TABLE durable.namespaces ADD CHECK
    (retention >= '0'::interval AND retention <= '3660 days'::interval);

/*
 * A restore (pg_dump keeps every table below) copies the dumped rows of
 * durable.namespaces into a table where CREATE EXTENSION has just made
 * the row of 'default': the dumped row replaces it instead of failing.
 */
CREATE FUNCTION durable.namespaces_merge_default() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.namespace = 'default' THEN
        UPDATE durable.namespaces n
           SET retention = NEW.retention, created_at = NEW.created_at
         WHERE n.namespace = 'default';
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION durable.namespaces_merge_default() IS
    'Trigger: a restored row of the default namespace replaces the one CREATE EXTENSION made';
CREATE TRIGGER namespaces_merge_default BEFORE INSERT ON durable.namespaces
    FOR EACH ROW EXECUTE FUNCTION durable.namespaces_merge_default();

-- grants name their role (regrole): a dump keeps the name, not the oid
ALTER TABLE durable.grants ALTER COLUMN role TYPE regrole USING role::regrole;

-- the row-filtered views are security barriers
ALTER VIEW durable.workflows SET (security_barrier = true);
ALTER VIEW durable.history SET (security_barrier = true);
CREATE OR REPLACE VIEW durable.journal WITH (security_barrier) AS
SELECT r.namespace, r.workflow_id, s.run_id, s.seq, s.kind, s.name, s.status,
       s.input, s.result, s.error, s.queue,
       coalesce(t.attempt, s.attempt) AS attempt, s.scheduled_at,
       s.resolved_at, s.due_at,
       -- a pending activity: scheduled (waiting for a worker), started
       -- (leased), backoff (waiting for its next attempt) or paused (its
       -- run is paused) (durable's clock: the database's, shifted by
       -- durable.clock_offset)
       CASE WHEN t.state = 'leased' THEN 'started'
            WHEN t.state = 'paused' THEN 'paused'
            WHEN t.attempt > 0 AND t.visible_at > now()
                 + current_setting('durable.clock_offset')::interval THEN 'backoff'
            WHEN t.state = 'ready' THEN 'scheduled' END AS activity_state,
       CASE WHEN t.state = 'ready' AND t.attempt > 0 AND t.visible_at > now()
                 + current_setting('durable.clock_offset')::interval THEN t.visible_at END
           AS next_attempt_at,
       CASE WHEN s.kind = 'activity' THEN
           (SELECT e.details->'error' FROM durable.events e
             WHERE e.run_id = s.run_id AND e.seq = s.seq
               AND e.event_type IN ('activity_attempt_failed',
                                    'activity_attempt_timed_out')
             ORDER BY e.event_id DESC LIMIT 1) END AS last_error
  FROM durable.steps s JOIN durable.runs r USING (run_id)
  LEFT JOIN durable.tasks t ON t.run_id = s.run_id AND t.seq = s.seq
 WHERE durable.may_read(r.namespace);

-- the grant calls are C: they act as the owner after the admin check
CREATE OR REPLACE FUNCTION durable.grant_client(role regrole, namespace text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_grant_client'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.grant_client(regrole, text) IS
    'Let a role start, signal, cancel and read workflows of a namespace (''*'': every namespace)';

CREATE OR REPLACE FUNCTION durable.grant_worker(role regrole, queue text DEFAULT '*',
                                     namespace text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_grant_worker'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.grant_worker(regrole, text, text) IS
    'Let a role poll and finish tasks of a queue (''*'': every queue) of a namespace';

CREATE OR REPLACE FUNCTION durable.grant_admin(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_grant_admin'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.grant_admin(regrole) IS
    'Let a role do everything: every namespace and queue, grants, tick, read every table';

CREATE OR REPLACE FUNCTION durable.revoke_all(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_revoke_all'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.revoke_all(regrole) IS
    'Take every durable right from a role';

/*
 * pg_dump keeps every table that holds user state, and the sequences
 * behind their ids (a restore then continues the numbering).
 */
SELECT pg_catalog.pg_extension_config_dump('durable.namespaces', '');
SELECT pg_catalog.pg_extension_config_dump('durable.runs', '');
SELECT pg_catalog.pg_extension_config_dump('durable.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('durable.steps', '');
SELECT pg_catalog.pg_extension_config_dump('durable.events', '');
SELECT pg_catalog.pg_extension_config_dump('durable.signals', '');
SELECT pg_catalog.pg_extension_config_dump('durable.queues', '');
SELECT pg_catalog.pg_extension_config_dump('durable.schedules', '');
SELECT pg_catalog.pg_extension_config_dump('durable.grants', '');
SELECT pg_catalog.pg_extension_config_dump('durable.run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('durable.token_seq', '');
SELECT pg_catalog.pg_extension_config_dump('durable.history_id_seq', '');

-- as the install script ends: nothing new is granted to PUBLIC
REVOKE ALL ON FUNCTION durable.namespaces_merge_default() FROM PUBLIC;

/*
 * Engine II: engine state out of jsonb into typed columns
 */

-- runs: attempt, retry policy, run timeout, execution deadline (0.1 kept
-- it as text) and parent-close policy leave options
ALTER TABLE durable.runs
    ADD COLUMN attempt int NOT NULL DEFAULT 1,
    ADD COLUMN retry_policy jsonb,
    ADD COLUMN run_timeout interval,
    ADD COLUMN execution_deadline timestamptz,
    ADD COLUMN parent_close_policy text;
UPDATE durable.runs
   SET attempt = coalesce((options->>'attempt')::int, 1),
       retry_policy = options->'retry_policy',
       run_timeout = (options->>'run_timeout_ms')::float8 * interval '1 ms',
       execution_deadline = (options->>'execution_deadline')::timestamptz,
       parent_close_policy = options->>'parent_close_policy',
       options = options - 'attempt' - 'retry_policy' - 'run_timeout_ms'
                 - 'execution_deadline' - 'parent_close_policy'
 WHERE options ?| ARRAY['attempt', 'retry_policy', 'run_timeout_ms',
                        'execution_deadline', 'parent_close_policy'];

-- steps: an activity's retry policy and timeouts replace options
ALTER TABLE durable.steps
    ADD COLUMN retry_policy jsonb,
    ADD COLUMN start_to_close interval,
    ADD COLUMN schedule_to_close interval,
    ADD COLUMN schedule_to_start interval,
    ADD COLUMN heartbeat_timeout interval;
UPDATE durable.steps
   SET retry_policy = nullif(options->'retry', 'null'::jsonb),
       start_to_close = (options->>'start_to_close_ms')::float8 * interval '1 ms',
       schedule_to_close = (options->>'schedule_to_close_ms')::float8 * interval '1 ms',
       schedule_to_start = (options->>'schedule_to_start_ms')::float8 * interval '1 ms',
       heartbeat_timeout = (options->>'heartbeat_ms')::float8 * interval '1 ms'
 WHERE options IS NOT NULL;
ALTER TABLE durable.steps DROP COLUMN options;

-- wf_pause: a paused run hands out no task (durable.tasks.state 'paused')
ALTER TABLE durable.runs ADD COLUMN paused boolean NOT NULL DEFAULT false;
CREATE INDEX runs_paused ON durable.runs (run_id) WHERE paused;

-- a run's retry attempt and whether it is paused are visible to its readers
CREATE OR REPLACE VIEW durable.workflows WITH (security_barrier) AS
SELECT r.namespace, r.workflow_id, r.run_id, r.workflow_type, r.queue,
       r.status, r.input, r.output, r.error, r.priority, r.options,
       r.cancel_requested, r.parent_run_id, r.created_at, r.closed_at,
       r.attempt, r.paused
  FROM durable.runs r
 WHERE durable.may_read(r.namespace);

/*
 * Pausing a workflow
 */

CREATE FUNCTION durable.wf_pause(workflow_id text, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_wf_pause'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_pause(text, text) IS
    'Pause a running workflow: none of its tasks is handed out until wf_unpause; false if it was paused already';

CREATE FUNCTION durable.wf_unpause(workflow_id text, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_wf_unpause'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_unpause(text, text) IS
    'Let a paused workflow go on: its held tasks are ready again; false if it was not paused';

CREATE FUNCTION durable.wf_reset(workflow_id text, to_seq int, reason text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'durable_wf_reset'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_reset(text, int, text) IS
    'Replace the latest run (terminating it if running) by a new run that keeps its steps before to_seq and redoes the rest; returns the new run id';

CREATE FUNCTION durable.wf_fork(workflow_id text, to_seq int, new_workflow_id text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'durable_wf_fork'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_fork(text, int, text) IS
    'Start a new workflow whose first run keeps the steps of the latest run of workflow_id before to_seq; returns its id';
REVOKE ALL ON FUNCTION durable.wf_reset(text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.wf_fork(text, int, text) FROM PUBLIC;

-- wf_list and wf_count keep no plan (each query is planned afresh, over
-- durable.runs only), so bitmap scans stay on for their filters
CREATE FUNCTION durable.wf_list(query text DEFAULT '', page_size int DEFAULT 100,
                                page_token text DEFAULT NULL)
RETURNS TABLE (namespace text, workflow_id text, run_id bigint, workflow_type text,
               queue text, status text, created_at timestamptz, closed_at timestamptz,
               search_attributes jsonb, memo jsonb, next_page_token text)
AS 'MODULE_PATHNAME', 'durable_wf_list'
LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION durable.wf_list(text, int, text) IS
    'Runs of the current namespace that match a Temporal visibility query, a page at a time; pass the last row''s next_page_token for the next page';

CREATE FUNCTION durable.wf_count(query text DEFAULT '')
RETURNS bigint
AS 'MODULE_PATHNAME', 'durable_wf_count'
LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION durable.wf_count(text) IS
    'How many runs of the current namespace match a Temporal visibility query';
REVOKE ALL ON FUNCTION durable.wf_list(text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.wf_count(text) FROM PUBLIC;

/*
 * Batch operations (batch.c): cancel, terminate, signal, pause, unpause or reset
 * the running runs a visibility query matches, a step at a time.  A
 * batch goes through runs in run id order up to max_run_id (the last run
 * started when it began) and keeps how far it got in after_run_id.
 */
CREATE SEQUENCE durable.batch_id_seq;
CREATE TABLE durable.batches (
    batch_id    bigint PRIMARY KEY DEFAULT nextval('durable.batch_id_seq'),
    namespace   text NOT NULL,
    operation   text NOT NULL,      -- cancel, terminate, signal, pause, unpause or reset
    query       text NOT NULL,      -- a visibility query (wf_list's), no ORDER BY
    signal      text,               -- a signal batch's signal name and payload;
    payload     jsonb,              -- a reset batch's {"to_seq": n}
    reason      text,
    max_run_id  bigint NOT NULL,
    after_run_id bigint NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'running',   -- running, completed, stopped or failed
    applied     bigint NOT NULL DEFAULT 0,  -- runs the operation changed
    skipped     bigint NOT NULL DEFAULT 0,  -- runs already as asked
    failed      bigint NOT NULL DEFAULT 0,  -- runs where it failed (last_error)
    last_error  text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    closed_at   timestamptz
);
COMMENT ON TABLE durable.batches IS
    'Batch operations over the runs a visibility query matches, with their progress';
CREATE INDEX batches_running ON durable.batches (batch_id) WHERE state = 'running';
SELECT pg_catalog.pg_extension_config_dump('durable.batches', '');
SELECT pg_catalog.pg_extension_config_dump('durable.batch_id_seq', '');
REVOKE ALL ON durable.batches FROM PUBLIC;
REVOKE ALL ON SEQUENCE durable.batch_id_seq FROM PUBLIC;

CREATE FUNCTION durable.batch_start(operation text, query text, reason text DEFAULT NULL,
                                    signal text DEFAULT NULL, payload jsonb DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'durable_batch_start'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.batch_start(text, text, text, text, jsonb) IS
    'Start a batch operation (cancel, terminate, signal, pause, unpause, reset) over the running runs a visibility query matches; returns its id';

CREATE FUNCTION durable.batch_run(batch_id bigint, max_runs int DEFAULT 1000)
RETURNS int
AS 'MODULE_PATHNAME', 'durable_batch_run'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.batch_run(bigint, int) IS
    'One step of a running batch in this transaction: its operation on the next max_runs runs; returns how many';

CREATE FUNCTION durable.batch_stop(batch_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_batch_stop'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.batch_stop(bigint) IS
    'Stop a running batch where it is; false if it was not running';
REVOKE ALL ON FUNCTION durable.batch_start(text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.batch_run(bigint, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.batch_stop(bigint) FROM PUBLIC;

CREATE FUNCTION durable.task_upsert_search_attributes(token bigint, seq int, attributes jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_upsert_search_attributes'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_upsert_search_attributes(bigint, int, jsonb) IS
    'Set search attributes of the run whose workflow task the token holds (null removes one), journaled as step seq';
REVOKE ALL ON FUNCTION durable.task_upsert_search_attributes(bigint, int, jsonb) FROM PUBLIC;

CREATE VIEW durable.batch_list WITH (security_barrier) AS
SELECT b.batch_id, b.namespace, b.operation, b.query, b.signal, b.reason, b.state,
       b.applied, b.skipped, b.failed, b.last_error, b.after_run_id, b.max_run_id,
       b.created_at, b.updated_at, b.closed_at
  FROM durable.batches b
 WHERE durable.may_read(b.namespace);
COMMENT ON VIEW durable.batch_list IS
    'Batch operations of the namespaces the current user may read, with their progress';
REVOKE ALL ON durable.batch_list FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.wf_pause(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.wf_unpause(text, text) FROM PUBLIC;

/*
 * Bulk starts
 */
CREATE FUNCTION durable.wf_start_many(name text, inputs jsonb[],
                                      workflow_ids text[] DEFAULT NULL,
                                      queue text DEFAULT 'default',
                                      options jsonb DEFAULT '{}')
RETURNS SETOF text
AS 'MODULE_PATHNAME', 'durable_wf_start_many'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_start_many(text, jsonb[], text[], text, jsonb) IS
    'Start one run per input, all or none, with wf_start''s options; returns the workflow ids in input order';
REVOKE ALL ON FUNCTION durable.wf_start_many(text, jsonb[], text[], text, jsonb) FROM PUBLIC;

/*
 * The hot path's data model: no index of runs names a column the close
 * changes, so the close is a HOT update; a run's number within its
 * workflow id (run_number) keeps one open run per workflow id in place of
 * the partial index on closed_at; the purge walks runs in run_id order
 * instead of an index on closed_at.
 */
ALTER TABLE durable.runs ADD COLUMN run_number int;
UPDATE durable.runs r SET run_number = n.run_number
  FROM (SELECT run_id, row_number() OVER (PARTITION BY namespace, workflow_id
                                          ORDER BY run_id)::int AS run_number
          FROM durable.runs) n
 WHERE n.run_id = r.run_id;
ALTER TABLE durable.runs ALTER COLUMN run_number SET NOT NULL;
UPDATE durable.runs SET deadline_at = NULL
 WHERE status <> 'running' AND deadline_at IS NOT NULL;
DROP INDEX durable.runs_open_key, durable.runs_workflow_id, durable.runs_closed_at,
           durable.runs_deadline, durable.runs_parent;
ALTER TABLE durable.runs SET (fillfactor = 80);
CREATE UNIQUE INDEX runs_workflow_id ON durable.runs (namespace, workflow_id, run_number);
CREATE INDEX runs_deadline ON durable.runs (deadline_at)
    WHERE deadline_at IS NOT NULL;
CREATE INDEX runs_parent ON durable.runs (parent_run_id)
    WHERE parent_run_id IS NOT NULL;
CREATE OR REPLACE VIEW durable.workflows WITH (security_barrier) AS
SELECT r.namespace, r.workflow_id, r.run_id, r.workflow_type, r.queue,
       r.status, r.input, r.output, r.error, r.priority, r.options,
       r.cancel_requested, r.parent_run_id, r.created_at, r.closed_at,
       r.attempt, r.paused, r.run_number
  FROM durable.runs r
 WHERE durable.may_read(r.namespace);

/*
 * Claims prefer the tasks of runs in flight to the first tasks of new
 * runs (of the same priority).  A ready first workflow task of a run
 * with no journal yet, never claimed and not a child's, is a new run's.
 */
ALTER TABLE durable.tasks ADD COLUMN new_run boolean NOT NULL DEFAULT false;
UPDATE durable.tasks t SET new_run = true
  FROM durable.runs r
 WHERE r.run_id = t.run_id AND t.seq = 0 AND t.state = 'ready' AND t.attempt = 0
   AND r.parent_run_id IS NULL
   AND NOT EXISTS (SELECT FROM durable.steps s WHERE s.run_id = t.run_id);
DROP INDEX durable.tasks_claim;
CREATE INDEX tasks_claim ON durable.tasks
    (namespace, queue, priority DESC, new_run, visible_at) WHERE state = 'ready';

/*
 * Completing an activity by workflow id and step (async completion)
 */
CREATE FUNCTION durable.activity_complete(workflow_id text, seq int,
                                          result jsonb DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_activity_complete'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.activity_complete(text, int, jsonb) IS
    'Complete a pending activity by workflow id and step (async completion): its step resolves, a worker holding it gets DU004';

CREATE FUNCTION durable.activity_fail(workflow_id text, seq int, error jsonb,
                                      retryable boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_activity_fail'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.activity_fail(text, int, jsonb, boolean) IS
    'Fail the current attempt of a pending activity by workflow id and step; its retry policy decides, as for task_fail';
REVOKE ALL ON FUNCTION durable.activity_complete(text, int, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.activity_fail(text, int, jsonb, boolean) FROM PUBLIC;

/*
 * Published state
 */
/*
 * State a workflow publishes (task_publish): the latest value of each
 * name, per run; readable by clients with SQL even when no worker runs.
 */
CREATE TABLE durable.published (
    run_id      bigint NOT NULL,
    name        text NOT NULL,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, name)
);
COMMENT ON TABLE durable.published IS
    'State workflows publish: the latest value of each name, per run';
SELECT pg_catalog.pg_extension_config_dump('durable.published', '');
REVOKE ALL ON durable.published FROM PUBLIC;
CREATE FUNCTION durable.task_publish(token bigint, name text, value jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_publish'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_publish(bigint, text, jsonb) IS
    'Publish a named value of the run whose workflow task the token holds (NULL removes it)';

CREATE FUNCTION durable.wf_published(workflow_id text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'durable_wf_published'
LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_published(text) IS
    'The state the latest run of a workflow published: an object of name -> value';

CREATE FUNCTION durable.wf_query(workflow_id text, name text, args jsonb DEFAULT NULL,
                                 timeout interval DEFAULT '10 s')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'durable_wf_query'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_query(text, text, jsonb, interval) IS
    'Ask the latest run of a workflow a live query: a worker of its queue replays it and its query handler answers (waits up to timeout; changes nothing)';

CREATE FUNCTION durable.task_answer_query(token bigint, result jsonb,
                                          error jsonb DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_task_answer_query'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_answer_query(bigint, jsonb, jsonb) IS
    'Answer a live query a poll handed out (kind query): its result, or error; false when its caller stopped waiting';
REVOKE ALL ON FUNCTION durable.wf_query(text, text, jsonb, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.task_answer_query(bigint, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.task_publish(bigint, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.wf_published(text) FROM PUBLIC;
CREATE VIEW durable.published_state WITH (security_barrier) AS
SELECT r.namespace, r.workflow_id, p.run_id, p.name, p.value, p.updated_at
  FROM durable.published p JOIN durable.runs r USING (run_id)
 WHERE durable.may_read(r.namespace);
COMMENT ON VIEW durable.published_state IS
    'State published by the runs the current user may read';
REVOKE ALL ON durable.published_state FROM PUBLIC;

/*
 * Changing a schedule in place
 */
CREATE FUNCTION durable.schedule_update(name text, spec text DEFAULT NULL,
                                        workflow text DEFAULT NULL,
                                        input jsonb DEFAULT NULL,
                                        options jsonb DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'durable_schedule_update'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_update(text, text, text, jsonb, jsonb) IS
    'Change a schedule in place (NULL keeps a setting); a new spec or time zone recomputes the next fire time, which it returns';
REVOKE ALL ON FUNCTION durable.schedule_update(text, text, text, jsonb, jsonb) FROM PUBLIC;

/*
 * Updates (wf_update, wf_update_result): a table of their own, a journal
 * step kind (update; the history names it update_accepted), and a column
 * of task_poll that lists a workflow task's updates.
 */
/*
 * Updates sent to runs (wf_update): requested until the run's worker
 * handles one in a workflow task (task_suspend's update commands), then
 * completed or failed, journaled as the step of kind update at seq, or
 * rejected by the workflow's validator, which leaves no step.  Kept with
 * the run: update_id deduplicates, wf_update_result reads the outcome.
 */
CREATE TABLE durable.updates (
    -- the order updates were sent in, which is the order a worker takes them
    update_no   bigint NOT NULL DEFAULT nextval('durable.history_id_seq'),
    run_id      bigint NOT NULL,
    update_id   text NOT NULL,
    name        text NOT NULL,
    args        jsonb,
    state       text NOT NULL DEFAULT 'requested',  -- requested, completed, failed or rejected
    seq         int,                -- the journal entry, once accepted
    -- the entry the workflow code was waiting on when it accepted the
    -- update, as its worker said (a replay applies it at that wait)
    waiting_on  int,
    result      jsonb,
    error       jsonb,
    created_at  timestamptz NOT NULL,
    resolved_at timestamptz,
    PRIMARY KEY (run_id, update_id)
);
COMMENT ON TABLE durable.updates IS
    'Updates sent to runs: requested, then completed, failed (journaled at seq) or rejected (no trace in the journal)';
SELECT pg_catalog.pg_extension_config_dump('durable.updates', '');
REVOKE ALL ON durable.updates FROM PUBLIC;
CREATE FUNCTION durable.wf_update(workflow_id text, name text, args jsonb DEFAULT NULL,
                                  update_id text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'durable_wf_update'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_update(text, text, jsonb, text) IS
    'Send an update to the running run of a workflow (sent when the transaction commits; the same update_id again sends nothing); returns the update id for wf_update_result';

CREATE FUNCTION durable.wf_update_result(workflow_id text, update_id text,
                                         wait interval DEFAULT '30 s')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'durable_wf_update_result'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_update_result(text, text, interval) IS
    'The result of an update once its workflow handled it (waits up to wait; NULL while not yet); DU017 when it failed, was rejected or its run closed first';
CREATE FUNCTION durable.task_updates(token bigint, commands jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_updates'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_updates(bigint, jsonb) IS
    'Accept (update) or reject (reject_update) updates during the workflow task the token holds; the task goes on';

REVOKE ALL ON FUNCTION durable.task_updates(bigint, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.wf_update(text, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.wf_update_result(text, text, interval) FROM PUBLIC;
-- task_poll returns one more column (updates): it is made again, and its
-- grants with it (below)
DROP FUNCTION durable.task_poll(text, text, int, interval, bigint[], jsonb[]);
CREATE FUNCTION durable.task_poll(queue text, worker text,
                                  max_tasks int DEFAULT 1,
                                  lease interval DEFAULT '30 s',
                                  done_tokens bigint[] DEFAULT NULL,
                                  done_results jsonb[] DEFAULT NULL,
                                  OUT token bigint, OUT kind text,
                                  OUT workflow_id text, OUT run_id bigint,
                                  OUT workflow_type text, OUT name text,
                                  OUT seq int, OUT input jsonb,
                                  OUT attempt int, OUT journal jsonb,
                                  OUT heartbeat jsonb,
                                  OUT cancel_requested boolean,
                                  OUT lease_until timestamptz,
                                  OUT updates jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'durable_task_poll'
LANGUAGE C VOLATILE ROWS 1 SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_poll(text, text, int, interval, bigint[], jsonb[]) IS
    'Complete the tasks in done_tokens (if any), then claim up to max_tasks ready tasks of a queue under a lease';
REVOKE ALL ON FUNCTION durable.task_poll(text, text, int, interval, bigint[], jsonb[]) FROM PUBLIC;
CREATE OR REPLACE VIEW durable.history WITH (security_barrier) AS
SELECT namespace, workflow_id, run_id, event_time, event_type, seq, details
  FROM (
    SELECT r.namespace, r.workflow_id, r.run_id, r.created_at AS event_time,
           'workflow_started'::text AS event_type, NULL::int AS seq,
           jsonb_build_object('workflow_type', r.workflow_type,
                              'queue', r.queue, 'input', r.input) AS details,
           0 AS ord, 0::bigint AS event_id
      FROM durable.runs r
    UNION ALL
    SELECT r.namespace, r.workflow_id, s.run_id, s.scheduled_at,
           CASE s.kind WHEN 'local' THEN 'step_recorded'
                       WHEN 'update' THEN 'update_accepted'
                       ELSE s.kind || '_scheduled' END,
           s.seq,
           jsonb_strip_nulls(jsonb_build_object('name', s.name, 'input', s.input,
                              'queue', s.queue,
                              'result', CASE WHEN s.kind = 'local' THEN s.result END)),
           1, 0
      FROM durable.steps s JOIN durable.runs r USING (run_id)
    UNION ALL
    SELECT r.namespace, r.workflow_id, s.run_id, s.resolved_at,
           s.kind || '_' || s.status, s.seq,
           jsonb_strip_nulls(jsonb_build_object('name', s.name, 'result', s.result,
                              'error', s.error,
                              'attempt', CASE WHEN s.kind = 'activity' THEN s.attempt END)),
           3, 0
      FROM durable.steps s JOIN durable.runs r USING (run_id)
     WHERE s.kind <> 'local' AND s.resolved_at IS NOT NULL
    UNION ALL
    SELECT r.namespace, r.workflow_id, e.run_id, e.created_at, e.event_type,
           e.seq, e.details, 2, e.event_id
      FROM durable.events e JOIN durable.runs r USING (run_id)
    UNION ALL
    SELECT r.namespace, r.workflow_id, r.run_id, r.closed_at,
           'workflow_' || r.status,
           NULL, jsonb_strip_nulls(jsonb_build_object('output', r.output,
                                                      'error', r.error)),
           4, 0
      FROM durable.runs r
     WHERE r.closed_at IS NOT NULL
  ) h
 WHERE durable.may_read(namespace)
 ORDER BY run_id, event_time, ord, event_id, seq;
COMMENT ON VIEW durable.history IS
    'Event log of the runs the current user may read: derived events and recorded ones';

/*
 * Typed search attributes: declarations per namespace, an index for
 * equality filters, and views of the declarations and the typed values.
 */
/*
 * Search attributes an admin declared for a namespace, with their type
 * (search_attribute_add).  A value a run is given for one must fit the
 * type (wf_start, a child's start, an upsert), wf_list / wf_count compare
 * it as that type, and durable.search_attribute_values shows it in a
 * column of that type.  Attributes nobody declared stay untyped JSON.
 */
CREATE TABLE durable.search_attributes (
    namespace   text NOT NULL,
    name        text NOT NULL,
    -- keyword, text, int, double, bool, datetime or keyword_list
    type        text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (namespace, name)
);
COMMENT ON TABLE durable.search_attributes IS
    'Search attributes declared per namespace, with their type';

SELECT pg_catalog.pg_extension_config_dump('durable.search_attributes', '');
REVOKE ALL ON durable.search_attributes FROM PUBLIC;
-- equality filters on search attributes (wf_list's "CustomerId = 'c-7'",
-- a keyword list holding a value): only the runs that have attributes
-- are in it, so a start without any writes no entry
CREATE INDEX runs_search_attributes ON durable.runs
    USING gin ((options->'search_attributes') jsonb_path_ops)
    WHERE options ? 'search_attributes';
CREATE VIEW durable.search_attribute_list WITH (security_barrier) AS
SELECT a.namespace, a.name, a.type, a.created_at
  FROM durable.search_attributes a
 WHERE durable.may_read(a.namespace);
COMMENT ON VIEW durable.search_attribute_list IS
    'The search attributes declared in the namespaces the current user may read';

CREATE VIEW durable.search_attribute_values WITH (security_barrier) AS
SELECT r.namespace, r.workflow_id, r.run_id, a.name, a.type,
       CASE WHEN a.type IN ('keyword', 'text') THEN v #>> '{}' END AS text_value,
       CASE WHEN a.type = 'int' THEN (v #>> '{}')::numeric::bigint END AS int_value,
       CASE WHEN a.type = 'double' THEN (v #>> '{}')::float8 END AS double_value,
       CASE WHEN a.type = 'bool' THEN (v #>> '{}')::boolean END AS bool_value,
       CASE WHEN a.type = 'datetime' THEN (v #>> '{}')::timestamptz END AS datetime_value,
       CASE WHEN a.type = 'keyword_list'
            THEN ARRAY(SELECT jsonb_array_elements_text(v)) END AS keywords_value
  FROM durable.runs r
  JOIN durable.search_attributes a ON a.namespace = r.namespace
  CROSS JOIN LATERAL (SELECT r.options->'search_attributes'->a.name AS v) x
 WHERE r.options ? 'search_attributes' AND x.v IS NOT NULL AND x.v <> 'null'
   AND durable.may_read(r.namespace);
COMMENT ON VIEW durable.search_attribute_values IS
    'The declared search attributes of the runs the current user may read, one row each, in a column of their type';

REVOKE ALL ON durable.search_attribute_list FROM PUBLIC;
REVOKE ALL ON durable.search_attribute_values FROM PUBLIC;
CREATE FUNCTION durable.search_attribute_add(name text, type text)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_search_attribute_add'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.search_attribute_add(text, text) IS
    'Declare a search attribute of the session''s namespace with a type (keyword, text, int, double, bool, datetime, keyword_list): its values are checked and compared as that type';

CREATE FUNCTION durable.search_attribute_remove(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_search_attribute_remove'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.search_attribute_remove(text) IS
    'Stop declaring a search attribute of the session''s namespace; the values runs hold stay, untyped';

REVOKE ALL ON FUNCTION durable.search_attribute_add(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.search_attribute_remove(text) FROM PUBLIC;

/*
 * Fairness keys (fairness.c): runs and tasks carry a key and a weight, and
 * a queue's ready tasks of one priority are claimed in pass order.  Tasks
 * in flight keep their order: their pass is their ready time in seconds,
 * the range a queue's passes start in.
 */
ALTER TABLE durable.runs ADD COLUMN fairness_key text, ADD COLUMN fairness_weight real;
ALTER TABLE durable.tasks ADD COLUMN fairness_key text,
    ADD COLUMN fairness_weight real NOT NULL DEFAULT 1,
    ADD COLUMN pass float8 NOT NULL DEFAULT 'Infinity';
UPDATE durable.tasks SET pass = extract(epoch FROM visible_at);
DROP INDEX durable.tasks_claim;
CREATE INDEX tasks_claim ON durable.tasks
    (namespace, queue, (- priority), new_run, pass) WHERE state = 'ready';
CREATE INDEX tasks_unplaced ON durable.tasks (visible_at) WHERE pass = 'Infinity'::float8;
-- leased tasks are found through tasks_token (see durable--0.2.sql): a
-- second index of them cost every claim an index entry
DROP INDEX durable.tasks_lease;
CREATE FUNCTION durable.fair_pass(namespace text, queue text, fairness_key text,
                                  fairness_weight real, priority int, new_run boolean)
RETURNS float8
AS 'MODULE_PATHNAME', 'durable_fair_pass_sql'
-- no SET clause, like may_read: the engine's statements call it once per
-- task they make ready, already with search_path pinned, and a SET would
-- cost each call a GUC save and restore; its one query is fully qualified
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION durable.fair_pass(text, text, text, real, int, boolean) IS
    'The engine''s: the pass of a task made ready now (fair order across fairness keys); for administrators only, like every function';
REVOKE ALL ON FUNCTION durable.fair_pass(text, text, text, real, int, boolean) FROM PUBLIC;

/*
 * Per-key concurrency limits (queue_set_key_concurrency) and the view of
 * each queue's fairness keys.
 */
ALTER TABLE durable.queues
    ADD COLUMN key_concurrency int CHECK (key_concurrency >= 0),
    ADD COLUMN key_concurrency_overrides jsonb,
    ADD COLUMN key_rate double precision CHECK (key_rate > 0),
    ADD COLUMN key_rate_burst int CHECK (key_rate_burst > 0),
    ADD COLUMN key_on_limit text NOT NULL DEFAULT 'wait'
        CHECK (key_on_limit IN ('wait', 'cancel_newest', 'cancel_oldest')),
    ADD COLUMN aging_every interval CHECK (aging_every >= interval '1 s'),
    ADD COLUMN aging_up_to int NOT NULL DEFAULT 1000 CHECK (aging_up_to BETWEEN -1000 AND 1000);
ALTER TABLE durable.tasks ADD COLUMN aged int NOT NULL DEFAULT 0;
DROP TRIGGER queues_changed ON durable.queues;
CREATE TRIGGER queues_changed
    AFTER INSERT OR DELETE OR TRUNCATE
    OR UPDATE OF paused, max_concurrency, max_rate, key_concurrency,
              key_concurrency_overrides, key_rate
    ON durable.queues FOR EACH STATEMENT EXECUTE FUNCTION durable.table_changed();
/*
 * Token buckets of the per-key rate limits (queue_set_key_rate): one row
 * per key a poll took tokens from.  A poll of such a queue reads and writes
 * a key's bucket under the key's lock (queues.c).
 */
CREATE TABLE durable.key_buckets (
    namespace    text NOT NULL,
    queue        text NOT NULL,
    fairness_key text NOT NULL,     -- '' for tasks without a key
    bucket       double precision NOT NULL,
    bucket_at    timestamptz NOT NULL,
    PRIMARY KEY (namespace, queue, fairness_key)
);
COMMENT ON TABLE durable.key_buckets IS
    'Token buckets of per-key rate limits (queue_set_key_rate)';
REVOKE ALL ON durable.key_buckets FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('durable.key_buckets', '');
CREATE FUNCTION durable.queue_set_priority_aging(queue text, every interval,
                                                up_to int DEFAULT 1000)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_priority_aging'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_priority_aging(text, interval, int) IS
    'A ready task of the queue runs one priority higher for each interval every it has waited, up to up_to (NULL every: no aging)';
REVOKE ALL ON FUNCTION durable.queue_set_priority_aging(text, interval, int) FROM PUBLIC;
CREATE FUNCTION durable.queue_set_key_rate(queue text, per_second double precision,
                                           burst int DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_key_rate'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_key_rate(text, double precision, int) IS
    'At most per_second claims per second of each fairness key''s tasks of the queue, in bursts of up to burst (NULL: no limit)';
REVOKE ALL ON FUNCTION durable.queue_set_key_rate(text, double precision, int) FROM PUBLIC;
CREATE FUNCTION durable.queue_set_key_concurrency(queue text, max_per_key int,
                                                  overrides jsonb DEFAULT NULL,
                                                  on_limit text DEFAULT 'wait')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_key_concurrency'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_key_concurrency(text, int, jsonb, text) IS
    'At most max_per_key tasks of each fairness key of the queue leased at once, overrides {key: n} for named keys (NULL, NULL: no limit); on_limit: wait, cancel_newest or cancel_oldest';
REVOKE ALL ON FUNCTION durable.queue_set_key_concurrency(text, int, jsonb, text) FROM PUBLIC;
CREATE OR REPLACE VIEW durable.queue_stats AS
SELECT coalesce(t.namespace, q.namespace) AS namespace,
       coalesce(t.queue, q.queue) AS queue,
       coalesce(t.ready, 0) AS ready, coalesce(t.leased, 0) AS leased,
       t.oldest_ready, coalesce(q.paused, false) AS paused, q.note,
       q.max_concurrency, q.max_rate, q.rate_burst, q.key_concurrency,
       q.key_concurrency_overrides, q.key_rate, q.key_rate_burst, q.key_on_limit,
       q.aging_every, q.aging_up_to
  FROM (SELECT namespace, queue,
               count(*) FILTER (WHERE state = 'ready') AS ready,
               count(*) FILTER (WHERE state = 'leased') AS leased,
               min(visible_at) FILTER (WHERE state = 'ready') AS oldest_ready
          FROM durable.tasks
         GROUP BY namespace, queue) t
  FULL JOIN durable.queues q ON q.namespace = t.namespace AND q.queue = t.queue;
CREATE VIEW durable.queue_keys AS
SELECT t.namespace, t.queue, coalesce(t.fairness_key, '') AS fairness_key,
       count(*) FILTER (WHERE t.state = 'ready') AS ready,
       count(*) FILTER (WHERE t.state = 'leased') AS leased,
       min(t.visible_at) FILTER (WHERE t.state = 'ready') AS oldest_ready,
       coalesce((q.key_concurrency_overrides ->> coalesce(t.fairness_key, ''))::int,
                q.key_concurrency) AS max_concurrency
  FROM durable.tasks t
  LEFT JOIN durable.queues q ON q.namespace = t.namespace AND q.queue = t.queue
 GROUP BY t.namespace, t.queue, coalesce(t.fairness_key, ''), q.key_concurrency,
          q.key_concurrency_overrides;
COMMENT ON VIEW durable.queue_keys IS 'Ready and leased tasks per fairness key of each queue, and the key''s concurrency limit (admin)';
REVOKE ALL ON durable.queue_keys FROM PUBLIC;

-- wf_status, wf_history and wf_describe: the latest run of a workflow id
-- is the one with the highest run_number, and the namespace is compared as
-- a parameter, which reaches the index of the security-barrier views
CREATE OR REPLACE FUNCTION durable.wf_status(workflow_id text)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st text;
    ns text := coalesce(current_setting('durable.namespace', true), 'default');
BEGIN
    IF workflow_id IS NULL THEN
        RAISE EXCEPTION 'workflow id must not be NULL' USING ERRCODE = 'DU001';
    END IF;
    IF NOT durable.may_read(ns) THEN
        RAISE EXCEPTION 'permission denied for namespace "%"', ns
            USING ERRCODE = 'DU009',
                  DETAIL = format('Role "%s" holds no client right on this namespace.', current_user),
                  HINT = 'An administrator can run durable.grant_client().';
    END IF;
    -- ns, not current_setting(): the view is a security barrier, and only a
    -- leakproof condition (a parameter) reaches its index on (namespace, workflow_id)
    SELECT w.status INTO st FROM durable.workflows w
     WHERE w.namespace = ns
       AND w.workflow_id = wf_status.workflow_id
     ORDER BY w.run_number DESC LIMIT 1;
    IF st IS NULL THEN
        RAISE EXCEPTION 'workflow "%" does not exist', workflow_id
            USING ERRCODE = 'DU005',
                  DETAIL = format('No run of it is visible in namespace "%s".',
                                  coalesce(current_setting('durable.namespace', true), 'default')),
                  HINT = 'Check the workflow id and the durable.namespace setting.';
    END IF;
    RETURN st;
END
$$;
COMMENT ON FUNCTION durable.wf_status(text) IS
    'Status of the latest run of a workflow in the current namespace';

CREATE OR REPLACE FUNCTION durable.wf_history(workflow_id text)
RETURNS TABLE (run_id bigint, event_time timestamptz, event_type text,
               seq int, details jsonb)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ns text := coalesce(current_setting('durable.namespace', true), 'default');
BEGIN
    PERFORM durable.wf_status(workflow_id);
    RETURN QUERY
    SELECT h.run_id, h.event_time, h.event_type, h.seq, h.details
      FROM durable.history h
     WHERE h.namespace = ns
       AND h.workflow_id = wf_history.workflow_id;
END
$$;
COMMENT ON FUNCTION durable.wf_history(text) IS
    'Event log of every run of a workflow in the current namespace, oldest first';

CREATE OR REPLACE FUNCTION durable.wf_describe(workflow_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    res jsonb;
    ns text := coalesce(current_setting('durable.namespace', true), 'default');
BEGIN
    PERFORM durable.wf_status(workflow_id);
    SELECT * INTO w FROM durable.workflows x
     WHERE x.namespace = ns
       AND x.workflow_id = wf_describe.workflow_id
     ORDER BY x.run_number DESC LIMIT 1;
    SELECT jsonb_build_object(
        'workflow_id', w.workflow_id, 'run_id', w.run_id,
        'workflow_type', w.workflow_type, 'queue', w.queue,
        'status', w.status, 'cancel_requested', w.cancel_requested,
        'paused', w.paused,
        'created_at', w.created_at, 'closed_at', w.closed_at,
        'input', w.input, 'output', w.output, 'error', w.error,
        'pending_steps', coalesce((
            SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                       'seq', j.seq, 'kind', j.kind, 'name', j.name,
                       'attempt', j.attempt, 'queue', j.queue,
                       'scheduled_at', j.scheduled_at, 'due_at', j.due_at,
                       'state', j.activity_state,
                       'next_attempt_at', j.next_attempt_at,
                       'last_error', j.last_error))
                   ORDER BY j.seq)
              FROM durable.journal j
             WHERE j.run_id = w.run_id AND j.status = 'pending'), '[]'),
        'steps', (SELECT count(*) FROM durable.journal j WHERE j.run_id = w.run_id))
      INTO res;
    RETURN res;
END
$$;
COMMENT ON FUNCTION durable.wf_describe(text) IS
    'The latest run of a workflow: status, pending steps with attempts and due times';

CREATE FUNCTION durable.metrics(OUT family text, OUT kind text, OUT help text,
                                OUT sample text, OUT labels jsonb,
                                OUT value double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'durable_metrics'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.metrics() IS
    'Prometheus samples of this database: counters and histograms kept in shared memory since the server started, gauges counted from the tables at most every durable.metrics_gauge_interval (admins and members of pg_monitor)';

CREATE FUNCTION durable.metrics_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'durable_metrics_reset'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.metrics_reset() IS
    'Counters and histograms of this database start again from zero (admin)';
REVOKE ALL ON FUNCTION durable.metrics() FROM PUBLIC;
REVOKE ALL ON FUNCTION durable.metrics_reset() FROM PUBLIC;
GRANT USAGE ON SCHEMA durable TO pg_monitor;
GRANT EXECUTE ON FUNCTION durable.metrics() TO pg_monitor;
-- the GRANT above recorded the schema's whole ACL, the app roles' USAGE
-- included, as its initial privileges: keep those of a fresh install
UPDATE pg_catalog.pg_init_privs p
   SET initprivs = ARRAY[pg_catalog.makeaclitem('pg_monitor'::regrole, n.nspowner, 'USAGE', false),
                         (n.nspowner::regrole::text || '=UC/' || n.nspowner::regrole::text)::aclitem]
  FROM pg_catalog.pg_namespace n
 WHERE n.nspname = 'durable' AND p.objoid = n.oid
   AND p.classoid = 'pg_catalog.pg_namespace'::regclass AND p.objsubid = 0;

-- Roles get the new functions their rights give (as the grant calls do
-- now): the new client functions and view for clients, task_publish for
-- workers, and every new function, table and view
-- for admins (grant_admin gives every function).
-- Those grants are the roles' rights, not the extension's: they are kept
-- out of its initial privileges (pg_init_privs, which an extension script
-- records), so that pg_dump dumps them as it dumps the grants made after a
-- fresh install, and a restore gives them back.
DO $$
DECLARE
    f record;
    r regrole;
    init aclitem[];
BEGIN
    FOR f IN SELECT * FROM (VALUES
            ('durable.wf_start_many(text, jsonb[], text[], text, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.activity_complete(text, int, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.activity_fail(text, int, jsonb, boolean)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_published(text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_query(text, text, jsonb, interval)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.task_answer_query(bigint, jsonb, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['worker', 'admin']),
            ('durable.wf_pause(text, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_unpause(text, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_reset(text, int, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_fork(text, int, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_list(text, int, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_count(text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.batch_start(text, text, text, text, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.batch_run(bigint, int)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.batch_stop(bigint)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.batch_list'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['client', 'admin']),
            ('durable.batches'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['admin']),
            ('durable.task_publish(bigint, text, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['worker', 'admin']),
            ('durable.task_upsert_search_attributes(bigint, int, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['worker', 'admin']),
            ('durable.schedule_update(text, text, text, jsonb, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.namespaces_merge_default()'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.published_state'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['client', 'admin']),
            ('durable.published'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['admin']),
            ('durable.wf_update(text, text, jsonb, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.wf_update_result(text, text, interval)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['client', 'admin']),
            ('durable.task_updates(bigint, jsonb)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['worker', 'admin']),
            ('durable.task_poll(text, text, int, interval, bigint[], jsonb[])'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['worker', 'admin']),
            ('durable.updates'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['admin']),
            ('durable.search_attributes'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['admin']),
            ('durable.search_attribute_list'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['client', 'admin']),
            ('durable.search_attribute_values'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['client', 'admin']),
            ('durable.search_attribute_add(text, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.search_attribute_remove(text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.fair_pass(text, text, text, real, int, boolean)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.queue_set_key_concurrency(text, int, jsonb, text)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.queue_keys'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['admin']),
            ('durable.key_buckets'::regclass::oid,
             'pg_catalog.pg_class'::regclass, ARRAY['admin']),
            ('durable.queue_set_key_rate(text, double precision, int)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.queue_set_priority_aging(text, interval, int)'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.metrics()'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin']),
            ('durable.metrics_reset()'::regprocedure::oid,
             'pg_catalog.pg_proc'::regclass, ARRAY['admin'])) AS x(obj, cls, kinds)
    LOOP
        SELECT p.initprivs INTO init FROM pg_catalog.pg_init_privs p
         WHERE p.objoid = f.obj AND p.classoid = f.cls AND p.objsubid = 0;
        FOR r IN SELECT DISTINCT g.role FROM durable.grants g WHERE g.kind = ANY (f.kinds) LOOP
            IF f.cls = 'pg_catalog.pg_proc'::regclass THEN
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f.obj::regprocedure, r);
            ELSE
                EXECUTE format('GRANT SELECT ON %s TO %s', f.obj::regclass, r);
            END IF;
        END LOOP;
        UPDATE pg_catalog.pg_init_privs p SET initprivs = init
         WHERE p.objoid = f.obj AND p.classoid = f.cls AND p.objsubid = 0;
    END LOOP;
END
$$;

