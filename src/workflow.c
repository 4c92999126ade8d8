/*-------------------------------------------------------------------------
 *
 * workflow.c
 *	  The client calls: wf_start, wf_start_many, wf_signal, wf_cancel,
 *	  wf_terminate and wf_result.  Each runs in the caller's transaction,
 *	  so a workflow started inside a business transaction exists if and
 *	  only if that transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "access.h"
#include "clock.h"
#include "engine.h"
#include "json.h"
#include "queues.h"
#include "shmem.h"
#include "spi.h"
#include "task.h"
#include "validate.h"

static void
workflow_not_found(const char *ns, const char *workflow_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_WORKFLOW_NOT_FOUND),
			 errmsg("workflow \"%s\" does not exist", workflow_id),
			 errdetail("No run of it is in namespace \"%s\".", ns),
			 errhint("Check the workflow id and the durable.namespace setting.")));
}

static void
workflow_closed(const char *workflow_id, RunStatus status)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_WORKFLOW_CLOSED),
			 errmsg("workflow \"%s\" is not running", workflow_id),
			 errdetail("Its latest run is %s.", durable_run_status_name(status)),
			 errhint("Only a running workflow can be signalled, cancelled or terminated.")));
}

/*
 * open_run: the running run of a workflow, locked; DU005/DU007 otherwise.
 */
static int64
open_run(const char *ns, const char *workflow_id)
{
	int64		run_id;
	RunStatus	status;

	if (!durable_engine_find_latest_run(ns, workflow_id, &run_id, &status, NULL, NULL, true))
		workflow_not_found(ns, workflow_id);
	if (status != RUN_RUNNING)
		workflow_closed(workflow_id, status);
	return run_id;
}

/*
 * durable.wf_start(name, input, workflow_id, queue, options) -> workflow id
 */
PG_FUNCTION_INFO_V1(durable_wf_start);
/*
 * new_workflow_id: a time-ordered UUID (version 7, RFC 9562: 48 bits of
 * Unix milliseconds, then random bits) for a start without an id.  Ids
 * made in later milliseconds sort later, so the runs indexes on
 * workflow_id take them near their right edge instead of on a random
 * leaf page each (fewer pages touched and written after each checkpoint).
 */
static char *
new_workflow_id(void)
{
	static const char hex[] = "0123456789abcdef";
	uint8		b[16];
	uint64		ms = (uint64) (GetCurrentTimestamp() / 1000 +
							   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * (uint64) 86400000);
	char	   *out = palloc(37);
	int			i;
	int			o = 0;

	if (!pg_strong_random(b + 6, 10))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	for (i = 0; i < 6; i++)
		b[i] = (uint8) (ms >> (40 - 8 * i));
	b[6] = (b[6] & 0x0f) | 0x70;	/* version 7 */
	b[8] = (b[8] & 0x3f) | 0x80;	/* variant 10 */
	for (i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
	return out;
}

/*
 * check_no_debounce: "debounce" and "throttle" act per workflow id: a start
 * whose id is generated cannot have them.
 */
static void
check_no_debounce(Jsonb *options)
{
	if (options != NULL &&
		(durable_jb_get(options, "debounce") != NULL || durable_jb_get(options, "throttle") != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("invalid workflow options: \"debounce\" and \"throttle\" need a workflow id"),
				 errhint("They act per workflow id: pass the id that names what to debounce or throttle.")));
}

Datum
durable_wf_start(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *type;
	const char *workflow_id;
	const char *queue;
	Jsonb	   *options;
	DurableCall call;

	type = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
					  "workflow name", DURABLE_MAX_NAME);
	if (PG_ARGISNULL(2))
		workflow_id = new_workflow_id();
	else
		workflow_id = durable_check_name(PG_GETARG_TEXT_PP(2), "workflow id",
								 DURABLE_MAX_WORKFLOW_ID);
	queue = durable_check_queue_name(PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3));

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	options = durable_get_jsonb_arg(fcinfo, 4);
	if (PG_ARGISNULL(2))
		check_no_debounce(options);
	durable_enter(&call);
	durable_start_run(ns, workflow_id, type, queue, durable_get_jsonb_arg(fcinfo, 1),
			  options, NULL, 0, 0, durable_now(), PG_ARGISNULL(2));
	durable_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(workflow_id));
}

