/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  The state machine: the only writer of durable.runs, durable.tasks,
 *	  durable.steps (the journal), durable.signals, durable.updates,
 *	  durable.events (history) and durable.published, with one function per transition:
 *	  start a run, claim, wake a workflow task, end or retry it, schedule
 *	  an activity, wait for a signal, deliver one, resolve a step, fail an
 *	  activity attempt, heartbeat, release, publish, close runs (and what
 *	  a close owes parents,
 *	  children and retries), cancel, terminate, and the periodic work's
 *	  transitions (expire leases, fire timers and deadlines, time out runs,
 *	  purge).  Several tables change in one statement where one transition
 *	  touches them together (a start writes the run and its first task; a
 *	  close, the run, its pending steps and its tasks): that is why one
 *	  module owns them all.
 *
 *	  Callers (the entry points) have checked arguments and rights, have
 *	  connected SPI and act as the extension owner (durable_enter); this
 *	  file calls nothing above it, only the wake-ups (shmem.c), queue
 *	  limits (queues.c) and the helpers below them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "durable.h"
#include "attributes.h"
#include "clock.h"
#include "claim_floor.h"
#include "fairness.h"
#include "engine.h"
#include "json.h"
#include "metrics.h"
#include "queues.h"
#include "retry.h"
#include "shmem.h"
#include "spi.h"
#include "validate.h"

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
 * worker ends it (rerun); where one is ready, it stays ready, in a new
 * version that a claim under way notices (rerun_stale_claims).  Closed
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
				 "       priority, visible_at, created_at, fairness_key, fairness_weight, pass) "
				 "SELECT DISTINCT ON (r.run_id) r.run_id, 0, 'workflow', r.namespace, "
				 "       r.queue, r.priority, $2, $2, r.fairness_key, "
				 "       coalesce(r.fairness_weight, 1), "
				 "       durable.fair_pass(r.namespace, r.queue, r.fairness_key, r.fairness_weight, "
				 "                         r.priority, false) "
				 "  FROM durable.runs r WHERE r.run_id = ANY ($1) AND r.status = 'running' "
				 /* a ready task gets a new version: see rerun_stale_claims */
				 "ON CONFLICT (run_id, seq) DO UPDATE SET rerun = t.rerun OR t.state = 'leased' "
				 "RETURNING t.namespace, t.queue, t.xmax = 0",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		bool		isnull;

		/* made ready now (inserted: xmax 0), not one that was there */
		if (DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
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
durable_engine_resolve_step(int64 run_id, int seq, StepStatus status, Jsonb *result,
					Jsonb *error, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {INT8OID, INT4OID, TEXTOID, JSONBOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	values[2] = CStringGetTextDatum(durable_step_status_name(status));
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
/*
 * JOURNAL_OF: a run's journal as task_poll hands it to a worker, a JSON
 * array of its steps in seq order ([] when none); RUN is the SQL
 * expression of its run id.
 */
#define JOURNAL_OF(RUN) \
	"(SELECT coalesce(jsonb_agg(jsonb_build_object(" \
	"    'seq', j.seq, 'kind', j.kind, 'name', j.name, 'status', j.status, " \
	"    'result', j.result, 'error', j.error) ORDER BY j.seq), '[]') " \
	"   FROM durable.steps j WHERE j.run_id = " RUN ")"

/*
 * UPDATES_OF: the updates of a run a workflow task needs, a JSON array in
 * the order they were sent (update_no): those requested (to validate and handle) and
 * those accepted (seq: the journal entry, whose args a replay needs);
 * NULL when none.  Rejected ones left no trace and are not listed.
 */
#define UPDATES_OF(RUN) \
	"(SELECT jsonb_agg(jsonb_build_object('update_id', d.update_id, 'name', d.name, " \
	"    'args', d.args, 'state', d.state, 'seq', d.seq, 'waiting_on', d.waiting_on) " \
	"    ORDER BY d.update_no) " \
	"   FROM durable.updates d WHERE d.run_id = " RUN " AND d.state <> 'rejected')"

#define CLOSE_RUN_CTE(WHICH, OUTPUT) \
	"     r AS (UPDATE durable.runs u SET status = $3, output = " OUTPUT ", " \
	"                  error = $4, closed_at = $5, deadline_at = NULL " \
	"            " WHICH " AND u.status = 'running' " \
	"           RETURNING u.run_id, u.parent_run_id, u.parent_seq, u.output, u.retry_policy, " \
	"                     u.attempt, u.execution_deadline, u.cancel_requested, " \
	"                     u.namespace, u.workflow_type) "
#define CLOSE_RUNS_CTES(WHICH, OUTPUT, CLOSED) \
	CLOSE_RUN_CTE(WHICH, OUTPUT) ", " \
	"     s AS (UPDATE durable.steps SET status = 'cancelled', resolved_at = $5 " \
	"            WHERE run_id " CLOSED " (SELECT run_id FROM r) AND status = 'pending' " \
	"           RETURNING run_id, kind), " \
	"     t AS (DELETE FROM durable.tasks WHERE run_id " CLOSED " (SELECT run_id FROM r) " \
	"           RETURNING 1) "
/*
 * the columns each closed run returns, starting at column first; CHILDREN
 * is how many of its children the close cancelled
 */
#define CLOSED_RUN_COLUMNS_WITH(CHILDREN) \
	"r.run_id, r.parent_run_id, r.parent_seq, r.output, " CHILDREN ", " \
	"CASE WHEN NOT r.cancel_requested THEN r.retry_policy END, r.attempt, r.execution_deadline, " \
	"r.namespace, r.workflow_type "
#define CLOSED_RUN_COLUMNS \
	CLOSED_RUN_COLUMNS_WITH("(SELECT count(*) FROM s WHERE s.run_id = r.run_id AND s.kind = 'child')")

typedef struct ClosedRun
{
	int64		run_id;
	bool		has_parent;
	int64		parent_run;
	int			parent_seq;
	Jsonb	   *output;
	int64		children;
	Jsonb	   *retry_policy;	/* read only for runs that may be retried
								 * (NULL after a cancel request: never) */
	int			attempt;
	TimestampTz execution_deadline; /* 0: none */
} ClosedRun;

static bool
may_retry(RunStatus status)
{
	return status == RUN_FAILED || status == RUN_TIMED_OUT;
}

static void
read_closed_run(HeapTuple tup, TupleDesc desc, int first, RunStatus status,
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
	c->retry_policy = NULL;
	if (may_retry(status))
	{
		d = SPI_getbinval(tup, desc, first + 5, &isnull);
		c->retry_policy = isnull ? NULL : DatumGetJsonbPCopy(d);
		c->attempt = DatumGetInt32(SPI_getbinval(tup, desc, first + 6, &isnull));
		d = SPI_getbinval(tup, desc, first + 7, &isnull);
		c->execution_deadline = isnull ? 0 : DatumGetTimestampTz(d);
	}
	durable_metric_count(METRIC_WORKFLOWS_CLOSED, SPI_getvalue(tup, desc, first + 8),
						 SPI_getvalue(tup, desc, first + 9), durable_run_status_name(status), 1);
	/* wf_result calls waiting for this run wake when this commits */
	durable_run_closed(c->run_id);
}

/*
 * retry_delay_ms: a run that closes failed or timed out starts again (a
 * new run of the same workflow id and input, Temporal's workflow retry)
 * when its retry policy allows it: attempts left, the error's type not
 * listed as non-retryable, the next attempt starting before the execution
 * deadline, and no cancel requested.  Returns the backoff in ms, or -1.
 */
static int64
retry_delay_ms(ClosedRun *c, RunStatus status, Jsonb *error, TimestampTz now)
{
	RetryPolicy rp;
	int64		backoff;

	if (c->retry_policy == NULL || !may_retry(status))
		return -1;
	durable_retry_policy_parse(c->retry_policy, &rp, "workflow retry policy");
	if (rp.maximum_attempts > 0 && c->attempt >= rp.maximum_attempts)
		return -1;
	if (status == RUN_FAILED && !durable_retry_error_is_retryable(&rp, error))
		return -1;
	backoff = durable_retry_backoff_ms(&rp, c->attempt);
	/* the next attempt would not even start before the deadline */
	if (c->execution_deadline != 0 && now + backoff * 1000 >= c->execution_deadline)
		return -1;
	return backoff;
}

/*
 * after_close: what a closed run owes others.  Its children get their
 * parent-close policy; a run its retry policy starts again leaves its
 * parent waiting for the next attempt; otherwise a child's close resolves
 * its parent's step.
 */
static void
after_close(ClosedRun *c, RunStatus status, Jsonb *error, TimestampTz now)
{
	int64		delay_ms;

	if (c->children > 0)
		close_children(c->run_id, now);
	delay_ms = retry_delay_ms(c, status, error, now);
	if (delay_ms >= 0)
	{
		int64		new_run = durable_engine_next_run(c->run_id, NULL, true, now,
											  now + delay_ms * 1000);

		durable_history_add(c->run_id, 0, "retry_scheduled",
					durable_jb_cstring(psprintf("{\"new_run_id\": " INT64_FORMAT ", \"attempt\": %d, "
										"\"backoff_ms\": " INT64_FORMAT "}",
										new_run, c->attempt + 1, delay_ms)));
		return;
	}
	if (!c->has_parent)
		return;
	if (status == RUN_COMPLETED)
		durable_engine_resolve_step(c->parent_run, c->parent_seq, STEP_COMPLETED,
							c->output ? c->output : durable_jb_cstring("null"), NULL, now);
	else if (status != RUN_CONTINUED_AS_NEW)
	{
		const char *name = durable_run_status_name(status);
		Jsonb	   *err = error ? error :
			durable_jb_cstring(psprintf("{\"type\": \"child_%s\", \"message\": \"child workflow %s\"}",
								name, name));

		durable_engine_resolve_step(c->parent_run, c->parent_seq, STEP_FAILED, NULL, err, now);
	}
}

/*
 * durable_engine_close_runs: close running runs (all with one status; outputs[i]
 * belongs to run_ids[i], outputs may be NULL) and settle what they owe
 * (after_close).  Runs not running are skipped.  Returns how many closed.
 */
int
durable_engine_close_runs(Datum run_ids, Datum outputs, RunStatus status,
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
	values[2] = CStringGetTextDatum(durable_run_status_name(status));
	values[3] = PointerGetDatum(error);
	nulls[3] = error ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(now);
	durable_plan_generic(&plan,
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
 * sweep_closed_run: a run just closed; cancel its pending steps and
 * withdraw their tasks, as the close statements do in one go.  Returns
 * how many of the cancelled steps were children (close_children's work).
 */
static int64
sweep_closed_run(int64 run_id, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];
	bool		isnull;

	values[0] = Int64GetDatum(run_id);
	values[1] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "WITH s AS (UPDATE durable.steps SET status = 'cancelled', resolved_at = $2 "
				 "            WHERE run_id = $1 AND status = 'pending' RETURNING kind), "
				 "     t AS (DELETE FROM durable.tasks WHERE run_id = $1 RETURNING 1) "
				 "SELECT count(*) FILTER (WHERE kind = 'child') FROM s",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * durable_engine_complete_by_token: the common task_complete in one statement.
 * A workflow task leased under token leaves the table and its run
 * completes with output in the same statement (no row lock first: the
 * DELETE is the lock).  Any other token is looked up and locked: an
 * activity task's, or one that is not current.  The caller checks its
 * right to the task's queue (*ns, *queue) afterwards: a refusal raises an
 * error, which undoes the statement.  Returns false with *run_id 0 when
 * the token is not current, false with *run_id and *seq set (the task
 * locked) for an activity task, true when the run closed.
 */
bool
durable_engine_complete_by_token(int64 token, Jsonb *output, TimestampTz now,
								 int64 *run_id, int *seq, char **ns, char **queue)
{
	static SPIPlanPtr workflow_plan = NULL;
	static SPIPlanPtr lock_plan = NULL;
	static const Oid types[5] = {INT8OID, JSONBOID, TEXTOID, JSONBOID,
	TIMESTAMPTZOID};
	static const Oid lock_types[1] = {INT8OID};
	Datum		values[5];
	char		nulls[5] = "   n ";	/* no error */
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	ClosedRun	closed;

	values[0] = Int64GetDatum(token);
	values[1] = PointerGetDatum(output);
	values[2] = CStringGetTextDatum("completed");
	values[3] = (Datum) 0;
	values[4] = TimestampTzGetDatum(now);
	/*
	 * Most runs that complete have nothing pending (no activity, timer,
	 * signal wait or child in flight), so the statement only closes the run
	 * and says whether there is more to settle: the sweep of pending steps
	 * and their tasks, a statement of its own, runs only then.
	 */
	durable_plan_generic(&workflow_plan,
				 "WITH k AS (DELETE FROM durable.tasks "
				 "            WHERE token = $1 AND seq = 0 "
				 "           RETURNING run_id, namespace, queue), "
				 CLOSE_RUN_CTE("WHERE u.run_id = (SELECT run_id FROM k)", "$2")
				 "SELECT k.run_id, k.namespace, k.queue, " CLOSED_RUN_COLUMNS_WITH("0::bigint") ", "
				 "       EXISTS (SELECT FROM durable.steps s "
				 "                WHERE s.run_id = r.run_id AND s.status = 'pending') "
				 "       OR EXISTS (SELECT FROM durable.tasks t "
				 "                   WHERE t.run_id = r.run_id AND t.seq > 0) "
				 "  FROM k LEFT JOIN r ON r.run_id = k.run_id",
				 5, types);
	durable_exec(workflow_plan, values, nulls, false, 0);
	*run_id = 0;
	if (SPI_processed == 1)
	{
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		*run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		*seq = 0;
		*ns = SPI_getvalue(tup, desc, 2);
		*queue = SPI_getvalue(tup, desc, 3);
		(void) SPI_getbinval(tup, desc, 4, &isnull);
		if (isnull)
			elog(ERROR, "durable: run " INT64_FORMAT " with a leased workflow task was not running",
				 *run_id);
		read_closed_run(tup, desc, 4, RUN_COMPLETED, &closed);
		if (DatumGetBool(SPI_getbinval(tup, desc, 14, &isnull)))
			closed.children = sweep_closed_run(closed.run_id, now);
		after_close(&closed, RUN_COMPLETED, NULL, now);
		return true;
	}

	/* an activity task's token, or one that is not current */
	durable_plan_generic(&lock_plan,
						 "SELECT run_id, seq, namespace, queue FROM durable.tasks "
						 " WHERE token = $1 FOR UPDATE",
						 1, lock_types);
	durable_exec(lock_plan, values, NULL, false, 0);
	if (SPI_processed != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	*seq = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	*ns = SPI_getvalue(tup, desc, 3);
	*queue = SPI_getvalue(tup, desc, 4);
	if (*seq == 0)
		elog(ERROR, "durable: the workflow task leased under token " INT64_FORMAT " was not completed",
			 token);
	return false;
}

/*
 * Inserting a run (see durable.runs.run_number): WITH_LATEST_RUN joins
 * the latest run of workflow id WID in namespace NS, as l (no row when
 * the id has no run yet); a new run, numbered NEXT_RUN_NUMBER, goes in
 * only when LATEST_CLOSED holds, with ON CONFLICT (namespace,
 * workflow_id, run_number) DO NOTHING: of two concurrent starts after the
 * same latest run, the second finds the first's number taken and
 * inserts nothing.  The latest run is locked FOR KEY SHARE: the retention
 * purge cannot delete it under a start that numbers after it (a start
 * that saw no run, numbering 1, would not conflict with that one).  A
 * workflow id that has no run takes no lock.
 */
#define WITH_LATEST_RUN(NS, WID) \
	" LEFT JOIN LATERAL (SELECT run_number, status FROM durable.runs " \
	"  WHERE namespace = " NS " AND workflow_id = " WID \
	"  ORDER BY run_number DESC LIMIT 1 FOR KEY SHARE) l ON true "
#define NEXT_RUN_NUMBER "coalesce(l.run_number, 0) + 1"
#define LATEST_CLOSED "l.status IS DISTINCT FROM 'running'"

/*
 * durable_engine_reset_run: a new run that keeps the steps of run_id
 * before to_seq (resolved, with their results) and redoes the rest
 * (wf_reset: the same workflow id; wf_fork: new_workflow_id, a workflow
 * of its own with no parent).  Its first workflow task is ready now; the
 * signals the copied steps did not take (buffered, or taken by a step
 * that is redone) are buffered for it again, and the updates the copied
 * steps accepted come along (the others were for the old run).  The workflow id must have
 * no running run (wf_reset terminates it first).  Returns the new run's
 * id, or 0 when new_workflow_id has a running run.
 */
int64
durable_engine_reset_run(int64 run_id, const char *new_workflow_id, int to_seq,
						 TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {INT8OID, TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[4];
	char		nulls[4] = "    ";
	bool		isnull;
	int64		new_run;
	Datum		deadline;

	values[0] = Int64GetDatum(run_id);
	values[1] = new_workflow_id ? CStringGetTextDatum(new_workflow_id) : (Datum) 0;
	nulls[1] = new_workflow_id ? ' ' : 'n';
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(to_seq);
	durable_plan(&plan,
				 "WITH r AS (INSERT INTO durable.runs (namespace, workflow_id, "
				 "       workflow_type, queue, input, priority, options, created_at, "
				 "       parent_run_id, parent_seq, deadline_at, retry_policy, run_timeout, "
				 "       execution_deadline, parent_close_policy, run_number, fairness_key, "
				 "       fairness_weight) "
				 "     SELECT namespace, coalesce($2, workflow_id), workflow_type, queue, "
				 "            input, priority, options, $3, "
				 /* a fork is a workflow of its own: no parent */
				 "            CASE WHEN $2 IS NULL THEN parent_run_id END, "
				 "            CASE WHEN $2 IS NULL THEN parent_seq END, "
				 /* a fork is a new workflow: no execution deadline carried over */
				 "            LEAST(CASE WHEN $2 IS NULL THEN execution_deadline END, "
				 "                  $3 + run_timeout), "
				 "            retry_policy, run_timeout, "
				 "            CASE WHEN $2 IS NULL THEN execution_deadline END, "
				 "            CASE WHEN $2 IS NULL THEN parent_close_policy END, "
				 "            " NEXT_RUN_NUMBER ", fairness_key, fairness_weight "
				 "       FROM durable.runs o "
				 WITH_LATEST_RUN("o.namespace", "coalesce($2, o.workflow_id)")
				 "      WHERE o.run_id = $1 AND " LATEST_CLOSED " "
				 "     ON CONFLICT (namespace, workflow_id, run_number) "
				 "     DO NOTHING RETURNING run_id, namespace, queue, priority, deadline_at, "
				 "                          fairness_key, fairness_weight, workflow_type), "
				 "     t AS (INSERT INTO durable.tasks (run_id, seq, kind, namespace, queue, "
				 "             priority, visible_at, created_at, fairness_key, fairness_weight, pass) "
				 "           SELECT run_id, 0, 'workflow', namespace, queue, priority, $3, $3, "
				 "                  fairness_key, coalesce(fairness_weight, 1), "
				 "                  durable.fair_pass(namespace, queue, fairness_key, fairness_weight, "
				 "                                    priority, false) "
				 "             FROM r), "
				 "     s AS (INSERT INTO durable.steps (run_id, seq, kind, name, status, input, "
				 "             result, error, queue, attempt, scheduled_at, resolved_at, "
				 "             retry_policy, start_to_close, schedule_to_close, "
				 "             schedule_to_start, heartbeat_timeout) "
				 "           SELECT r.run_id, s.seq, s.kind, s.name, s.status, s.input, "
				 "                  s.result, s.error, s.queue, s.attempt, s.scheduled_at, "
				 "                  s.resolved_at, s.retry_policy, s.start_to_close, "
				 "                  s.schedule_to_close, s.schedule_to_start, s.heartbeat_timeout "
				 "             FROM r, durable.steps s WHERE s.run_id = $1 AND s.seq < $4), "
				 "     g AS (INSERT INTO durable.signals (run_id, name, payload, signal_id, "
				 "             created_at) "
				 "           SELECT r.run_id, g.name, g.payload, g.signal_id, g.created_at "
				 "             FROM r, durable.signals g WHERE g.run_id = $1 "
				 "              AND (g.consumed_seq IS NULL OR g.consumed_seq >= $4) "
				 "            ORDER BY g.signal_no), "
				 /* the updates the kept steps accepted: a replay applies them */
				 "     u AS (INSERT INTO durable.updates (run_id, update_id, name, args, state, "
				 "             seq, waiting_on, result, error, created_at, resolved_at) "
				 "           SELECT r.run_id, u.update_id, u.name, u.args, u.state, u.seq, "
				 "                  u.waiting_on, u.result, u.error, u.created_at, u.resolved_at "
				 "             FROM r, durable.updates u WHERE u.run_id = $1 AND u.seq < $4 "
				 "            ORDER BY u.update_no) "
				 "SELECT run_id, namespace, queue, deadline_at, workflow_type FROM r",
				 4, types);
	durable_exec(plan, values, nulls, false, 0);
	if (SPI_processed != 1)
		return 0;
	durable_metric_count(METRIC_WORKFLOWS_STARTED,
						 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
						 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5), NULL, 1);
	new_run = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	durable_queue_gained_work(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
							  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
	deadline = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	if (!isnull)
		durable_bgw_wake(DatumGetTimestampTz(deadline));
	return new_run;
}

/*
 * durable_engine_reset: wf_reset's transition, for a run whose reset point
 * was checked (durable_engine_reset_point): terminate it if running, start
 * the run that replaces it (durable_engine_reset_run) and record both
 * sides in history.  Returns the new run's id.
 */
int64
durable_engine_reset(int64 run_id, bool running, int to_seq, const char *reason,
					 TimestampTz now)
{
	int64		new_run;
	char	   *why = reason ? durable_json_quote(reason) : "null";

	if (running)
		durable_engine_terminate_run(run_id, reason ? reason : "reset", now);
	new_run = durable_engine_reset_run(run_id, NULL, to_seq, now);
	if (new_run == 0)
		elog(ERROR, "durable: run " INT64_FORMAT " left a running run of its workflow id through its reset",
			 run_id);
	durable_history_add(run_id, 0, "workflow_reset",
						durable_jb_cstring(psprintf("{\"new_run_id\": " INT64_FORMAT ", \"to_seq\": %d, \"reason\": %s}",
													new_run, to_seq, why)));
	durable_history_add(new_run, 0, "reset_from",
						durable_jb_cstring(psprintf("{\"run_id\": " INT64_FORMAT ", \"to_seq\": %d, \"reason\": %s}",
													run_id, to_seq, why)));
	return new_run;
}

/*
 * durable_engine_reset_point: can run_id be reset (fork false) or forked
 * to to_seq?  Returns NULL when it can, else why not: to_seq past the
 * journal's end (max_seq + 1), a step before it still pending, or (for a
 * reset) a child run, whose parent waits for the run it would replace.
 */
char *
durable_engine_reset_point(int64 run_id, int to_seq, bool fork)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	int			max_seq;
	Datum		pending;
	Datum		parent;

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(to_seq);
	durable_plan(&plan,
				 "SELECT coalesce(max(seq), 0), "
				 "       min(seq) FILTER (WHERE status = 'pending' AND seq < $2), "
				 "       (SELECT parent_run_id FROM durable.runs WHERE run_id = $1) "
				 "  FROM durable.steps WHERE run_id = $1",
				 2, types);
	durable_exec(plan, values, NULL, true, 1);
	max_seq = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	parent = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	if (!isnull && !fork)
		return psprintf("it is a child of run " INT64_FORMAT ", which waits for it: reset the parent, or fork the child",
						DatumGetInt64(parent));
	pending = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (to_seq > max_seq + 1)
		return psprintf("its journal ends at step %d: to_seq is 1 to %d", max_seq, max_seq + 1);
	if (!isnull)
		return psprintf("step %d, before to_seq, is still pending", DatumGetInt32(pending));
	return NULL;
}

/*
 * durable_engine_next_run: start the next run of a closed run's workflow id, with
 * its type, queue, priority, options, request_id, parent and execution
 * deadline, its first workflow task ready at ready_at.  Continue-as-new
 * passes the new input and starts the attempts of a retry policy again
 * at 1; a retry (retry true) keeps the input and counts the attempt.
 * Returns the new run's id.
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
				 "       created_at, parent_run_id, parent_seq, deadline_at, attempt, "
				 "       retry_policy, run_timeout, execution_deadline, parent_close_policy, "
				 "       run_number, fairness_key, fairness_weight) "
				 "     SELECT namespace, workflow_id, workflow_type, queue, "
				 "            CASE WHEN $4 THEN input ELSE $2 END, priority, options, "
				 "            request_id, $3, parent_run_id, parent_seq, "
				 "            LEAST(execution_deadline, $5 + run_timeout), "
				 "            CASE WHEN $4 THEN attempt + 1 ELSE 1 END, "
				 "            retry_policy, run_timeout, execution_deadline, parent_close_policy, "
				 /* it closed in this transaction: it is the latest */
				 "            run_number + 1, fairness_key, fairness_weight "
				 "       FROM durable.runs WHERE run_id = $1 "
				 "     RETURNING run_id, namespace, queue, priority, deadline_at, "
				 "               fairness_key, fairness_weight, workflow_type) "
				 "INSERT INTO durable.tasks (run_id, seq, kind, namespace, queue, "
				 "       priority, visible_at, created_at, fairness_key, fairness_weight, pass) "
				 "SELECT run_id, 0, 'workflow', namespace, queue, priority, $5, $3, "
				 "       fairness_key, coalesce(fairness_weight, 1), "
				 FAIR_PASS("namespace", "queue", "fairness_key", "fairness_weight", "priority",
						   "false", "$5", "$3")
				 "  FROM r "
				 "RETURNING run_id, namespace, queue, (SELECT deadline_at FROM r), "
				 "          (SELECT workflow_type FROM r)",
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
		durable_metric_count(METRIC_WORKFLOWS_STARTED, ns,
							 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5), NULL, 1);
	}
	return new_run;
}

/*
 * with_cancel_reason: the error a cancelled run closes with carries the
 * reason of the latest cancel request (wf_cancel's reason, or the one a
 * parent's or schedule's cancel gave), as "cancel_reason".
 */
static Jsonb *
with_cancel_reason(int64 run_id, Jsonb *error)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, JSONBOID};
	Datum		values[2];
	char		nulls[2] = "  ";
	bool		isnull;
	Datum		d;

	values[0] = Int64GetDatum(run_id);
	values[1] = PointerGetDatum(error);
	nulls[1] = error ? ' ' : 'n';
	durable_plan(&plan,
				 "SELECT coalesce($2, '{\"type\": \"cancelled\", \"message\": \"workflow cancelled\"}') "
				 "       || jsonb_build_object('cancel_reason', e.details->'reason') "
				 "  FROM durable.events e "
				 " WHERE e.run_id = $1 AND e.event_type = 'cancel_requested' "
				 "   AND e.details ? 'reason' "
				 "   AND jsonb_typeof(coalesce($2, '{}')) = 'object' "
				 " ORDER BY e.event_id DESC LIMIT 1",
				 2, types);
	durable_exec(plan, values, nulls, true, 1);
	if (SPI_processed != 1)
		return error;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? error : DatumGetJsonbPCopy(d);
}

/*
 * durable_engine_close_run: durable_engine_close_runs for one run.
 */
void
durable_engine_close_run(int64 run_id, RunStatus status, Jsonb *output,
				 Jsonb *error, TimestampTz now)
{
	Datum		id = Int64GetDatum(run_id);
	Datum		out = PointerGetDatum(output);
	bool		out_null = output == NULL;
	int			dims[1] = {1};
	int			lbs[1] = {1};

	if (status == RUN_CANCELLED)
		error = with_cancel_reason(run_id, error);
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
				 "SELECT run_id, parent_close_policy FROM durable.runs "
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
			durable_engine_terminate_run(ids[i], "parent closed", now);
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
 * durable_engine_set_paused: pause (wf_pause) or unpause (wf_unpause) a
 * running run.  Pausing parks its ready tasks (state paused, out of the
 * claim index); a leased task runs to its end, and a task the run gets
 * while paused is never claimed (the claim skips paused runs) and is
 * parked by the background worker (durable_engine_park_paused).  Timers
 * still fire and activities in flight still finish: the workflow sees
 * them when it goes on.  Unpausing makes the parked tasks ready again.
 * False when there was nothing to change (already paused, or not paused).
 */
bool
durable_engine_set_paused(int64 run_id, bool pause, const char *reason,
						  TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, BOOLOID};
	Datum		values[2];
	uint64		n,
				i;
	bool		isnull;

	values[0] = Int64GetDatum(run_id);
	values[1] = BoolGetDatum(pause);
	durable_plan(&plan,
				 "WITH r AS (UPDATE durable.runs SET paused = $2 "
				 "            WHERE run_id = $1 AND status = 'running' AND paused <> $2 "
				 "           RETURNING run_id), "
				 "     t AS (UPDATE durable.tasks "
				 "              SET state = CASE WHEN $2 THEN 'paused' ELSE 'ready' END "
				 "            WHERE run_id = (SELECT run_id FROM r) "
				 "              AND state = CASE WHEN $2 THEN 'ready' ELSE 'paused' END "
				 "           RETURNING namespace, queue, visible_at) "
				 "SELECT t.namespace, t.queue, t.visible_at FROM r LEFT JOIN t ON true",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	n = SPI_processed;
	if (n == 0)
		return false;
	for (i = 0; i < n && !pause; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TimestampTz visible_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));

		if (isnull)
			continue;			/* the run had no parked task */
		/* ready again with the pass it had: claims must start before it */
		durable_claim_floor_reset(SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 2));
		if (visible_at <= now)
			durable_queue_gained_work(SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 2));
		else
			durable_bgw_wake(visible_at);
	}
	durable_history_add(run_id, 0, pause ? "workflow_paused" : "workflow_unpaused",
						reason ? durable_jb_cstring(psprintf("{\"reason\": %s}", durable_json_quote(reason))) : NULL);
	return true;
}

