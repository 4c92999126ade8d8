/*-------------------------------------------------------------------------
 *
 * task.c
 *	  The worker calls that take a token: step_record, task_suspend,
 *	  task_complete(_many), task_fail, task_heartbeat and task_release.
 *	  Each looks the token up first and locks the task row; a token that
 *	  is not the task's current lease is rejected with DU004 before
 *	  anything changes, so a zombie worker can never overwrite a newer
 *	  attempt.  Then the caller's right to the task's queue is checked and
 *	  the transition is made by engine.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "task.h"
#include "access.h"
#include "attributes.h"
#include "clock.h"
#include "engine.h"
#include "metrics.h"
#include "json.h"
#include "queues.h"
#include "shmem.h"
#include "spi.h"
#include "validate.h"

Jsonb *
durable_get_jsonb_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	return PG_GETARG_JSONB_P(argno);
}

static int64
get_token_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("token must not be NULL"),
				 errhint("Pass the token that durable.task_poll returned with the task.")));
	return PG_GETARG_INT64(0);
}

static void
stale_token(int64 token)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_STALE_TOKEN),
			 errmsg("task token " INT64_FORMAT " is not current", token),
			 errdetail("The task was finished, withdrawn, or its lease expired and it was handed to another worker."),
			 errhint("Stop working on this task; only the current lease holder's result counts.")));
}

/*
 * durable_task_lookup: find and lock the task leased under this token, and check
 * that the caller may work its queue.  Raises DU004 when the token is not
 * current.
 */
void
durable_task_lookup(int64 token, Oid caller, TaskRef *task)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	values[0] = Int64GetDatum(token);
	durable_plan_generic(&plan,
						 "SELECT t.run_id, t.seq, t.namespace, t.queue, t.priority, "
						 "       t.attempt, r.cancel_requested "
						 "  FROM durable.tasks t JOIN durable.runs r USING (run_id) "
						 " WHERE t.token = $1 FOR UPDATE OF t",
						 1, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		stale_token(token);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	task->token = token;
	task->run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	task->seq = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	task->is_workflow = task->seq == 0;
	task->ns = SPI_getvalue(tup, desc, 3);
	task->queue = SPI_getvalue(tup, desc, 4);
	task->priority = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	task->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
	task->cancel_requested = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	durable_check_right_of(caller, DURABLE_RIGHT_WORKER, task->ns, task->queue);
}

static void
require_workflow_task(TaskRef *task, const char *call)
{
	if (!task->is_workflow)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WRONG_TASK_KIND),
				 errmsg("%s needs a workflow task", call),
				 errdetail("Token " INT64_FORMAT " belongs to the activity of step %d.",
						   task->token, task->seq),
				 errhint("Finish activity tasks with durable.task_complete or durable.task_fail.")));
}

/*
 * enter_workflow_task: the prologue of the calls only a workflow task may
 * make: act as the owner (durable_enter), find and lock the task leased
 * under token (DU004 when not current), and require a workflow task
 * (DU011); call names the function in the error.
 */
static void
enter_workflow_task(int64 token, const char *call, DurableCall *dc, TaskRef *task)
{
	durable_enter(dc);
	durable_task_lookup(token, dc->saved_userid, task);
	require_workflow_task(task, call);
}

/*
 * add_step: a local step's seq, name and result, checked, as element n of
 * the arrays durable_engine_record_local_steps takes.
 */
static void
add_step(int64 seq, const char *name, Jsonb *result, int n,
		 Datum *seqs, Datum *names, Datum *results)
{
	if (seq < 1 || seq > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("step seq must be between 1 and %d", PG_INT32_MAX),
				 errdetail("The value given was " INT64_FORMAT ".", seq)));
	durable_check_payload(result, "step result");
	seqs[n] = Int32GetDatum((int32) seq);
	names[n] = CStringGetTextDatum(name);
	results[n] = JsonbPGetDatum(result ? result : durable_jb_cstring("null"));
}

/*
 * durable_record_steps: checkpoint local steps, all in one statement once
 * every step is valid.  The first recorded result of a seq wins;
 * recording it again is a no-op.
 */
