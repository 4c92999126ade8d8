/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  Administration of namespaces and queues: namespace_create,
 *	  namespace_set_retention, queue_pause and queue_unpause.  Like every
 *	  engine function they check the caller's right (admin) and then act
 *	  as the extension's owner, so an admin role granted with
 *	  durable.grant_admin needs no rights on the tables themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "durable.h"

/* a namespace name: 1 to 255 bytes, what durable.namespace accepts */
static const char *
namespace_arg(FunctionCallInfo fcinfo)
{
	const char *ns = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (ns == NULL || ns[0] == '\0' || strlen(ns) > DURABLE_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("invalid namespace name"),
				 errdetail("A namespace name is 1 to 255 bytes (as durable.namespace allows).")));
	return ns;
}

static Interval *
retention_arg(FunctionCallInfo fcinfo)
{
	Interval   *r = PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1);
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	if (r == NULL ||
		DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(r),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("retention must be zero or positive")));
	return r;
}

/*
 * namespace_change: run sql ($1 the namespace, $2 the retention) for
 * namespace_create or namespace_set_retention, as the owner after the
 * admin check.  Returns whether it changed a row; *ns is the name.
 */
static bool
namespace_change(FunctionCallInfo fcinfo, SPIPlanPtr *plan, const char *sql,
				 const char **ns)
{
	static const Oid types[2] = {TEXTOID, INTERVALOID};
	Interval   *retention;
	DurableCall call;
	Datum		values[2];
	bool		changed;

	*ns = namespace_arg(fcinfo);
	retention = retention_arg(fcinfo);
	durable_check_right(DURABLE_RIGHT_ADMIN, *ns, NULL);
	durable_enter(&call);
	values[0] = CStringGetTextDatum(*ns);
	values[1] = IntervalPGetDatum(retention);
	durable_plan(plan, sql, 2, types);
	durable_exec(*plan, values, NULL, false, 0);
	changed = SPI_processed == 1;
	durable_leave(&call);
	return changed;
}

/*
 * durable.namespace_create(namespace, retention): closed runs of the
 * namespace are purged once retention has passed.
 */
PG_FUNCTION_INFO_V1(durable_namespace_create);
Datum
durable_namespace_create(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	const char *ns;

	if (!namespace_change(fcinfo, &plan,
						  "INSERT INTO durable.namespaces (namespace, retention) VALUES ($1, $2) "
						  "ON CONFLICT DO NOTHING", &ns))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
				 errmsg("namespace \"%s\" already exists", ns),
				 errhint("Use durable.namespace_set_retention to change its retention.")));
	PG_RETURN_VOID();
}

/*
 * durable.namespace_set_retention(namespace, retention)
 */
PG_FUNCTION_INFO_V1(durable_namespace_set_retention);
Datum
durable_namespace_set_retention(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	const char *ns;

	if (!namespace_change(fcinfo, &plan,
						  "UPDATE durable.namespaces SET retention = $2 WHERE namespace = $1",
						  &ns))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("namespace \"%s\" does not exist", ns),
				 errhint("Create it with durable.namespace_create.")));
	PG_RETURN_VOID();
}

/*
 * set_paused: pause or unpause the queue named by the first argument in
 * the current namespace (the second is the note), as the owner after the
 * admin check.  Returns whether a row changed (unpausing a queue never
 * paused changes none); *queue is the name.
 */
static bool
set_paused(FunctionCallInfo fcinfo, bool paused, const char **queue)
{
	static SPIPlanPtr pause_plan = NULL;
	static SPIPlanPtr unpause_plan = NULL;
	static const Oid types[4] = {TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	const char *ns = current_namespace();
	const char *note;
	DurableCall call;
	Datum		values[4];
	char		nulls[4] = "    ";
	bool		changed;

	*queue = check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	note = check_note_arg(fcinfo, 1);
	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(*queue);
	values[2] = note ? CStringGetTextDatum(note) : (Datum) 0;
	nulls[2] = note ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (paused)
	{
		durable_plan(&pause_plan,
					 "INSERT INTO durable.queues AS q (namespace, queue, paused, note, updated_at) "
					 "VALUES ($1, $2, true, $3, $4) "
					 "ON CONFLICT ON CONSTRAINT queues_pkey DO UPDATE "
					 "   SET paused = true, note = excluded.note, updated_at = $4",
					 4, types);
		durable_exec(pause_plan, values, nulls, false, 0);
	}
	else
	{
		durable_plan(&unpause_plan,
					 "UPDATE durable.queues SET paused = false, note = $3, updated_at = $4 "
					 " WHERE namespace = $1 AND queue = $2 AND paused",
					 4, types);
		durable_exec(unpause_plan, values, nulls, false, 0);
	}
	changed = SPI_processed == 1;
	durable_leave(&call);
	return changed;
}

/*
 * durable.queue_pause(queue, note): claims from the queue stop; work
 * still queues up.
 */
PG_FUNCTION_INFO_V1(durable_queue_pause);
Datum
durable_queue_pause(PG_FUNCTION_ARGS)
{
	const char *queue;

	(void) set_paused(fcinfo, true, &queue);
	PG_RETURN_VOID();
}

/*
 * durable.queue_unpause(queue, note): claims resume, and the queue's
 * waiting workers are woken (the tasks that waited are ready).
 */
PG_FUNCTION_INFO_V1(durable_queue_unpause);
Datum
durable_queue_unpause(PG_FUNCTION_ARGS)
{
	const char *queue;

	if (!set_paused(fcinfo, false, &queue))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("queue \"%s\" is not paused", queue)));
	Async_Notify(psprintf("durable_%s", queue), "");
	PG_RETURN_VOID();
}