/*
 * durable_engine_park_paused: park the ready tasks of paused runs (made
 * ready while the run was paused: a timer fired, an activity finished, a
 * lease expired), so that claims do not keep stepping over them.
 * Returns how many were parked.
 */
int
durable_engine_park_paused(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT4OID};
	Datum		values[1];

	values[0] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "UPDATE durable.tasks t SET state = 'paused' "
				 "  FROM (SELECT t2.run_id, t2.seq FROM durable.runs r "
				 "          JOIN durable.tasks t2 ON t2.run_id = r.run_id "
				 "         WHERE r.paused AND t2.state = 'ready' "
				 "         LIMIT $1 FOR UPDATE OF t2 SKIP LOCKED) p "
				 " WHERE t.run_id = p.run_id AND t.seq = p.seq",
				 1, types);
	durable_exec(plan, values, NULL, false, 0);
	return (int) SPI_processed;
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
	Jsonb	   *retry = NULL;
	int			attempt;
	TimestampTz scheduled_at;
	RetryPolicy policy;
	int64		backoff_ms;
	int64		deadline_ms = 0;
	char	   *ns;
	char	   *queue;

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	durable_plan(&get_plan,
				 "SELECT s.retry_policy, t.attempt, s.scheduled_at, s.schedule_to_close, "
				 "       t.namespace, t.queue "
				 "  FROM durable.steps s "
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
		retry = DatumGetJsonbPCopy(d);
	attempt = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	scheduled_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	if (!isnull)
		deadline_ms = durable_interval_to_ms(DatumGetIntervalP(d));
	ns = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);
	queue = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6);
	durable_metric_count(METRIC_TASK_FAILURES, ns, queue, "activity", 1);

	durable_retry_policy_parse(retry, &policy, "retry policy");
	backoff_ms = durable_retry_backoff_ms(&policy, attempt);

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
					 "       token = NULL, worker = NULL, created_at = $4, "
					 "       pass = " FAIR_PASS("namespace", "queue", "fairness_key",
											"fairness_weight", "priority", "new_run",
											"$3", "$4") " "
					 " WHERE run_id = $1 AND seq = $2",
					 4, retry_types);
		durable_exec(retry_plan, values, NULL, false, 0);
		durable_metric_count(METRIC_TASK_RETRIES, ns, queue, "activity", 1);
		durable_history_add(run_id, seq, event,
					durable_jb_cstring(psprintf("{\"attempt\": %d, \"retry_in_ms\": " INT64_FORMAT ", \"error\": %s}",
										attempt, backoff_ms, durable_jb_text(error))));
		return;
	}

	durable_history_add(run_id, seq, event,
				durable_jb_cstring(psprintf("{\"attempt\": %d, \"final\": true, \"error\": %s}",
									attempt, durable_jb_text(error))));
	durable_engine_resolve_step(run_id, seq, STEP_FAILED, NULL, error, now);
	durable_engine_delete_task(run_id, seq);
}

