/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  The state machine's shared moves, used by worker calls, client calls
 *	  and the periodic work alike: wake a run's workflow task, resolve a
 *	  step, retry or fail an activity attempt, close a run, and append a
 *	  history event.  Each move is one or two prepared statements.
 *
 *	  Callers have already connected SPI and act as the extension owner
 *	  (durable_enter).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "durable.h"

static void close_children(int64 parent_run, TimestampTz now);

/*
 * durable_history_add: append an event that cannot be derived from the run's
 * rows (retries, timeouts, cancel requests, signals, failures).
 */
void
durable_history_add(int64 run_id, int seq, const char *event, Jsonb *details)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, INT4OID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = "     ";

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	if (seq <= 0)
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(event);
	values[3] = PointerGetDatum(details);
	if (details == NULL)
		nulls[3] = 'n';
	values[4] = TimestampTzGetDatum(durable_now());
	durable_plan(&plan,
				 "INSERT INTO durable.events (run_id, seq, event_type, details, created_at) "
				 "VALUES ($1, $2, $3, $4, $5)", 5, types);
	durable_exec(plan, values, nulls, false, 0);
}

/*
 * durable_engine_wake_workflows: steps of these runs resolved (or a cancel request
 * arrived), so their workflow code must run again.  Invariant: at most
 * one workflow task per run.  Where none exists, one is made ready now;
 * where one is leased, it is marked to be made ready again when its
 * worker ends it (rerun); where one is ready, nothing changes.  Closed
 * runs and repeated ids are skipped.  The one place workflow tasks are
 * woken: single steps and timer rounds alike.
 */
void
durable_engine_wake_workflows(Datum run_ids, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		values[2];
	uint64		i;

	values[0] = run_ids;
	values[1] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "INSERT INTO durable.tasks AS t (run_id, seq, kind, namespace, queue, "
				 "       priority, visible_at, created_at) "
				 "SELECT DISTINCT ON (r.run_id) r.run_id, 0, 'workflow', r.namespace, "
				 "       r.queue, r.priority, $2, $2 "
				 "  FROM durable.runs r WHERE r.run_id = ANY ($1) AND r.status = 'running' "
				 "ON CONFLICT (run_id, seq) DO UPDATE SET rerun = true "
				 " WHERE t.state = 'leased' "
				 "RETURNING t.namespace, t.queue, t.state",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		if (strcmp(SPI_getvalue(tup, desc, 3), "ready") == 0)
			durable_queue_gained_work(SPI_getvalue(tup, desc, 1),
									  SPI_getvalue(tup, desc, 2));
	}
}

void
durable_engine_wake_workflow(int64 run_id, TimestampTz now)
{
	Datum		id = Int64GetDatum(run_id);

	durable_engine_wake_workflows(PointerGetDatum(construct_array(&id, 1, INT8OID, 8,
														  FLOAT8PASSBYVAL,
														  TYPALIGN_DOUBLE)),
						  now);
}

/*
 * durable_engine_resolve_step: resolve a pending step once (completed, failed or
 * cancelled) and wake its workflow.  A step that is no longer pending is
 * left alone: a journal entry is resolved once.
 */
void
durable_engine_resolve_step(int64 run_id, int seq, const char *status, Jsonb *result,
					Jsonb *error, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {INT8OID, INT4OID, TEXTOID, JSONBOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	values[2] = CStringGetTextDatum(status);
	values[3] = PointerGetDatum(result);
	if (result == NULL)
		nulls[3] = 'n';
	values[4] = PointerGetDatum(error);
	if (error == NULL)
		nulls[4] = 'n';
	values[5] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "UPDATE durable.steps s SET status = $3, result = $4, error = $5, "
				 "       resolved_at = $6, attempt = coalesce((SELECT t.attempt "
				 "         FROM durable.tasks t WHERE t.run_id = $1 AND t.seq = $2), s.attempt) "
				 " WHERE s.run_id = $1 AND s.seq = $2 AND s.status = 'pending'",
				 6, types);
	durable_exec(plan, values, nulls, false, 0);
	if (SPI_processed == 1)
		durable_engine_wake_workflow(run_id, now);
}

