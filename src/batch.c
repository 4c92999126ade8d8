/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  Batch operations: cancel, terminate, signal, pause, unpause or reset every
 *	  running run that a visibility query matches (durable.batch_start),
 *	  in bounded steps, with the progress in durable.batches.
 *
 *	  A batch takes the runs in run id order, up to the last run that had
 *	  started when the batch did (runs started later are not in it), and
 *	  remembers how far it got (after_run_id): each step applies the
 *	  operation to the next runs and moves that mark in the same
 *	  transaction, so a step that fails or is interrupted is simply done
 *	  again.  The background worker steps running batches each round;
 *	  durable.batch_run(batch_id, max_runs) steps one in the caller's
 *	  transaction.  Each run's operation runs in a subtransaction: one that
 *	  fails is counted (failed, last_error) and the batch goes on.  The
 *	  operations are the client calls' (wf_cancel, wf_terminate, wf_signal
 *	  with signal_id "batch/<id>", wf_pause, wf_unpause, wf_reset to the
 *	  payload's to_seq: the new run, started later, is not in the batch), so a batch run
 *	  again changes nothing it already changed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "access.h"
#include "batch.h"
#include "clock.h"
#include "engine.h"
#include "json.h"
#include "shmem.h"
#include "spi.h"
#include "task.h"
#include "validate.h"
#include "visibility.h"

typedef enum BatchOp
{
	BATCH_CANCEL,
	BATCH_TERMINATE,
	BATCH_SIGNAL,
	BATCH_PAUSE,
	BATCH_UNPAUSE,
	BATCH_RESET
} BatchOp;

static const char *const op_names[] = {
	"cancel", "terminate", "signal", "pause", "unpause", "reset"
};

typedef struct Batch
{
	int64		batch_id;
	char	   *ns;
	BatchOp		op;
	char	   *query;
	char	   *signal;
	Jsonb	   *payload;
	char	   *reason;
	int			to_seq;			/* a reset's first step to redo */
	int64		after_run;
	int64		max_run;
} Batch;

static BatchOp
parse_op(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(op_names); i++)
		if (strcmp(op_names[i], name) == 0)
			return (BatchOp) i;
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
			 errmsg("unknown batch operation \"%s\"", name),
			 errhint("Use cancel, terminate, signal, pause, unpause or reset.")));
	return BATCH_CANCEL;
}

/*
 * reset_to_seq: a reset batch's payload, {"to_seq": n} (n >= 1; NULL or
 * no key: 1, the run starts over).
 */
static int
reset_to_seq(Jsonb *payload)
{
	static const char *const keys[] = {"to_seq", NULL};
	int64		to_seq = 1;

	if (payload == NULL)
		return 1;
	durable_jb_check_keys(payload, "reset batch payload", keys);
	(void) durable_jb_get_int(payload, "to_seq", "reset batch payload", 1, PG_INT32_MAX, &to_seq);
	return (int) to_seq;
}

/*
 * apply: the operation on one running run.  Returns whether it changed the
 * run (false: it already was as asked: cancel requested, paused ...).
 */