/*
 * durable_engine_lock_activity: the task of step seq of a run, locked, if
 * the step is an activity still pending; *ns and *queue are its queue's,
 * *leased says whether a worker holds its current attempt.  For
 * completing an activity by (workflow, seq) instead of by its token.
 */
bool
durable_engine_lock_activity(int64 run_id, int seq, char **ns, char **queue, bool *leased)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	durable_plan(&plan,
				 "SELECT t.namespace, t.queue, t.state = 'leased' "
				 "  FROM durable.tasks t JOIN durable.steps s USING (run_id, seq) "
				 " WHERE t.run_id = $1 AND t.seq = $2 "
				 "   AND s.kind = 'activity' AND s.status = 'pending' "
				 "   FOR UPDATE OF t",
				 2, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		return false;
	*ns = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*queue = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	*leased = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	return true;
}

/*
 * durable_engine_publish: the run's published value of name (NULL: none).
 */
void
durable_engine_publish(int64 run_id, const char *name, Jsonb *value, TimestampTz now)
{
	static SPIPlanPtr set_plan = NULL;
	static SPIPlanPtr del_plan = NULL;
	static const Oid types[4] = {INT8OID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[4];

	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(name);
	values[2] = PointerGetDatum(value);
	values[3] = TimestampTzGetDatum(now);
	if (value == NULL)
	{
		durable_plan(&del_plan,
					 "DELETE FROM durable.published WHERE run_id = $1 AND name = $2",
					 2, types);
		durable_exec(del_plan, values, NULL, false, 0);
		return;
	}
	durable_plan(&set_plan,
				 "INSERT INTO durable.published (run_id, name, value, updated_at) "
				 "VALUES ($1, $2, $3, $4) "
				 "ON CONFLICT (run_id, name) DO UPDATE "
				 "   SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
				 4, types);
	durable_exec(set_plan, values, NULL, false, 0);
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

/*
 * durable_engine_cancel_step: the workflow cancels its own pending step
 * seq (a handle's cancel).  An activity, timer or signal wait resolves as
 * cancelled at once, and an activity's task is withdrawn (a worker still
 * holding it gets DU004 on its next call and should stop); a child is
 * asked to cancel, and its step resolves when it closes.  A step that is
 * no longer pending stays as it is, except a signal wait that a signal
 * completed: a worker cancels only what its task's journal showed
 * pending, so that signal came after the code stopped waiting: the wait
 * ends cancelled, as the code believes, and the signal is buffered again
 * for a later wait (a signal is never lost).  Returns false when the run
 * has no step seq.
 */
bool
durable_engine_cancel_step(int64 run_id, int seq, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr unsignal_plan = NULL;
	static const Oid types[3] = {INT8OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[3];
	StepKind	kind;
	bool		isnull;

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	values[2] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "SELECT s.kind, s.status = 'pending', "
				 "       (SELECT c.run_id FROM durable.runs c "
				 "         WHERE c.parent_run_id = s.run_id AND c.parent_seq = s.seq "
				 "           AND c.status = 'running'), "
				 "       s.kind = 'signal' AND s.status = 'completed' "
				 "  FROM durable.steps s WHERE s.run_id = $1 AND s.seq = $2 FOR UPDATE OF s",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	if (SPI_processed != 1)
		return false;
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)))
	{
		/* a signal came after the code stopped waiting: back to the buffer */
		durable_plan(&unsignal_plan,
					 "WITH g AS (UPDATE durable.signals SET consumed_seq = NULL "
					 "            WHERE run_id = $1 AND consumed_seq = $2) "
					 "UPDATE durable.steps SET status = 'cancelled', result = NULL, "
					 "       error = '{\"type\": \"cancelled\", \"message\": \"cancelled by the workflow\"}', "
					 "       resolved_at = $3 "
					 " WHERE run_id = $1 AND seq = $2",
					 3, types);
		durable_exec(unsignal_plan, values, NULL, false, 0);
		return true;
	}
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
		return true;			/* resolved already */
	kind = durable_step_kind_parse(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	if (kind == STEP_CHILD)
	{
		Datum		child = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);

		if (!isnull)
			durable_engine_cancel_run(DatumGetInt64(child), "cancelled by its parent workflow", now);
		return true;
	}
	durable_engine_resolve_step(run_id, seq, STEP_CANCELLED, NULL,
								durable_jb_cstring("{\"type\": \"cancelled\", \"message\": \"cancelled by the workflow\"}"),
								now);
	if (kind == STEP_ACTIVITY)
		durable_engine_delete_task(run_id, seq);
	return true;
}

/*
 * durable_engine_upsert_search_attributes: the workflow sets search
 * attributes (a JSON object; a null value removes one), journaled as step
 * seq so that a replay changes nothing, in the run's row so that wf_list
 * sees them with the task's commit.
 */
void
durable_engine_upsert_search_attributes(int64 run_id, int seq, Jsonb *attributes,
										TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, JSONBOID};
	Datum		values[2];
	bool		inserted;

	durable_step_insert_or_match(run_id, seq, STEP_UPSERT, "search_attributes", STEP_COMPLETED,
								 attributes, durable_jb_cstring("null"), NULL, NULL, now,
								 DURABLE_NO_TIME, &inserted);
	if (!inserted)
		return;
	values[0] = Int64GetDatum(run_id);
	values[1] = PointerGetDatum(attributes);
	durable_plan(&plan,
				 "UPDATE durable.runs SET options = jsonb_set(options, '{search_attributes}', "
				 "       (coalesce(options->'search_attributes', '{}') || $2) "
				 "       - ARRAY(SELECT key FROM jsonb_each($2) WHERE value = 'null')) "
				 " WHERE run_id = $1 AND status = 'running'",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
}

/*
 * The periodic work's transitions (tick.c runs them, each part in its own
 * subtransaction).
 */

/*
 * durable_engine_expire_leases: leased tasks whose lease ran out.  A workflow task is
 * made ready again; an activity attempt failed by timeout and is retried
 * by its policy (or its step fails).
 */
int
durable_engine_expire_leases(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr ready_plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	static const Oid ready_types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];
	int			n;
	int			i;
	int64	   *runs;
	int		   *seqs;
	char	  **kinds;
	int		   *attempts;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	/* a walk of tasks_token (see its comment in the install script) */
	durable_plan_generic(&plan,
						 "SELECT t.run_id, t.seq, t.attempt, "
						 "       CASE WHEN s.heartbeat_timeout IS NOT NULL "
						 "             AND coalesce(t.heartbeat_at, t.claimed_at) "
						 "                 + s.heartbeat_timeout <= $1 "
						 "            THEN 'heartbeat' ELSE 'start_to_close' END, "
						 "       t.namespace, t.queue, t.kind "
						 "  FROM durable.tasks t "
						 "  LEFT JOIN durable.steps s ON s.run_id = t.run_id AND s.seq = t.seq "
						 " WHERE t.token IS NOT NULL AND t.visible_at <= $1 "
						 " ORDER BY t.token LIMIT $2 FOR UPDATE OF t SKIP LOCKED",
						 2, types);
	durable_exec(plan, values, NULL, false, 0);
	n = (int) SPI_processed;
	if (n == 0)
		return 0;
	runs = palloc(sizeof(int64) * n);
	seqs = palloc(sizeof(int) * n);
	attempts = palloc(sizeof(int) * n);
	kinds = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		runs[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		seqs[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		attempts[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		kinds[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4);
		{
			char	   *ns = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5);
			char	   *queue = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6);
			char	   *kind = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 7);

			durable_metric_count(METRIC_LEASE_EXPIRIES, ns, queue, kind, 1);
			/* a workflow task is always handed out again (activities: activity_failed) */
			if (seqs[i] == 0)
			{
				durable_metric_count(METRIC_TASK_FAILURES, ns, queue, kind, 1);
				durable_metric_count(METRIC_TASK_RETRIES, ns, queue, kind, 1);
			}
		}
	}
	for (i = 0; i < n; i++)
	{
		if (seqs[i] == 0)
		{
			values[0] = Int64GetDatum(runs[i]);
			values[1] = TimestampTzGetDatum(now);
			durable_plan(&ready_plan,
						 "UPDATE durable.tasks SET state = 'ready', visible_at = $2, "
						 "       created_at = $2, token = NULL, worker = NULL "
						 " WHERE run_id = $1 AND seq = 0 RETURNING namespace, queue",
						 2, ready_types);
			durable_exec(ready_plan, values, NULL, false, 0);
			if (SPI_processed == 1)
			{
				/* ready again with its old pass: claims must start before it */
				durable_claim_floor_reset(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
										  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
				durable_queue_gained_work(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
										  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
			}
			durable_history_add(runs[i], 0, "workflow_task_timed_out",
						durable_jb_cstring(psprintf("{\"attempt\": %d}", attempts[i])));
		}
		else
			durable_engine_activity_failed(runs[i], seqs[i],
								   durable_jb_cstring(psprintf("{\"type\": \"timeout\", \"timeout_type\": \"%s\", "
													   "\"message\": \"activity attempt timed out (%s)\"}",
													   kinds[i], kinds[i])),
								   true, "activity_attempt_timed_out", now);
	}
	return n;
}

/*
 * durable_engine_fire_timers: due sleep steps complete in one set-based statement,
 * then their runs are woken together (durable_engine_wake_workflows): 10,000
 * timers due at the same second fire in a few rounds, not thousands of
 * statements.
 */
int
durable_engine_fire_timers(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];
	bool		isnull;
	Datum		run_ids;
	int			fired;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "WITH due AS (SELECT run_id, seq, due_at FROM durable.steps "
				 "              WHERE status = 'pending' AND due_at <= $1 AND kind = 'sleep' "
				 "              ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
				 "     s AS (UPDATE durable.steps s SET status = 'completed', result = 'null', "
				 "                  resolved_at = $1 "
				 "             FROM due WHERE s.run_id = due.run_id AND s.seq = due.seq "
				 "           RETURNING s.run_id, extract(epoch FROM $1 - due.due_at)::float8 AS late) "
				 "SELECT count(*)::int, coalesce(array_agg(run_id), '{}'), "
				 "       coalesce(array_agg(late), '{}') FROM s",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	fired = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (fired == 0)
		return 0;
	run_ids = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull),
								false, -1);
	{
		ArrayType  *late = DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 3, &isnull));
		Datum	   *secs;
		int			nsecs,
					i;

		deconstruct_array(late, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &secs, NULL, &nsecs);
		for (i = 0; i < nsecs; i++)
			durable_metric_observe(METRIC_TIMER_LATENESS, NULL, NULL, NULL, DatumGetFloat8(secs[i]));
	}
	durable_engine_wake_workflows(run_ids, now);
	return fired;
}

/*
 * durable_engine_fire_due_steps: other steps whose due time came: signal waits time out,
 * activities hit schedule-to-start or schedule-to-close.
 */
int
durable_engine_fire_due_steps(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr rearm_plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	static const Oid rearm_types[3] = {INT8OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[3];
	int			n;
	int			i;
	typedef struct Due
	{
		int64		run_id;
		int			seq;
		StepKind	kind;
		bool		not_started;
		int			attempt;
		TimestampTz s2s_at;
		TimestampTz s2c_at;
		char	   *ns;			/* of its task, NULL if none */
		char	   *queue;
	} Due;
	Due		   *due;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "SELECT s.run_id, s.seq, s.kind, "
				 "       (t.state = 'ready' AND t.attempt = 0) AS not_started, "
				 "       s.scheduled_at + s.schedule_to_start, s.scheduled_at + s.schedule_to_close, "
				 "       coalesce(t.attempt, s.attempt), t.namespace, t.queue "
				 "  FROM durable.steps s "
				 "  LEFT JOIN durable.tasks t ON t.run_id = s.run_id AND t.seq = s.seq "
				 " WHERE s.status = 'pending' AND s.due_at <= $1 AND s.kind <> 'sleep' "
				 " ORDER BY s.due_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	n = (int) SPI_processed;
	if (n == 0)
		return 0;
	due = palloc0(sizeof(Due) * n);
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		due[i].run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		due[i].seq = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		due[i].kind = durable_step_kind_parse(SPI_getvalue(tup, desc, 3));
		d = SPI_getbinval(tup, desc, 4, &isnull);
		due[i].not_started = !isnull && DatumGetBool(d);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		due[i].s2s_at = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		due[i].s2c_at = isnull ? 0 : DatumGetTimestampTz(d);
		due[i].attempt = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
		due[i].ns = SPI_getvalue(tup, desc, 8);
		due[i].queue = SPI_getvalue(tup, desc, 9);
	}
	for (i = 0; i < n; i++)
	{
		Due		   *x = &due[i];
		const char *timeout = NULL;

		if (x->kind == STEP_SIGNAL)
			timeout = "signal";
		else if (x->kind == STEP_ACTIVITY)
		{
			if (x->s2c_at && x->s2c_at <= now)
				timeout = "schedule_to_close";
			else if (x->s2s_at && x->s2s_at <= now && x->not_started)
				timeout = "schedule_to_start";
		}
		if (timeout)
		{
			char	   *err = psprintf("{\"type\": \"timeout\", \"timeout_type\": \"%s\", "
									   "\"message\": \"%s timed out (%s)\"}",
									   timeout, durable_step_kind_name(x->kind), timeout);

			durable_history_add(x->run_id, x->seq,
								psprintf("%s_timed_out", durable_step_kind_name(x->kind)),
						durable_jb_cstring(psprintf("{\"attempt\": %d, \"final\": true, \"error\": %s}",
											x->attempt, err)));
			durable_engine_resolve_step(x->run_id, x->seq, STEP_FAILED, NULL, durable_jb_cstring(err), now);
			durable_engine_delete_task(x->run_id, x->seq);
			if (x->kind == STEP_ACTIVITY && x->ns != NULL)
				durable_metric_count(METRIC_TASK_FAILURES, x->ns, x->queue, "activity", 1);
			continue;
		}
		/* nothing due yet for this step: arm its next deadline, if any */
		values[0] = Int64GetDatum(x->run_id);
		values[1] = Int32GetDatum(x->seq);
		values[2] = TimestampTzGetDatum(x->s2c_at > now ? x->s2c_at : 0);
		durable_plan(&rearm_plan,
					 "UPDATE durable.steps SET due_at = $3 WHERE run_id = $1 AND seq = $2",
					 3, rearm_types);
		durable_exec(rearm_plan, values, x->s2c_at > now ? NULL : "  n", false, 0);
	}
	return n;
}

