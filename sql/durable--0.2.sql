/* durable--0.2.sql: tables, the worker protocol, views and grants */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION durable" to load this file. \quit

/*
 * Tables.  Every table is private to the extension's owner: clients and
 * workers reach them only through the functions below, which check the
 * caller's rights (durable.grants) and then act as the owner.
 */

CREATE TABLE durable.namespaces (
    namespace   text PRIMARY KEY,
    retention   interval NOT NULL DEFAULT '7 days',
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- at most ten years: the purge computes now - retention, and one
    -- namespace whose arithmetic overflowed once stopped every round
    CHECK (retention >= '0'::interval AND retention <= '3660 days'::interval)
);
COMMENT ON TABLE durable.namespaces IS
    'Isolation units: names, retention of closed runs, permissions';
INSERT INTO durable.namespaces (namespace) VALUES ('default');

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

CREATE SEQUENCE durable.run_id_seq;
CREATE SEQUENCE durable.token_seq;
CREATE SEQUENCE durable.history_id_seq;

/*
 * The hot tables (runs, tasks, steps) carry no CHECK constraints: the
 * executor compiles every CHECK expression of a table afresh for each
 * statement that writes it, which cost a fifth of the server CPU of a
 * one-step workflow (bench/run).  The engine is their only writer (no
 * role may write them directly) and validates every value first; the
 * allowed values are listed beside each column.
 */
CREATE TABLE durable.runs (
    run_id          bigint PRIMARY KEY DEFAULT nextval('durable.run_id_seq'),
    namespace       text NOT NULL,
    workflow_id     text NOT NULL,
    workflow_type   text NOT NULL,
    queue           text NOT NULL,
    -- running, completed, failed, cancelled, terminated, timed_out or
    -- continued_as_new
    status          text NOT NULL DEFAULT 'running',
    input           jsonb,
    output          jsonb,
    error           jsonb,
    priority        int NOT NULL DEFAULT 0,
    -- what the start asked for that the engine does not act on: memo,
    -- search attributes, start delay and execution timeout as given
    options         jsonb NOT NULL DEFAULT '{}',
    request_id      text,
    cancel_requested boolean NOT NULL DEFAULT false,
    parent_run_id   bigint,
    parent_seq      int,
    deadline_at     timestamptz,
    created_at      timestamptz NOT NULL,
    closed_at       timestamptz,
    -- engine state from the start options, typed so that no statement
    -- parses jsonb for it: the attempt of a workflow retry policy (1 for
    -- the first run and after continue-as-new), that policy, the run
    -- timeout, the execution deadline (carried to retries and new runs)
    -- and a child's parent-close policy (terminate, request_cancel or
    -- abandon)
    attempt         int NOT NULL DEFAULT 1,
    retry_policy    jsonb,
    run_timeout     interval,
    execution_deadline timestamptz,
    parent_close_policy text,
    -- paused by wf_pause: no task of the run is handed out until
    -- wf_unpause (durable.tasks.state 'paused')
    paused          boolean NOT NULL DEFAULT false,
    -- the run's number within its workflow id: 1 for the first run, one
    -- more for each later run (continue-as-new, retry, reset, a new start
    -- after the last closed).  A run is inserted with the latest number
    -- plus one and only while the latest is closed, so the unique
    -- runs_workflow_id keeps at most one open run per workflow id
    -- without an index on what the close changes.
    run_number      int NOT NULL,
    -- the fairness key and weight of its tasks (start options, a child's
    -- parent's by default; NULL: the key '' with weight 1)
    fairness_key    text,
    fairness_weight real
);
COMMENT ON TABLE durable.runs IS
    'One row per workflow run; open runs have status running';
/*
 * No index of runs names a column the close changes (status, output,
 * error, closed_at; the close clears deadline_at, which only runs with a
 * timeout have), so closing a run is a HOT update that writes no index
 * entry, and fillfactor leaves the page room for it.
 */