static bool
apply(Batch *b, int64 run_id, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	bool		cancel_requested;
	const char *reason = b->reason ? b->reason :
		psprintf("batch " INT64_FORMAT, b->batch_id);

	/* the run as it is now, locked as the client calls lock it */
	values[0] = Int64GetDatum(run_id);
	durable_plan(&plan,
				 "SELECT cancel_requested FROM durable.runs "
				 " WHERE run_id = $1 AND status = 'running' FOR NO KEY UPDATE",
				 1, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		return false;			/* closed meanwhile */
	cancel_requested = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	switch (b->op)
	{
		case BATCH_CANCEL:
			if (cancel_requested)
				return false;
			durable_engine_cancel_run(run_id, reason, now);
			return true;
		case BATCH_TERMINATE:
			durable_engine_terminate_run(run_id, reason, now);
			return true;
		case BATCH_SIGNAL:
			/* the run row is locked (above), as wf_signal locks it */
			durable_engine_signal(run_id, b->signal, b->payload,
								  psprintf("batch/" INT64_FORMAT, b->batch_id), now);
			return true;
		case BATCH_PAUSE:
		case BATCH_UNPAUSE:
			return durable_engine_set_paused(run_id, b->op == BATCH_PAUSE, b->reason, now);
		case BATCH_RESET:
			{
				char	   *why = durable_engine_reset_point(run_id, b->to_seq, false);

				if (why)
					ereport(ERROR,
							(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
							 errmsg("cannot reset at step %d: %s", b->to_seq, why)));
				(void) durable_engine_reset(run_id, true, b->to_seq, b->reason, now);
				return true;
			}
	}
	return false;
}

typedef struct RunCall
{
	Batch	   *batch;
	int64		run_id;
	TimestampTz now;
	bool		changed;
} RunCall;

static void
call_apply(void *arg)
{
	RunCall    *c = (RunCall *) arg;

	c->changed = apply(c->batch, c->run_id, c->now);
}

/*
 * apply_guarded: apply in a subtransaction.  Returns 1 when the run
 * changed, 0 when it was as asked, -1 when the operation failed (its
 * changes undone, the message in *error).  What is worth trying again
 * (a deadlock, a lock timeout ...) is raised, to redo the whole step.
 */
static int
apply_guarded(Batch *b, int64 run_id, TimestampTz now, char **error)
{
	RunCall		c = {b, run_id, now, false};
	ErrorData  *edata = durable_guarded(call_apply, &c, true);

	if (edata == NULL)
		return c.changed ? 1 : 0;
	*error = psprintf("run " INT64_FORMAT ": %s", run_id, edata->message);
	FreeErrorData(edata);
	return -1;
}

/*
 * lock_batch: read and lock a running batch (ns NULL: of any namespace).
 * False when there is none by that id, it is not running, or (skip_locked)
 * another transaction holds it.
 */
static bool
lock_batch(int64 batch_id, const char *ns, bool skip_locked, Batch *b, bool *exists)
{
	static SPIPlanPtr wait_plan = NULL;
	static SPIPlanPtr skip_plan = NULL;
	static const Oid types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = "  ";
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

#define BATCH_COLUMNS "SELECT namespace, operation, query, signal, payload, reason, " \
	"after_run_id, max_run_id, state = 'running' FROM durable.batches " \
	"WHERE batch_id = $1 AND ($2::text IS NULL OR namespace = $2) "

	values[0] = Int64GetDatum(batch_id);
	values[1] = ns ? CStringGetTextDatum(ns) : (Datum) 0;
	nulls[1] = ns ? ' ' : 'n';
	if (skip_locked)
	{
		durable_plan(&skip_plan, BATCH_COLUMNS "FOR UPDATE SKIP LOCKED", 2, types);
		durable_exec(skip_plan, values, nulls, false, 1);
	}
	else
	{
		durable_plan(&wait_plan, BATCH_COLUMNS "FOR UPDATE", 2, types);
		durable_exec(wait_plan, values, nulls, false, 1);
	}
	*exists = SPI_processed == 1;
	if (SPI_processed != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (!DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull)))
		return false;
	b->batch_id = batch_id;
	b->ns = SPI_getvalue(tup, desc, 1);
	b->op = parse_op(SPI_getvalue(tup, desc, 2));
	b->query = SPI_getvalue(tup, desc, 3);
	b->signal = SPI_getvalue(tup, desc, 4);
	d = SPI_getbinval(tup, desc, 5, &isnull);
	b->payload = isnull ? NULL : DatumGetJsonbPCopy(d);
	b->reason = SPI_getvalue(tup, desc, 6);
	b->to_seq = b->op == BATCH_RESET ? reset_to_seq(b->payload) : 0;
	b->after_run = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
	b->max_run = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
	return true;
}

/*
 * step: apply the batch's operation to its next max_runs runs and record
 * the progress.  Returns how many runs it went through.
 */