void
durable_record_steps(TaskRef *task, Jsonb *steps, TimestampTz now)
{
	static const char *const keys[] = {"seq", "name", "result", NULL};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	int			n = 0;
	Datum	   *seqs;
	Datum	   *names;
	Datum	   *results;

	if (steps == NULL)
		return;
	require_workflow_task(task, "recording steps");
	if (!JB_ROOT_IS_ARRAY(steps) || JB_ROOT_IS_SCALAR(steps))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("steps must be a JSON array"),
				 errhint("Pass [{\"seq\": 1, \"name\": \"...\", \"result\": ...}, ...].")));
	seqs = palloc(sizeof(Datum) * Min(JB_ROOT_COUNT(steps) + 1, DURABLE_MAX_BATCH + 1));
	names = palloc(sizeof(Datum) * Min(JB_ROOT_COUNT(steps) + 1, DURABLE_MAX_BATCH + 1));
	results = palloc(sizeof(Datum) * Min(JB_ROOT_COUNT(steps) + 1, DURABLE_MAX_BATCH + 1));
	it = JsonbIteratorInit(&steps->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Jsonb	   *step;
		int64		seq;
		char	   *name;
		JsonbValue *res;

		if (r != WJB_ELEM)
			continue;
		if (n >= DURABLE_MAX_BATCH)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("too many steps in one call"),
					 errdetail("The limit is %d.", DURABLE_MAX_BATCH)));
		if (v.type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("invalid step %d: expected a JSON object", n + 1)));
		step = JsonbValueToJsonb(&v);
		durable_jb_check_keys(step, "step", keys);
		if (!durable_jb_get_int(step, "seq", "step", 1, PG_INT32_MAX, &seq))
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("invalid step: \"seq\" is missing")));
		name = durable_jb_get_string(step, "name", "step", DURABLE_MAX_NAME, true);
		res = durable_jb_get(step, "result");
		add_step(seq, name, res ? JsonbValueToJsonb(res) : NULL, n, seqs, names, results);
		n++;
	}
	durable_engine_record_local_steps(task->run_id, n, seqs, names, results, now);
}

/*
 * durable.step_record(token, seq, name, result)
 */
PG_FUNCTION_INFO_V1(durable_step_record);
Datum
durable_step_record(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	const char *name;
	DurableCall call;
	TaskRef		task;
	Datum		seq;
	Datum		name_datum;
	Datum		result;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("step seq must not be NULL")));
	name = durable_check_name(PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2),
					  "step name", DURABLE_MAX_NAME);
	enter_workflow_task(token, "durable.step_record", &call, &task);
	add_step(PG_GETARG_INT32(1), name, durable_get_jsonb_arg(fcinfo, 3), 0,
			 &seq, &name_datum, &result);
	durable_engine_record_local_steps(task.run_id, 1, &seq, &name_datum, &result, durable_now());
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.step_record(token, steps jsonb)
 */
PG_FUNCTION_INFO_V1(durable_step_record_many);
Datum
durable_step_record_many(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *steps = durable_get_jsonb_arg(fcinfo, 1);
	DurableCall call;
	TaskRef		task;

	if (steps == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("steps must not be NULL")));
	enter_workflow_task(token, "durable.step_record", &call, &task);
	durable_record_steps(&task, steps, durable_now());
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.task_updates(token, commands): the workflow accepted (update) or
 * rejected (reject_update) updates in the middle of its task, which goes
 * on: their callers get the outcome when this commits, and the code may
 * go on from the state the handlers left (a wait_condition they satisfy).
 */
PG_FUNCTION_INFO_V1(durable_task_updates);
Datum
durable_task_updates(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *commands = durable_get_jsonb_arg(fcinfo, 1);
	DurableCall call;
	TaskRef		task;

	if (commands == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_COMMAND),
				 errmsg("commands must not be NULL"),
				 errhint("Pass a JSON array of update and reject_update commands.")));
	enter_workflow_task(token, "durable.task_updates", &call, &task);
	durable_apply_commands(&task, commands, durable_now(), true);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.task_suspend(token, commands, steps): the workflow code waits.
 * Steps are recorded, commands applied, and the workflow task ends, all
 * in the caller's transaction.
 */