ALTER TABLE durable.runs SET (fillfactor = 80);
-- a workflow id's runs in order, and (unique) at most one open run per
-- workflow id: see run_number
CREATE UNIQUE INDEX runs_workflow_id ON durable.runs (namespace, workflow_id, run_number);
-- workflow timeouts: a run's deadline until it closes
CREATE INDEX runs_deadline ON durable.runs (deadline_at)
    WHERE deadline_at IS NOT NULL;
-- children of a run (parent-close policy, cancels), open or closed
CREATE INDEX runs_parent ON durable.runs (parent_run_id)
    WHERE parent_run_id IS NOT NULL;
-- the few paused runs, for the background worker that parks their tasks
CREATE INDEX runs_paused ON durable.runs (run_id) WHERE paused;
-- equality filters on search attributes (wf_list's "CustomerId = 'c-7'",
-- a keyword list holding a value): only the runs that have attributes
-- are in it, so a start without any writes no entry
CREATE INDEX runs_search_attributes ON durable.runs
    USING gin ((options->'search_attributes') jsonb_path_ops)
    WHERE options ? 'search_attributes';

/*
 * The hot table: tasks that are ready or leased.  A row leaves when its
 * work is done.  seq 0 is the run's workflow task, seq n > 0 the activity
 * of step n, so the primary key also guarantees at most one workflow task
 * per run.  visible_at is the ready time while ready (claims use
 * tasks_claim) and the lease expiry while leased (expiry walks
 * tasks_token), so each index holds only the rows its scan wants.
 */
CREATE TABLE durable.tasks (
    run_id      bigint NOT NULL,
    seq         int NOT NULL,
    kind        text NOT NULL,      -- workflow (seq 0) or activity
    namespace   text NOT NULL,
    queue       text NOT NULL,
    priority    int NOT NULL DEFAULT 0,
    -- ready, leased, or paused (its run is paused: not claimable)
    state       text NOT NULL DEFAULT 'ready',
    visible_at  timestamptz NOT NULL,
    token       bigint,
    worker      text,
    attempt     int NOT NULL DEFAULT 0,
    claimed_at  timestamptz,
    lease       interval,
    rerun       boolean NOT NULL DEFAULT false,
    heartbeat   jsonb,
    heartbeat_at timestamptz,
    created_at  timestamptz NOT NULL,
    -- the first workflow task of a run a client or schedule started, not
    -- claimed yet: claims take it after the tasks of runs in flight of
    -- the same priority, so a backlog of new runs does not hold back the
    -- runs already started
    new_run     boolean NOT NULL DEFAULT false,
    -- fair order (fairness.c): the task's key (NULL: '') and weight, and
    -- its pass: a queue's ready tasks of one priority are claimed in pass
    -- order; 'Infinity' while it is ready only later
    fairness_key text,
    fairness_weight real NOT NULL DEFAULT 1,
    pass        float8 NOT NULL DEFAULT 'Infinity',
    -- how far priority aging raised the ready task's priority (its own is
    -- priority - aged; a claim takes it back down)
    aged        int NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE durable.tasks IS
    'Ready and leased tasks; a row leaves when its work is done';
