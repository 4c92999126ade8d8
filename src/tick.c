/*-------------------------------------------------------------------------
 *
 * tick.c
 *	  The periodic work, shared by the background worker and durable.tick():
 *	  expire leases, fire due timers and step deadlines, time out runs
 *	  (engine.c's transitions), start workflows of due schedules
 *	  (schedule.c), wake queues whose delayed tasks came due, and purge
 *	  closed runs past their namespace's retention and grants of dropped
 *	  roles.  Each part runs in its own subtransaction, handles at most a
 *	  batch and reports what it did, so callers can loop while there is a
 *	  backlog.
 *
 *	  Nothing here keeps state in memory: every due time is a row, so a
 *	  restart (or a crash) loses nothing and the next round catches up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "durable.h"
#include "claim_floor.h"
#include "access.h"
#include "admin.h"
#include "batch.h"
#include "clock.h"
#include "engine.h"
#include "queues.h"
#include "shmem.h"
#include "spi.h"
#include "tick.h"

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
				 "          AND t.queue = q.queue AND t.state = 'ready' AND t.visible_at <= $2) "
				 /* a key's bucket got its next token since the last round */
				 "UNION "
				 "SELECT q.namespace, q.queue FROM durable.queues q "
				 " WHERE q.key_rate IS NOT NULL AND NOT q.paused "
				 "   AND EXISTS ("
				 "       SELECT FROM durable.key_buckets b WHERE b.namespace = q.namespace "
				 "          AND b.queue = q.queue AND b.bucket < 1::float8 "
				 "          AND b.bucket_at + (1::float8 - b.bucket) / q.key_rate * interval '1 s' > $1 "
				 "          AND b.bucket_at + (1::float8 - b.bucket) / q.key_rate * interval '1 s' <= $2) "
				 "   AND EXISTS ("
				 "       SELECT FROM durable.tasks t WHERE t.namespace = q.namespace "
				 "          AND t.queue = q.queue AND t.state = 'ready' AND t.visible_at <= $2)",
				 2, types);
	durable_exec(plan, values, NULL, true, 0);
	/* how many came due per queue is not counted: wake every worker */
	for (i = 0; i < SPI_processed; i++)
		durable_queue_gained_tasks(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
								   SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2),
								   INT_MAX);
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
				 " (SELECT min(visible_at) FROM durable.tasks WHERE token IS NOT NULL), "
				 " (SELECT min(deadline_at) FROM durable.runs WHERE deadline_at IS NOT NULL), "
				 " (SELECT min(visible_at) FROM durable.tasks "
				 "   WHERE state = 'ready' AND visible_at > created_at AND visible_at > $1), "
				 " (SELECT min(next_fire_at) FROM durable.schedules WHERE NOT paused), "
				 " (SELECT min(q.bucket_at + (1::float8 - q.bucket) / q.max_rate * interval '1 s') "
				 "    FROM durable.queues q "
				 "   WHERE q.max_rate IS NOT NULL AND NOT q.paused AND q.bucket < 1::float8 "
				 "     AND q.bucket_at + (1::float8 - q.bucket) / q.max_rate * interval '1 s' > $1), "
				 /* a second from now while a queue with priority aging has ready tasks */
				 " (SELECT $1 + interval '1 s' FROM durable.queues q "
				 "   WHERE q.aging_every IS NOT NULL AND EXISTS (SELECT FROM durable.tasks t "
				 "     WHERE t.namespace = q.namespace AND t.queue = q.queue AND t.state = 'ready') "
				 "   LIMIT 1), "
				 /* the next token of a dry per-key bucket (few rows: full ones are pruned) */
				 " (SELECT min(b.bucket_at + (1::float8 - b.bucket) / q.key_rate * interval '1 s') "
				 "    FROM durable.key_buckets b JOIN durable.queues q "
				 "      ON q.namespace = b.namespace AND q.queue = b.queue "
				 "   WHERE q.key_rate IS NOT NULL AND NOT q.paused AND b.bucket < 1::float8 "
				 "     AND b.bucket_at + (1::float8 - b.bucket) / q.key_rate * interval '1 s' > $1))",
				 1, types);
	durable_exec(plan, values, NULL, true, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/* the start of the round's window for wake_delayed_queues */
static TimestampTz round_since;

/*
 * The parts of a round.  Each runs in its own subtransaction: one that
 * fails (a bad row, a broken trigger, an overflow) is rolled back and
 * logged, and the others go on, so a problem in one namespace's purge
 * cannot stop timers, lease expiry or schedules everywhere.  The
 * background worker retries a failed part with backoff (1 s, 2 s, 4 s ...
 * up to a minute); durable.tick() tries every part on every call.
 */
static int
part_wake_delayed_queues(TimestampTz now, int limit)
{
	wake_delayed_queues(round_since, now);
	durable_queue_prune_key_buckets(now);
	return 0;
}

static int
part_purge(TimestampTz now, int limit)
{
	/* the background worker walks from the first run; durable.tick() anywhere */
	return durable_engine_purge(now, limit, !durable_tick_backoff) +
		durable_grants_forget_dropped_roles();
}

typedef struct TickPart
{
	const char *name;
	int			(*run) (TimestampTz now, int limit);
	int			limit_factor;	/* items per round: batch size times this */
	/*
	 * background worker only: after a round that found less than its limit
	 * to do, skip the part for this long (ms; 0: run it every round)
	 */
	int			idle_ms;
} TickPart;

static const TickPart tick_parts[] = {
	{"lease expiry", durable_engine_expire_leases, 1, 0},
	{"timers", durable_engine_fire_timers, 10, 0},
	{"step timeouts", durable_engine_fire_due_steps, 1, 0},
	{"workflow timeouts", durable_engine_expire_runs, 1, 0},
	{"schedules", durable_fire_schedules, 1, 0},
	{"paused runs' tasks", durable_engine_park_paused, 1, 0},
	/*
	 * aging is checked about once a second (an aging interval is >= 1 s);
	 * before the fair order, which places the tasks it raised
	 */
	{"priority aging", durable_engine_age_tasks, 1, 1000},
	{"fair order of due tasks", durable_engine_pass_due_tasks, 1, 0},
	{"batch operations", durable_batches_step, 1, 0},
	{"queue wake-ups", part_wake_delayed_queues, 1, 0},
	/*
	 * each call examines a window of retained runs (durable_engine_purge):
	 * under load the worker runs many rounds a second, and a purge with
	 * nothing to do need not walk a window in each
	 */
	{"retention purge", part_purge, 1, 1000},
};

#define NUM_TICK_PARTS lengthof(tick_parts)

/*
 * per part, in this backend: failures in a row and when to try again;
 * when an idle part runs again (idle_ms)
 */
static int	part_failures[NUM_TICK_PARTS];
static TimestampTz part_retry_at[NUM_TICK_PARTS];
static TimestampTz part_idle_until[NUM_TICK_PARTS];

/*
 * run_part: one part in a subtransaction.  Returns the items it handled,
 * or -1 when it failed (logged as a WARNING; the subtransaction's changes
 * are undone).  A query cancel is not a failure of the part: it goes on
 * up to the caller.
 */
typedef struct PartCall
{
	int			part;
	TimestampTz now;
	int			limit;
	int			n;
} PartCall;

static void
call_part(void *arg)
{
	PartCall   *c = (PartCall *) arg;

	c->n = tick_parts[c->part].run(c->now, c->limit * tick_parts[c->part].limit_factor);
}

static int
run_part(int i, TimestampTz now, int limit)
{
	PartCall	c = {i, now, limit, -1};
	ErrorData  *edata = durable_guarded(call_part, &c, false);

	if (edata == NULL)
		return c.n;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("durable: periodic work \"%s\" failed: %s",
					tick_parts[i].name, edata->message),
			 edata->detail ? errdetail("%s", edata->detail) : 0,
			 errhint("The other parts of the periodic work go on; this one is tried again%s.",
					 durable_tick_backoff ? " with backoff" : " at the next call")));
	FreeErrorData(edata);
	return -1;
}