PG_FUNCTION_INFO_V1(durable_task_suspend);
Datum
durable_task_suspend(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *commands = durable_get_jsonb_arg(fcinfo, 1);
	Jsonb	   *steps = durable_get_jsonb_arg(fcinfo, 2);
	TimestampTz now = durable_now();
	DurableCall call;
	TaskRef		task;

	if (commands == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_COMMAND),
				 errmsg("commands must not be NULL"),
				 errhint("Pass a JSON array of commands; [] waits for steps already pending.")));
	enter_workflow_task(token, "durable.task_suspend", &call, &task);
	durable_record_steps(&task, steps, now);
	durable_apply_commands(&task, commands, now, false);
	durable_engine_end_workflow_task(task.run_id, task.ns, task.queue, now);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable_task_complete_one: finish one task.  A workflow task's result closes the
 * run; an activity's result resolves its step and wakes the workflow.
 */
void
durable_task_complete_one(int64 token, Jsonb *result, Jsonb *steps, Oid caller,
				  TimestampTz now)
{
	TaskRef		task;

	durable_check_payload(result, "result");
	if (result == NULL)
		result = durable_jb_cstring("null");
	if (steps == NULL)
	{
		/* the common case: one statement finds the task and closes its run */
		int64		run_id;
		int			seq;
		char	   *ns;
		char	   *queue;
		bool		closed;

		closed = durable_engine_complete_by_token(token, result, now, &run_id, &seq,
												  &ns, &queue);
		if (run_id == 0)
			stale_token(token);
		durable_check_right_of(caller, DURABLE_RIGHT_WORKER, ns, queue);
		durable_queue_slot_freed(ns, queue);
		if (closed)
			return;
		durable_engine_resolve_step(run_id, seq, STEP_COMPLETED, result, NULL, now);
		durable_engine_delete_task(run_id, seq);
		return;
	}
	durable_task_lookup(token, caller, &task);
	durable_queue_slot_freed(task.ns, task.queue);
	if (task.is_workflow)
	{
		durable_record_steps(&task, steps, now);
		durable_engine_close_run(task.run_id, RUN_COMPLETED, result, NULL, now);
	}
	else
	{
		if (steps != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_WRONG_TASK_KIND),
					 errmsg("an activity task cannot record steps"),
					 errhint("Only workflow tasks keep a journal.")));
		durable_engine_resolve_step(task.run_id, task.seq, STEP_COMPLETED, result, NULL, now);
		durable_engine_delete_task(task.run_id, task.seq);
	}
}

/*
 * continue_as_new: close the run as continued_as_new and start a new run
 * of the same workflow id with a fresh journal, atomically.  The new run
 * keeps the old one's type, queue, options, parent and execution
 * deadline; its first workflow task is ready at once.
 */
static void
continue_as_new(TaskRef *task, Jsonb *input, TimestampTz now)
{
	int64		new_run;

	durable_check_payload(input, "continue-as-new input");
	durable_engine_close_run(task->run_id, RUN_CONTINUED_AS_NEW, NULL, NULL, now);
	new_run = durable_engine_next_run(task->run_id, input, false, now, now);
	durable_history_add(task->run_id, 0, "continued_as_new",
				durable_jb_cstring(psprintf("{\"new_run_id\": " INT64_FORMAT "}", new_run)));
}

/*
 * durable.task_complete(token, result, steps, continue_as_new)
 */
PG_FUNCTION_INFO_V1(durable_task_complete);
Datum
durable_task_complete(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *can = durable_get_jsonb_arg(fcinfo, 3);
	TimestampTz now = durable_now();
	DurableCall call;

	durable_enter(&call);
	if (can == NULL)
		durable_task_complete_one(token, durable_get_jsonb_arg(fcinfo, 1), durable_get_jsonb_arg(fcinfo, 2),
						  call.saved_userid, now);
	else
	{
		TaskRef		task;

		durable_task_lookup(token, call.saved_userid, &task);
		require_workflow_task(&task, "continue-as-new");
		if (!PG_ARGISNULL(1))
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("a run that continues as new has no result"),
					 errhint("Pass result => NULL with continue_as_new.")));
		durable_record_steps(&task, durable_get_jsonb_arg(fcinfo, 2), now);
		continue_as_new(&task, can, now);
	}
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable_complete_many: tokens[i] is finished with results[i] (NULL results: all
 * null).  Shared by task_complete_many and task_poll.
 */
