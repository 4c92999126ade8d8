/*-------------------------------------------------------------------------
 *
 * tick.c
 *	  The periodic work, shared by the background worker and durable.tick():
 *	  expire leases, fire due timers and step deadlines, time out runs,
 *	  start workflows of due schedules (schedule.c), wake queues whose
 *	  delayed tasks came due, and purge closed runs past
 *	  their namespace's retention.  Each part handles at most a batch and
 *	  reports what it did, so callers can loop while there is a backlog.
 *
 *	  Nothing here keeps state in memory: every due time is a row, so a
 *	  restart (or a crash) loses nothing and the next round catches up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "durable.h"
#include "tick.h"

/*
 * durable_expire_leases: leased tasks whose lease ran out.  A workflow task is
 * made ready again; an activity attempt failed by timeout and is retried
 * by its policy (or its step fails).
 */
int
durable_expire_leases(TimestampTz now, int limit)
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
	durable_plan(&plan,
				 "SELECT t.run_id, t.seq, t.attempt, "
				 "       CASE WHEN (s.options->>'heartbeat_ms') IS NOT NULL "
				 "             AND coalesce(t.heartbeat_at, t.claimed_at) "
				 "                 + (s.options->>'heartbeat_ms')::float8 * interval '1 ms' <= $1 "
				 "            THEN 'heartbeat' ELSE 'start_to_close' END "
				 "  FROM durable.tasks t "
				 "  LEFT JOIN durable.steps s ON s.run_id = t.run_id AND s.seq = t.seq "
				 " WHERE t.state = 'leased' AND t.visible_at <= $1 "
				 " ORDER BY t.visible_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED",
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
				durable_queue_gained_work(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
										  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
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
 * fire_due_timers: due sleep steps complete in one set-based statement,
 * then their runs are woken together (durable_engine_wake_workflows): 10,000
 * timers due at the same second fire in a few rounds, not thousands of
 * statements.
 */
static int
fire_due_timers(TimestampTz now, int limit)
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
				 "WITH due AS (SELECT run_id, seq FROM durable.steps "
				 "              WHERE status = 'pending' AND due_at <= $1 AND kind = 'sleep' "
				 "              ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED), "
				 "     s AS (UPDATE durable.steps s SET status = 'completed', result = 'null', "
				 "                  resolved_at = $1 "
				 "             FROM due WHERE s.run_id = due.run_id AND s.seq = due.seq "
				 "           RETURNING s.run_id) "
				 "SELECT count(*)::int, coalesce(array_agg(run_id), '{}') FROM s",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	fired = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (fired == 0)
		return 0;
	run_ids = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull),
								false, -1);
	durable_engine_wake_workflows(run_ids, now);
	return fired;
}

/*
 * fire_due_steps: other steps whose due time came: signal waits time out,
 * activities hit schedule-to-start or schedule-to-close.
 */
static int
fire_due_steps(TimestampTz now, int limit)
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
		char	   *kind;
		bool		not_started;
		int			attempt;
		TimestampTz s2s_at;
		TimestampTz s2c_at;
	} Due;
	Due		   *due;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "SELECT s.run_id, s.seq, s.kind, "
				 "       (t.state = 'ready' AND t.attempt = 0) AS not_started, "
				 "       s.scheduled_at + (s.options->>'schedule_to_start_ms')::float8 * interval '1 ms', "
				 "       s.scheduled_at + (s.options->>'schedule_to_close_ms')::float8 * interval '1 ms', "
				 "       coalesce(t.attempt, s.attempt) "
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
		due[i].kind = SPI_getvalue(tup, desc, 3);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		due[i].not_started = !isnull && DatumGetBool(d);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		due[i].s2s_at = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		due[i].s2c_at = isnull ? 0 : DatumGetTimestampTz(d);
		due[i].attempt = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	}
	for (i = 0; i < n; i++)
	{
		Due		   *x = &due[i];
		const char *timeout = NULL;

		if (strcmp(x->kind, "signal") == 0)
			timeout = "signal";
		else if (strcmp(x->kind, "activity") == 0)
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
									   timeout, x->kind, timeout);

			durable_history_add(x->run_id, x->seq, psprintf("%s_timed_out", x->kind),
						durable_jb_cstring(psprintf("{\"attempt\": %d, \"final\": true, \"error\": %s}",
											x->attempt, err)));
			durable_engine_resolve_step(x->run_id, x->seq, "failed", NULL, durable_jb_cstring(err), now);
			durable_engine_delete_task(x->run_id, x->seq);
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
 * expire_runs: runs past their execution or run timeout close as
 * timed_out, withdrawing their tasks.
 */