/*
 * durable.wf_start_many(name, inputs, workflow_ids, queue, options) ->
 * setof workflow id: one start per element of inputs, in one call (and
 * the caller's one commit), all or none.  workflow_ids is NULL (every id
 * generated) or has one element per input (a NULL element: generated).
 * The ids come back in the order of inputs.
 */
PG_FUNCTION_INFO_V1(durable_wf_start_many);
Datum
durable_wf_start_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *ns = durable_current_namespace();
	const char *type;
	const char *queue;
	ArrayType  *inputs_arr;
	Datum	   *inputs;
	bool	   *input_nulls;
	int			n;
	Datum	   *ids;
	bool		generated_ids = true;	/* every id made here */
	DurableCall call;
	int			i;

	type = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							  "workflow name", DURABLE_MAX_NAME);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("inputs must not be NULL"),
				 errhint("Pass one input per workflow to start (an element may be NULL).")));
	inputs_arr = PG_GETARG_ARRAYTYPE_P(1);
	durable_array_elements(inputs_arr, JSONBOID, "inputs", &inputs, &input_nulls, &n);
	if (n > DURABLE_MAX_STARTS)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("too many starts in one call"),
				 errdetail("%d were given; the limit is %d.", n, DURABLE_MAX_STARTS),
				 errhint("Split the starts over several calls; one transaction may hold them all.")));
	ids = palloc(sizeof(Datum) * Max(n, 1));
	if (PG_ARGISNULL(2))
	{
		check_no_debounce(durable_get_jsonb_arg(fcinfo, 4));
		for (i = 0; i < n; i++)
			ids[i] = CStringGetTextDatum(new_workflow_id());
	}
	else
	{
		ArrayType  *ids_arr = PG_GETARG_ARRAYTYPE_P(2);
		Datum	   *given;
		bool	   *given_nulls;
		int			ngiven;

		durable_array_elements(ids_arr, TEXTOID, "workflow_ids", &given, &given_nulls, &ngiven);
		if (ngiven != n)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("workflow_ids must have one element per input"),
					 errdetail("%d inputs and %d workflow ids were given.", n, ngiven),
					 errhint("Pass NULL for workflow_ids, or NULL elements, to have ids generated.")));
		for (i = 0; i < n; i++)
			if (given_nulls[i])
				check_no_debounce(durable_get_jsonb_arg(fcinfo, 4));
		for (i = 0; i < n; i++)
		{
			ids[i] = given_nulls[i] ? CStringGetTextDatum(new_workflow_id()) :
				CStringGetTextDatum(durable_check_name(DatumGetTextPP(given[i]), "workflow id",
													   DURABLE_MAX_WORKFLOW_ID));
			generated_ids = generated_ids && given_nulls[i];
		}
	}
	queue = durable_check_queue_name(PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3));

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	durable_start_runs(ns, type, queue, ids, inputs, input_nulls, n, generated_ids,
					   durable_get_jsonb_arg(fcinfo, 4), durable_now());
	durable_leave(&call);

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (i = 0; i < n; i++)
	{
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &ids[i], &isnull);
	}
	return (Datum) 0;
}

/*
 * durable.wf_published(workflow_id) -> jsonb: what the latest run of the
 * workflow published (task_publish), as an object of name -> value ({}
 * when nothing); the run may be running or closed.
 */