/* when the periodic work last reset the claim floors of its database */
static TimestampTz floors_reset_at = 0;
#define FLOORS_RESET_INTERVAL (10 * USECS_PER_SEC)

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
	round_since = since;
	/*
	 * Claims start at their queue's floor (claim_floor.c); a task that
	 * slipped below one some way the engine does not track waits for this,
	 * at most FLOORS_RESET_INTERVAL.  Not more often: until a claim raises
	 * it again, every claim of the queue reads tasks_claim from its
	 * beginning, through every entry vacuum could not remove yet (with an
	 * idle transaction holding an xid: 83 buffers per claim on average at a
	 * reset a second, 31 at one per 10 s, bench/README.md).
	 */
	if (real_now < floors_reset_at ||
		real_now - floors_reset_at >= FLOORS_RESET_INTERVAL)
	{
		durable_claim_floor_reset_database();
		floors_reset_at = real_now;
	}
	for (i = 0; i < (int) NUM_TICK_PARTS; i++)
	{
		int			n;

		if (durable_tick_backoff &&
			(part_retry_at[i] > real_now || part_idle_until[i] > real_now))
			continue;
		n = run_part(i, now, limit);
		if (n < 0)
		{
			part_failures[i]++;
			part_retry_at[i] = real_now +
				(int64) Min(60000, 1000 << Min(part_failures[i] - 1, 6)) * 1000;
			continue;
		}
		part_failures[i] = 0;
		part_retry_at[i] = 0;
		part_idle_until[i] = n < limit * tick_parts[i].limit_factor ?
			real_now + (int64) tick_parts[i].idle_ms * 1000 : 0;
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