/*
 * Closing runs: the running runs chosen by WHICH close with status $3,
 * error $4 at $5 and output OUTPUT; their pending steps are cancelled and
 * their tasks withdrawn, in the same statement: a closed run has no
 * outstanding tasks, timers or waits (signals it never took stay, as
 * history).  Both close statements below share this part; CLOSED says
 * how the later parts match the closed runs (= for one, IN for many: a
 * scalar match keeps every scan an index scan on the primary key).
 */
#define CLOSE_RUNS_CTES(WHICH, OUTPUT, CLOSED) \
	"     r AS (UPDATE durable.runs u SET status = $3, output = " OUTPUT ", " \
	"                  error = $4, closed_at = $5 " \
	"            " WHICH " AND u.status = 'running' " \
	"           RETURNING u.run_id, u.parent_run_id, u.parent_seq, u.output, u.options, " \
	"                     u.cancel_requested), " \
	"     s AS (UPDATE durable.steps SET status = 'cancelled', resolved_at = $5 " \
	"            WHERE run_id " CLOSED " (SELECT run_id FROM r) AND status = 'pending' " \
	"           RETURNING run_id, kind), " \
	"     t AS (DELETE FROM durable.tasks WHERE run_id " CLOSED " (SELECT run_id FROM r) " \
	"           RETURNING 1) "
/* the columns each closed run returns, starting at column first */
#define CLOSED_RUN_COLUMNS \
	"r.run_id, r.parent_run_id, r.parent_seq, r.output, " \
	"(SELECT count(*) FROM s WHERE s.run_id = r.run_id AND s.kind = 'child'), " \
	"CASE WHEN NOT r.cancel_requested THEN r.options END "

typedef struct ClosedRun
{
	int64		run_id;
	bool		has_parent;
	int64		parent_run;
	int			parent_seq;
	Jsonb	   *output;
	int64		children;
	Jsonb	   *options;		/* read only for runs that may be retried
								 * (NULL after a cancel request: never) */
} ClosedRun;

static bool
may_retry(const char *status)
{
	return strcmp(status, "failed") == 0 || strcmp(status, "timed_out") == 0;
}

static void
read_closed_run(HeapTuple tup, TupleDesc desc, int first, const char *status,
				ClosedRun *c)
{
	bool		isnull;
	Datum		d;

	c->run_id = DatumGetInt64(SPI_getbinval(tup, desc, first, &isnull));
	c->parent_run = DatumGetInt64(SPI_getbinval(tup, desc, first + 1, &isnull));
	c->has_parent = !isnull;
	c->parent_seq = DatumGetInt32(SPI_getbinval(tup, desc, first + 2, &isnull));
	d = SPI_getbinval(tup, desc, first + 3, &isnull);
	c->output = isnull ? NULL : DatumGetJsonbPCopy(d);
	c->children = DatumGetInt64(SPI_getbinval(tup, desc, first + 4, &isnull));
	c->options = NULL;
	if (may_retry(status))
	{
		d = SPI_getbinval(tup, desc, first + 5, &isnull);
		c->options = isnull ? NULL : DatumGetJsonbPCopy(d);
	}
	/* wf_result calls waiting for this run wake when this commits */
	durable_run_closed(c->run_id);
}

/*
 * retry_delay_ms: a run that closes failed or timed out starts again (a
 * new run of the same workflow id and input, Temporal's workflow retry)
 * when its retry policy allows it: attempts left, the error's type not
 * listed as non-retryable, the next attempt starting before the execution
 * deadline, and no cancel requested.  Returns the backoff in ms and the
 * attempt that ended, or -1.
 */