PG_FUNCTION_INFO_V1(durable_wf_published);
Datum
durable_wf_published(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	const char *ns = durable_current_namespace();
	const char *workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
												 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	DurableCall call;
	int64		run_id;
	RunStatus	status;
	Datum		values[1];
	Datum		d;
	bool		isnull;
	Jsonb	   *out;

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	if (!durable_engine_find_latest_run(ns, workflow_id, &run_id, &status, NULL, NULL, false))
		workflow_not_found(ns, workflow_id);
	values[0] = Int64GetDatum(run_id);
	durable_plan(&plan,
				 "SELECT coalesce(jsonb_object_agg(name, value), '{}') "
				 "  FROM durable.published WHERE run_id = $1",
				 1, types);
	durable_exec(plan, values, NULL, true, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	out = (Jsonb *) SPI_datumTransfer(d, false, -1);
	durable_leave(&call);
	PG_RETURN_JSONB_P(out);
}

/*
 * durable.wf_query(workflow_id, name, args, timeout) -> jsonb: a live
 * query, answered by a worker's query handler against the latest run
 * replayed from its journal (running or closed).  The query goes to the
 * run's queue through shared memory (shmem.c), so it works inside the
 * caller's open transaction and changes nothing; the caller waits up to
 * timeout for a poll to take it and the worker to answer.
 */
PG_FUNCTION_INFO_V1(durable_wf_query);
Datum
durable_wf_query(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *name;
	char	   *args = "null";
	Interval   *timeout;
	DurableCall call;
	int64		run_id;
	RunStatus	status;
	char	   *queue;
	TimestampTz deadline;
	char	   *volatile answer = NULL;
	bool		is_error = false;
	bool		taken = false;
	Jsonb	   *result;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
									 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	name = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
							  "query name", DURABLE_MAX_NAME);
	if (!PG_ARGISNULL(2))
		args = durable_jb_text(PG_GETARG_JSONB_P(2));
	if (strlen(args) > DURABLE_QUERY_MAX_ARGS)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_PAYLOAD_TOO_LARGE),
				 errmsg("query arguments are too large"),
				 errdetail("They have %zu bytes as JSON text; the limit is %d.",
						   strlen(args), DURABLE_QUERY_MAX_ARGS),
				 errhint("Pass a key the workflow can look up instead.")));
	timeout = durable_check_interval(PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3),
									 "timeout", false);
	if (!durable_queries_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("live queries need durable in shared_preload_libraries"),
				 errhint("Add durable to shared_preload_libraries and restart; published state (wf_published) works without it.")));
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);

	durable_enter(&call);
	if (!durable_engine_find_latest_run(ns, workflow_id, &run_id, &status, NULL, &queue, false))
		workflow_not_found(ns, workflow_id);
	durable_leave(&call);

	deadline = GetCurrentTimestamp() + durable_interval_to_ms(timeout) * 1000;
	if (!durable_query_post(ns, queue, run_id, name, args, deadline))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many live queries at once"),
				 errdetail("All %d query slots (durable.max_queries) are waiting for answers.",
						   durable_max_queries),
				 errhint("Retry later, or raise durable.max_queries (it needs a restart).")));
	PG_TRY();
	{
		answer = durable_query_wait(deadline, &is_error, &taken);
	}
	PG_FINALLY();
	{
		durable_query_end();
	}
	PG_END_TRY();

	if (answer == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_QUERY_TIMEOUT),
				 errmsg("no worker answered query \"%s\" of workflow \"%s\" in time", name, workflow_id),
				 taken ? errdetail("A worker of queue \"%s\" took the query but did not answer within the timeout.", queue)
				 : errdetail("No worker polled queue \"%s\" within the timeout.", queue),
				 errhint("Run a worker for queue \"%s\" with this workflow's code, or give a longer timeout.", queue)));
	result = durable_jb_cstring(answer);
	if (is_error)
	{
		char	   *message = NULL;

		if (JB_ROOT_IS_OBJECT(result))
		{
			JsonbValue *m = durable_jb_get(result, "message");

			if (m != NULL && m->type == jbvString)
				message = pnstrdup(m->val.string.val, m->val.string.len);
		}
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_QUERY_FAILED),
				 errmsg("query \"%s\" of workflow \"%s\" failed: %s", name, workflow_id,
						message ? message : "the worker answered with an error"),
				 errdetail("The worker's error: %s", answer)));
	}
	PG_RETURN_JSONB_P(result);
}

/*
 * Completing an activity by (workflow id, seq) instead of by its token:
 * Temporal's async activity completion.  A worker leaves the attempt open
 * (its activity returns without completing); another system finishes it
 * later with a client's rights.  The latest run of the workflow must be
 * running and its step seq an activity still pending (DU014 otherwise);
 * a worker still holding the attempt's token then gets DU004.
 */
static void
lock_pending_activity(const char *ns, const char *workflow_id, int seq,
					  int64 *run_id, char **queue_ns, char **queue)
{
	bool		leased;

	*run_id = open_run(ns, workflow_id);
	if (!durable_engine_lock_activity(*run_id, seq, queue_ns, queue, &leased))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_NO_PENDING_ACTIVITY),
				 errmsg("workflow \"%s\" has no pending activity at step %d", workflow_id, seq),
				 errdetail("Step %d is resolved already, is not an activity, or does not exist.", seq),
				 errhint("durable.journal shows the run's steps.")));
	if (leased)
		durable_queue_slot_freed(*queue_ns, *queue);
}