/*
 * durable_engine_expire_runs: runs past their execution or run timeout close as
 * timed_out, withdrawing their tasks.
 */
int
durable_engine_expire_runs(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];
	int			n;
	int			i;
	int64	   *runs;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "SELECT run_id FROM durable.runs "
				 " WHERE status = 'running' AND deadline_at <= $1 "
				 " ORDER BY deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	n = (int) SPI_processed;
	runs = palloc(sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		runs[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	for (i = 0; i < n; i++)
	{
		Jsonb	   *err = durable_jb_cstring("{\"type\": \"timeout\", \"timeout_type\": \"workflow\", "
									 "\"message\": \"workflow timed out\"}");

		durable_engine_close_run(runs[i], RUN_TIMED_OUT, NULL, err, now);
	}
	return n;
}

/*
 * durable_engine_pass_due_tasks: ready tasks without a pass (made ready
 * for later: a start delay, a retry's backoff; whether they came due a
 * moment or a day ago, were parked meanwhile or were claimed and given
 * back) that are due now get their pass (fairness.c), up to limit, in the
 * order they came due: until now they waited at the end of their queue's
 * fair order.  tasks_unplaced holds just the tasks without a pass.
 * Returns how many.
 */
int
durable_engine_pass_due_tasks(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "WITH d AS (SELECT run_id, seq, namespace, queue, fairness_key, fairness_weight, "
				 "                  priority, new_run "
				 "             FROM durable.tasks "
				 "            WHERE pass = 'Infinity'::float8 AND state = 'ready' "
				 "              AND visible_at <= $1 "
				 "            ORDER BY visible_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
				 "     p AS (SELECT run_id, seq, durable.fair_pass(namespace, queue, "
				 "                  fairness_key, fairness_weight, priority, new_run) AS pass "
				 "             FROM d) "
				 "UPDATE durable.tasks t SET pass = p.pass FROM p "
				 " WHERE t.run_id = p.run_id AND t.seq = p.seq",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	return (int) SPI_processed;
}

/*
 * durable_engine_age_tasks: priority aging (queue_set_priority_aging).  A
 * ready task of such a queue that has waited n times the queue's aging
 * interval since it was last made ready runs at its own priority plus n,
 * up to the queue's cap: each round raises the tasks that came due for
 * another step, up to limit.  A raised task goes back to the end of the
 * fair order (pass Infinity), and durable_engine_pass_due_tasks, the next
 * part of the same round, places it in the order of its new priority as
 * if just made ready.  tasks.aged keeps how far a task was raised; a
 * claim takes it back down, so a retry or a later workflow task starts
 * from the priority it was given.  Returns how many it raised.
 */
int
durable_engine_age_tasks(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "WITH a AS (SELECT t.run_id, t.seq, "
				 "                  LEAST(q.aging_up_to, t.priority - t.aged + "
				 "                        floor(extract(epoch FROM $1 - t.visible_at) "
				 "                              / extract(epoch FROM q.aging_every))::int) AS priority "
				 "             FROM durable.queues q JOIN durable.tasks t "
				 "               ON t.namespace = q.namespace AND t.queue = q.queue "
				 "            WHERE q.aging_every IS NOT NULL AND t.state = 'ready' "
				 "              AND t.priority < q.aging_up_to "
				 "              AND t.visible_at <= $1 - q.aging_every * (t.aged + 1) "
				 "            ORDER BY t.visible_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED) "
				 "UPDATE durable.tasks t "
				 "   SET priority = a.priority, aged = t.aged + a.priority - t.priority, "
				 "       pass = 'Infinity'::float8 "
				 "  FROM a WHERE t.run_id = a.run_id AND t.seq = a.seq AND a.priority > t.priority",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	return (int) SPI_processed;
}

/*
 * durable_engine_purge: closed runs older than their namespace's retention
 * leave with their journal, history, signals and updates, a small batch
 * at a time.  No index orders runs by close time (the close must change
 * no indexed column, see durable.runs), so each call examines the next
 * window of runs in run_id order from where the last call stopped,
 * starting over at the beginning after the last run: the purge keeps its
 * cost per round bounded however many runs are retained, and reaches
 * every retained run once per pass (a pass of n runs takes n / window
 * calls).
 */
#define PURGE_WINDOW_FACTOR 20	/* runs examined per call: limit times this */

/* a run id between the lowest and the highest retained (0: none) */
static int64
random_run_id(void)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	Datum		lo,
				hi;

	durable_plan(&plan,
				 "SELECT (SELECT min(run_id) FROM durable.runs), "
				 "       (SELECT max(run_id) FROM durable.runs)",
				 0, NULL);
	durable_exec(plan, NULL, NULL, true, 1);
	lo = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return 0;
	hi = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	return DatumGetInt64(lo) - 1 +
		(int64) (pg_prng_double(&pg_global_prng_state) *
				 (double) (DatumGetInt64(hi) - DatumGetInt64(lo) + 1));
}

int
durable_engine_purge(TimestampTz now, int limit, bool anywhere)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TIMESTAMPTZOID, INT4OID, INT8OID, INT4OID};
	/* this backend's place in its pass over durable.runs */
	static int64 after_run = 0;
	static bool started = false;
	int			window = Max(limit, 1) * PURGE_WINDOW_FACTOR;
	int			purged = 0;
	int			round;

	/*
	 * A session's first call may start anywhere (durable.tick() from
	 * pg_cron, a new session each time: calls from short sessions still
	 * reach every retained run).  A window that reaches the last run goes
	 * on from the first, once, so a call that started anywhere still
	 * examines a whole small table.
	 */
	if (!started && anywhere)
		after_run = random_run_id();
	started = true;
	for (round = 0; round < 2 && purged < limit; round++)
	{
		Datum		values[4];
		bool		isnull;
		int			n;
		int64		examined;
		int64		from = after_run;
		Datum		last;

		values[0] = TimestampTzGetDatum(now);
		values[1] = Int32GetDatum(limit - purged);
		values[2] = Int64GetDatum(from);
		values[3] = Int32GetDatum(window);
		durable_plan(&plan,
					 "WITH w AS (SELECT run_id, namespace, closed_at FROM durable.runs "
					 "            WHERE run_id > $3 ORDER BY run_id LIMIT $4), "
					 "     old AS (SELECT w.run_id FROM w JOIN durable.namespaces n USING (namespace) "
					 "              WHERE w.closed_at < $1 - n.retention "
					 "              ORDER BY w.run_id LIMIT $2), "
					 "     r AS (DELETE FROM durable.runs WHERE run_id IN (SELECT run_id FROM old) "
					 "           RETURNING run_id), "
					 "     s AS (DELETE FROM durable.steps WHERE run_id IN (SELECT run_id FROM r)), "
					 "     e AS (DELETE FROM durable.events WHERE run_id IN (SELECT run_id FROM r)), "
					 "     g AS (DELETE FROM durable.signals WHERE run_id IN (SELECT run_id FROM r)), "
					 "     p AS (DELETE FROM durable.published WHERE run_id IN (SELECT run_id FROM r)), "
					 "     d AS (DELETE FROM durable.updates WHERE run_id IN (SELECT run_id FROM r)) "
					 "SELECT (SELECT count(*)::int FROM r), (SELECT count(*) FROM w), "
					 /* a full batch may have left purgeable runs in the window */
					 "       CASE WHEN (SELECT count(*) FROM old) >= $2 "
					 "            THEN (SELECT max(run_id) FROM old) "
					 "            ELSE (SELECT max(run_id) FROM w) END",
					 4, types);
		durable_exec(plan, values, NULL, false, 0);
		n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		examined = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		purged += n;
		if (!isnull && (examined >= window || purged >= limit))
		{
			after_run = DatumGetInt64(last);
			break;
		}
		/* the end of durable.runs: a new pass starts at the first run */
		after_run = 0;
		if (from == 0)
			break;
	}
	return purged;
}

/*
 * Starting runs and talking to them.
 */

/* options of wf_start and of child commands */
typedef struct StartOptions
{
	bool		use_existing;	/* id_conflict_policy use_existing */
	bool		terminate_existing; /* id_conflict_policy terminate_existing */
	const char *reuse;			/* id_reuse_policy */
	char	   *request_id;
	int64		priority;
	int64		start_delay_ms;
	int64		execution_timeout_ms;
	int64		run_timeout_ms;
	Jsonb	   *memo;
	Jsonb	   *search_attributes;
	Jsonb	   *retry_policy;	/* validated; NULL: a failed run stays failed */
	char	   *fairness_key;	/* both unset (NULL, 0): a child's are its parent's */
	double		fairness_weight;
	int64		debounce_ms;	/* per workflow id: see debounced_start */
	int64		throttle_ms;
} StartOptions;

static void
parse_start_options(Jsonb *options, StartOptions *o)
{
	static const char *const keys[] = {"id_conflict_policy", "id_reuse_policy",
		"request_id", "priority", "start_delay", "execution_timeout",
		"run_timeout", "memo", "search_attributes", "retry_policy", "fairness_key",
	"fairness_weight", "debounce", "throttle", NULL};
	const char *ctx = "workflow options";
	char	   *s;
	JsonbValue *v;

	memset(o, 0, sizeof(*o));
	o->reuse = "allow_duplicate";
	if (options == NULL)
		return;
	durable_jb_check_keys(options, ctx, keys);
	s = durable_jb_get_string(options, "id_conflict_policy", ctx, 32, false);
	if (s)
	{
		if (strcmp(s, "use_existing") == 0)
			o->use_existing = true;
		else if (strcmp(s, "terminate_existing") == 0)
			o->terminate_existing = true;
		else if (strcmp(s, "fail") != 0)
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid workflow options: unknown id_conflict_policy \"%s\"", s),
					 errhint("Use \"fail\" (the default), \"use_existing\" or \"terminate_existing\".")));
	}
	s = durable_jb_get_string(options, "id_reuse_policy", ctx, 32, false);
	if (s)
	{
		if (strcmp(s, "allow_duplicate") != 0 &&
			strcmp(s, "allow_duplicate_failed_only") != 0 &&
			strcmp(s, "reject_duplicate") != 0)
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid workflow options: unknown id_reuse_policy \"%s\"", s),
					 errhint("Use \"allow_duplicate\" (the default), \"allow_duplicate_failed_only\" or \"reject_duplicate\".")));
		o->reuse = s;
	}
	o->request_id = durable_jb_get_string(options, "request_id", ctx, DURABLE_MAX_NAME, false);
	durable_jb_get_int(options, "priority", ctx, DURABLE_MIN_PRIORITY, DURABLE_MAX_PRIORITY,
					   &o->priority);
	durable_jb_get_duration_ms(options, "start_delay", ctx, &o->start_delay_ms);
	durable_jb_get_duration_ms(options, "execution_timeout", ctx, &o->execution_timeout_ms);
	durable_jb_get_duration_ms(options, "run_timeout", ctx, &o->run_timeout_ms);
	durable_get_fairness(options, ctx, &o->fairness_key, &o->fairness_weight);
	durable_jb_get_duration_ms(options, "debounce", ctx, &o->debounce_ms);
	durable_jb_get_duration_ms(options, "throttle", ctx, &o->throttle_ms);
	if (o->debounce_ms > 0 && (o->start_delay_ms > 0 || o->throttle_ms > 0))
		ereport(ERROR,
				(errcode(durable_input_errcode),
				 errmsg("invalid workflow options: \"debounce\" goes with neither \"start_delay\" nor \"throttle\""),
				 errhint("A debounced start waits the debounce time after the last start of its workflow id.")));
	/* a debounced start waits, like a start delay that later starts push back */
	if (o->debounce_ms > 0)
		o->start_delay_ms = o->debounce_ms;
	v = durable_jb_get(options, "memo");
	if (v)
		o->memo = JsonbValueToJsonb(v);
	v = durable_jb_get(options, "search_attributes");
	if (v)
	{
		o->search_attributes = JsonbValueToJsonb(v);
		if (!JB_ROOT_IS_OBJECT(o->search_attributes))
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid workflow options: \"search_attributes\" must be a JSON object")));
	}
	v = durable_jb_get(options, "retry_policy");
	if (v && v->type != jbvNull)
	{
		RetryPolicy rp;

		if (v->type != jbvBinary)
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid workflow options: \"retry_policy\" must be a JSON object")));
		o->retry_policy = JsonbValueToJsonb(v);
		if (!JB_ROOT_IS_OBJECT(o->retry_policy))
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid workflow options: \"retry_policy\" must be a JSON object")));
		durable_retry_policy_parse(o->retry_policy, &rp, "workflow retry policy");
	}
	durable_check_payload(o->memo, "memo");
	durable_check_payload(o->search_attributes, "search attributes");
}

/*
 * check_namespace_exists: one primary-key probe, in the caller's
 * transaction (a namespace created or dropped in it counts).
 */
static void
check_namespace_exists(const char *ns)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(ns);
	durable_plan(&plan, "SELECT 1 FROM durable.namespaces WHERE namespace = $1",
				 1, types);
	durable_exec(plan, values, NULL, true, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("namespace \"%s\" does not exist", ns),
				 errhint("Create it with durable.namespace_create(), or SET durable.namespace to an existing one.")));
}

/*
 * start_state_values: the engine state a start sets, as four parameters
 * in this order: deadline_at (the earlier of the run and execution
 * timeouts from now), retry_policy, run_timeout, execution_deadline.
 */
static void
start_state_values(const StartOptions *o, TimestampTz now, Datum *values, char *nulls)
{
	int64		t = o->execution_timeout_ms ? o->execution_timeout_ms : o->run_timeout_ms;

	if (o->run_timeout_ms && o->run_timeout_ms < t)
		t = o->run_timeout_ms;
	values[0] = TimestampTzGetDatum(now + t * 1000);
	nulls[0] = t ? ' ' : 'n';
	values[1] = PointerGetDatum(o->retry_policy);
	nulls[1] = o->retry_policy ? ' ' : 'n';
	values[2] = PointerGetDatum(durable_ms_interval(o->run_timeout_ms));
	nulls[2] = o->run_timeout_ms ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(now + o->execution_timeout_ms * 1000);
	nulls[3] = o->execution_timeout_ms ? ' ' : 'n';
}

/*
 * start_stored_options: what runs.options keeps of a start's options (the
 * parts the engine does not act on, as given).
 */
static Jsonb *
start_stored_options(const StartOptions *o)
{
	StringInfoData stored;

	initStringInfo(&stored);
	appendStringInfoString(&stored, "{");
	if (o->memo)
		appendStringInfo(&stored, "\"memo\": %s, ", durable_jb_text(o->memo));
	if (o->search_attributes)
		appendStringInfo(&stored, "\"search_attributes\": %s, ", durable_jb_text(o->search_attributes));
	if (o->execution_timeout_ms)
		appendStringInfo(&stored, "\"execution_timeout_ms\": " INT64_FORMAT ", ",
						 o->execution_timeout_ms);
	if (o->debounce_ms)
		appendStringInfo(&stored, "\"debounce_ms\": " INT64_FORMAT ", ", o->debounce_ms);
	appendStringInfo(&stored, "\"start_delay_ms\": " INT64_FORMAT "}", o->start_delay_ms);
	return durable_jb_cstring(stored.data);
}

/*
 * durable_engine_read_run: what a worker needs to replay run_id, for a
 * live query: workflow_id, workflow_type, queue, input, attempt, journal
 * (JOURNAL_OF) and cancel_requested, left in SPI_tuptable (no row: no
 * such run).
 */