static int64
retry_delay_ms(Jsonb *options, const char *status, Jsonb *error,
			   TimestampTz now, int *attempt)
{
	JsonbValue *v;
	RetryPolicy rp;
	int64		backoff;

	if (options == NULL || !may_retry(status))
		return -1;
	v = durable_jb_get(options, "retry_policy");
	if (v == NULL || v->type != jbvBinary)
		return -1;
	durable_retry_policy_parse(JsonbValueToJsonb(v), &rp, "workflow retry policy");
	v = durable_jb_get(options, "attempt");
	*attempt = 1;
	if (v != NULL && v->type == jbvNumeric)
		*attempt = DatumGetInt32(DirectFunctionCall1(numeric_int4,
													 NumericGetDatum(v->val.numeric)));
	if (rp.maximum_attempts > 0 && *attempt >= rp.maximum_attempts)
		return -1;
	if (strcmp(status, "failed") == 0 && !durable_retry_error_is_retryable(&rp, error))
		return -1;
	backoff = durable_retry_backoff_ms(&rp, *attempt);
	v = durable_jb_get(options, "execution_deadline");
	if (v != NULL && v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
		TimestampTz deadline = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																	   CStringGetDatum(s),
																	   ObjectIdGetDatum(InvalidOid),
																	   Int32GetDatum(-1)));

		/* the next attempt would not even start before the deadline */
		if (now + backoff * 1000 >= deadline)
			return -1;
	}
	return backoff;
}

/*
 * after_close: what a closed run owes others.  Its children get their
 * parent-close policy; a run its retry policy starts again leaves its
 * parent waiting for the next attempt; otherwise a child's close resolves
 * its parent's step.
 */
static void
after_close(ClosedRun *c, const char *status, Jsonb *error, TimestampTz now)
{
	int			attempt;
	int64		delay_ms;

	if (c->children > 0)
		close_children(c->run_id, now);
	delay_ms = retry_delay_ms(c->options, status, error, now, &attempt);
	if (delay_ms >= 0)
	{
		int64		new_run = durable_engine_next_run(c->run_id, NULL, true, now,
											  now + delay_ms * 1000);

		durable_history_add(c->run_id, 0, "retry_scheduled",
					durable_jb_cstring(psprintf("{\"new_run_id\": " INT64_FORMAT ", \"attempt\": %d, "
										"\"backoff_ms\": " INT64_FORMAT "}",
										new_run, attempt + 1, delay_ms)));
		return;
	}
	if (!c->has_parent)
		return;
	if (strcmp(status, "completed") == 0)
		durable_engine_resolve_step(c->parent_run, c->parent_seq, "completed",
							c->output ? c->output : durable_jb_cstring("null"), NULL, now);
	else if (strcmp(status, "continued_as_new") != 0)
	{
		Jsonb	   *err = error ? error :
			durable_jb_cstring(psprintf("{\"type\": \"child_%s\", \"message\": \"child workflow %s\"}",
								status, status));

		durable_engine_resolve_step(c->parent_run, c->parent_seq, "failed", NULL, err, now);
	}
}

/*
 * durable_engine_close_runs: close running runs (all with one status; outputs[i]
 * belongs to run_ids[i], outputs may be NULL) and settle what they owe
 * (after_close).  Runs not running are skipped.  Returns how many closed.
 */
int
durable_engine_close_runs(Datum run_ids, Datum outputs, const char *status,
				  Jsonb *error, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8ARRAYOID, JSONBARRAYOID, TEXTOID, JSONBOID,
	TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = "     ";
	ClosedRun  *closed;
	int			n;
	int			i;

	values[0] = run_ids;
	values[1] = outputs;
	nulls[1] = outputs ? ' ' : 'n';
	values[2] = CStringGetTextDatum(status);
	values[3] = PointerGetDatum(error);
	nulls[3] = error ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "WITH x AS (SELECT * FROM unnest($1, $2) AS x(run_id, output)), "
				 CLOSE_RUNS_CTES("FROM x WHERE u.run_id = x.run_id", "x.output", "IN")
				 "SELECT " CLOSED_RUN_COLUMNS "FROM r",
				 5, types);
	durable_exec(plan, values, nulls, false, 0);
	n = (int) SPI_processed;
	closed = palloc(sizeof(ClosedRun) * (n + 1));
	for (i = 0; i < n; i++)
		read_closed_run(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, status, &closed[i]);
	for (i = 0; i < n; i++)
		after_close(&closed[i], status, error, now);
	return n;
}

/*
 * durable_engine_complete_by_token: the common task_complete in one statement.
 * Finds and locks the task leased under token; when it is a workflow
 * task, its run completes with output in the same statement.  Then the
 * caller's right to the task's queue is checked: a refusal raises an
 * error, which undoes the statement.  Returns false without a row when
 * the token is not current, false with *run_id and *seq set (the task
 * locked) for an activity task, true when the run closed.
 */