static int
seq_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("seq must be a whole number of at least 1"),
				 errhint("Pass the activity's step number (durable.journal.seq).")));
	return PG_GETARG_INT32(1);
}

/*
 * durable.activity_complete(workflow_id, seq, result)
 */
PG_FUNCTION_INFO_V1(durable_activity_complete);
Datum
durable_activity_complete(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
												 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	int			seq = seq_arg(fcinfo);
	Jsonb	   *result = durable_get_jsonb_arg(fcinfo, 2);
	TimestampTz now = durable_now();
	DurableCall call;
	int64		run_id;
	char	   *queue_ns;
	char	   *queue;

	durable_check_payload(result, "result");
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	lock_pending_activity(ns, workflow_id, seq, &run_id, &queue_ns, &queue);
	durable_engine_resolve_step(run_id, seq, STEP_COMPLETED,
								result ? result : durable_jb_cstring("null"), NULL, now);
	durable_engine_delete_task(run_id, seq);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.activity_fail(workflow_id, seq, error, retryable): an attempt
 * failed; the activity's retry policy decides, as for task_fail.
 */
PG_FUNCTION_INFO_V1(durable_activity_fail);
Datum
durable_activity_fail(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
												 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	int			seq = seq_arg(fcinfo);
	Jsonb	   *error = durable_get_jsonb_arg(fcinfo, 2);
	bool		retryable = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	TimestampTz now = durable_now();
	DurableCall call;
	int64		run_id;
	char	   *queue_ns;
	char	   *queue;

	error = durable_jb_error_arg(error);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	lock_pending_activity(ns, workflow_id, seq, &run_id, &queue_ns, &queue);
	durable_engine_activity_failed(run_id, seq, error, retryable, "activity_attempt_failed", now);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.wf_signal(workflow_id, signal, payload, signal_id)
 *
 * The signal is stored (idempotent by signal_id) and, when the run waits
 * for this name, handed to its oldest waiting step at once; otherwise it
 * stays buffered until a signal command takes it.
 */
PG_FUNCTION_INFO_V1(durable_wf_signal);
Datum
durable_wf_signal(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *signal;
	const char *signal_id = NULL;
	Jsonb	   *payload = durable_get_jsonb_arg(fcinfo, 2);
	TimestampTz now = durable_now();
	DurableCall call;
	int64		run_id;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	signal = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
						"signal name", DURABLE_MAX_NAME);
	if (!PG_ARGISNULL(3))
		signal_id = durable_check_name(PG_GETARG_TEXT_PP(3), "signal id", DURABLE_MAX_NAME);
	durable_check_payload(payload, "signal payload");

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	run_id = open_run(ns, workflow_id);

	durable_engine_signal(run_id, signal, payload, signal_id, now);
	durable_leave(&call);
	PG_RETURN_VOID();
}

static const char *
reason_arg(FunctionCallInfo fcinfo)
{
	return durable_check_text_arg(fcinfo, 1, "reason", 10000);
}

/*
 * durable.wf_cancel(workflow_id, reason): cooperative cancellation.
 */
PG_FUNCTION_INFO_V1(durable_wf_cancel);
Datum
durable_wf_cancel(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *reason = reason_arg(fcinfo);
	DurableCall call;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	durable_engine_cancel_run(open_run(ns, workflow_id), reason, durable_now());
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.wf_terminate(workflow_id, reason): close at once; every
 * outstanding task is withdrawn, so a worker still holding one gets DU004.
 */
PG_FUNCTION_INFO_V1(durable_wf_terminate);
Datum
durable_wf_terminate(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *reason = reason_arg(fcinfo);
	DurableCall call;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	durable_engine_terminate_run(open_run(ns, workflow_id), reason, durable_now());
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.wf_pause(workflow_id, reason) and durable.wf_unpause(workflow_id,
 * reason): hold a running workflow's tasks, and let it go on.  True when
 * the call changed it, false when it already was as asked (so a batch
 * can be run again).
 */
static Datum
set_paused(FunctionCallInfo fcinfo, bool pause)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *reason = reason_arg(fcinfo);
	DurableCall call;
	bool		changed;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
									 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	changed = durable_engine_set_paused(open_run(ns, workflow_id), pause, reason,
										durable_now());
	durable_leave(&call);
	PG_RETURN_BOOL(changed);
}

PG_FUNCTION_INFO_V1(durable_wf_pause);
Datum
durable_wf_pause(PG_FUNCTION_ARGS)
{
	return set_paused(fcinfo, true);
}

PG_FUNCTION_INFO_V1(durable_wf_unpause);
Datum
durable_wf_unpause(PG_FUNCTION_ARGS)
{
	return set_paused(fcinfo, false);
}

/*
 * reset_args: the workflow id and to_seq of wf_reset and wf_fork, and the
 * latest run of that id (locked), checked to be resettable there.
 */
static int64
reset_args(FunctionCallInfo fcinfo, const char *ns, const char **workflow_id,
		   int *to_seq, RunStatus *status, bool fork)
{
	int64		run_id;
	char	   *why;

	*workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
									  "workflow id", DURABLE_MAX_WORKFLOW_ID);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("to_seq must not be NULL"),
				 errhint("Pass the first step to redo; 1 starts the run over.")));
	*to_seq = durable_check_positive_int(PG_GETARG_INT32(1), "to_seq", PG_INT32_MAX);
	if (!durable_engine_find_latest_run(ns, *workflow_id, &run_id, status, NULL, NULL, true))
		workflow_not_found(ns, *workflow_id);
	why = durable_engine_reset_point(run_id, *to_seq, fork);
	if (why)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("cannot %s workflow \"%s\" at step %d", fork ? "fork" : "reset",
						*workflow_id, *to_seq),
				 errdetail("Run " INT64_FORMAT ": %s.", run_id, why)));
	return run_id;
}