static bool complete_workflows_at_once(Datum *tok, Datum *res, bool *rnull,
									   int ntok, Oid caller, TimestampTz now);

void
durable_complete_many(ArrayType *tokens, ArrayType *results, Oid caller, TimestampTz now)
{
	Datum	   *tok;
	bool	   *tnull;
	int			ntok;
	Datum	   *res = NULL;
	bool	   *rnull = NULL;
	int			nres = 0;
	int			i;

	durable_array_elements(tokens, INT8OID, "tokens", &tok, &tnull, &ntok);
	if (ntok > DURABLE_MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("too many tokens in one call"),
				 errdetail("%d were given; the limit is %d.", ntok, DURABLE_MAX_BATCH)));
	if (results != NULL)
	{
		durable_array_elements(results, JSONBOID, "results", &res, &rnull, &nres);
		if (nres != ntok)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("results must have one element per token"),
					 errdetail("%d tokens and %d results were given.", ntok, nres)));
	}
	for (i = 0; i < ntok; i++)
	{
		if (tnull[i])
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("tokens must not contain NULL")));
		if (res && !rnull[i])
			durable_check_payload(DatumGetJsonbP(res[i]), "result");
	}
	if (ntok > 1 && complete_workflows_at_once(tok, res, rnull, ntok, caller, now))
		return;
	for (i = 0; i < ntok; i++)
		durable_task_complete_one(DatumGetInt64(tok[i]),
						  (res && !rnull[i]) ? DatumGetJsonbP(res[i]) : NULL,
						  NULL, caller, now);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * complete_workflows_at_once: the batch path of durable_complete_many.  When every
 * token is a distinct, current workflow-task token, the runs close
 * together (durable_engine_close_runs) instead of two statements per token.
 * Otherwise (activity tokens, stale or repeated tokens) it returns false
 * having changed nothing but row locks, and the caller completes token by
 * token, in order, which also raises the precise error.
 */
static bool
complete_workflows_at_once(Datum *tok, Datum *res, bool *rnull, int ntok,
						   Oid caller, TimestampTz now)
{
	static SPIPlanPtr lookup = NULL;
	static const Oid lookup_types[1] = {INT8ARRAYOID};
	int64	   *sorted = palloc(sizeof(int64) * ntok);
	Datum	   *run_ids = palloc(sizeof(Datum) * ntok);
	Datum	   *outputs = palloc(sizeof(Datum) * ntok);
	Datum		values[1];
	Jsonb	   *null_result = durable_jb_cstring("null");
	bool		isnull;
	int			i;

	for (i = 0; i < ntok; i++)
		sorted[i] = DatumGetInt64(tok[i]);
	qsort(sorted, ntok, sizeof(int64), cmp_int64);
	for (i = 1; i < ntok; i++)
		if (sorted[i] == sorted[i - 1])
			return false;

	values[0] = PointerGetDatum(construct_array(tok, ntok, INT8OID, 8,
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	durable_plan_generic(&lookup,
						 "SELECT x.i, t.run_id, t.seq, t.namespace, t.queue "
						 "  FROM unnest($1) WITH ORDINALITY AS x(token, i) "
						 "  JOIN durable.tasks t ON t.token = x.token "
						 " ORDER BY x.i FOR UPDATE OF t",
						 1, lookup_types);
	durable_exec(lookup, values, NULL, false, 0);
	if (SPI_processed != (uint64) ntok)
		return false;
	for (i = 0; i < ntok; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		if (DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull)) != 0)
			return false;		/* an activity token: in order, one by one */
		run_ids[i] = SPI_getbinval(tup, desc, 2, &isnull);
		outputs[i] = (res && !rnull[i]) ? res[i] : PointerGetDatum(null_result);
	}
	/* rights per task, as durable_task_lookup checks them (tuples are read first) */
	{
		char	  **ns = palloc(sizeof(char *) * ntok);
		char	  **queue = palloc(sizeof(char *) * ntok);

		for (i = 0; i < ntok; i++)
		{
			ns[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4);
			queue[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5);
		}
		for (i = 0; i < ntok; i++)
			if (i == 0 || strcmp(ns[i], ns[i - 1]) != 0 || strcmp(queue[i], queue[i - 1]) != 0)
			{
				durable_check_right_of(caller, DURABLE_RIGHT_WORKER, ns[i], queue[i]);
				durable_queue_slot_freed(ns[i], queue[i]);
			}
	}

	if (durable_engine_close_runs(PointerGetDatum(construct_array(run_ids, ntok, INT8OID, 8,
														  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)),
						  PointerGetDatum(construct_array(outputs, ntok, JSONBOID, -1,
														  false, TYPALIGN_INT)),
						  RUN_COMPLETED, NULL, now) != ntok)
		elog(ERROR, "durable: a run with a leased workflow task was not running");
	return true;
}