static int
expire_runs(TimestampTz now, int limit)
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

		durable_engine_close_run(runs[i], "timed_out", NULL, err, now);
	}
	return n;
}

/*
 * wake_delayed_queues: tasks that were ready later than they were made
 * (start delay, retry backoff) and came due since the last round, and
 * rate-limited queues with ready work and a whole token in the bucket
 * (durable_tick_next_due plans a round for the next token of an empty bucket):
 * their queues get a NOTIFY (subject to the idle flag).
 */
static void
wake_delayed_queues(TimestampTz since, TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[2];
	uint64		i;

	values[0] = TimestampTzGetDatum(since);
	values[1] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "SELECT namespace, queue FROM durable.tasks "
				 " WHERE state = 'ready' AND visible_at > created_at "
				 "   AND visible_at > $1 AND visible_at <= $2 "
				 "UNION "
				 "SELECT q.namespace, q.queue FROM durable.queues q "
				 " WHERE q.max_rate IS NOT NULL AND NOT q.paused "
				 "   AND q.bucket + q.max_rate * extract(epoch FROM $2 - q.bucket_at)::float8 >= 1::float8 "
				 "   AND EXISTS ("
				 "       SELECT FROM durable.tasks t WHERE t.namespace = q.namespace "
				 "          AND t.queue = q.queue AND t.state = 'ready' AND t.visible_at <= $2)",
				 2, types);
	durable_exec(plan, values, NULL, true, 0);
	for (i = 0; i < SPI_processed; i++)
		durable_queue_gained_work(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
								  SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
}

/*
 * purge_closed_runs: closed runs older than their namespace's retention
 * leave with their journal, history and signals, a small batch at a time.
 */
static int
purge_closed_runs(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];
	bool		isnull;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "WITH old AS (SELECT r.run_id FROM durable.namespaces n "
				 "               CROSS JOIN LATERAL (SELECT run_id FROM durable.runs r "
				 "                 WHERE r.closed_at < $1 - n.retention "
				 "                   AND r.namespace = n.namespace "
				 "                 ORDER BY r.closed_at LIMIT $2) r LIMIT $2), "
				 "     r AS (DELETE FROM durable.runs WHERE run_id IN (SELECT run_id FROM old) "
				 "           RETURNING run_id), "
				 "     s AS (DELETE FROM durable.steps WHERE run_id IN (SELECT run_id FROM r)), "
				 "     e AS (DELETE FROM durable.events WHERE run_id IN (SELECT run_id FROM r)), "
				 "     g AS (DELETE FROM durable.signals WHERE run_id IN (SELECT run_id FROM r)) "
				 "SELECT count(*)::int FROM r",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * durable_tick_next_due: the earliest time any of the above has work, so the
 * background worker can sleep until then.  0 when nothing is scheduled.
 */