/*
 * durable.wf_reset(workflow_id, to_seq, reason) -> the new run's id: the
 * latest run (running: terminated first) is replaced by a new run of the
 * same workflow id that keeps its steps before to_seq and redoes the rest.
 * Signals the kept steps did not take are delivered to the new run.
 */
PG_FUNCTION_INFO_V1(durable_wf_reset);
Datum
durable_wf_reset(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *reason = durable_check_text_arg(fcinfo, 2, "reason", 10000);
	TimestampTz now = durable_now();
	DurableCall call;
	RunStatus	status;
	int			to_seq;
	int64		run_id;
	int64		new_run;

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	run_id = reset_args(fcinfo, ns, &workflow_id, &to_seq, &status, false);
	new_run = durable_engine_reset(run_id, status == RUN_RUNNING, to_seq, reason, now);
	durable_leave(&call);
	PG_RETURN_INT64(new_run);
}

/*
 * durable.wf_fork(workflow_id, to_seq, new_workflow_id) -> the new
 * workflow's id: a new workflow (no parent) whose first run keeps the
 * latest run's steps before to_seq and redoes the rest; the source is
 * left as it is.
 */
PG_FUNCTION_INFO_V1(durable_wf_fork);
Datum
durable_wf_fork(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *new_id;
	TimestampTz now = durable_now();
	DurableCall call;
	RunStatus	status;
	int			to_seq;
	int64		run_id;
	int64		new_run;

	new_id = PG_ARGISNULL(2) ? new_workflow_id() :
		durable_check_name(PG_GETARG_TEXT_PP(2), "new workflow id", DURABLE_MAX_WORKFLOW_ID);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	run_id = reset_args(fcinfo, ns, &workflow_id, &to_seq, &status, true);
	new_run = durable_engine_reset_run(run_id, new_id, to_seq, now);
	if (new_run == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
				 errmsg("workflow \"%s\" is already running", new_id),
				 errhint("Fork to another workflow id, or pass NULL to have one generated.")));
	durable_history_add(run_id, 0, "workflow_forked",
						durable_jb_cstring(psprintf("{\"workflow_id\": %s, \"run_id\": " INT64_FORMAT ", \"to_seq\": %d}",
													durable_json_quote(new_id), new_run, to_seq)));
	durable_history_add(new_run, 0, "forked_from",
						durable_jb_cstring(psprintf("{\"workflow_id\": %s, \"run_id\": " INT64_FORMAT ", \"to_seq\": %d}",
													durable_json_quote(workflow_id), run_id, to_seq)));
	durable_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(new_id));
}