/*
 * durable.queue_set_concurrency(queue, max_concurrency): at most that
 * many of the queue's tasks (workflow and activity) are leased at once;
 * polls hand out only what fits.  NULL lifts the limit.  Waiting workers
 * are woken: a raised limit may have room for them.
 */
PG_FUNCTION_INFO_V1(durable_queue_set_concurrency);
Datum
durable_queue_set_concurrency(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID};
	const char *ns = current_namespace();
	const char *queue = check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	DurableCall call;
	Datum		values[4];
	char		nulls[4] = "    ";

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	if (!PG_ARGISNULL(1))
		(void) check_positive_int(PG_GETARG_INT32(1), "max_concurrency", PG_INT32_MAX);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[2] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	durable_plan(&plan,
				 "INSERT INTO durable.queues AS q (namespace, queue, max_concurrency, updated_at) "
				 "VALUES ($1, $2, $3, $4) "
				 "ON CONFLICT ON CONSTRAINT queues_pkey DO UPDATE "
				 "   SET max_concurrency = $3, updated_at = $4",
				 4, types);
	durable_exec(plan, values, nulls, false, 0);
	durable_leave(&call);
	Async_Notify(psprintf("durable_%s", queue), "");
	PG_RETURN_VOID();
}

/*
 * durable.queue_set_rate(queue, per_second, burst): at most per_second
 * claims of the queue's tasks per second, in bursts of up to burst
 * (default: per_second rounded up); a token bucket that starts full.
 * NULL per_second lifts the limit.
 */
PG_FUNCTION_INFO_V1(durable_queue_set_rate);
Datum
durable_queue_set_rate(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {TEXTOID, TEXTOID, FLOAT8OID, INT4OID, TIMESTAMPTZOID};
	const char *ns = current_namespace();
	const char *queue = check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	DurableCall call;
	Datum		values[5];
	char		nulls[5] = "     ";
	double		rate = 0;
	int			burst = 0;

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	if (!PG_ARGISNULL(1))
	{
		rate = PG_GETARG_FLOAT8(1);
		if (isnan(rate) || rate < 0.000001 || rate > 1000000)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("per_second must be between 0.000001 and 1000000"),
					 errhint("Pass NULL to lift the rate limit.")));
		burst = PG_ARGISNULL(2) ? (int) Max(ceil(rate), 1) :
			check_positive_int(PG_GETARG_INT32(2), "burst", 1000000);
	}
	else if (!PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("burst needs per_second")));
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = Float8GetDatum(rate);
	values[3] = Int32GetDatum(burst);
	nulls[2] = nulls[3] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[4] = TimestampTzGetDatum(durable_now());
	durable_plan(&plan,
				 "INSERT INTO durable.queues AS q (namespace, queue, max_rate, rate_burst, "
				 "       bucket, bucket_at, updated_at) "
				 "VALUES ($1, $2, $3, $4, $4, CASE WHEN $3 IS NOT NULL THEN $5 END, $5) "
				 "ON CONFLICT ON CONSTRAINT queues_pkey DO UPDATE "
				 "   SET max_rate = $3, rate_burst = $4, bucket = $4, "
				 "       bucket_at = CASE WHEN $3 IS NOT NULL THEN $5 END, updated_at = $5",
				 5, types);
	durable_exec(plan, values, nulls, false, 0);
	durable_leave(&call);
	Async_Notify(psprintf("durable_%s", queue), "");
	PG_RETURN_VOID();
}