static int
step(Batch *b, int max_runs, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[7] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID,
	BOOLOID};
	Datum		values[8];
	char		nulls[7] = "       ";
	int64	   *runs;
	int			n;
	int			i;
	int64		applied = 0;
	int64		skipped = 0;
	int64		failed = 0;
	char	   *error = NULL;

	n = durable_list_running(b->ns, b->query, b->after_run, b->max_run, max_runs, &runs);
	for (i = 0; i < n; i++)
	{
		int			r = apply_guarded(b, runs[i], now, &error);

		if (r > 0)
			applied++;
		else if (r == 0)
			skipped++;
		else
			failed++;
	}
	values[0] = Int64GetDatum(b->batch_id);
	values[1] = Int64GetDatum(n > 0 ? runs[n - 1] : b->after_run);
	values[2] = Int64GetDatum(applied);
	values[3] = Int64GetDatum(skipped);
	values[4] = Int64GetDatum(failed);
	values[5] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[5] = error ? ' ' : 'n';
	values[6] = BoolGetDatum(n < max_runs);
	durable_plan(&plan,
				 "UPDATE durable.batches SET after_run_id = $2, applied = applied + $3, "
				 "       skipped = skipped + $4, failed = failed + $5, "
				 "       last_error = coalesce($6, last_error), updated_at = clock_timestamp(), "
				 "       state = CASE WHEN $7 THEN 'completed' ELSE state END, "
				 "       closed_at = CASE WHEN $7 THEN clock_timestamp() END "
				 " WHERE batch_id = $1",
				 7, types);
	durable_exec(plan, values, nulls, false, 0);
	return n;
}

typedef struct StepCall
{
	Batch	   *batch;
	int			limit;
	TimestampTz now;
	int			n;
} StepCall;

static void
call_step(void *arg)
{
	StepCall   *c = (StepCall *) arg;

	c->n = step(c->batch, c->limit, c->now);
}

/*
 * step_guarded: step in a subtransaction, for the background worker: a
 * batch whose step fails for good (its query no longer runs in the
 * worker's session, say) is marked failed with the error, so that it does
 * not hold back the others; what is worth trying again is left for the
 * next round.
 */
static int
step_guarded(Batch *b, int limit, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TEXTOID};
	StepCall	c = {b, limit, now, 0};
	ErrorData  *edata = durable_guarded(call_step, &c, true);
	Datum		values[2];

	if (edata == NULL)
		return c.n;
	values[0] = Int64GetDatum(b->batch_id);
	values[1] = CStringGetTextDatum(edata->message);
	durable_plan(&plan,
				 "UPDATE durable.batches SET state = 'failed', last_error = $2, "
				 "       updated_at = clock_timestamp(), closed_at = clock_timestamp() "
				 " WHERE batch_id = $1",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	FreeErrorData(edata);
	return 0;
}

/*
 * durable_batches_step: the background worker's part: step each running
 * batch that no one else is stepping, limit runs each.  Returns the runs
 * gone through.
 */