/*
 * wait_deadline: when a call that waits up to its interval argument argno
 * ('wait', NULL or 0: no wait) gives up.
 */
static TimestampTz
wait_deadline(FunctionCallInfo fcinfo, int argno)
{
	int64		wait_ms = 0;

	if (!PG_ARGISNULL(argno))
		wait_ms = durable_interval_to_ms(durable_check_interval(PG_GETARG_INTERVAL_P(argno),
																 "wait", true));
	return GetCurrentTimestamp() + wait_ms * 1000;
}

/* sleep_between_reads: wait ms (or until the latch is set) before reading again */
static void
sleep_between_reads(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * read_result: read the latest run of the workflow.  True when it
 * completed (*output its output, NULL for none); raises DU010 when it
 * closed otherwise; false while it runs (*run_id is the open run).
 */
static bool
read_result(const char *ns, const char *workflow_id, Jsonb **output,
			int64 *run_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	DurableCall call;
	RunStatus	status;
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(workflow_id);
	durable_enter(&call);
	durable_plan(&plan,
				 "SELECT status, output, error, run_id FROM durable.runs "
				 " WHERE namespace = $1 AND workflow_id = $2 "
				 " ORDER BY run_number DESC LIMIT 1",
				 2, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		workflow_not_found(ns, workflow_id);
	status = durable_run_status_parse(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	*run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (status == RUN_COMPLETED)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		*output = isnull ? NULL : (Jsonb *) SPI_datumTransfer(d, false, -1);
		durable_leave(&call);
		return true;
	}
	if (status != RUN_RUNNING)
	{
		char	   *error = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_FAILED),
				 errmsg("workflow \"%s\" %s", workflow_id,
						status == RUN_TIMED_OUT ? "timed out" : durable_run_status_name(status)),
				 errdetail("%s", error ? error : "no error recorded"),
				 errhint("durable.wf_history shows what happened.")));
	}
	durable_leave(&call);
	return false;
}

/*
 * durable.wf_result(workflow_id, wait) -> output
 *
 * NULL while the latest run is open (after waiting up to 'wait'); raises
 * DU010 with the run's error when it failed, was cancelled, terminated or
 * timed out.  Each read is a fresh snapshot (READ COMMITTED).  Waiting
 * registers the open run and sleeps on the latch, which the transaction
 * that closes the run sets at commit (shmem.c), with a read every second
 * as a safety net; without
 * preloading (no shared memory) it reads again after 10 ms, then 20, 40
 * ... up to a second.
 */
PG_FUNCTION_INFO_V1(durable_wf_result);
Datum
durable_wf_result(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	TimestampTz give_up;
	bool		waits;
	Jsonb	   *volatile output = NULL;
	volatile bool output_null = true;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	give_up = wait_deadline(fcinfo, 1);
	waits = give_up > GetCurrentTimestamp();
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);

	PG_TRY();
	{
		bool		woken = false;
		int64		waiting_for = 0;
		long		poll_ms = 10;

		for (;;)
		{
			TimestampTz now;
			long		sleep_ms;
			int64		run_id;

			if (read_result(ns, workflow_id, (Jsonb **) &output, &run_id))
			{
				output_null = output == NULL;
				break;
			}
			if (waits && run_id != waiting_for)
			{
				/* a new open run (first read, continue-as-new, retry):
				 * register for its close, then read once more */
				woken = durable_result_wait_begin(run_id);
				waiting_for = run_id;
				continue;
			}
			now = GetCurrentTimestamp();
			if (now >= give_up)
				break;
			sleep_ms = woken ? 1000 : poll_ms;
			sleep_ms = Min(sleep_ms, (long) ((give_up - now) / 1000) + 1);
			poll_ms = Min(poll_ms * 2, 1000);
			sleep_between_reads(sleep_ms);
		}
	}
	PG_FINALLY();
	{
		durable_result_wait_end();
	}
	PG_END_TRY();
	if (output_null)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(output);
}

/*
 * durable.wf_update(workflow_id, name, args, update_id) -> update id
 *
 * Send an update to the running run of a workflow, in the caller's
 * transaction: it exists, and wakes the workflow, when that commits.
 * The same update_id again is the same update (nothing new is sent).
 * The caller cannot see the worker's answer inside the transaction that
 * sent it, so the answer has a call of its own: wf_update_result.
 */