PG_FUNCTION_INFO_V1(durable_task_complete_many);
Datum
durable_task_complete_many(PG_FUNCTION_ARGS)
{
	DurableCall call;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("tokens must not be NULL")));
	durable_enter(&call);
	durable_complete_many(PG_GETARG_ARRAYTYPE_P(0),
				  PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1),
				  call.saved_userid, durable_now());
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.task_fail(token, error, retryable)
 *
 * Activity: retried by its retry policy when retryable; else its step
 * fails and the workflow sees the error.  Workflow task: retryable means
 * the code hit a transient problem, so the task is retried with backoff
 * (Temporal retries workflow tasks); not retryable means the workflow
 * failed, and the run closes as failed (cancelled if a cancel was
 * requested).
 */
PG_FUNCTION_INFO_V1(durable_task_fail);
Datum
durable_task_fail(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *error = durable_get_jsonb_arg(fcinfo, 1);
	bool		retryable = PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2);
	TimestampTz now = durable_now();
	DurableCall call;
	TaskRef		task;

	error = durable_jb_error_arg(error);

	durable_enter(&call);
	durable_task_lookup(token, call.saved_userid, &task);
	durable_queue_slot_freed(task.ns, task.queue);
	/* an activity's failure is counted by durable_engine_activity_failed */
	if (task.is_workflow)
		durable_metric_count(METRIC_TASK_FAILURES, task.ns, task.queue, "workflow", 1);
	if (!task.is_workflow)
		durable_engine_activity_failed(task.run_id, task.seq, error, retryable,
							   "activity_attempt_failed", now);
	else if (retryable)
		durable_engine_retry_workflow_task(task.run_id, task.attempt, error, now);
	else
		durable_engine_close_run(task.run_id,
						 task.cancel_requested ? RUN_CANCELLED : RUN_FAILED,
						 NULL, error, now);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.task_publish(token, name, value): the run of the workflow task
 * the token holds publishes value under name (NULL removes it), for
 * clients to read with wf_published or durable.published_state.
 */
PG_FUNCTION_INFO_V1(durable_task_publish);
Datum
durable_task_publish(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	const char *name = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
										  "published name", DURABLE_MAX_NAME);
	Jsonb	   *value = durable_get_jsonb_arg(fcinfo, 2);
	TimestampTz now = durable_now();
	DurableCall call;
	TaskRef		task;

	durable_check_payload(value, "published value");
	enter_workflow_task(token, "durable.task_publish", &call, &task);
	durable_engine_publish(task.run_id, name, value, now);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.task_upsert_search_attributes(token, seq, attributes): the
 * workflow code of the task's run sets search attributes (a null value
 * removes one), journaled as step seq ("upsert" "search_attributes"):
 * called again at the same seq, as a replay does, it changes nothing.
 */