void
durable_engine_read_run(int64 run_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(run_id);
	durable_plan(&plan,
				 "SELECT r.workflow_id, r.workflow_type, r.queue, r.input, r.attempt, "
				 "       " JOURNAL_OF("r.run_id") ", r.cancel_requested, "
				 "       " UPDATES_OF("r.run_id") " "
				 "  FROM durable.runs r WHERE r.run_id = $1",
				 1, types);
	durable_exec(plan, values, NULL, true, 1);
}

/*
 * durable_engine_find_latest_run: the newest run of a workflow id, whatever its status.
 * Returns false when there is none; *status, *request_id and *queue (each
 * optional) are palloc'd.
 */
bool
durable_engine_find_latest_run(const char *ns, const char *workflow_id, int64 *run_id,
				RunStatus *status, char **request_id, char **queue, bool lock)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr lock_plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(workflow_id);
	if (lock)
	{
		/* the open run, locked against a concurrent close or signal */
		durable_plan(&lock_plan,
					 "SELECT run_id, status, request_id, queue FROM durable.runs "
					 " WHERE run_id = (SELECT run_id FROM durable.runs "
					 "                  WHERE namespace = $1 AND workflow_id = $2 "
					 "                  ORDER BY run_number DESC LIMIT 1) "
					 "   AND status = 'running' FOR NO KEY UPDATE",
					 2, types);
		durable_exec(lock_plan, values, NULL, false, 1);
		if (SPI_processed == 1)
			goto found;
	}
	durable_plan(&plan,
				 "SELECT run_id, status, request_id, queue FROM durable.runs "
				 " WHERE namespace = $1 AND workflow_id = $2 "
				 " ORDER BY run_number DESC LIMIT 1",
				 2, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		return false;
found:
	*run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*status = durable_run_status_parse(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	if (request_id)
		*request_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (queue)
		*queue = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	return true;
}

/*
 * durable_lock_run: serialize signal delivery with signal waits of one run.
 */
void
durable_lock_run(int64 run_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(run_id);
	durable_plan(&plan,
				 "SELECT 1 FROM durable.runs WHERE run_id = $1 FOR NO KEY UPDATE",
				 1, types);
	durable_exec(plan, values, NULL, false, 1);
}

/*
 * parent_fairness: a child started without fairness options gets its
 * parent's key and weight.
 */
static void
parent_fairness(int64 parent_run, char **key, double *weight)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = Int64GetDatum(parent_run);
	durable_plan(&plan,
				 "SELECT fairness_key, fairness_weight FROM durable.runs WHERE run_id = $1",
				 1, types);
	durable_exec(plan, values, NULL, true, 1);
	if (SPI_processed != 1)
		return;
	*key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*weight = isnull ? 0 : DatumGetFloat4(d);
}

/*
 * debounced_start: the run a start with "debounce" or "throttle" joins
 * instead of starting one, or 0 to start one.  Both act per workflow id.
 * debounce: a debounced run of the id, of the same type and queue, still
 * waiting for its start takes this start's input and waits the debounce
 * time again (its timeouts move with it), so the run starts once the
 * starts stop for that long, with the last input.  throttle: a run of
 * the id started (created) within the throttle time is this start's, so
 * at most one run starts per throttle time, with the first input.
 */
static int64
debounced_start(const char *ns, const char *workflow_id, const char *type, const char *queue,
				Jsonb *input, StartOptions *o, TimestampTz now)
{
	static SPIPlanPtr debounce_plan = NULL;
	static SPIPlanPtr throttle_plan = NULL;
	static const Oid types[7] = {TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TEXTOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	bool		isnull;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(workflow_id);
	values[2] = PointerGetDatum(input);
	nulls[2] = input ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(now);
	values[5] = CStringGetTextDatum(type);
	values[6] = CStringGetTextDatum(queue);
	if (o->throttle_ms > 0)
	{
		values[4] = TimestampTzGetDatum(now - o->throttle_ms * 1000);
		durable_plan(&throttle_plan,
					 "SELECT run_id FROM (SELECT run_id, created_at FROM durable.runs "
					 "                     WHERE namespace = $1 AND workflow_id = $2 "
					 "                     ORDER BY run_number DESC LIMIT 1) l "
					 " WHERE created_at > $5",
					 7, types);
		durable_exec(throttle_plan, values, nulls, false, 1);
	}
	else
	{
		values[4] = TimestampTzGetDatum(now + o->debounce_ms * 1000);
		durable_plan(&debounce_plan,
					 "WITH l AS (SELECT r.run_id, $5 - t.visible_at AS later "
					 "             FROM durable.runs r "
					 "             JOIN durable.tasks t ON t.run_id = r.run_id AND t.seq = 0 "
					 "            WHERE r.namespace = $1 AND r.workflow_id = $2 "
					 "              AND r.status = 'running' AND r.options ? 'debounce_ms' "
					 "              AND r.workflow_type = $6 AND r.queue = $7 "
					 "              AND t.state = 'ready' AND t.new_run "
					 "              AND t.attempt = 0 AND t.visible_at > $4 "
					 "            ORDER BY r.run_number DESC LIMIT 1 FOR UPDATE OF r, t), "
					 /* its timeouts count from its start, which moves */
					 "     u AS (UPDATE durable.runs r SET input = $3, "
					 "                  deadline_at = r.deadline_at + l.later, "
					 "                  execution_deadline = r.execution_deadline + l.later "
					 "             FROM l WHERE r.run_id = l.run_id RETURNING r.run_id) "
					 "UPDATE durable.tasks SET visible_at = $5, pass = 'Infinity'::float8 "
					 " WHERE run_id = (SELECT run_id FROM u) AND seq = 0 "
					 "RETURNING run_id",
					 7, types);
		durable_exec(debounce_plan, values, nulls, false, 0);
		if (SPI_processed == 1)
			durable_bgw_wake(DatumGetTimestampTz(values[4]));
	}
	if (SPI_processed != 1)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * START_RUN_INSERT(RUN_NUMBER, FROM): the insert of a run from
 * durable_start_run's parameters, and START_FIRST_TASK the insert of its
 * first workflow task from the run ids that insert returns (r).
 */
#define START_RUN_INSERT(RUN_NUMBER, FROM) \
	"INSERT INTO durable.runs (namespace, workflow_id, " \
	"       workflow_type, queue, input, priority, options, request_id, " \
	"       created_at, parent_run_id, parent_seq, deadline_at, " \
	"       retry_policy, run_timeout, execution_deadline, parent_close_policy, " \
	"       run_number, fairness_key, fairness_weight) " \
	"     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $13, " \
	"            $14, $15, $16, $17, " RUN_NUMBER ", $18, $19 " FROM \
	"      WHERE EXISTS (SELECT FROM durable.namespaces WHERE namespace = $1) "
#define START_FIRST_TASK \
	"INSERT INTO durable.tasks (run_id, seq, kind, namespace, queue, " \
	"       priority, visible_at, created_at, new_run, fairness_key, " \
	"       fairness_weight, pass) " \
	"SELECT run_id, 0, 'workflow', $1, $4, $6, $10, $9, $11 IS NULL, $18, " \
	"       coalesce($19, 1), $20 FROM r " \
	"RETURNING run_id"

/*
 * durable_start_run: create a run and its first workflow task, honouring the id
 * conflict and reuse policies and request_id idempotency.  Returns the
 * run id (an existing one when the start is a retry or use_existing).
 *
 * With generated_id, workflow_id was just made by new_workflow_id (74
 * random bits): no run can hold it, so the policies have nothing to
 * decide, and the run is inserted as number 1 without reading the id's
 * runs and without ON CONFLICT.  That skips an index probe, a speculative
 * insertion (its lock and its WAL record) and a second probe of
 * runs_workflow_id.  Should the id exist after all, the insert fails on
 * the unique index: an error, never a start lost or merged.
 */
int64
durable_start_run(const char *ns, const char *workflow_id, const char *type,
		  const char *queue, Jsonb *input, Jsonb *options,
		  const char *parent_close_policy, int64 parent_run, int parent_seq,
		  TimestampTz now, bool generated_id)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr generated_plan = NULL;
	static const Oid types[20] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID,
		INT4OID, JSONBOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,
		INT4OID, TIMESTAMPTZOID, JSONBOID, INTERVALOID, TIMESTAMPTZOID, TEXTOID,
	TEXTOID, FLOAT4OID, FLOAT8OID};
	StartOptions o;
	Datum		values[20];
	char		nulls[20] = "                    ";
	SPIPlanPtr	start_plan;
	int			tries;

	parse_start_options(options, &o);
	durable_check_search_attributes(ns, o.search_attributes);
	durable_check_payload(input, "workflow input");

	if (o.debounce_ms > 0 || o.throttle_ms > 0)
	{
		int64		run_id = debounced_start(ns, workflow_id, type, queue, input, &o, now);

		if (run_id != 0)
			return run_id;
	}

	if (!generated_id && (strcmp(o.reuse, "allow_duplicate") != 0 || o.request_id))
	{
		int64		run_id;
		RunStatus	status;
		char	   *request_id;

		if (durable_engine_find_latest_run(ns, workflow_id, &run_id, &status, &request_id, NULL, false))
		{
			if (o.request_id && request_id && strcmp(o.request_id, request_id) == 0)
				return run_id;	/* a retry of the same start */
			if (status != RUN_RUNNING &&
				(strcmp(o.reuse, "reject_duplicate") == 0 ||
				 (strcmp(o.reuse, "allow_duplicate_failed_only") == 0 &&
				  status == RUN_COMPLETED)))
				ereport(ERROR,
						(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
						 errmsg("workflow \"%s\" cannot be started again", workflow_id),
						 errdetail("Its latest run is %s and id_reuse_policy is %s.",
								   durable_run_status_name(status), o.reuse),
						 errhint("Choose another workflow id, or another id_reuse_policy.")));
		}
	}


	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(workflow_id);
	values[2] = CStringGetTextDatum(type);
	values[3] = CStringGetTextDatum(queue);
	values[4] = PointerGetDatum(input);
	nulls[4] = input ? ' ' : 'n';
	values[5] = Int32GetDatum((int32) o.priority);
	values[6] = PointerGetDatum(start_stored_options(&o));
	values[7] = o.request_id ? CStringGetTextDatum(o.request_id) : (Datum) 0;
	nulls[7] = o.request_id ? ' ' : 'n';
	values[8] = TimestampTzGetDatum(now);
	values[9] = TimestampTzGetDatum(now + o.start_delay_ms * 1000);
	values[10] = Int64GetDatum(parent_run);
	nulls[10] = parent_run ? ' ' : 'n';
	values[11] = Int32GetDatum(parent_seq);
	nulls[11] = parent_run ? ' ' : 'n';
	start_state_values(&o, now, values + 12, nulls + 12);
	values[16] = parent_close_policy ? CStringGetTextDatum(parent_close_policy) : (Datum) 0;
	nulls[16] = parent_close_policy ? ' ' : 'n';
	if (parent_run && o.fairness_key == NULL && o.fairness_weight == 0)
		parent_fairness(parent_run, &o.fairness_key, &o.fairness_weight);
	values[17] = o.fairness_key ? CStringGetTextDatum(o.fairness_key) : (Datum) 0;
	nulls[17] = o.fairness_key ? ' ' : 'n';
	values[18] = Float4GetDatum((float4) o.fairness_weight);
	nulls[18] = o.fairness_weight > 0 ? ' ' : 'n';
	/* its pass (fairness.c), here rather than in the statement: the hot path */
	values[19] = Float8GetDatum(o.start_delay_ms > 0 ? get_float8_infinity() :
								durable_fair_pass(ns, queue, (int) o.priority, parent_run == 0,
												  o.fairness_key,
												  o.fairness_weight > 0 ? o.fairness_weight : 1));
	start_plan = generated_id ?
		durable_plan(&generated_plan,
					 "WITH r AS (" START_RUN_INSERT("1", "") "RETURNING run_id) "
					 START_FIRST_TASK,
					 20, types) :
		durable_plan(&plan,
					 "WITH r AS (" START_RUN_INSERT(NEXT_RUN_NUMBER,
													"FROM (SELECT) one " WITH_LATEST_RUN("$1", "$2"))
					 "        AND " LATEST_CLOSED " "
					 "     ON CONFLICT (namespace, workflow_id, run_number) "
					 "     DO NOTHING RETURNING run_id) "
					 START_FIRST_TASK,
					 20, types);

	for (tries = 0; tries < 3; tries++)
	{
		int64		run_id;
		RunStatus	status;
		char	   *request_id;
		bool		isnull;

		durable_exec(start_plan, values, nulls, false, 0);
		if (SPI_processed == 1)
		{
			run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			durable_metric_count(METRIC_WORKFLOWS_STARTED, ns, type, NULL, 1);
			if (o.start_delay_ms == 0)
				durable_queue_gained_work(ns, queue);
			else
				durable_bgw_wake(now + o.start_delay_ms * 1000);
			if (values[12] && nulls[12] == ' ')
				durable_bgw_wake(DatumGetTimestampTz(values[12]));
			return run_id;
		}
		/* no row: an open run holds the id, or the namespace is unknown */
		if (generated_id)
			check_namespace_exists(ns);
		if (!durable_engine_find_latest_run(ns, workflow_id, &run_id, &status, &request_id, NULL, true) ||
			status != RUN_RUNNING)
		{
			check_namespace_exists(ns);
			continue;			/* the open run closed meanwhile: try again */
		}
		if ((o.request_id && request_id && strcmp(o.request_id, request_id) == 0) ||
			o.use_existing)
			return run_id;
		/* a concurrent debounced or throttled start of the id: join its run */
		if (o.debounce_ms > 0 || o.throttle_ms > 0)
		{
			int64		joined = debounced_start(ns, workflow_id, type, queue, input, &o, now);

			if (joined != 0)
				return joined;
		}
		if (o.terminate_existing)
		{
			/* Temporal's TerminateExisting: the running one closes, ours starts */
			durable_engine_terminate_run(run_id,
										 "terminated by a new start of its workflow id (id_conflict_policy terminate_existing)",
										 now);
			continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
				 errmsg("workflow \"%s\" is already running", workflow_id),
				 errdetail("Run " INT64_FORMAT " holds the workflow id in namespace \"%s\".",
						   run_id, ns),
				 errhint("Pass {\"id_conflict_policy\": \"use_existing\"} to get the running one, or a request_id to retry a start safely.")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not start workflow \"%s\": its id keeps changing hands", workflow_id),
			 errhint("Retry the transaction.")));
	return 0;
}

/*
 * Inserting the runs of wf_start_many, one per element of unnest($2, $3)
 * (ids and inputs, numbered n), and their first tasks: RUN_NUMBER and
 * FROM (joins after x, a WHERE condition after the namespace check, an
 * ON CONFLICT clause) as for one start.
 */
#define START_RUNS_INSERT(RUN_NUMBER, JOIN, WHERE, CONFLICT) \
	"WITH x AS (SELECT * FROM unnest($2, $3) WITH ORDINALITY " \
	"             AS x(workflow_id, input, n)), " \
	"     r AS (INSERT INTO durable.runs (namespace, workflow_id, " \
	"             workflow_type, queue, input, priority, options, " \
	"             created_at, deadline_at, retry_policy, run_timeout, " \
	"             execution_deadline, run_number, fairness_key, fairness_weight) " \
	"           SELECT $1, x.workflow_id, $4, $5, x.input, $6, $7, $8, " \
	"                  $10, $11, $12, $13, " RUN_NUMBER ", $14, $15 " \
	"             FROM x " JOIN \
	"            WHERE EXISTS (SELECT FROM durable.namespaces " \
	"                           WHERE namespace = $1) " WHERE \
	"            ORDER BY x.n " CONFLICT \
	"           RETURNING run_id, workflow_id), " \
	"     t AS (INSERT INTO durable.tasks (run_id, seq, kind, namespace, " \
	"             queue, priority, visible_at, created_at, new_run, " \
	"             fairness_key, fairness_weight, pass) " \
	"           SELECT run_id, 0, 'workflow', $1, $5, $6, $9, $8, true, $14, " \
	"                  coalesce($15, 1), " \
	FAIR_PASS("$1", "$5", "$14", "$15", "$6", "true", "$9", "$8") \
	"             FROM r ORDER BY run_id) "

