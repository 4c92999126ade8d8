/*-------------------------------------------------------------------------
 *
 * workflow.c
 *	  The client calls: wf_start, wf_signal, wf_cancel, wf_terminate and
 *	  wf_result.  Each runs in the caller's transaction, so a workflow
 *	  started inside a business transaction exists if and only if that
 *	  transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "task.h"
#include "workflow.h"

/* options of wf_start and of child commands */
typedef struct StartOptions
{
	bool		use_existing;	/* id_conflict_policy */
	const char *reuse;			/* id_reuse_policy */
	char	   *request_id;
	int64		priority;
	int64		start_delay_ms;
	int64		execution_timeout_ms;
	int64		run_timeout_ms;
	Jsonb	   *memo;
	Jsonb	   *search_attributes;
	Jsonb	   *retry_policy;	/* validated; NULL: a failed run stays failed */
} StartOptions;

static void
parse_start_options(Jsonb *options, StartOptions *o)
{
	static const char *const keys[] = {"id_conflict_policy", "id_reuse_policy",
		"request_id", "priority", "start_delay", "execution_timeout",
		"run_timeout", "memo", "search_attributes", "retry_policy", NULL};
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
		else if (strcmp(s, "fail") != 0)
			ereport(ERROR,
					(errcode(durable_input_errcode),
					 errmsg("invalid workflow options: unknown id_conflict_policy \"%s\"", s),
					 errhint("Use \"fail\" (the default) or \"use_existing\".")));
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
	durable_jb_get_int(options, "priority", ctx, -1000, 1000, &o->priority);
	durable_jb_get_duration_ms(options, "start_delay", ctx, &o->start_delay_ms);
	durable_jb_get_duration_ms(options, "execution_timeout", ctx, &o->execution_timeout_ms);
	durable_jb_get_duration_ms(options, "run_timeout", ctx, &o->run_timeout_ms);
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
 * find_latest_run: the newest run of a workflow id, whatever its status.
 * Returns false when there is none; *status and *request_id are palloc'd.
 */
static bool
find_latest_run(const char *ns, const char *workflow_id, int64 *run_id,
				char **status, char **request_id, bool lock)
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
					 "SELECT run_id, status, request_id FROM durable.runs "
					 " WHERE namespace = $1 AND workflow_id = $2 AND closed_at IS NULL "
					 "   FOR NO KEY UPDATE",
					 2, types);
		durable_exec(lock_plan, values, NULL, false, 1);
		if (SPI_processed == 1)
			goto found;
	}
	durable_plan(&plan,
				 "SELECT run_id, status, request_id FROM durable.runs "
				 " WHERE namespace = $1 AND workflow_id = $2 "
				 " ORDER BY run_id DESC LIMIT 1",
				 2, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		return false;
found:
	*run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (request_id)
		*request_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	return true;
}

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
workflow_closed(const char *workflow_id, const char *status)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_WORKFLOW_CLOSED),
			 errmsg("workflow \"%s\" is not running", workflow_id),
			 errdetail("Its latest run is %s.", status),
			 errhint("Only a running workflow can be signalled, cancelled or terminated.")));
}

/*
 * open_run: the running run of a workflow, locked; DU005/DU007 otherwise.
 */