PG_FUNCTION_INFO_V1(durable_task_upsert_search_attributes);
Datum
durable_task_upsert_search_attributes(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *attributes = durable_get_jsonb_arg(fcinfo, 2);
	DurableCall call;
	TaskRef		task;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	int			seq;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("step seq must not be NULL")));
	seq = durable_check_positive_int(PG_GETARG_INT32(1), "step seq", PG_INT32_MAX);
	if (attributes == NULL || !JB_ROOT_IS_OBJECT(attributes))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("search attributes must be a JSON object"),
				 errhint("Pass {\"CustomerId\": \"c-7\", \"Stage\": null}; null removes one.")));
	durable_check_payload(attributes, "search attributes");
	it = JsonbIteratorInit(&attributes->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (r == WJB_KEY)
		{
			if (v.val.string.len == 0 || v.val.string.len > DURABLE_MAX_NAME)
				ereport(ERROR,
						(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
						 errmsg("a search attribute name must be 1 to %d bytes", DURABLE_MAX_NAME)));
			durable_check_no_control_chars(v.val.string.val, v.val.string.len,
										   "search attribute name", false);
		}
	enter_workflow_task(token, "durable.task_upsert_search_attributes", &call, &task);
	durable_check_search_attributes(task.ns, attributes);
	durable_engine_upsert_search_attributes(task.run_id, seq, attributes, durable_now());
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.task_heartbeat(token, details, lease): extend the lease from
 * now, keep the details for the next attempt, and tell the worker whether
 * the run was asked to cancel.
 */
PG_FUNCTION_INFO_V1(durable_task_heartbeat);
Datum
durable_task_heartbeat(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *details = durable_get_jsonb_arg(fcinfo, 1);
	Interval   *lease;
	TimestampTz now = durable_now();
	DurableCall call;
	TaskRef		task;
	bool		cancel;

	lease = PG_ARGISNULL(2) ? NULL :
		durable_check_interval(PG_GETARG_INTERVAL_P(2), "lease", false);
	durable_check_payload(details, "heartbeat details");

	durable_enter(&call);
	durable_task_lookup(token, call.saved_userid, &task);
	durable_engine_heartbeat(token, lease ? now + durable_interval_to_ms(lease) * 1000 : 0,
							 details, now);
	cancel = task.cancel_requested;
	durable_leave(&call);
	PG_RETURN_BOOL(cancel);
}

/*
 * durable.task_release(token): hand a task back unfinished, for a worker
 * that shuts down gracefully.  The task is ready again at once and the
 * attempt does not count.
 */
PG_FUNCTION_INFO_V1(durable_task_release);
Datum
durable_task_release(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	TimestampTz now = durable_now();
	DurableCall call;
	TaskRef		task;

	durable_enter(&call);
	durable_task_lookup(token, call.saved_userid, &task);
	durable_engine_release_task(token, task.run_id, task.seq, task.attempt, task.ns,
								task.queue, now);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.task_answer_query(token, result, error) -> boolean: answer the
 * live query a poll handed out (a row of kind 'query', negative token):
 * the query handler's result, or error when it failed (no such handler,
 * or it raised).  False when the caller no longer waits (it timed out)
 * or the query was answered already.
 */
PG_FUNCTION_INFO_V1(durable_task_answer_query);
Datum
durable_task_answer_query(PG_FUNCTION_ARGS)
{
	int64		token = get_token_arg(fcinfo);
	Jsonb	   *result = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	Jsonb	   *error = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	char	   *answer;
	char	   *ns;
	char	   *queue;

	if (token >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WRONG_TASK_KIND),
				 errmsg("token " INT64_FORMAT " is not a query's", token),
				 errhint("Answer a query with the token of its row of kind 'query'; finish tasks with task_complete or task_fail.")));
	if (error != NULL)
		answer = durable_jb_text(durable_jb_error_object(error));
	else
		answer = result ? durable_jb_text(result) : "null";
	if (strlen(answer) > DURABLE_QUERY_MAX_ANSWER)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_PAYLOAD_TOO_LARGE),
				 errmsg("query answer is too large"),
				 errdetail("It has %zu bytes as JSON text; the limit is %d.",
						   strlen(answer), DURABLE_QUERY_MAX_ANSWER),
				 errhint("Answer with less, or publish large state (task_publish) for clients to read.")));
	if (!durable_query_lookup(token, &ns, &queue))
		PG_RETURN_BOOL(false);
	durable_check_right(DURABLE_RIGHT_WORKER, ns, queue);
	PG_RETURN_BOOL(durable_query_answer(token, answer, error != NULL));
}