bool
durable_engine_complete_by_token(int64 token, Jsonb *output, Oid caller,
						 TimestampTz now, int64 *run_id, int *seq)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, JSONBOID, TEXTOID, JSONBOID,
	TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = "   n ";	/* no error */
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	ClosedRun	closed;
	char	   *ns;
	char	   *queue;

	values[0] = Int64GetDatum(token);
	values[1] = PointerGetDatum(output);
	values[2] = CStringGetTextDatum("completed");
	values[3] = (Datum) 0;
	values[4] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "WITH k AS (SELECT run_id, seq, namespace, queue FROM durable.tasks "
				 "            WHERE token = $1 AND state = 'leased' FOR UPDATE), "
				 CLOSE_RUNS_CTES("WHERE u.run_id = (SELECT run_id FROM k WHERE seq = 0)", "$2", "=")
				 "SELECT k.run_id, k.seq, k.namespace, k.queue, " CLOSED_RUN_COLUMNS
				 "  FROM k LEFT JOIN r ON r.run_id = k.run_id",
				 5, types);
	durable_exec(plan, values, nulls, false, 0);
	*run_id = 0;
	if (SPI_processed != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	*seq = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	ns = SPI_getvalue(tup, desc, 3);
	queue = SPI_getvalue(tup, desc, 4);
	(void) SPI_getbinval(tup, desc, 5, &isnull);
	if (!isnull)
		read_closed_run(tup, desc, 5, "completed", &closed);
	durable_check_right_of(caller, DURABLE_RIGHT_WORKER, ns, queue);
	durable_queue_slot_freed(ns, queue);
	if (isnull)
	{
		if (*seq == 0)
			elog(ERROR, "durable: run " INT64_FORMAT " with a leased workflow task was not running",
				 *run_id);
		return false;
	}
	after_close(&closed, "completed", NULL, now);
	return true;
}

/*
 * durable_engine_next_run: start the next run of a closed run's workflow id, with
 * its type, queue, priority, options, request_id, parent and execution
 * deadline, its first workflow task ready at ready_at.  Continue-as-new
 * passes the new input and starts the attempts of a retry policy again
 * at 1; a retry (retry true) keeps the input and counts the attempt in the
 * options.  Returns the new run's id.
 */
int64
durable_engine_next_run(int64 run_id, Jsonb *input, bool retry, TimestampTz now,
				TimestampTz ready_at)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, JSONBOID, TIMESTAMPTZOID, BOOLOID,
	TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = "     ";
	bool		isnull;
	int64		new_run;

	values[0] = Int64GetDatum(run_id);
	values[1] = PointerGetDatum(input);
	nulls[1] = input ? ' ' : 'n';
	values[2] = TimestampTzGetDatum(now);
	values[3] = BoolGetDatum(retry);
	values[4] = TimestampTzGetDatum(ready_at);
	durable_plan(&plan,
				 "WITH r AS (INSERT INTO durable.runs (namespace, workflow_id, "
				 "       workflow_type, queue, input, priority, options, request_id, "
				 "       created_at, parent_run_id, parent_seq, deadline_at) "
				 "     SELECT namespace, workflow_id, workflow_type, queue, "
				 "            CASE WHEN $4 THEN input ELSE $2 END, priority, "
				 "            CASE WHEN $4 THEN options || jsonb_build_object('attempt', "
				 "                 coalesce((options->>'attempt')::int, 1) + 1) "
				 "                 WHEN options ? 'attempt' THEN options || '{\"attempt\": 1}' "
				 "                 ELSE options END, "
				 "            request_id, $3, parent_run_id, parent_seq, "
				 "            LEAST((options->>'execution_deadline')::timestamptz, "
				 "                  $5 + (options->>'run_timeout_ms')::float8 * interval '1 ms') "
				 "       FROM durable.runs WHERE run_id = $1 "
				 "     RETURNING run_id, namespace, queue, priority, deadline_at) "
				 "INSERT INTO durable.tasks (run_id, seq, kind, namespace, queue, "
				 "       priority, visible_at, created_at) "
				 "SELECT run_id, 0, 'workflow', namespace, queue, priority, $5, $3 FROM r "
				 "RETURNING run_id, namespace, queue, (SELECT deadline_at FROM r)",
				 5, types);
	durable_exec(plan, values, nulls, false, 0);
	if (SPI_processed != 1)
		elog(ERROR, "durable: could not start the next run of run " INT64_FORMAT, run_id);
	new_run = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	{
		char	   *ns = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		char	   *queue = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
		Datum		deadline = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);

		if (ready_at <= now)
			durable_queue_gained_work(ns, queue);
		else
			durable_bgw_wake(ready_at);
		if (!isnull)
			durable_bgw_wake(DatumGetTimestampTz(deadline));
	}
	return new_run;
}