int
durable_batches_step(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	int64	   *ids;
	uint64		n,
				i;
	int			total = 0;

	durable_plan(&plan,
				 "SELECT batch_id FROM durable.batches WHERE state = 'running' "
				 " ORDER BY batch_id LIMIT 10",
				 0, NULL);
	durable_exec(plan, NULL, NULL, true, 0);
	n = SPI_processed;
	ids = palloc(sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	for (i = 0; i < n; i++)
	{
		Batch		b;
		bool		exists;

		if (lock_batch(ids[i], NULL, true, &b, &exists))
			total += step_guarded(&b, limit, now);
	}
	return total;
}

/*
 * durable.batch_start(operation, query, reason, signal, payload) -> the
 * batch's id.  The query is checked now (DU001); the runs are taken up to
 * the last one started so far.
 */
PG_FUNCTION_INFO_V1(durable_batch_start);
Datum
durable_batch_start(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	const char *ns = durable_current_namespace();
	const char *op_name;
	const char *query;
	const char *reason = durable_check_text_arg(fcinfo, 2, "reason", 10000);
	const char *signal = NULL;
	Jsonb	   *payload = durable_get_jsonb_arg(fcinfo, 4);
	BatchOp		op;
	Datum		values[6];
	char		nulls[6] = "      ";
	DurableCall call;
	bool		isnull;
	int64		batch_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("operation must not be NULL"),
				 errhint("Use cancel, terminate, signal, pause, unpause or reset.")));
	op_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	op = parse_op(op_name);
	query = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(3))
		signal = durable_check_name(PG_GETARG_TEXT_PP(3), "signal name", DURABLE_MAX_NAME);
	if ((op == BATCH_SIGNAL) != (signal != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg(op == BATCH_SIGNAL ? "a signal batch needs a signal name" :
						"only a signal batch takes a signal name")));
	if (op == BATCH_RESET)
		(void) reset_to_seq(payload);
	else if (op != BATCH_SIGNAL && payload != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("only a signal or reset batch takes a payload")));
	durable_check_payload(payload, "signal payload");

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	durable_list_check(ns, query);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(op_names[op]);
	values[2] = CStringGetTextDatum(query);
	values[3] = signal ? CStringGetTextDatum(signal) : (Datum) 0;
	nulls[3] = signal ? ' ' : 'n';
	values[4] = PointerGetDatum(payload);
	nulls[4] = payload ? ' ' : 'n';
	values[5] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[5] = reason ? ' ' : 'n';
	durable_plan(&plan,
				 "INSERT INTO durable.batches (namespace, operation, query, signal, payload, "
				 "       reason, max_run_id, created_at, updated_at) "
				 "SELECT $1, $2, $3, $4, $5, $6, "
				 "       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
				 "          FROM durable.run_id_seq), clock_timestamp(), clock_timestamp() "
				 "RETURNING batch_id",
				 6, types);
	durable_exec(plan, values, nulls, false, 0);
	batch_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	durable_bgw_wake(durable_now());
	durable_leave(&call);
	PG_RETURN_INT64(batch_id);
}

static int64
batch_id_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("batch id must not be NULL")));
	return PG_GETARG_INT64(0);
}

static void
batch_not_found(int64 batch_id, const char *ns)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_WORKFLOW_NOT_FOUND),
			 errmsg("batch " INT64_FORMAT " does not exist", batch_id),
			 errdetail("Namespace \"%s\" has no batch with that id.", ns)));
}

/*
 * durable.batch_run(batch_id, max_runs) -> runs gone through: one step of
 * a running batch of the current namespace, in the caller's transaction
 * (0 when it is completed or stopped).
 */
PG_FUNCTION_INFO_V1(durable_batch_run);
Datum
durable_batch_run(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	int64		batch_id = batch_id_arg(fcinfo);
	int			max_runs;
	DurableCall call;
	Batch		b;
	bool		exists;
	int			n = 0;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("max_runs must not be NULL")));
	max_runs = durable_check_positive_int(PG_GETARG_INT32(1), "max_runs", DURABLE_MAX_STARTS);
	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	if (lock_batch(batch_id, ns, false, &b, &exists))
		n = step(&b, max_runs, durable_now());
	else if (!exists)
		batch_not_found(batch_id, ns);
	durable_leave(&call);
	PG_RETURN_INT32(n);
}

/*
 * durable.batch_stop(batch_id) -> whether it was running: a batch of the
 * current namespace goes no further.
 */
PG_FUNCTION_INFO_V1(durable_batch_stop);
Datum
durable_batch_stop(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TEXTOID};
	const char *ns = durable_current_namespace();
	int64		batch_id = batch_id_arg(fcinfo);
	Datum		values[2];
	DurableCall call;
	Batch		b;
	bool		exists;
	bool		running;

	durable_check_right(DURABLE_RIGHT_CLIENT, ns, NULL);
	durable_enter(&call);
	running = lock_batch(batch_id, ns, false, &b, &exists);
	if (!exists)
		batch_not_found(batch_id, ns);
	if (running)
	{
		values[0] = Int64GetDatum(batch_id);
		values[1] = CStringGetTextDatum(ns);
		durable_plan(&plan,
					 "UPDATE durable.batches SET state = 'stopped', updated_at = clock_timestamp(), "
					 "       closed_at = clock_timestamp() "
					 " WHERE batch_id = $1 AND namespace = $2",
					 2, types);
		durable_exec(plan, values, NULL, false, 0);
	}
	durable_leave(&call);
	PG_RETURN_BOOL(running);
}