TimestampTz
durable_tick_next_due(TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "SELECT LEAST("
				 " (SELECT min(due_at) FROM durable.steps "
				 "   WHERE status = 'pending' AND due_at IS NOT NULL), "
				 " (SELECT min(visible_at) FROM durable.tasks WHERE state = 'leased'), "
				 " (SELECT min(deadline_at) FROM durable.runs "
				 "   WHERE status = 'running' AND deadline_at IS NOT NULL), "
				 " (SELECT min(visible_at) FROM durable.tasks "
				 "   WHERE state = 'ready' AND visible_at > created_at AND visible_at > $1), "
				 " (SELECT min(next_fire_at) FROM durable.schedules WHERE NOT paused), "
				 " (SELECT min(q.bucket_at + (1::float8 - q.bucket) / q.max_rate * interval '1 s') "
				 "    FROM durable.queues q "
				 "   WHERE q.max_rate IS NOT NULL AND NOT q.paused AND q.bucket < 1::float8 "
				 "     AND q.bucket_at + (1::float8 - q.bucket) / q.max_rate * interval '1 s' > $1))",
				 1, types);
	durable_exec(plan, values, NULL, true, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * The parts of a round.  Each runs in its own subtransaction: one that
 * fails (a bad row, a broken trigger, an overflow) is rolled back and
 * logged, and the others go on, so a problem in one namespace's purge
 * cannot stop timers, lease expiry or schedules everywhere.  The
 * background worker retries a failed part with backoff (1 s, 2 s, 4 s ...
 * up to a minute); durable.tick() tries every part on every call.
 */
static int
part_expire_leases(TimestampTz since, TimestampTz now, int limit)
{
	return durable_expire_leases(now, limit);
}

static int
part_fire_due_timers(TimestampTz since, TimestampTz now, int limit)
{
	return fire_due_timers(now, limit);
}

static int
part_fire_due_steps(TimestampTz since, TimestampTz now, int limit)
{
	return fire_due_steps(now, limit);
}

static int
part_expire_runs(TimestampTz since, TimestampTz now, int limit)
{
	return expire_runs(now, limit);
}

static int
part_fire_schedules(TimestampTz since, TimestampTz now, int limit)
{
	return durable_fire_schedules(now, limit);
}

static int
part_wake_delayed_queues(TimestampTz since, TimestampTz now, int limit)
{
	wake_delayed_queues(since, now);
	return 0;
}

static int
part_purge(TimestampTz since, TimestampTz now, int limit)
{
	return purge_closed_runs(now, limit) + durable_grants_forget_dropped_roles();
}

typedef struct TickPart
{
	const char *name;
	int			(*run) (TimestampTz since, TimestampTz now, int limit);
	int			limit_factor;	/* items per round: batch size times this */
} TickPart;

static const TickPart tick_parts[] = {
	{"lease expiry", part_expire_leases, 1},
	{"timers", part_fire_due_timers, 10},
	{"step timeouts", part_fire_due_steps, 1},
	{"workflow timeouts", part_expire_runs, 1},
	{"schedules", part_fire_schedules, 1},
	{"queue wake-ups", part_wake_delayed_queues, 1},
	{"retention purge", part_purge, 1},
};

#define NUM_TICK_PARTS lengthof(tick_parts)

/* per part, in this backend: failures in a row and when to try again */
static int	part_failures[NUM_TICK_PARTS];
static TimestampTz part_retry_at[NUM_TICK_PARTS];

/*
 * run_part: one part in a subtransaction.  Returns the items it handled,
 * or -1 when it failed (logged as a WARNING; the subtransaction's changes
 * are undone).  A query cancel is not a failure of the part: it goes on
 * up to the caller.
 */
static int
run_part(int i, TimestampTz since, TimestampTz now, int limit)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int n = -1;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		n = tick_parts[i].run(since, now, limit * tick_parts[i].limit_factor);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("durable: periodic work \"%s\" failed: %s",
						tick_parts[i].name, edata->message),
				 edata->detail ? errdetail("%s", edata->detail) : 0,
				 errhint("The other parts of the periodic work go on; this one is tried again%s.",
						 durable_tick_backoff ? " with backoff" : " at the next call")));
		FreeErrorData(edata);
		n = -1;
	}
	PG_END_TRY();
	return n;
}

/* set by the background worker: retry failed parts with backoff */
bool		durable_tick_backoff = false;

/*
 * durable_tick_once: one round of every part, each bounded by limit (timers: ten
 * times that).  Returns the number of items handled; *more is set when a
 * part hit its limit.
 */
int
durable_tick_once(TimestampTz since, TimestampTz now, int limit, bool *more)
{
	TimestampTz real_now = GetCurrentTimestamp();
	int			total = 0;
	int			i;

	*more = false;
	for (i = 0; i < (int) NUM_TICK_PARTS; i++)
	{
		int			n;

		if (durable_tick_backoff && part_retry_at[i] > real_now)
			continue;
		n = run_part(i, since, now, limit);
		if (n < 0)
		{
			part_failures[i]++;
			part_retry_at[i] = real_now +
				(int64) Min(60000, 1000 << Min(part_failures[i] - 1, 6)) * 1000;
			continue;
		}
		part_failures[i] = 0;
		part_retry_at[i] = 0;
		*more |= n >= limit * tick_parts[i].limit_factor;
		total += n;
	}
	return total;
}

/*
 * durable.tick(): the background worker's work, once, for installs that
 * do not preload durable (run it from pg_cron every few seconds).
 */
PG_FUNCTION_INFO_V1(durable_tick);
Datum
durable_tick(PG_FUNCTION_ARGS)
{
	static TimestampTz last = 0;
	TimestampTz now = durable_now();
	DurableCall call;
	bool		more;
	int			total;

	durable_check_right(DURABLE_RIGHT_ADMIN, NULL, NULL);
	if (last == 0 || last > now)
		last = now - USECS_PER_DAY;
	durable_enter(&call);
	total = durable_tick_once(last, now, durable_bgw_batch_size, &more);
	durable_leave(&call);
	last = now;
	PG_RETURN_INT32(total);
}