static int64
open_run(const char *ns, const char *workflow_id)
{
	int64		run_id;
	char	   *status;

	if (!find_latest_run(ns, workflow_id, &run_id, &status, NULL, true))
		workflow_not_found(ns, workflow_id);
	if (strcmp(status, "running") != 0)
		workflow_closed(workflow_id, status);
	return run_id;
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
 * durable_start_run: create a run and its first workflow task, honouring the id
 * conflict and reuse policies and request_id idempotency.  Returns the
 * run id (an existing one when the start is a retry or use_existing).
 */
int64
durable_start_run(const char *ns, const char *workflow_id, const char *type,
		  const char *queue, Jsonb *input, Jsonb *options,
		  const char *parent_close_policy, int64 parent_run, int parent_seq,
		  TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[13] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID,
		INT4OID, JSONBOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,
	INT4OID, TIMESTAMPTZOID};
	StartOptions o;
	Datum		values[13];
	char		nulls[13] = "             ";
	StringInfoData stored;
	int			tries;

	parse_start_options(options, &o);
	durable_check_payload(input, "workflow input");

	if (strcmp(o.reuse, "allow_duplicate") != 0 || o.request_id)
	{
		int64		run_id;
		char	   *status;
		char	   *request_id;

		if (find_latest_run(ns, workflow_id, &run_id, &status, &request_id, false))
		{
			if (o.request_id && request_id && strcmp(o.request_id, request_id) == 0)
				return run_id;	/* a retry of the same start */
			if (strcmp(status, "running") != 0 &&
				(strcmp(o.reuse, "reject_duplicate") == 0 ||
				 (strcmp(o.reuse, "allow_duplicate_failed_only") == 0 &&
				  strcmp(status, "completed") == 0)))
				ereport(ERROR,
						(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
						 errmsg("workflow \"%s\" cannot be started again", workflow_id),
						 errdetail("Its latest run is %s and id_reuse_policy is %s.",
								   status, o.reuse),
						 errhint("Choose another workflow id, or another id_reuse_policy.")));
		}
	}

	initStringInfo(&stored);
	appendStringInfoString(&stored, "{");
	if (o.memo)
		appendStringInfo(&stored, "\"memo\": %s, ", durable_jb_text(o.memo));
	if (o.search_attributes)
		appendStringInfo(&stored, "\"search_attributes\": %s, ", durable_jb_text(o.search_attributes));
	if (parent_close_policy)
		appendStringInfo(&stored, "\"parent_close_policy\": \"%s\", ", parent_close_policy);
	if (o.execution_timeout_ms)
		appendStringInfo(&stored, "\"execution_timeout_ms\": " INT64_FORMAT ", "
						 "\"execution_deadline\": \"%s\", ", o.execution_timeout_ms,
						 timestamptz_to_str(now + o.execution_timeout_ms * 1000));
	if (o.run_timeout_ms)
		appendStringInfo(&stored, "\"run_timeout_ms\": " INT64_FORMAT ", ", o.run_timeout_ms);
	if (o.retry_policy)
		appendStringInfo(&stored, "\"retry_policy\": %s, \"attempt\": 1, ", durable_jb_text(o.retry_policy));
	appendStringInfoString(&stored, "\"start_delay_ms\": ");
	appendStringInfo(&stored, INT64_FORMAT "}", o.start_delay_ms);

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(workflow_id);
	values[2] = CStringGetTextDatum(type);
	values[3] = CStringGetTextDatum(queue);
	values[4] = PointerGetDatum(input);
	nulls[4] = input ? ' ' : 'n';
	values[5] = Int32GetDatum((int32) o.priority);
	values[6] = PointerGetDatum(durable_jb_cstring(stored.data));
	values[7] = o.request_id ? CStringGetTextDatum(o.request_id) : (Datum) 0;
	nulls[7] = o.request_id ? ' ' : 'n';
	values[8] = TimestampTzGetDatum(now);
	values[9] = TimestampTzGetDatum(now + o.start_delay_ms * 1000);
	values[10] = Int64GetDatum(parent_run);
	nulls[10] = parent_run ? ' ' : 'n';
	values[11] = Int32GetDatum(parent_seq);
	nulls[11] = parent_run ? ' ' : 'n';
	{
		int64		t = o.execution_timeout_ms ? o.execution_timeout_ms : o.run_timeout_ms;

		if (o.run_timeout_ms && o.run_timeout_ms < t)
			t = o.run_timeout_ms;
		values[12] = TimestampTzGetDatum(now + t * 1000);
		nulls[12] = t ? ' ' : 'n';
	}
	durable_plan(&plan,
				 "WITH r AS (INSERT INTO durable.runs (namespace, workflow_id, "
				 "       workflow_type, queue, input, priority, options, request_id, "
				 "       created_at, parent_run_id, parent_seq, deadline_at) "
				 "     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $13 "
				 "      WHERE EXISTS (SELECT FROM durable.namespaces WHERE namespace = $1) "
				 "     ON CONFLICT (namespace, workflow_id) WHERE closed_at IS NULL "
				 "     DO NOTHING RETURNING run_id) "
				 "INSERT INTO durable.tasks (run_id, seq, kind, namespace, queue, "
				 "       priority, visible_at, created_at) "
				 "SELECT run_id, 0, 'workflow', $1, $4, $6, $10, $9 FROM r "
				 "RETURNING run_id",
				 13, types);

	for (tries = 0; tries < 3; tries++)
	{
		int64		run_id;
		char	   *status;
		char	   *request_id;
		bool		isnull;

		durable_exec(plan, values, nulls, false, 0);
		if (SPI_processed == 1)
		{
			run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			if (o.start_delay_ms == 0)
				durable_queue_gained_work(ns, queue);
			else
				durable_bgw_wake(now + o.start_delay_ms * 1000);
			if (values[12] && nulls[12] == ' ')
				durable_bgw_wake(DatumGetTimestampTz(values[12]));
			return run_id;
		}
		/* no row: an open run holds the id, or the namespace is unknown */
		if (!find_latest_run(ns, workflow_id, &run_id, &status, &request_id, true) ||
			strcmp(status, "running") != 0)
		{
			check_namespace_exists(ns);
			continue;			/* the open run closed meanwhile: try again */
		}
		if ((o.request_id && request_id && strcmp(o.request_id, request_id) == 0) ||
			o.use_existing)
			return run_id;
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

Datum
durable_wf_start(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *type;
	const char *workflow_id;
	const char *queue;
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
	durable_enter(&call);
	durable_start_run(ns, workflow_id, type, queue, durable_get_jsonb_arg(fcinfo, 1),
			  durable_get_jsonb_arg(fcinfo, 4), NULL, 0, 0, durable_now());
	durable_leave(&call);
	PG_RETURN_TEXT_P(cstring_to_text(workflow_id));
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
	static SPIPlanPtr ins = NULL;
	static SPIPlanPtr wait = NULL;
	static const Oid types[5] = {INT8OID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID};
	const char *ns = durable_current_namespace();
	const char *workflow_id;
	const char *signal;
	const char *signal_id = NULL;
	Jsonb	   *payload = durable_get_jsonb_arg(fcinfo, 2);
	TimestampTz now = durable_now();
	Datum		values[5];
	char		nulls[5] = "     ";
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

		/* the oldest step waiting for this name takes it */
		values[2] = Int64GetDatum(signal_no);
		durable_plan(&wait,
					 "WITH s AS (SELECT seq FROM durable.steps "
					 "            WHERE run_id = $1 AND kind = 'signal' AND name = $2 "
					 "              AND status = 'pending' ORDER BY seq LIMIT 1) "
					 "UPDATE durable.signals g SET consumed_seq = s.seq FROM s "
					 " WHERE g.signal_no = $3 RETURNING s.seq",
					 3, wait_types);
		durable_exec(wait, values, NULL, false, 0);
		if (SPI_processed == 1)
		{
			int			seq = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1, &isnull));

			durable_engine_resolve_step(run_id, seq, "completed",
								payload ? payload : durable_jb_cstring("null"), NULL, now);
		}
	}
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
	int64		run_id;
	char	   *err;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	run_id = open_run(ns, workflow_id);
	err = psprintf("{\"type\": \"terminated\", \"message\": %s}",
				   durable_json_quote(reason ? reason : "terminated"));
	durable_history_add(run_id, 0, "terminate_requested",
						reason ? durable_jb_cstring(psprintf("{\"reason\": %s}",
															 durable_json_quote(reason))) : NULL);
	durable_engine_close_run(run_id, "terminated", NULL, durable_jb_cstring(err), durable_now());
	durable_leave(&call);
	PG_RETURN_VOID();
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
	char	   *status;
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(workflow_id);
	durable_enter(&call);
	durable_plan(&plan,
				 "SELECT status, output, error, run_id FROM durable.runs "
				 " WHERE namespace = $1 AND workflow_id = $2 "
				 " ORDER BY run_id DESC LIMIT 1",
				 2, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		workflow_not_found(ns, workflow_id);
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	if (strcmp(status, "completed") == 0)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		*output = isnull ? NULL : (Jsonb *) SPI_datumTransfer(d, false, -1);
		durable_leave(&call);
		return true;
	}
	if (strcmp(status, "running") != 0)
	{
		char	   *error = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_FAILED),
				 errmsg("workflow \"%s\" %s", workflow_id,
						strcmp(status, "timed_out") == 0 ? "timed out" : status),
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
	int64		wait_ms = 0;
	TimestampTz give_up;
	Jsonb	   *volatile output = NULL;
	volatile bool output_null = true;

	workflow_id = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
							 "workflow id", DURABLE_MAX_WORKFLOW_ID);
	if (!PG_ARGISNULL(1))
		wait_ms = durable_interval_to_ms(durable_check_interval(PG_GETARG_INTERVAL_P(1), "wait", true));
	give_up = GetCurrentTimestamp() + wait_ms * 1000;
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
			if (wait_ms > 0 && run_id != waiting_for)
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
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
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