/*
 * durable_start_runs: start n runs of one type on one queue with the same
 * options (wf_start_many): ids[i] with inputs[i].  All or nothing, like
 * any statement.
 *
 * With generated_ids (every id was just made by new_workflow_id), one
 * statement inserts every run as number 1 and its first task, without
 * reading the ids' runs and without ON CONFLICT, as wf_start does for one
 * generated id (durable_start_run): no policy has anything to decide for
 * an id no run holds, and should one exist after all, the insert fails on
 * the unique index.  Otherwise, under the default id_reuse_policy one
 * statement inserts every run whose id is free (and its first task); a
 * start it skipped (the id is running, or repeated in the call) and every
 * start under another reuse policy goes through durable_start_run, which
 * applies the policies exactly as wf_start does.
 */
void
durable_start_runs(const char *ns, const char *type, const char *queue,
				   Datum *ids, Datum *inputs, bool *input_nulls, int n,
				   bool generated_ids, Jsonb *options, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr generated_plan = NULL;
	static const Oid types[15] = {TEXTOID, TEXTARRAYOID, JSONBARRAYOID, TEXTOID,
		TEXTOID, INT4OID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	JSONBOID, INTERVALOID, TIMESTAMPTZOID, TEXTOID, FLOAT4OID};
	StartOptions o;
	Datum		values[15];
	char		nulls[15] = "               ";
	bool	   *started = palloc0(sizeof(bool) * n);
	int64		nstarted = 0;
	int			i;

	parse_start_options(options, &o);
	durable_check_search_attributes(ns, o.search_attributes);
	if (o.request_id)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("invalid workflow options: request_id names one start"),
				 errhint("For starts that can be retried safely, pass workflow ids with {\"id_conflict_policy\": \"use_existing\"}.")));
	for (i = 0; i < n; i++)
		if (!input_nulls[i])
			durable_check_payload(DatumGetJsonbP(inputs[i]), "workflow input");

	/* debounced and throttled starts go one by one (durable_start_run) */
	if (n > 0 && o.debounce_ms == 0 && o.throttle_ms == 0 &&
		(generated_ids || strcmp(o.reuse, "allow_duplicate") == 0))
	{
		values[0] = CStringGetTextDatum(ns);
		values[1] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
		{
			int			dims[1] = {n};
			int			lbs[1] = {1};

			values[2] = PointerGetDatum(construct_md_array(inputs, input_nulls, 1, dims, lbs,
														   JSONBOID, -1, false, TYPALIGN_INT));
		}
		values[3] = CStringGetTextDatum(type);
		values[4] = CStringGetTextDatum(queue);
		values[5] = Int32GetDatum((int32) o.priority);
		values[6] = PointerGetDatum(start_stored_options(&o));
		values[7] = TimestampTzGetDatum(now);
		values[8] = TimestampTzGetDatum(now + o.start_delay_ms * 1000);
		start_state_values(&o, now, values + 9, nulls + 9);
		values[13] = o.fairness_key ? CStringGetTextDatum(o.fairness_key) : (Datum) 0;
		nulls[13] = o.fairness_key ? ' ' : 'n';
		values[14] = Float4GetDatum((float4) o.fairness_weight);
		nulls[14] = o.fairness_weight > 0 ? ' ' : 'n';
		if (generated_ids)
		{
			bool		isnull;

			durable_plan(&generated_plan,
						 START_RUNS_INSERT("1", "", "", "")
						 "SELECT count(*) FROM r",
						 15, types);
			durable_exec(generated_plan, values, nulls, false, 0);
			nstarted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
			if (nstarted != n)
			{
				check_namespace_exists(ns);
				elog(ERROR, "durable: " INT64_FORMAT " of %d runs with new ids were inserted",
					 nstarted, n);
			}
			memset(started, true, sizeof(bool) * n);
		}
		else
		{
			uint64		k;

			durable_plan(&plan,
						 START_RUNS_INSERT(NEXT_RUN_NUMBER,
										   WITH_LATEST_RUN("$1", "x.workflow_id"),
										   "AND " LATEST_CLOSED " ",
			/* a repeated id: the second has the first's number */
										   "ON CONFLICT (namespace, workflow_id, run_number) "
										   "DO NOTHING ")
			/* a repeated id: its first start is the one inserted */
						 "SELECT min(x.n) FROM x JOIN r USING (workflow_id) GROUP BY x.workflow_id",
						 15, types);
			durable_exec(plan, values, nulls, false, 0);
			nstarted = (int64) SPI_processed;
			for (k = 0; k < SPI_processed; k++)
			{
				bool		isnull;

				started[DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[k],
													SPI_tuptable->tupdesc, 1, &isnull)) - 1] = true;
			}
		}
		if (nstarted > 0)
		{
			durable_metric_count(METRIC_WORKFLOWS_STARTED, ns, type, NULL, nstarted);
			if (o.start_delay_ms == 0)
				durable_queue_gained_tasks(ns, queue, (int) nstarted);
			else
				durable_bgw_wake(now + o.start_delay_ms * 1000);
			if (nulls[9] == ' ')
				durable_bgw_wake(DatumGetTimestampTz(values[9]));
		}
	}
	for (i = 0; i < n; i++)
		if (!started[i])
			durable_start_run(ns, TextDatumGetCString(ids[i]), type, queue,
							  input_nulls[i] ? NULL : DatumGetJsonbP(inputs[i]),
							  options, NULL, 0, 0, now, false);
}

/*
 * signal_result: what a wait for any of several names resolves with.
 */
static Jsonb *
signal_result(const char *signal, Jsonb *payload)
{
	return durable_jb_cstring(psprintf("{\"name\": %s, \"payload\": %s}",
									   durable_json_quote(signal), durable_jb_text(payload)));
}

/*
 * durable_engine_signal: store a signal for a run (idempotent by
 * signal_id) and, when the run waits for this name, hand it to its
 * oldest waiting step at once; otherwise it stays buffered until a
 * signal command takes it.  The caller holds the run's row lock.
 */
void
durable_engine_signal(int64 run_id, const char *signal, Jsonb *payload,
					  const char *signal_id, TimestampTz now)
{
	static SPIPlanPtr ins = NULL;
	static SPIPlanPtr wait = NULL;
	static const Oid types[5] = {INT8OID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = "     ";

	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(signal);
	values[2] = PointerGetDatum(payload);
	nulls[2] = payload ? ' ' : 'n';
	values[3] = signal_id ? CStringGetTextDatum(signal_id) : (Datum) 0;
	nulls[3] = signal_id ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(now);
	durable_plan(&ins,
				 "INSERT INTO durable.signals (run_id, name, payload, signal_id, created_at) "
				 "VALUES ($1, $2, $3, $4, $5) "
				 "ON CONFLICT (run_id, signal_id) WHERE signal_id IS NOT NULL DO NOTHING "
				 "RETURNING signal_no",
				 5, types);
	durable_exec(ins, values, nulls, false, 0);
	if (SPI_processed == 1)
	{
		bool		isnull;
		int64		signal_no = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 1, &isnull));

		static const Oid wait_types[3] = {INT8OID, TEXTOID, INT8OID};

		/*
		 * the oldest step waiting for this name takes it: a wait for this
		 * name alone, or for any of several names that include it
		 */
		values[2] = Int64GetDatum(signal_no);
		durable_plan(&wait,
					 "WITH s AS (SELECT seq, input IS NOT NULL AS any FROM durable.steps "
					 "            WHERE run_id = $1 AND kind = 'signal' AND status = 'pending' "
					 "              AND ((input IS NULL AND name = $2) OR input->'names' ? $2) "
					 "            ORDER BY seq LIMIT 1) "
					 "UPDATE durable.signals g SET consumed_seq = s.seq FROM s "
					 " WHERE g.signal_no = $3 RETURNING s.seq, s.any",
					 3, wait_types);
		durable_exec(wait, values, NULL, false, 0);
		if (SPI_processed == 1)
		{
			int			seq = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1, &isnull));
			bool		any = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 2, &isnull));
			Jsonb	   *value = payload ? payload : durable_jb_cstring("null");

			durable_engine_resolve_step(run_id, seq, STEP_COMPLETED,
										any ? signal_result(signal, value) : value, NULL, now);
		}
	}
}

/*
 * durable_engine_terminate_run: close a running run at once as
 * terminated (every outstanding task withdrawn, so a worker still holding
 * one gets DU004), recording terminate_requested with the reason.  For
 * wf_terminate, a parent's close and a schedule's terminate_other.
 */
void
durable_engine_terminate_run(int64 run_id, const char *reason, TimestampTz now)
{
	durable_history_add(run_id, 0, "terminate_requested",
						reason ? durable_jb_cstring(psprintf("{\"reason\": %s}",
															 durable_json_quote(reason))) : NULL);
	durable_engine_close_run(run_id, RUN_TERMINATED, NULL,
							 durable_jb_cstring(psprintf("{\"type\": \"terminated\", \"message\": %s}",
														 durable_json_quote(reason ? reason : "terminated"))),
							 now);
}

/*
 * Transitions of leased tasks, for the worker calls (task.c).
 */

/*
 * durable_engine_end_workflow_task: the worker is done with this workflow task.  If a
 * step resolved while it was leased (rerun), the same row becomes ready
 * again at once; otherwise it leaves the table.
 */
void
durable_engine_end_workflow_task(int64 run_id, const char *ns,
								 const char *queue, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];

	values[0] = Int64GetDatum(run_id);
	values[1] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "WITH d AS (DELETE FROM durable.tasks "
				 "            WHERE run_id = $1 AND seq = 0 AND NOT rerun RETURNING 1) "
				 "UPDATE durable.tasks SET state = 'ready', visible_at = $2, token = NULL, "
				 "       worker = NULL, rerun = false, attempt = 0, created_at = $2, "
				 /* new work for the run: behind its key's other tasks */
				 "       pass = durable.fair_pass(namespace, queue, fairness_key, fairness_weight, "
				 "                                priority, new_run) "
				 " WHERE run_id = $1 AND seq = 0 AND rerun",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	if (SPI_processed == 1)
		durable_queue_gained_work(ns, queue);
	else
		durable_queue_slot_freed(ns, queue);
}

/*
 * durable_engine_retry_workflow_task: the workflow code hit a transient
 * problem (task_fail, retryable): the workflow task is ready again after
 * the default retry policy's backoff for this attempt.
 */
void
durable_engine_retry_workflow_task(int64 run_id, int attempt, Jsonb *error,
								   TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	RetryPolicy policy;
	Datum		values[3];

	durable_retry_policy_parse(NULL, &policy, "retry policy");
	values[0] = Int64GetDatum(run_id);
	values[1] = TimestampTzGetDatum(now);
	values[2] = TimestampTzGetDatum(now + durable_retry_backoff_ms(&policy, attempt) * 1000);
	durable_plan(&plan,
				 "UPDATE durable.tasks SET state = 'ready', visible_at = $3, "
				 "       token = NULL, worker = NULL, rerun = false, created_at = $2, "
				 "       pass = " FAIR_PASS("namespace", "queue", "fairness_key",
										"fairness_weight", "priority", "new_run",
										"$3", "$2") " "
				 " WHERE run_id = $1 AND seq = 0 RETURNING namespace, queue",
				 3, types);
	durable_exec(plan, values, NULL, false, 0);
	if (SPI_processed == 1)
		durable_metric_count(METRIC_TASK_RETRIES,
							 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
							 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
							 "workflow", 1);
	durable_bgw_wake(DatumGetTimestampTz(values[2]));
	durable_history_add(run_id, 0, "workflow_task_failed",
						durable_jb_cstring(psprintf("{\"attempt\": %d, \"error\": %s}",
													attempt, durable_jb_text(error))));
}

/*
 * durable_engine_heartbeat: extend the lease of the task leased under
 * token from now (to lease_until, or by the lease it was claimed with),
 * never past its heartbeat or start-to-close timeout, and keep the
 * details for the next attempt.
 */
void
durable_engine_heartbeat(int64 token, TimestampTz lease_until, Jsonb *details,
						 TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {INT8OID, TIMESTAMPTZOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[4];
	char		nulls[4] = "    ";

	values[0] = Int64GetDatum(token);
	values[1] = TimestampTzGetDatum(lease_until);
	nulls[1] = lease_until ? ' ' : 'n';
	values[2] = PointerGetDatum(details);
	nulls[2] = details ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "UPDATE durable.tasks t SET visible_at = LEAST(coalesce($2, $4 + t.lease), "
				 "         $4 + (SELECT s.heartbeat_timeout FROM durable.steps s "
				 "                WHERE s.run_id = t.run_id AND s.seq = t.seq), "
				 "         t.claimed_at + (SELECT s.start_to_close FROM durable.steps s "
				 "                WHERE s.run_id = t.run_id AND s.seq = t.seq)), "
				 "       heartbeat = coalesce($3, t.heartbeat), heartbeat_at = $4 "
				 " WHERE t.token = $1 RETURNING t.visible_at",
				 4, types);
	durable_exec(plan, values, nulls, false, 0);
	/* a lease_until may shorten the lease: the worker expires it */
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			durable_bgw_wake(DatumGetTimestampTz(d));
	}
}

/*
 * durable_engine_release_task: the worker hands a leased task back
 * unfinished (graceful shutdown): ready again at once, and the attempt
 * does not count.
 */
void
durable_engine_release_task(int64 token, int64 run_id, int seq, int attempt,
							const char *ns, const char *queue, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];

	values[0] = Int64GetDatum(token);
	values[1] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "UPDATE durable.tasks SET state = 'ready', visible_at = $2, created_at = $2, "
				 "       token = NULL, worker = NULL, rerun = false, "
				 "       attempt = greatest(attempt - 1, 0) "
				 " WHERE token = $1",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	durable_history_add(run_id, seq, "task_released",
						durable_jb_cstring(psprintf("{\"attempt\": %d}", attempt)));
	/* ready again with its old pass: claims must start before it */
	durable_claim_floor_reset(ns, queue);
	durable_queue_gained_work(ns, queue);
}

/*
 * durable_step_insert_or_match: create journal entry (run, seq) once.  If it
 * exists with the same kind and name, this is a replay or a retried call:
 * nothing changes (*inserted = false).  Another kind or name is a
 * nondeterminism error naming both.
 */