PG_FUNCTION_INFO_V1(durable_wf_update);
Datum
durable_wf_update(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *name;
	const char *update_id;
	Jsonb	   *args = durable_get_jsonb_arg(fcinfo, 2);
	DurableCall call;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
									 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	name = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
							  "update name", DURABLE_MAX_NAME);
	update_id = PG_ARGISNULL(3) ? new_workflow_id() :
		durable_check_name(PG_GETARG_TEXT_PP(3), "update id", DURABLE_MAX_NAME);
	durable_check_payload(args, "update arguments");

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	(void) durable_engine_request_update(open_run(ns, workflow_id), update_id, name, args,
										 durable_now());
	durable_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(update_id));
}

/*
 * read_update: the update's state in the latest run of the workflow that
 * has it.  Returns true with *result set (NULL for SQL NULL) when the
 * update completed; raises DU017 when it failed, was rejected, or its run
 * closed without handling it; false while it waits.
 */
static bool
read_update(const char *ns, const char *workflow_id, const char *update_id,
			Jsonb **result)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	DurableCall call;
	char	   *state;
	char	   *error;
	char	   *run_status;
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(workflow_id);
	values[2] = CStringGetTextDatum(update_id);
	durable_enter(&call);
	durable_plan(&plan,
				 "SELECT u.state, u.result, u.error, r.status FROM durable.runs r "
				 "  JOIN durable.updates u ON u.run_id = r.run_id AND u.update_id = $3 "
				 " WHERE r.namespace = $1 AND r.workflow_id = $2 "
				 " ORDER BY r.run_number DESC LIMIT 1",
				 3, types);
	/* not read-only: each read takes a fresh snapshot (READ COMMITTED) */
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_NOT_FOUND),
				 errmsg("workflow \"%s\" has no update \"%s\"", workflow_id, update_id),
				 errdetail("No run of it in namespace \"%s\" was sent that update.", ns),
				 errhint("wf_update returns the update id to wait for.")));
	state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	error = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	run_status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	if (strcmp(state, "completed") == 0)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		*result = isnull ? NULL : (Jsonb *) SPI_datumTransfer(d, false, -1);
		durable_leave(&call);
		return true;
	}
	if (strcmp(state, "requested") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_UPDATE_FAILED),
				 errmsg("update \"%s\" of workflow \"%s\" %s", update_id, workflow_id,
						strcmp(state, "rejected") == 0 ? "was rejected" : "failed"),
				 errdetail("%s", error ? error : "no error recorded"),
				 errhint("%s", strcmp(state, "rejected") == 0 ?
						 "The workflow's validator refused it; the workflow never saw it." :
						 "The workflow's update handler raised this error.")));
	if (strcmp(run_status, "running") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_UPDATE_FAILED),
				 errmsg("update \"%s\" of workflow \"%s\" was never handled", update_id, workflow_id),
				 errdetail("The run it was sent to is %s.", run_status),
				 errhint("A run handles updates while it waits; one that closes first leaves them unhandled.")));
	durable_leave(&call);
	return false;
}

/*
 * durable.wf_update_result(workflow_id, update_id, wait) -> result
 *
 * The update's result once a worker has handled it (waiting up to
 * 'wait'), NULL while it still waits; DU017 when it failed, was rejected,
 * or its run closed first.  Each read is a fresh snapshot (READ
 * COMMITTED); between reads it sleeps 10 ms, then 20, 40 ... up to 200.
 */
PG_FUNCTION_INFO_V1(durable_wf_update_result);
Datum
durable_wf_update_result(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *update_id;
	TimestampTz give_up;
	long		poll_ms = 10;
	Jsonb	   *result = NULL;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
									 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	update_id = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
								   "update id", DURABLE_MAX_NAME);
	give_up = wait_deadline(fcinfo, 2);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);

	while (!read_update(ns, workflow_id, update_id, &result))
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now >= give_up)
			PG_RETURN_NULL();
		sleep_between_reads(Min(poll_ms, (long) ((give_up - now) / 1000) + 1));
		poll_ms = Min(poll_ms * 2, 200);
	}
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}