-- a queue table churns: vacuum it early and leave room for HOT updates
ALTER TABLE durable.tasks SET (fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0);
-- claim order: priority (higher first, hence its negation: a claim starts
-- at its queue's floor with one row comparison, see src/claim_floor.c),
-- runs in flight before new runs, then fair order
CREATE INDEX tasks_claim ON durable.tasks
    (namespace, queue, (- priority), new_run, pass) WHERE state = 'ready';
-- a task has a token exactly while it is leased (every statement that makes
-- a task ready again clears it), so the engine finds a leased task by its
-- token alone, and the statements that look at every leased task (lease
-- expiry and the next due time in the background worker, the leased count
-- of a queue with a concurrency limit) say token IS NOT NULL and walk this
-- index: leased tasks are those in flight, few.  There is no index of
-- lease expiry times: a claim is a non-HOT update that writes an entry in
-- every index whose predicate the leased row meets, and a second one cost
-- each workflow an index entry (bench/README.md, 7 -> 6 per one-step
-- workflow).  Without any index those statements scanned the table and
-- every dead row in it (11% of the server's CPU under a steady one-step
-- load).
CREATE UNIQUE INDEX tasks_token ON durable.tasks (token) WHERE token IS NOT NULL;
-- ready later than made (start delay, retry backoff): the background
-- worker notifies their queue when they come due
CREATE INDEX tasks_delayed ON durable.tasks (visible_at)
    WHERE state = 'ready' AND visible_at > created_at;
-- tasks without a place in the fair order yet (made ready for later): the
-- periodic work gives them one when they come due
CREATE INDEX tasks_unplaced ON durable.tasks (visible_at) WHERE pass = 'Infinity'::float8;

/* The journal: one row per step of a run, created once, resolved once. */
CREATE TABLE durable.steps (
    run_id      bigint NOT NULL,
    seq         int NOT NULL,       -- 1, 2, ...
    kind        text NOT NULL,      -- local, activity, sleep, signal or child
    name        text NOT NULL,
    status      text NOT NULL,      -- pending, completed, failed or cancelled
    input       jsonb,
    result      jsonb,
    error       jsonb,
    queue       text,
    attempt     int NOT NULL DEFAULT 0,
    scheduled_at timestamptz NOT NULL,
    resolved_at timestamptz,
    due_at      timestamptz,
    -- an activity's retry policy (as given, validated; NULL: Temporal's
    -- defaults) and timeouts
    retry_policy jsonb,
    start_to_close interval,
    schedule_to_close interval,
    schedule_to_start interval,
    heartbeat_timeout interval,
    PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE durable.steps IS
    'The journal: each run''s steps, numbered by seq';
-- timers and step timeouts waiting for the background worker
CREATE INDEX steps_due ON durable.steps (due_at) WHERE status = 'pending' AND due_at IS NOT NULL;

/*
 * History: events that cannot be derived from the rows above.  Started,
 * scheduled, resolved and closed events are derived from runs and steps
 * (see durable.history), so the hot path writes no history row.
 */
CREATE TABLE durable.events (
    event_id    bigint PRIMARY KEY DEFAULT nextval('durable.history_id_seq'),
    run_id      bigint NOT NULL,
    seq         int,
    event_type  text NOT NULL,
    details     jsonb,
    created_at  timestamptz NOT NULL
);
COMMENT ON TABLE durable.events IS
    'History events that cannot be derived from runs and steps';
CREATE INDEX events_run ON durable.events (run_id, event_id);

/* Signals sent to a run; kept after delivery for idempotency and history. */
CREATE TABLE durable.signals (
    signal_no   bigint PRIMARY KEY DEFAULT nextval('durable.history_id_seq'),
    run_id      bigint NOT NULL,
    name        text NOT NULL,
    payload     jsonb,
    signal_id   text,
    consumed_seq int,
    created_at  timestamptz NOT NULL
);
COMMENT ON TABLE durable.signals IS
    'Signals sent to runs: buffered until a signal step takes them (consumed_seq)';
CREATE INDEX signals_buffered ON durable.signals (run_id, name, signal_no)
    WHERE consumed_seq IS NULL;
CREATE UNIQUE INDEX signals_idempotency ON durable.signals (run_id, signal_id)
    WHERE signal_id IS NOT NULL;

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

/* Queue settings; a queue without a row is active. */
/*
 * Backends cache what they read of two small settings tables (grants,
 * queues' limits); this statement trigger on each empties every
 * backend's cache when a change commits.
 */
CREATE FUNCTION durable.table_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'durable_table_changed'
LANGUAGE C SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION durable.table_changed() IS
    'Trigger: a change to durable.grants or durable.queues empties what backends cached of it';

CREATE TABLE durable.queues (
    namespace   text NOT NULL,
    queue       text NOT NULL,
    paused      boolean NOT NULL DEFAULT false,
    note        text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- at most this many of the queue's tasks leased at once (NULL: no limit)
    max_concurrency int CHECK (max_concurrency > 0),
    -- at most max_rate claims per second, in bursts of up to rate_burst: a
    -- token bucket holding bucket tokens at bucket_at (NULL: no limit)
    max_rate    double precision CHECK (max_rate > 0),
    rate_burst  int CHECK (rate_burst > 0),
    bucket      double precision,
    bucket_at   timestamptz,
    -- at most this many tasks of one fairness key leased at once (NULL: no
    -- limit), but for the keys named in the overrides ({key: n})
    key_concurrency int CHECK (key_concurrency >= 0),
    key_concurrency_overrides jsonb,
    -- at most key_rate claims per second of each key's tasks, in bursts of
    -- up to key_rate_burst (NULL: no limit; buckets in durable.key_buckets)
    key_rate    double precision CHECK (key_rate > 0),
    key_rate_burst int CHECK (key_rate_burst > 0),
    -- what a poll does with an activity whose key is at its limit: it
    -- waits, it is cancelled (cancel_newest), or the key's oldest leased
    -- activity is (cancel_oldest)
    key_on_limit text NOT NULL DEFAULT 'wait'
        CHECK (key_on_limit IN ('wait', 'cancel_newest', 'cancel_oldest')),
    -- priority aging: a ready task runs one priority higher for each
    -- aging_every it has waited, up to aging_up_to (NULL: no aging)
    aging_every interval CHECK (aging_every >= interval '1 s'),
    aging_up_to int NOT NULL DEFAULT 1000 CHECK (aging_up_to BETWEEN -1000 AND 1000),
    PRIMARY KEY (namespace, queue)
);
-- (not on updates of the bucket, which every poll of a rate-limited queue
-- writes: that would drop every backend's plans and caches each time)
CREATE TRIGGER queues_changed
    AFTER INSERT OR DELETE OR TRUNCATE
    OR UPDATE OF paused, max_concurrency, max_rate, key_concurrency,
              key_concurrency_overrides, key_rate
    ON durable.queues FOR EACH STATEMENT EXECUTE FUNCTION durable.table_changed();
COMMENT ON TABLE durable.queues IS
    'Queue settings: a paused queue hands out no tasks (work still queues up)';

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

/* Schedules: cron-like rules that start workflows (see src/schedule.c). */
CREATE TABLE durable.schedules (
    namespace       text NOT NULL,
    name            text NOT NULL,
    spec            text NOT NULL,
    timezone        text NOT NULL DEFAULT 'UTC',
    workflow_type   text NOT NULL,
    input           jsonb,
    queue           text NOT NULL DEFAULT 'default',
    workflow_options jsonb NOT NULL DEFAULT '{}',
    overlap         text NOT NULL DEFAULT 'skip'
        CHECK (overlap IN ('skip', 'buffer_one', 'allow_all', 'cancel_other',
                           'terminate_other')),
    catchup_window  interval NOT NULL DEFAULT '365 days',
    paused          boolean NOT NULL DEFAULT false,
    note            text,
    next_fire_at    timestamptz,
    last_fire_at    timestamptz,
    last_workflow_id text,
    buffered_fire_at timestamptz,
    fires           bigint NOT NULL DEFAULT 0,
    skipped         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (namespace, name)
);
COMMENT ON TABLE durable.schedules IS
    'Schedules: a spec (cron or interval) that starts a workflow at each fire time';
CREATE INDEX schedules_due ON durable.schedules (next_fire_at) WHERE NOT paused;

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

/* Who may do what: see durable.grant_client, grant_worker, grant_admin. */
CREATE TABLE durable.grants (
    -- regrole, not oid: a dump names the role, so a restore into another
    -- cluster (other oids) gives the rights to the same-named role
    role        regrole NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('client', 'worker', 'admin')),
    namespace   text NOT NULL,
    queue       text NOT NULL DEFAULT '*',
    PRIMARY KEY (role, kind, namespace, queue)
);
COMMENT ON TABLE durable.grants IS
    'Rights of roles: client (per namespace), worker (per namespace and queue), admin';
-- backends cache the rights they looked up; a change empties every cache
CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON durable.grants FOR EACH STATEMENT EXECUTE FUNCTION durable.table_changed();

/*
 * Client functions.
 *
 * Every engine function pins search_path (its statements run as the
 * extension's owner) and turns bitmap scans off: the engine's plans are
 * kept for the life of a backend, and a bitmap scan of the queue tables
 * (which the planner picks once statistics show a small table) cannot
 * mark the dead index entries a busy queue leaves behind, so claims
 * slowed down threefold within 30 s of sustained load until the next
 * vacuum (bench/run).  Index scans mark them and skip them.
 */
CREATE FUNCTION durable.wf_start(name text, input jsonb DEFAULT NULL,
                                 workflow_id text DEFAULT NULL,
                                 queue text DEFAULT 'default',
                                 options jsonb DEFAULT '{}')
RETURNS text
AS 'MODULE_PATHNAME', 'durable_wf_start'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_start(text, jsonb, text, text, jsonb) IS
    'Start a workflow run in the current namespace; returns its workflow id';

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

CREATE FUNCTION durable.task_publish(token bigint, name text, value jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_publish'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_publish(bigint, text, jsonb) IS
    'Publish a named value of the run whose workflow task the token holds (NULL removes it)';

CREATE FUNCTION durable.task_upsert_search_attributes(token bigint, seq int, attributes jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_upsert_search_attributes'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_upsert_search_attributes(bigint, int, jsonb) IS
    'Set search attributes of the run whose workflow task the token holds (null removes one), journaled as step seq';

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

CREATE FUNCTION durable.task_answer_query(token bigint, result jsonb,
                                          error jsonb DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_task_answer_query'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_answer_query(bigint, jsonb, jsonb) IS
    'Answer a live query a poll handed out (kind query): its result, or error; false when its caller stopped waiting';

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

CREATE FUNCTION durable.wf_cancel(workflow_id text, reason text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_wf_cancel'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_cancel(text, text) IS
    'Ask a running workflow to cancel; its next workflow task and its activities'' heartbeats see the request';

CREATE FUNCTION durable.wf_terminate(workflow_id text, reason text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_wf_terminate'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_terminate(text, text) IS
    'Close a running workflow at once as terminated, withdrawing its outstanding tasks';

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

CREATE FUNCTION durable.wf_result(workflow_id text, wait interval DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'durable_wf_result'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_result(text, interval) IS
    'Output of the latest run; NULL while running (waits up to wait); raises DU010 if it failed';

CREATE FUNCTION durable.wf_signal(workflow_id text, signal text,
                                  payload jsonb DEFAULT NULL,
                                  signal_id text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_wf_signal'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.wf_signal(text, text, jsonb, text) IS
    'Send a signal to the open run of a workflow; buffered until the workflow waits for it';

CREATE FUNCTION durable.may_read(namespace text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_may_read'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION durable.may_read(text) IS
    'True when the current user holds client or admin rights on the namespace';

/*
 * Worker functions.
 */
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

CREATE FUNCTION durable.step_record(token bigint, seq int, name text,
                                    result jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_step_record'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.step_record(bigint, int, text, jsonb) IS
    'Checkpoint the result of a local step of the leased workflow task';

CREATE FUNCTION durable.step_record(token bigint, steps jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_step_record_many'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.step_record(bigint, jsonb) IS
    'Checkpoint several local steps at once: [{"seq", "name", "result"}, ...]';

CREATE FUNCTION durable.task_suspend(token bigint, commands jsonb,
                                     steps jsonb DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_suspend'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_suspend(bigint, jsonb, jsonb) IS
    'End a workflow task that waits: record steps, apply commands atomically';

CREATE FUNCTION durable.task_complete(token bigint, result jsonb DEFAULT NULL,
                                      steps jsonb DEFAULT NULL,
                                      continue_as_new jsonb DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_complete'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_complete(bigint, jsonb, jsonb, jsonb) IS
    'Finish a task: an activity''s result resolves its step; a workflow''s result closes the run, or continue_as_new starts a fresh run with that input';

CREATE FUNCTION durable.task_complete_many(tokens bigint[], results jsonb[])
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_complete_many'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_complete_many(bigint[], jsonb[]) IS
    'Finish several tasks in one call; results[i] belongs to tokens[i]';

CREATE FUNCTION durable.task_fail(token bigint, error jsonb,
                                  retryable boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_fail'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_fail(bigint, jsonb, boolean) IS
    'Fail a task: retried by its retry policy when retryable, else the activity''s step or the run fails';

CREATE FUNCTION durable.task_heartbeat(token bigint, details jsonb DEFAULT NULL,
                                       lease interval DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'durable_task_heartbeat'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_heartbeat(bigint, jsonb, interval) IS
    'Extend a task''s lease (by lease, default the lease it was claimed with) and save progress details; returns true when cancellation was requested';

CREATE FUNCTION durable.task_release(token bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_task_release'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.task_release(bigint) IS
    'Hand a leased task back unfinished (graceful shutdown): ready again at once, the attempt does not count';

/*
 * Administration.
 */
CREATE FUNCTION durable.tick()
RETURNS int
AS 'MODULE_PATHNAME', 'durable_tick'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.tick() IS
    'Do the background worker''s periodic work once (expired leases, due timers and timeouts); returns the number of items handled';

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

/*
 * Schedules (administration).
 */
CREATE FUNCTION durable.schedule_create(name text, spec text, workflow text,
                                        input jsonb DEFAULT NULL,
                                        options jsonb DEFAULT '{}')
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'durable_schedule_create'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_create(text, text, text, jsonb, jsonb) IS
    'Create a schedule in the current namespace; returns its first fire time';

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

CREATE FUNCTION durable.schedule_pause(name text, note text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_schedule_pause'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_pause(text, text) IS
    'Pause a schedule; fires that fall due while paused are not caught up';

CREATE FUNCTION durable.schedule_unpause(name text, note text DEFAULT NULL)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'durable_schedule_unpause'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_unpause(text, text) IS
    'Resume a schedule from now; returns its next fire time';

CREATE FUNCTION durable.schedule_trigger(name text)
RETURNS text
AS 'MODULE_PATHNAME', 'durable_schedule_trigger'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_trigger(text) IS
    'Fire a schedule now (its overlap policy applies); returns the workflow id, or NULL if skipped';

CREATE FUNCTION durable.schedule_backfill(name text, start_time timestamptz,
                                          end_time timestamptz)
RETURNS int
AS 'MODULE_PATHNAME', 'durable_schedule_backfill'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_backfill(text, timestamptz, timestamptz) IS
    'Start the workflows of every fire time in [start_time, end_time) that has none yet; returns how many started';

CREATE FUNCTION durable.schedule_delete(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_schedule_delete'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_delete(text) IS
    'Delete a schedule; workflows it started are not touched';

CREATE FUNCTION durable.schedule_next_times(spec text, count int DEFAULT 5,
                                            timezone text DEFAULT 'UTC',
                                            after timestamptz DEFAULT NULL)
RETURNS SETOF timestamptz
AS 'MODULE_PATHNAME', 'durable_schedule_next_times'
LANGUAGE C STABLE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.schedule_next_times(text, int, text, timestamptz) IS
    'The next fire times of a spec after a time (default now), to check a cron expression';

/*
 * Queues (administration).
 */
CREATE FUNCTION durable.queue_pause(queue text, note text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_pause'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_pause(text, text) IS
    'Pause a queue of the current namespace: polls get no tasks from it until it is unpaused';

CREATE FUNCTION durable.queue_unpause(queue text, note text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_unpause'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_unpause(text, text) IS
    'Resume a paused queue and wake its workers';

CREATE FUNCTION durable.queue_set_concurrency(queue text, max_concurrency int)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_concurrency'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_concurrency(text, int) IS
    'At most max_concurrency tasks of the queue leased at once (NULL: no limit)';

CREATE FUNCTION durable.queue_set_key_concurrency(queue text, max_per_key int,
                                                  overrides jsonb DEFAULT NULL,
                                                  on_limit text DEFAULT 'wait')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_key_concurrency'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_key_concurrency(text, int, jsonb, text) IS
    'At most max_per_key tasks of each fairness key of the queue leased at once, overrides {key: n} for named keys (NULL, NULL: no limit); on_limit: wait, cancel_newest or cancel_oldest';

CREATE FUNCTION durable.queue_set_priority_aging(queue text, every interval,
                                                up_to int DEFAULT 1000)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_priority_aging'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_priority_aging(text, interval, int) IS
    'A ready task of the queue runs one priority higher for each interval every it has waited, up to up_to (NULL every: no aging)';

CREATE FUNCTION durable.queue_set_key_rate(queue text, per_second double precision,
                                           burst int DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_key_rate'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_key_rate(text, double precision, int) IS
    'At most per_second claims per second of each fairness key''s tasks of the queue, in bursts of up to burst (NULL: no limit)';

CREATE FUNCTION durable.queue_set_rate(queue text, per_second double precision,
                                       burst int DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_queue_set_rate'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.queue_set_rate(text, double precision, int) IS
    'At most per_second claims of the queue''s tasks per second, in bursts of up to burst (NULL: no limit)';

/*
 * Views.  They run with their owner's rights but filter rows by
 * durable.may_read, so a client sees the namespaces it was granted.  They
 * are security barriers: a function in the reader's WHERE clause that is
 * not leakproof runs only on rows that passed may_read, whatever plan the
 * planner picks.
 */
CREATE VIEW durable.published_state WITH (security_barrier) AS
SELECT r.namespace, r.workflow_id, p.run_id, p.name, p.value, p.updated_at
  FROM durable.published p JOIN durable.runs r USING (run_id)
 WHERE durable.may_read(r.namespace);
COMMENT ON VIEW durable.published_state IS
    'State published by the runs the current user may read';

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

CREATE VIEW durable.workflows WITH (security_barrier) AS
SELECT r.namespace, r.workflow_id, r.run_id, r.workflow_type, r.queue,
       r.status, r.input, r.output, r.error, r.priority, r.options,
       r.cancel_requested, r.parent_run_id, r.created_at, r.closed_at,
       r.attempt, r.paused, r.run_number
  FROM durable.runs r
 WHERE durable.may_read(r.namespace);
COMMENT ON VIEW durable.workflows IS 'Workflow runs the current user may read';

CREATE VIEW durable.journal WITH (security_barrier) AS
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
COMMENT ON VIEW durable.journal IS 'Steps of the runs the current user may read';

CREATE VIEW durable.history WITH (security_barrier) AS
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

CREATE VIEW durable.batch_list WITH (security_barrier) AS
SELECT b.batch_id, b.namespace, b.operation, b.query, b.signal, b.reason, b.state,
       b.applied, b.skipped, b.failed, b.last_error, b.after_run_id, b.max_run_id,
       b.created_at, b.updated_at, b.closed_at
  FROM durable.batches b
 WHERE durable.may_read(b.namespace);
COMMENT ON VIEW durable.batch_list IS
    'Batch operations of the namespaces the current user may read, with their progress';

CREATE VIEW durable.schedule_list AS
SELECT namespace, name, spec, timezone, workflow_type, queue, overlap,
       catchup_window, paused, note, next_fire_at, last_fire_at,
       last_workflow_id, buffered_fire_at IS NOT NULL AS buffered, fires,
       skipped, created_at
  FROM durable.schedules;
COMMENT ON VIEW durable.schedule_list IS 'Schedules with their next fire times (admin)';

CREATE VIEW durable.task_list AS
SELECT t.namespace, t.queue, t.kind, r.workflow_id, t.run_id, t.seq,
       t.state, t.priority, t.visible_at, t.worker, t.attempt, t.claimed_at,
       t.heartbeat_at
  FROM durable.tasks t JOIN durable.runs r USING (run_id);
COMMENT ON VIEW durable.task_list IS 'Ready and leased tasks (admin)';

CREATE VIEW durable.queue_stats AS
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
COMMENT ON VIEW durable.queue_stats IS 'Ready and leased tasks per queue, whether it is paused, its concurrency and rate limits (admin)';

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

/*
 * Thin wrappers for reading one workflow.
 */
CREATE FUNCTION durable.wf_status(workflow_id text)
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

CREATE FUNCTION durable.wf_history(workflow_id text)
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

CREATE FUNCTION durable.wf_describe(workflow_id text)
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

CREATE FUNCTION durable.wf_signal_with_start(name text, input jsonb,
                                             workflow_id text, signal text,
                                             payload jsonb DEFAULT NULL,
                                             queue text DEFAULT 'default',
                                             options jsonb DEFAULT '{}',
                                             signal_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF options IS NOT NULL AND jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'invalid workflow options: expected a JSON object'
            USING ERRCODE = 'DU001';
    END IF;
    PERFORM durable.wf_start(name, input, workflow_id, queue,
        coalesce(options, '{}') || '{"id_conflict_policy": "use_existing"}');
    PERFORM durable.wf_signal(workflow_id, signal, payload, signal_id);
    RETURN workflow_id;
END
$$;
COMMENT ON FUNCTION durable.wf_signal_with_start(text, jsonb, text, text, jsonb, text, jsonb, text) IS
    'Signal a workflow, starting it first when it is not running, in one transaction';

/*
 * Namespaces.
 */
CREATE FUNCTION durable.namespace_create(namespace text,
                                         retention interval DEFAULT '7 days')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_namespace_create'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.namespace_create(text, interval) IS
    'Create a namespace; closed runs are purged after its retention';

CREATE FUNCTION durable.namespace_set_retention(namespace text, retention interval)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_namespace_set_retention'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.namespace_set_retention(text, interval) IS
    'Change how long closed runs of a namespace are kept';

/*
 * Rights.  Nothing is granted to PUBLIC; these functions grant EXECUTE on
 * the right set of functions and record the namespace or queue.
 */

CREATE FUNCTION durable.grant_client(role regrole, namespace text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_grant_client'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.grant_client(regrole, text) IS
    'Let a role start, signal, cancel and read workflows of a namespace (''*'': every namespace)';

CREATE FUNCTION durable.grant_worker(role regrole, queue text DEFAULT '*',
                                     namespace text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'durable_grant_worker'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.grant_worker(regrole, text, text) IS
    'Let a role poll and finish tasks of a queue (''*'': every queue) of a namespace';

CREATE FUNCTION durable.grant_admin(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_grant_admin'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.grant_admin(regrole) IS
    'Let a role do everything: every namespace and queue, grants, tick, read every table';

CREATE FUNCTION durable.revoke_all(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'durable_revoke_all'
LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off;
COMMENT ON FUNCTION durable.revoke_all(regrole) IS
    'Take every durable right from a role';

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

-- nothing is granted to PUBLIC
REVOKE ALL ON ALL TABLES IN SCHEMA durable FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA durable FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA durable FROM PUBLIC;
-- monitoring roles read the metrics, as they read pg_stat_* (pg_buffercache
-- and pg_stat_statements grant to pg_monitor too)
GRANT USAGE ON SCHEMA durable TO pg_monitor;
GRANT EXECUTE ON FUNCTION durable.metrics() TO pg_monitor;

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
SELECT pg_catalog.pg_extension_config_dump('durable.published', '');
SELECT pg_catalog.pg_extension_config_dump('durable.updates', '');
SELECT pg_catalog.pg_extension_config_dump('durable.search_attributes', '');
SELECT pg_catalog.pg_extension_config_dump('durable.queues', '');
SELECT pg_catalog.pg_extension_config_dump('durable.key_buckets', '');
SELECT pg_catalog.pg_extension_config_dump('durable.schedules', '');
SELECT pg_catalog.pg_extension_config_dump('durable.grants', '');
SELECT pg_catalog.pg_extension_config_dump('durable.batches', '');
SELECT pg_catalog.pg_extension_config_dump('durable.batch_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('durable.run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('durable.token_seq', '');
SELECT pg_catalog.pg_extension_config_dump('durable.history_id_seq', '');