void
durable_step_insert_or_match(int64 run_id, int seq, StepKind kind, const char *name,
					 StepStatus status, Jsonb *input, Jsonb *result,
					 const char *queue, const ActivityOptions *act, TimestampTz now,
					 TimestampTz due_at, bool *inserted)
{
	static SPIPlanPtr ins = NULL;
	static SPIPlanPtr get = NULL;
	static const Oid types[15] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID,
		JSONBOID, JSONBOID, TEXTOID, JSONBOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	INTERVALOID, INTERVALOID, INTERVALOID, INTERVALOID};
	static const Oid types2[2] = {INT8OID, INT4OID};
	static const ActivityOptions none;
	Datum		values[15];
	char		nulls[15] = "               ";
	char	   *old_kind;
	char	   *old_name;

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	values[2] = CStringGetTextDatum(durable_step_kind_name(kind));
	values[3] = CStringGetTextDatum(name);
	values[4] = CStringGetTextDatum(durable_step_status_name(status));
	values[5] = PointerGetDatum(input);
	nulls[5] = input ? ' ' : 'n';
	values[6] = PointerGetDatum(result);
	nulls[6] = result ? ' ' : 'n';
	values[7] = queue ? CStringGetTextDatum(queue) : (Datum) 0;
	nulls[7] = queue ? ' ' : 'n';
	if (act == NULL)
		act = &none;
	values[8] = PointerGetDatum(act->retry);
	nulls[8] = act->retry ? ' ' : 'n';
	values[9] = TimestampTzGetDatum(now);
	values[10] = TimestampTzGetDatum(due_at);
	nulls[10] = due_at != DURABLE_NO_TIME ? ' ' : 'n';
	values[11] = PointerGetDatum(durable_ms_interval(act->start_to_close_ms));
	nulls[11] = act->start_to_close_ms ? ' ' : 'n';
	values[12] = PointerGetDatum(durable_ms_interval(act->schedule_to_close_ms));
	nulls[12] = act->schedule_to_close_ms ? ' ' : 'n';
	values[13] = PointerGetDatum(durable_ms_interval(act->schedule_to_start_ms));
	nulls[13] = act->schedule_to_start_ms ? ' ' : 'n';
	values[14] = PointerGetDatum(durable_ms_interval(act->heartbeat_ms));
	nulls[14] = act->heartbeat_ms ? ' ' : 'n';
	durable_plan(&ins,
				 "INSERT INTO durable.steps (run_id, seq, kind, name, status, input, "
				 "       result, queue, retry_policy, scheduled_at, resolved_at, due_at, "
				 "       start_to_close, schedule_to_close, schedule_to_start, heartbeat_timeout) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
				 "        CASE WHEN $5 = 'pending' THEN NULL ELSE $10 END, $11, "
				 "        $12, $13, $14, $15) "
				 "ON CONFLICT (run_id, seq) DO NOTHING",
				 15, types);
	durable_exec(ins, values, nulls, false, 0);
	*inserted = SPI_processed == 1;
	if (*inserted)
		return;

	durable_plan(&get,
				 "SELECT kind, name FROM durable.steps WHERE run_id = $1 AND seq = $2",
				 2, types2);
	durable_exec(get, values, NULL, false, 1);
	if (SPI_processed != 1)
		elog(ERROR, "durable: step %d of run " INT64_FORMAT " vanished", seq, run_id);
	old_kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	old_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (strcmp(old_kind, durable_step_kind_name(kind)) != 0 || strcmp(old_name, name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_NONDETERMINISM),
				 errmsg("nondeterminism in step %d: the journal holds %s \"%s\", the code asked for %s \"%s\"",
						seq, old_kind, old_name, durable_step_kind_name(kind), name),
				 errdetail("Run " INT64_FORMAT " recorded step %d as %s \"%s\" in an earlier attempt.",
						   run_id, seq, old_kind, old_name),
				 errhint("Workflow code must make the same durable calls in the same order on every replay; version the change or start a new workflow.")));
}

/*
 * durable_engine_record_local_steps: the results of n local steps of a
 * run (seqs[i], names[i], results[i]), completed now, in one statement.
 * A seq the journal already holds (recorded in an earlier attempt, or
 * twice in this call) is inserted by nobody: the first recorded result
 * wins, and its kind and name must match (durable_step_insert_or_match,
 * which raises nondeterminism otherwise).  One statement for the whole
 * batch: a workflow that checkpoints three steps with its completion
 * ran three inserts before.
 */
void
durable_engine_record_local_steps(int64 run_id, int n, Datum *seqs, Datum *names,
								  Datum *results, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, INT4ARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
	TIMESTAMPTZOID};
	Datum		values[5];
	bool	   *inserted;
	uint64		k;
	int			i;

	if (n == 0)
		return;
	if (n == 1)
	{
		/* one step (step_record's usual call): its own insert, no arrays */
		bool		inserted;

		durable_step_insert_or_match(run_id, DatumGetInt32(seqs[0]), STEP_LOCAL,
									 TextDatumGetCString(names[0]), STEP_COMPLETED,
									 NULL, DatumGetJsonbP(results[0]), NULL, NULL,
									 now, DURABLE_NO_TIME, &inserted);
		return;
	}
	values[0] = Int64GetDatum(run_id);
	values[1] = PointerGetDatum(construct_array(seqs, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(results, n, JSONBOID, -1, false, TYPALIGN_INT));
	values[4] = TimestampTzGetDatum(now);
	durable_plan_generic(&plan,
						 "INSERT INTO durable.steps (run_id, seq, kind, name, status, result, "
						 "       scheduled_at, resolved_at) "
						 "SELECT $1, x.seq, 'local', x.name, 'completed', x.result, $5, $5 "
						 "  FROM unnest($2, $3, $4) WITH ORDINALITY AS x(seq, name, result, n) "
						 " ORDER BY x.n "
						 "ON CONFLICT (run_id, seq) DO NOTHING RETURNING seq",
						 5, types);
	durable_exec(plan, values, NULL, false, 0);
	if ((int) SPI_processed == n)
		return;
	/* some seqs were taken: each that was not inserted here must match */
	inserted = palloc0(sizeof(bool) * n);
	for (k = 0; k < SPI_processed; k++)
	{
		bool		isnull;
		int32		seq = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[k],
													  SPI_tuptable->tupdesc, 1, &isnull));

		/* the first element of that seq is the one inserted */
		for (i = 0; i < n; i++)
			if (DatumGetInt32(seqs[i]) == seq)
			{
				inserted[i] = true;
				break;
			}
	}
	for (i = 0; i < n; i++)
		if (!inserted[i])
		{
			bool		again;

			durable_step_insert_or_match(run_id, DatumGetInt32(seqs[i]), STEP_LOCAL,
										 TextDatumGetCString(names[i]), STEP_COMPLETED,
										 NULL, DatumGetJsonbP(results[i]), NULL, NULL,
										 now, DURABLE_NO_TIME, &again);
			if (again)
				elog(ERROR, "durable: step %d of run " INT64_FORMAT " was not in the journal",
					 DatumGetInt32(seqs[i]), run_id);
		}
}

/*
 * Transitions of a suspending workflow task's commands (commands.c).  A
 * command whose seq already holds the same kind and name is a replay and
 * changes nothing (durable_step_insert_or_match).
 */

/*
 * durable_engine_schedule_activity: journal entry + activity task, ready
 * now on its queue; due is the step's first deadline (schedule-to-start
 * or schedule-to-close), if any.
 */
void
durable_engine_schedule_activity(int64 run_id, int seq, const char *name,
								 Jsonb *input, const char *ns, const char *queue,
								 int priority, const ActivityOptions *act,
								 TimestampTz due, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[9] = {INT8OID, INT4OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID,
	BOOLOID, TEXTOID, FLOAT4OID};
	Datum		values[9];
	char		nulls[9] = "         ";
	bool		inserted;

	durable_step_insert_or_match(run_id, seq, STEP_ACTIVITY, name, STEP_PENDING, input,
								 NULL, queue, act, now, due, &inserted);
	if (!inserted)
		return;
	if (due != DURABLE_NO_TIME)
		durable_bgw_wake(due);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	values[2] = CStringGetTextDatum(ns);
	values[3] = CStringGetTextDatum(queue);
	values[4] = Int32GetDatum(priority);
	values[5] = TimestampTzGetDatum(now);
	/* the command's fairness key and weight, or its run's */
	values[6] = BoolGetDatum(act->fairness_key != NULL || act->fairness_weight > 0);
	values[7] = act->fairness_key ? CStringGetTextDatum(act->fairness_key) : (Datum) 0;
	nulls[7] = act->fairness_key ? ' ' : 'n';
	values[8] = Float4GetDatum((float4) (act->fairness_weight > 0 ? act->fairness_weight : 1));
	durable_plan(&plan,
				 "INSERT INTO durable.tasks (run_id, seq, kind, namespace, queue, "
				 "       priority, visible_at, created_at, fairness_key, fairness_weight, pass) "
				 "SELECT $1, $2, 'activity', $3, $4, $5, $6, $6, k.key, k.weight, "
				 "       durable.fair_pass($3, $4, k.key, k.weight, $5, false) "
				 "  FROM (SELECT CASE WHEN $7 THEN $8 ELSE r.fairness_key END AS key, "
				 "               CASE WHEN $7 THEN $9 ELSE coalesce(r.fairness_weight, 1) END AS weight "
				 "          FROM durable.runs r WHERE r.run_id = $1) k",
				 9, types);
	durable_exec(plan, values, nulls, false, 0);
	durable_queue_gained_work(ns, queue);
}

/*
 * durable_engine_wait_signal: wait for the next signal of one of names (a
 * text[]; any true: the step takes any of them, and its result is
 * {"name", "payload"}; otherwise the payload).  One already buffered is
 * consumed at once (oldest first); otherwise the step waits for
 * durable.wf_signal, or its timeout (due).  The run row is locked first,
 * as wf_signal does, so a signal and a wait that commit together meet.
 */
void
durable_engine_wait_signal(int64 run_id, int seq, const char *name, Datum names,
						   bool any, TimestampTz due, TimestampTz now)
{
	static SPIPlanPtr take = NULL;
	static const Oid types[3] = {INT8OID, TEXTARRAYOID, INT4OID};
	Datum		values[3];
	bool		inserted;
	Jsonb	   *input = NULL;

	if (any)
		input = durable_jb_cstring(psprintf("{\"names\": %s}", name));
	durable_lock_run(run_id);
	durable_step_insert_or_match(run_id, seq, STEP_SIGNAL, name, STEP_PENDING, input,
								 NULL, NULL, NULL, now, due, &inserted);
	if (!inserted)
		return;
	if (due != DURABLE_NO_TIME)
		durable_bgw_wake(due);

	values[0] = Int64GetDatum(run_id);
	values[1] = names;
	values[2] = Int32GetDatum(seq);
	durable_plan(&take,
				 "UPDATE durable.signals SET consumed_seq = $3 WHERE signal_no = "
				 " (SELECT signal_no FROM durable.signals "
				 "   WHERE run_id = $1 AND name = ANY ($2) AND consumed_seq IS NULL "
				 "   ORDER BY signal_no LIMIT 1) "
				 "RETURNING name, payload",
				 3, types);
	durable_exec(take, values, NULL, false, 0);
	if (SPI_processed == 1)
	{
		char	   *signal = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		Jsonb	   *payload = isnull ? durable_jb_cstring("null") : DatumGetJsonbPCopy(d);

		durable_engine_resolve_step(run_id, seq, STEP_COMPLETED,
									any ? signal_result(signal, payload) : payload, NULL, now);
	}
}

/*
 * Updates (wf_update).  A client's request waits in durable.updates and
 * wakes the run's workflow task; the worker validates it there and either
 * rejects it (no journal entry: the workflow never saw it) or accepts and
 * handles it, which journals a step of kind update, completed with the
 * handler's result or failed with its error.
 */

/*
 * durable_engine_request_update: record update update_id of the run and
 * wake its workflow.  False, changing nothing, when the run already has
 * an update of that id (a retried request).
 */
bool
durable_engine_request_update(int64 run_id, const char *update_id, const char *name,
							  Jsonb *args, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = "     ";

	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(update_id);
	values[2] = CStringGetTextDatum(name);
	values[3] = PointerGetDatum(args);
	nulls[3] = args ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "INSERT INTO durable.updates (run_id, update_id, name, args, created_at) "
				 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, update_id) DO NOTHING",
				 5, types);
	durable_exec(plan, values, nulls, false, 0);
	if (SPI_processed != 1)
		return false;
	durable_engine_wake_workflow(run_id, now);
	return true;
}

/*
 * durable_engine_accept_update: the workflow accepted update update_id at
 * journal entry seq while waiting on entry waiting_on (0: not said), and
 * its handler returned result (error NULL) or raised error.  Returns false, changing nothing, when the update is not
 * a requested one of the run (unknown, rejected, or accepted at another
 * entry); an update already accepted at this very entry is a replay and
 * returns true.
 */
bool
durable_engine_accept_update(int64 run_id, int seq, const char *update_id,
							 int waiting_on, Jsonb *result, Jsonb *error, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr replay_plan = NULL;
	static SPIPlanPtr error_plan = NULL;
	static const Oid types[7] = {INT8OID, INT4OID, TEXTOID, JSONBOID, JSONBOID,
	TIMESTAMPTZOID, INT4OID};
	Datum		values[7];
	char		nulls[7] = "       ";
	char	   *name;
	Jsonb	   *input;
	bool		isnull;
	bool		inserted;
	Datum		d;

	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(seq);
	values[2] = CStringGetTextDatum(update_id);
	/* completed with no result: JSON null (SQL NULL says "not handled") */
	if (result == NULL && error == NULL)
		result = durable_jb_cstring("null");
	values[3] = PointerGetDatum(result);
	nulls[3] = result ? ' ' : 'n';
	values[4] = PointerGetDatum(error);
	nulls[4] = error ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(now);
	values[6] = Int32GetDatum(waiting_on);
	nulls[6] = waiting_on > 0 ? ' ' : 'n';
	durable_plan(&plan,
				 "UPDATE durable.updates "
				 "   SET state = CASE WHEN $5 IS NULL THEN 'completed' ELSE 'failed' END, "
				 "       seq = $2, result = $4, error = $5, resolved_at = $6, waiting_on = $7 "
				 " WHERE run_id = $1 AND update_id = $3 AND state = 'requested' "
				 "RETURNING name, jsonb_strip_nulls(jsonb_build_object('update_id', update_id, "
				 "          'waiting_on', waiting_on)) || jsonb_build_object('args', args)",
				 7, types);
	durable_exec(plan, values, nulls, false, 0);
	if (SPI_processed != 1)
	{
		durable_plan(&replay_plan,
					 "SELECT 1 FROM durable.updates WHERE run_id = $1 AND update_id = $3 "
					 "   AND seq = $2",
					 7, types);
		/* not read-only: an accept earlier in this call counts */
		durable_exec(replay_plan, values, nulls, false, 1);
		return SPI_processed == 1;
	}
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	input = DatumGetJsonbPCopy(d);
	durable_step_insert_or_match(run_id, seq, STEP_UPDATE, name,
								 error ? STEP_FAILED : STEP_COMPLETED, input,
								 error ? NULL : result, NULL, NULL, now, DURABLE_NO_TIME,
								 &inserted);
	if (!inserted)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_COMMAND),
				 errmsg("journal entry %d already holds another step", seq),
				 errhint("An accepted update takes the next free entry of the journal.")));
	if (error)
	{
		durable_plan(&error_plan,
					 "UPDATE durable.steps SET error = $5 WHERE run_id = $1 AND seq = $2",
					 7, types);
		durable_exec(error_plan, values, nulls, false, 0);
	}
	return true;
}

/*
 * durable_engine_reject_update: the workflow's validator refused update
 * update_id with error: the caller learns why, the journal keeps nothing.
 * False, changing nothing, when it is not a requested one of the run; an
 * update already rejected is a repeat and returns true.
 */