/*
 * durable_engine_close_run: durable_engine_close_runs for one run.
 */
void
durable_engine_close_run(int64 run_id, const char *status, Jsonb *output,
				 Jsonb *error, TimestampTz now)
{
	Datum		id = Int64GetDatum(run_id);
	Datum		out = PointerGetDatum(output);
	bool		out_null = output == NULL;
	int			dims[1] = {1};
	int			lbs[1] = {1};

	durable_engine_close_runs(PointerGetDatum(construct_array(&id, 1, INT8OID, 8,
													  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
					  PointerGetDatum(construct_md_array(&out, &out_null, 1, dims, lbs,
														 JSONBOID, -1, false, TYPALIGN_INT)),
					  status, error, now);
}

/*
 * close_children: the parent closed; apply each open child's parent-close
 * policy (terminate, request_cancel or abandon).
 */
static void
close_children(int64 parent_run, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];
	int64	   *ids;
	char	  **policies;
	uint64		n,
				i;

	values[0] = Int64GetDatum(parent_run);
	durable_plan(&plan,
				 "SELECT run_id, options->>'parent_close_policy' FROM durable.runs "
				 " WHERE parent_run_id = $1 AND status = 'running' ORDER BY run_id",
				 1, types);
	durable_exec(plan, values, NULL, false, 0);
	n = SPI_processed;
	ids = palloc(sizeof(int64) * (n + 1));
	policies = palloc(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		policies[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}
	for (i = 0; i < n; i++)
	{
		if (policies[i] == NULL || strcmp(policies[i], "terminate") == 0)
		{
			durable_history_add(ids[i], 0, "terminate_requested",
						durable_jb_cstring("{\"reason\": \"parent closed\"}"));
			durable_engine_close_run(ids[i], "terminated", NULL,
							 durable_jb_cstring("{\"type\": \"terminated\", \"message\": \"parent closed\"}"),
							 now);
		}
		else if (strcmp(policies[i], "request_cancel") == 0)
			durable_engine_cancel_run(ids[i], "parent closed", now);
	}
}

/*
 * durable_engine_cancel_run: ask a running run to cancel.  The workflow code sees
 * cancel_requested in its next task; pending timers and signal waits
 * resolve as cancelled at once; children are asked to cancel too;
 * activities learn it from task_heartbeat.
 */
void
durable_engine_cancel_run(int64 run_id, const char *reason, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];
	int64	   *children;
	uint64		n,
				i;

	values[0] = Int64GetDatum(run_id);
	values[1] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "WITH r AS (UPDATE durable.runs SET cancel_requested = true "
				 "            WHERE run_id = $1 AND status = 'running' "
				 "              AND NOT cancel_requested RETURNING run_id), "
				 "     s AS (UPDATE durable.steps SET status = 'cancelled', resolved_at = $2, "
				 "                  error = '{\"type\": \"cancelled\", \"message\": \"workflow cancel requested\"}' "
				 "            WHERE run_id = $1 AND status = 'pending' "
				 "              AND kind IN ('sleep', 'signal') "
				 "              AND EXISTS (SELECT FROM r) RETURNING 1) "
				 "SELECT c.run_id FROM r JOIN durable.runs c ON c.parent_run_id = r.run_id "
				 " WHERE c.status = 'running' "
				 "UNION ALL SELECT 0 FROM r",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	n = SPI_processed;
	if (n == 0)
		return;					/* not running, or already asked */
	children = palloc(sizeof(int64) * n);
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		children[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	durable_history_add(run_id, 0, "cancel_requested",
				reason ? durable_jb_cstring(psprintf("{\"reason\": %s}", durable_json_quote(reason))) : NULL);
	for (i = 0; i < n; i++)
		if (children[i] != 0)
			durable_engine_cancel_run(children[i], "parent cancel requested", now);
	durable_engine_wake_workflow(run_id, now);
}

/*
 * durable_engine_activity_failed: an activity attempt failed (reported by its
 * worker, or timed out).  Retry by the step's retry policy when allowed
 * and within the schedule-to-close deadline; otherwise the step fails with
 * the error and the workflow runs again to see it.
 */
void
durable_engine_activity_failed(int64 run_id, int seq, Jsonb *error, bool retryable,
					   const char *event, TimestampTz now)
{
	static SPIPlanPtr get_plan = NULL;
	static SPIPlanPtr retry_plan = NULL;
	static const Oid get_types[2] = {INT8OID, INT4OID};
	static const Oid retry_types[4] = {INT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[4];
	bool		isnull;
	Datum		d;
	Jsonb	   *options = NULL;
	Jsonb	   *retry = NULL;
	JsonbValue *v;
	int			attempt;
	TimestampTz scheduled_at;
	RetryPolicy policy;
	int64		backoff_ms;
	int64		deadline_ms = 0;

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	durable_plan(&get_plan,
				 "SELECT s.options, t.attempt, s.scheduled_at FROM durable.steps s "
				 "  JOIN durable.tasks t USING (run_id, seq) "
				 " WHERE s.run_id = $1 AND s.seq = $2 AND s.status = 'pending'",
				 2, get_types);
	durable_exec(get_plan, values, NULL, false, 1);
	if (SPI_processed != 1)
	{
		/* the step was resolved some other way: the attempt is moot */
		durable_engine_delete_task(run_id, seq);
		return;
	}
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		options = DatumGetJsonbPCopy(d);
	attempt = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	scheduled_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));

	v = durable_jb_get(options, "retry");
	if (v != NULL && v->type == jbvBinary)
		retry = JsonbValueToJsonb(v);
	durable_retry_policy_parse(retry, &policy, "retry policy");
	backoff_ms = durable_retry_backoff_ms(&policy, attempt);
	v = durable_jb_get(options, "schedule_to_close_ms");
	if (v != NULL && v->type == jbvNumeric)
		deadline_ms = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));

	error = durable_jb_error_object(error);
	if (retryable && durable_retry_error_is_retryable(&policy, error) &&
		(policy.maximum_attempts == 0 || attempt < policy.maximum_attempts) &&
		(deadline_ms == 0 ||
		 now + backoff_ms * 1000 < scheduled_at + deadline_ms * 1000))
	{
		values[2] = TimestampTzGetDatum(now + backoff_ms * 1000);
		values[3] = TimestampTzGetDatum(now);
		durable_bgw_wake(now + backoff_ms * 1000);
		durable_plan(&retry_plan,
					 "UPDATE durable.tasks SET state = 'ready', visible_at = $3, "
					 "       token = NULL, worker = NULL, created_at = $4 "
					 " WHERE run_id = $1 AND seq = $2",
					 4, retry_types);
		durable_exec(retry_plan, values, NULL, false, 0);
		durable_history_add(run_id, seq, event,
					durable_jb_cstring(psprintf("{\"attempt\": %d, \"retry_in_ms\": " INT64_FORMAT ", \"error\": %s}",
										attempt, backoff_ms, durable_jb_text(error))));
		return;
	}

	durable_history_add(run_id, seq, event,
				durable_jb_cstring(psprintf("{\"attempt\": %d, \"final\": true, \"error\": %s}",
									attempt, durable_jb_text(error))));
	durable_engine_resolve_step(run_id, seq, "failed", NULL, error, now);
	durable_engine_delete_task(run_id, seq);
}

/*
 * durable_engine_delete_task: a task's work is done.
 */
void
durable_engine_delete_task(int64 run_id, int seq)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT4OID};
	Datum		values[2];

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	durable_plan(&plan,
				 "DELETE FROM durable.tasks WHERE run_id = $1 AND seq = $2",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
}