bool
durable_engine_reject_update(int64 run_id, const char *update_id, Jsonb *error,
							 TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {INT8OID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[4];
	bool		isnull;

	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(update_id);
	values[2] = PointerGetDatum(error);
	values[3] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "WITH u AS (UPDATE durable.updates SET state = 'rejected', error = $3, "
				 "                  resolved_at = $4 "
				 "            WHERE run_id = $1 AND update_id = $2 AND state = 'requested' "
				 "           RETURNING 1) "
				 "SELECT EXISTS (SELECT FROM u) OR EXISTS (SELECT FROM durable.updates "
				 "        WHERE run_id = $1 AND update_id = $2 AND state = 'rejected')",
				 4, types);
	durable_exec(plan, values, NULL, false, 0);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * CLAIM_STATEMENT: the claim of at most LIMIT tasks, numbering the rows
 * it takes with NUMBER and returning them in claim order with ORDER (a
 * claim of one task needs neither), with WHERE added to the conditions on
 * the task.  A claim of one task says LIMIT 1, not $4: with a parameter
 * the generic plan expects a tenth of the queue.  Every claim keeps one
 * generic plan planned with index scans and nested loops only
 * (durable_plan_generic).  Left to choose, the plan cache planned claims
 * afresh at every call: a batch claim whenever the statistics showed a
 * backlog, and the one-task claim after some autoanalyzes of a steady
 * load (the planner then took 36% of the server's CPU, and the server's
 * CPU per workflow rose by 60% in one step: bench/README.md, "Vacuum
 * lag").  After the poll's columns come each task's pass, key and lane
 * (priority, new_run) in the fair order (fairness.c).  The run's columns
 * come with the lock: no second lookup.  A task of a new run (new_run:
 * its first workflow task, never claimed) has an empty journal, so only
 * other workflow tasks read theirs.  Last comes the xmin of the task's
 * version the claim locked (see rerun_stale_claims).
 */
#define CLAIM_STATEMENT(LIMIT, NUMBER, ORDER, WHERE) \
	"WITH c AS (SELECT x.*, " NUMBER " AS pos FROM " \
	"           (SELECT k.run_id, k.seq, k.new_run, r.workflow_id, r.workflow_type, " \
	"                   r.input, r.cancel_requested, k.priority, k.visible_at AS ready_at, " \
	"                   k.xmin AS task_xmin " \
	"              FROM durable.tasks k JOIN durable.runs r ON r.run_id = k.run_id " \
	"             WHERE k.namespace = $1 AND k.queue = $2 AND k.state = 'ready' " \
	"               AND k.visible_at <= $3 " \
	/* a paused run's task made ready since it paused waits */ \
	"               AND NOT r.paused " WHERE \
	/* runs in flight before new runs (durable.tasks.new_run), then fair order */ \
	"             ORDER BY - k.priority, k.new_run, k.pass " \
	"             LIMIT " LIMIT " FOR UPDATE OF k SKIP LOCKED) x), " \
	"     u AS (UPDATE durable.tasks t " \
	"   SET state = 'leased', token = nextval('durable.token_seq'), new_run = false, " \
	"       worker = $6, attempt = t.attempt + 1, claimed_at = $3, " \
	/* an aged task goes back to its own priority (durable_engine_age_tasks) */ \
	"       priority = t.priority - t.aged, aged = 0, " \
	"       rerun = false, heartbeat_at = NULL, " \
	"       lease = LEAST(coalesce(s.start_to_close, $5), s.heartbeat_timeout), " \
	"       visible_at = $3 + LEAST(coalesce(s.start_to_close, $5), s.heartbeat_timeout) " \
	"  FROM c LEFT JOIN durable.steps s ON s.run_id = c.run_id AND s.seq = c.seq " \
	" WHERE t.run_id = c.run_id AND t.seq = c.seq " \
	"RETURNING t.token, t.kind, c.workflow_id, t.run_id, c.workflow_type, " \
	"       coalesce(s.name, c.workflow_type) AS name, nullif(t.seq, 0) AS seq, " \
	"       CASE WHEN t.seq = 0 THEN c.input ELSE s.input END AS input, t.attempt, " \
	"       CASE WHEN t.seq > 0 THEN NULL WHEN c.new_run THEN '[]'::jsonb " \
	"            ELSE " JOURNAL_OF("t.run_id") " END AS journal, " \
	"       t.heartbeat, c.cancel_requested, t.visible_at, " \
	"       CASE WHEN t.seq = 0 THEN " UPDATES_OF("t.run_id") " END AS updates, t.pass, " \
	"       coalesce(t.fairness_key, '') AS fairness_key, c.priority, c.new_run, c.pos, " \
	"       c.ready_at, c.task_xmin) " \
	"SELECT * FROM u " ORDER
/* the lease expiry of a claimed row (task_poll's lease_until) */
#define CLAIM_LEASE_UNTIL_COLUMN 13
/* columns of a claimed row after task_poll's 14 (claim.c's POLL_COLUMNS) */
#define CLAIM_PASS_COLUMN 15
#define CLAIM_PRIORITY_COLUMN 17
#define CLAIM_NEW_RUN_COLUMN 18
/* the transaction that wrote the version of the task the claim locked */
#define CLAIM_XMIN_COLUMN 21

/*
 * durable_engine_next_keys: the fairness keys ('' for none) of the first
 * n ready tasks a claim of the queue would take, in claim order (one per
 * task: a key may repeat), as *keys; returns how many.  Nothing is
 * locked: a queue with per-key limits locks a key, then claims its next
 * task (claim.c).
 */
int
durable_engine_next_keys(const char *ns, const char *queue, TimestampTz now, int n,
						 Datum **keys)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[4];
	uint64		i;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(n);
	durable_plan(&plan,
				 "SELECT coalesce(k.fairness_key, '') FROM durable.tasks k "
				 " WHERE k.namespace = $1 AND k.queue = $2 AND k.state = 'ready' "
				 "   AND k.visible_at <= $3 "
				 " ORDER BY - k.priority, k.new_run, k.pass LIMIT $4",
				 4, types);
	/* not read-only: a fresh snapshot, as the claim's (a poll's second claim) */
	durable_exec(plan, values, NULL, false, 0);
	*keys = palloc(sizeof(Datum) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		(*keys)[i] = datumCopy(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull),
							   false, -1);
	}
	return (int) SPI_processed;
}

/*
 * durable_engine_cancel_key_tasks: a per-key limit's cancel strategy
 * (claim.c): cancel up to n activity tasks of one fairness key of a
 * queue.  With leased false, its ready tasks (cancel_newest: the tasks
 * that found the key full); with leased true, its oldest leased tasks
 * leased before now (cancel_oldest: room for a newer one; not what this
 * poll just leased).  Each step resolves cancelled with an error naming
 * why, and its task is withdrawn, so a worker still running it gets DU004
 * on its next call.  Tasks another transaction holds are skipped; workflow
 * tasks are never cancelled.  Returns how many it cancelled.
 */
int
durable_engine_cancel_key_tasks(const char *ns, const char *queue, const char *key,
								bool leased, int n, TimestampTz now)
{
	static SPIPlanPtr ready_plan = NULL;
	static SPIPlanPtr leased_plan = NULL;
	static const Oid types[5] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		values[5];
	int64	   *run_ids;
	int		   *seqs;
	int			count,
				i;
	Jsonb	   *error;

	if (n <= 0)
		return 0;
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = CStringGetTextDatum(key);
	values[3] = TimestampTzGetDatum(now);
	values[4] = Int32GetDatum(n);
#define KEY_TASKS \
	"SELECT run_id, seq FROM durable.tasks " \
	" WHERE namespace = $1 AND queue = $2 AND coalesce(fairness_key, '') = $3 " \
	"   AND kind = 'activity' "
	if (leased)
		durable_plan(&leased_plan,
					 KEY_TASKS "AND token IS NOT NULL AND claimed_at < $4 "
					 " ORDER BY claimed_at, run_id, seq LIMIT $5 FOR UPDATE SKIP LOCKED",
					 5, types);
	else
		durable_plan(&ready_plan,
					 KEY_TASKS "AND state = 'ready' AND visible_at <= $4 "
					 " ORDER BY run_id, seq LIMIT $5 FOR UPDATE SKIP LOCKED",
					 5, types);
#undef KEY_TASKS
	durable_exec(leased ? leased_plan : ready_plan, values, NULL, false, 0);
	count = (int) SPI_processed;
	run_ids = palloc(sizeof(int64) * Max(count, 1));
	seqs = palloc(sizeof(int) * Max(count, 1));
	for (i = 0; i < count; i++)
	{
		bool		isnull;

		run_ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		seqs[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	error = durable_jb_cstring(psprintf("{\"type\": \"cancelled\", \"message\": %s}",
										durable_json_quote(psprintf(leased
																	? "cancelled to make room for a newer task of fairness key \"%s\" of queue \"%s\" (cancel_oldest)"
																	: "fairness key \"%s\" of queue \"%s\" was at its concurrency limit (cancel_newest)",
																	key, queue))));
	for (i = 0; i < count; i++)
	{
		durable_engine_resolve_step(run_ids[i], seqs[i], STEP_CANCELLED, NULL, error, now);
		durable_engine_delete_task(run_ids[i], seqs[i]);
	}
	return count;
}

/*
 * rerun_stale_claims: the claim statement that left its rows in
 * SPI_tuptable read with snapshot; mark each workflow task it claimed whose
 * row was changed after that snapshot for a rerun.
 *
 * A claim reads the journal and the updates it hands out with its
 * statement's snapshot, and locks the task afterwards.  A step that
 * resolved, or an update that came, in between is not in what it handed
 * out, and its transaction found the task ready, so it did not ask for a
 * rerun: the worker would end the task with nothing left to wake the run
 * (seen: a fan-out of 100 activities stuck once in 40 runs).  Such a
 * transaction also touches the ready task (durable_engine_wake_workflows),
 * so the version the claim locks is newer than its snapshot; then the
 * lessee gets a rerun (its task is ready again when it ends, and the next
 * claim reads the journal afresh).  SPI_tuptable and SPI_processed are
 * left as they were.
 *
 * A version newer than the snapshot may also come from something else
 * (priority aging, a fair place given later), and a task not rewritten for
 * over 2^31 transactions shows its raw, frozen xmin: such a task gets one
 * replay more, never one less.  Still open: a journal handed out stale is
 * replayed once before the rerun, so a worker may run a local step whose
 * result another lessee recorded in that instant (it is recorded once,
 * the first result wins).
 */
static void
rerun_stale_claims(Snapshot snapshot)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8ARRAYOID};
	SPITupleTable *claimed = SPI_tuptable;
	uint64		nclaimed = SPI_processed;
	Datum	   *tokens = palloc(sizeof(Datum) * Max(nclaimed, 1));
	int			n = 0;
	uint64		i;
	Datum		values[1];

	for (i = 0; i < nclaimed; i++)
	{
		bool		isnull;
		HeapTuple	tup = claimed->vals[i];
		TransactionId xmin = DatumGetTransactionId(SPI_getbinval(tup, claimed->tupdesc,
																 CLAIM_XMIN_COLUMN, &isnull));

		(void) SPI_getbinval(tup, claimed->tupdesc, 7, &isnull);	/* seq */
		/* a workflow task, in a version the snapshot did not see */
		if (isnull && !TransactionIdIsCurrentTransactionId(xmin) &&
			XidInMVCCSnapshot(xmin, snapshot))
			tokens[n++] = SPI_getbinval(tup, claimed->tupdesc, 1, &isnull);
	}
	if (n == 0)
		return;
	values[0] = PointerGetDatum(construct_array(tokens, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	durable_plan_generic(&plan,
						 "UPDATE durable.tasks SET rerun = true WHERE token = ANY ($1)",
						 1, types);
	durable_exec(plan, values, NULL, false, 0);
	SPI_tuptable = claimed;
	SPI_processed = nclaimed;
}

/*
 * wake_for_leases: the claimed rows in SPI_tuptable hold leases; the
 * background worker, which expires them (polls leave it to the worker
 * where one runs), must not sleep past the first.
 */
static void
wake_for_leases(void)
{
	uint64		i;

	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									  CLAIM_LEASE_UNTIL_COLUMN, &isnull);

		if (!isnull)
			durable_bgw_wake(DatumGetTimestampTz(d));
	}
}

/*
 * durable_engine_claim: claim up to want ready tasks of a queue, in
 * priority, runs in flight, then fair order, with FOR UPDATE SKIP LOCKED;
 * each gets a new fencing token and a lease (the activity's
 * start-to-close and heartbeat timeouts cap it).  only_key (or NULL)
 * restricts it to the tasks of one fairness key: then want must be 1.
 * The claimed tasks are left in SPI_tuptable, in claim order, with
 * everything the worker needs: the first POLL_COLUMNS columns are
 * task_poll's row, then the pass, the fairness key ('' for none), the
 * priority and new_run (pos only orders).  Returns how many were claimed.
 */
int
durable_engine_claim(const char *ns, const char *queue, const char *worker,
					 int want, Interval *lease, TimestampTz now, const char *only_key)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr one_plan = NULL;
	static SPIPlanPtr one_key_plan = NULL;
	static const Oid types[9] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID,
	INTERVALOID, TEXTOID, INT4OID, BOOLOID, FLOAT8OID};
	static const Oid key_types[7] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID,
	INTERVALOID, TEXTOID, TEXTOID};
	Datum		values[9];
	int			neg_priority;
	bool		new_run;
	double		pass;
	uint64		gen = 0;
	uint64		epoch = 0;
	uint64		n;
	bool		use_floor;
	Snapshot	snapshot;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(want);
	values[4] = IntervalPGetDatum(lease);
	values[5] = CStringGetTextDatum(worker);
	if (only_key != NULL)
	{
		/* the next task of one fairness key (per-key limits) */
		Assert(want == 1);
		values[6] = CStringGetTextDatum(only_key);
		durable_plan_generic(&one_key_plan,
							 CLAIM_STATEMENT("1", "1", "", "AND coalesce(k.fairness_key, '') = $7 "),
							 7, key_types);
		snapshot = RegisterSnapshot(GetTransactionSnapshot());
		durable_exec_snapshot(one_key_plan, values, NULL, snapshot, false, 0);
		rerun_stale_claims(snapshot);
		UnregisterSnapshot(snapshot);
		wake_for_leases();
		return (int) SPI_processed;
	}
	/*
	 * From the queue's floor on (claim_floor.c): not through what it
	 * claimed.  Without floors, from the beginning, and nothing to raise:
	 * a floor only needs the raises of the claims that read it.
	 */
	use_floor = durable_claim_floors == CLAIM_FLOORS_ON ||
		(durable_claim_floors == CLAIM_FLOORS_AUTO && durable_bgw_serves_database());
	if (use_floor)
		durable_claim_floor_get(ns, queue, &neg_priority, &new_run, &pass, &gen, &epoch);
	else
	{
		neg_priority = PG_INT32_MIN;
		new_run = false;
		pass = -INFINITY;
	}
	values[6] = Int32GetDatum(neg_priority);
	values[7] = BoolGetDatum(new_run);
	values[8] = Float8GetDatum(pass);
#define FROM_FLOOR "AND (- k.priority, k.new_run, k.pass) >= ($7, $8, $9) "
	if (want == 1)
		durable_plan_generic(&one_plan, CLAIM_STATEMENT("1", "1", "", FROM_FLOOR), 9, types);
	else
		durable_plan_generic(&plan, CLAIM_STATEMENT("$4", "row_number() OVER ()", "ORDER BY pos", FROM_FLOOR),
							 9, types);
#undef FROM_FLOOR
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	durable_exec_snapshot(want == 1 ? one_plan : plan, values, NULL, snapshot, false, 0);
	rerun_stale_claims(snapshot);
	UnregisterSnapshot(snapshot);
	n = SPI_processed;
	wake_for_leases();
	if (n > 0 && use_floor)
	{
		/* the last task taken, in claim order: its lane and pass */
		HeapTuple	tup = SPI_tuptable->vals[n - 1];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		durable_claim_floor_raise(ns, queue, gen, epoch,
								  -DatumGetInt32(SPI_getbinval(tup, desc, CLAIM_PRIORITY_COLUMN, &isnull)),
								  DatumGetBool(SPI_getbinval(tup, desc, CLAIM_NEW_RUN_COLUMN, &isnull)),
								  DatumGetFloat8(SPI_getbinval(tup, desc, CLAIM_PASS_COLUMN, &isnull)));
	}
	return (int) n;
}
