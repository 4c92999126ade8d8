/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  The claim path: durable.task_poll.  One prepared statement claims up
 *	  to max_tasks ready tasks of a queue in priority, then ready-time order
 *	  with FOR UPDATE SKIP LOCKED, gives each a new fencing token and lease,
 *	  and returns everything the worker needs (input, journal, heartbeat
 *	  details) in the same round trip.
 *
 *	  Before claiming, a poll expires a few leases that ran out (any
 *	  queue; at most one poll per 100 ms does this), so abandoned work
 *	  comes back even without the background worker.  It may also first complete the caller's previous tasks, so
 *	  a busy worker pays one commit per batch (finish + claim).
 *
 *	  A queue with a concurrency limit (queue_set_concurrency) or a rate
 *	  limit (queue_set_rate, a token bucket) hands out only what fits: its
 *	  polls lock the queue's row, count its leased tasks, refill and spend
 *	  its bucket.  Which queues have a limit is cached per backend, so
 *	  other queues pay one hash probe per poll for the feature.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "task.h"
#include "tick.h"

/* leases expired per poll; the background worker takes larger batches */
#define POLL_EXPIRE_LIMIT 10
#define POLL_COLUMNS 13


/*
 * The queues with a concurrency limit, as a set of "namespace/queue"
 * keys, loaded whole from durable.queues and dropped when it changes (its
 * trigger sends a relcache invalidation).  A set loaded while an
 * invalidation arrived is not kept (its snapshot may predate the change).
 */
typedef struct LimitedQueue
{
	char		key[DURABLE_MAX_NAME + DURABLE_MAX_QUEUE + 2];
	bool		concurrency;	/* has max_concurrency (else only a rate) */
} LimitedQueue;

static HTAB *limited_queues = NULL;
static Oid	queues_relid = InvalidOid;	/* unknown: any relcache change counts */
static uint64 limits_generation = 0;

static void
limits_relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == queues_relid || queues_relid == InvalidOid)
	{
		limits_generation++;
		if (limited_queues != NULL)
		{
			hash_destroy(limited_queues);
			limited_queues = NULL;
		}
		queues_relid = InvalidOid;
	}
}

static void
limit_key(char *key, const char *ns, const char *queue)
{
	snprintf(key, sizeof(((LimitedQueue *) NULL)->key), "%s/%s", ns, queue);
}

/*
 * queue_limit_kind: LIMIT_NONE, or LIMIT_ANY with LIMIT_CONCURRENCY when
 * the queue has a concurrency limit.  Callers are connected to SPI
 * (durable_enter).
 */
#define LIMIT_NONE 0
#define LIMIT_ANY 1
#define LIMIT_CONCURRENCY 2

static int
queue_limit_kind(const char *ns, const char *queue)
{
	static SPIPlanPtr plan = NULL;
	static bool callback = false;
	LimitedQueue probe;

	LimitedQueue *found;

	if (strlen(ns) > DURABLE_MAX_NAME || strlen(queue) > DURABLE_MAX_QUEUE)
		return LIMIT_NONE;		/* no such queue can have a row */
	if (!callback)
	{
		CacheRegisterRelcacheCallback(limits_relcache_changed, (Datum) 0);
		callback = true;
	}
	if (limited_queues == NULL)
	{
		uint64		generation = limits_generation;
		HASHCTL		ctl;
		HTAB	   *set;
		uint64		i;

		durable_plan(&plan,
					 "SELECT namespace, queue, max_concurrency IS NOT NULL FROM durable.queues "
					 " WHERE max_concurrency IS NOT NULL OR max_rate IS NOT NULL",
					 0, NULL);
		durable_exec_latest(plan, NULL, NULL, 0);
		ctl.keysize = sizeof(LimitedQueue);
		ctl.entrysize = sizeof(LimitedQueue);
		ctl.hcxt = TopMemoryContext;
		set = hash_create("durable limited queues", 16, &ctl,
						  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		for (i = 0; i < SPI_processed; i++)
		{
			LimitedQueue key;
			LimitedQueue *entry;
			bool		isnull;

			memset(&key, 0, sizeof(key));
			limit_key(key.key, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
					  SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
			entry = hash_search(set, &key, HASH_ENTER, NULL);
			entry->concurrency = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 3, &isnull));
		}
		if (!OidIsValid(queues_relid))
			queues_relid = get_relname_relid("queues", get_namespace_oid("durable", false));
		if (generation != limits_generation)
		{
			/* changed while loading: answer from this set, keep nothing */
			int			kind;

			memset(&probe, 0, sizeof(probe));
			limit_key(probe.key, ns, queue);
			found = hash_search(set, &probe, HASH_FIND, NULL);
			kind = found == NULL ? LIMIT_NONE :
				LIMIT_ANY | (found->concurrency ? LIMIT_CONCURRENCY : 0);
			hash_destroy(set);
			return kind;
		}
		limited_queues = set;
	}
	memset(&probe, 0, sizeof(probe));
	limit_key(probe.key, ns, queue);
	found = hash_search(limited_queues, &probe, HASH_FIND, NULL);
	if (found == NULL)
		return LIMIT_NONE;
	return LIMIT_ANY | (found->concurrency ? LIMIT_CONCURRENCY : 0);
}

/*
 * A limited queue's state during one poll: its concurrency limit (0:
 * none) and its token bucket (rate 0: none), read under the queue row's
 * lock.
 */
typedef struct QueueLimits
{
	int			max_concurrency;
	double		rate;			/* tasks per second */
	double		tokens;			/* in the bucket at bucket_at */
	TimestampTz bucket_at;		/* now, or later if a newer poll wrote it */
	int			taken;			/* claimed so far by this poll */
} QueueLimits;

/*
 * queue_lock_limits: lock the queue's row (polls of one limited queue take
 * turns) and read its limits, refilling the bucket up to now.  False when
 * the queue has no limit after all (lifted since the cache was loaded).
 */
static bool
queue_lock_limits(const char *ns, const char *queue, TimestampTz now, QueueLimits *q)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	durable_plan(&plan,
				 "SELECT max_concurrency, max_rate, rate_burst, bucket, bucket_at "
				 "  FROM durable.queues WHERE namespace = $1 AND queue = $2 FOR UPDATE",
				 2, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(q, 0, sizeof(*q));
	q->max_concurrency = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	if (isnull)
		q->max_concurrency = 0;
	q->rate = DatumGetFloat8(SPI_getbinval(tup, desc, 2, &isnull));
	if (isnull)
		q->rate = 0;
	else
	{
		int			burst = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		double		bucket = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		TimestampTz at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));

		/* a poll whose transaction began earlier refills nothing */
		q->bucket_at = Max(now, at);
		q->tokens = bucket + q->rate * (double) (q->bucket_at - at) / USECS_PER_SEC;
		if (q->tokens > burst)
			q->tokens = burst;
	}
	return q->max_concurrency > 0 || q->rate > 0;
}

/*
 * queue_room: how many more of the queue's tasks this poll may claim now.
 * The leased count takes a new snapshot each time (after the row lock, so
 * it sees what the previous poll of the queue committed).
 */
static int
queue_room(const char *ns, const char *queue, QueueLimits *q)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	int64		room = PG_INT32_MAX;

	if (q->max_concurrency > 0)
	{
		int64		leased;

		values[0] = CStringGetTextDatum(ns);
		values[1] = CStringGetTextDatum(queue);
		durable_plan(&plan,
					 "SELECT count(*) FROM durable.tasks "
					 " WHERE state = 'leased' AND namespace = $1 AND queue = $2",
					 2, types);
		durable_exec(plan, values, NULL, false, 1);
		leased = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		room = Max(q->max_concurrency - leased, 0);
	}
	if (q->rate > 0)
		room = Min(room, (int64) floor(q->tokens - q->taken));
	return (int) Max(room, 0);
}

/*
 * queue_spend_tokens: a rate-limited poll took q->taken tokens.  If the
 * bucket ran dry, the background worker is woken to plan its next round
 * for when the next token is due (durable_tick_next_due); that round notifies the
 * queue.
 */
static void
queue_spend_tokens(const char *ns, const char *queue, QueueLimits *q,
				   bool came_back_short)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, TEXTOID, FLOAT8OID, TIMESTAMPTZOID};
	Datum		values[4];
	double		left = Max(q->tokens - q->taken, 0);

	/* nothing taken: the stored bucket still refills to the same count */
	if (q->taken > 0)
	{
		values[0] = CStringGetTextDatum(ns);
		values[1] = CStringGetTextDatum(queue);
		values[2] = Float8GetDatum(left);
		values[3] = TimestampTzGetDatum(q->bucket_at);
		durable_plan(&plan,
					 "UPDATE durable.queues SET bucket = $3, bucket_at = $4 "
					 " WHERE namespace = $1 AND queue = $2",
					 4, types);
		durable_exec(plan, values, NULL, false, 0);
	}
	if (came_back_short && left < 1)
		durable_bgw_wake(q->bucket_at + (TimestampTz) ((1 - left) / q->rate * USECS_PER_SEC) + 1);
}

/*
 * durable_queue_slot_freed: a leased task of this queue ended.  If the
 * queue has a concurrency limit, a worker that polled it full may be
 * waiting: have it woken at commit (only if one is idle on the queue).
 */
void
durable_queue_slot_freed(const char *ns, const char *queue)
{
	if (queue_limit_kind(ns, queue) & LIMIT_CONCURRENCY)
		durable_queue_gained_work(ns, queue);
}


PG_FUNCTION_INFO_V1(durable_task_poll);
Datum
durable_task_poll(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID,
	INTERVALOID, TEXTOID};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *ns = durable_current_namespace();
	const char *queue;
	const char *worker;
	int			max_tasks;
	Interval   *lease;
	TimestampTz now = durable_now();
	DurableCall call;
	Datum		values[6];
	uint64		i;
	int			pass;
	int			claimed = 0;
	bool		limited;
	QueueLimits limits;

	memset(&limits, 0, sizeof(limits));

	queue = durable_check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	worker = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
						"worker name", DURABLE_MAX_NAME);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("max_tasks must not be NULL")));
	max_tasks = durable_check_positive_int(PG_GETARG_INT32(2), "max_tasks", DURABLE_MAX_BATCH);
	lease = durable_check_interval(PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3),
						   "lease", false);
	if (PG_ARGISNULL(4) && !PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("done_results needs done_tokens")));

	InitMaterializedSRF(fcinfo, 0);
	durable_check_right(DURABLE_RIGHT_WORKER, ns, queue);
	durable_enter(&call);

	if (!PG_ARGISNULL(4))
		durable_complete_many(PG_GETARG_ARRAYTYPE_P(4),
					  PG_ARGISNULL(5) ? NULL : PG_GETARG_ARRAYTYPE_P(5),
					  call.saved_userid, now);

	if (durable_poll_should_expire())
		durable_expire_leases(now, POLL_EXPIRE_LIMIT);

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(max_tasks);
	values[4] = IntervalPGetDatum(lease);
	values[5] = CStringGetTextDatum(worker);
	durable_plan(&plan,
				 "WITH c AS (SELECT run_id, seq, row_number() OVER () AS pos FROM "
				 "           (SELECT run_id, seq FROM durable.tasks "
				 "             WHERE namespace = $1 AND queue = $2 AND state = 'ready' "
				 "               AND visible_at <= $3 "
				 "               AND NOT EXISTS (SELECT FROM durable.queues q "
				 "                   WHERE q.namespace = $1 AND q.queue = $2 AND q.paused) "
				 "             ORDER BY priority DESC, visible_at "
				 "             LIMIT $4 FOR UPDATE SKIP LOCKED) x), "
				 "     u AS (UPDATE durable.tasks t "
				 "   SET state = 'leased', token = nextval('durable.token_seq'), "
				 "       worker = $6, attempt = t.attempt + 1, claimed_at = $3, "
				 "       rerun = false, heartbeat_at = NULL, "
				 "       lease = LEAST(coalesce((s.options->>'start_to_close_ms')::float8 "
				 "                              * interval '1 ms', $5), "
				 "                     (s.options->>'heartbeat_ms')::float8 * interval '1 ms'), "
				 "       visible_at = $3 + LEAST(coalesce((s.options->>'start_to_close_ms')::float8 "
				 "                                          * interval '1 ms', $5), "
				 "                                 (s.options->>'heartbeat_ms')::float8 "
				 "                                          * interval '1 ms') "
				 "  FROM c JOIN durable.runs r ON r.run_id = c.run_id "
				 "       LEFT JOIN durable.steps s ON s.run_id = c.run_id AND s.seq = c.seq "
				 " WHERE t.run_id = c.run_id AND t.seq = c.seq "
				 "RETURNING t.token, t.kind, r.workflow_id, t.run_id, r.workflow_type, "
				 "       coalesce(s.name, r.workflow_type) AS name, nullif(t.seq, 0) AS seq, "
				 "       CASE WHEN t.seq = 0 THEN r.input ELSE s.input END AS input, t.attempt, "
				 "       CASE WHEN t.seq = 0 THEN "
				 "         (SELECT coalesce(jsonb_agg(jsonb_build_object("
				 "                   'seq', j.seq, 'kind', j.kind, 'name', j.name, "
				 "                   'status', j.status, 'result', j.result, "
				 "                   'error', j.error) ORDER BY j.seq), '[]') "
				 "            FROM durable.steps j WHERE j.run_id = t.run_id) END AS journal, "
				 "       t.heartbeat, r.cancel_requested, t.visible_at, c.pos) "
				 "SELECT * FROM u ORDER BY pos",
				 6, types);
	/*
	 * A poll that comes back short raises the queue's idle flag (its worker
	 * is about to wait for NOTIFY) and then claims once more with a fresh
	 * snapshot.  A producer that committed before the flag went up is seen
	 * by that second claim; one that commits after sees the flag, at
	 * pre-commit or at commit (shmem.c), and sends the wake-up.  So no
	 * wake-up is lost between a poll's snapshot and its worker's wait.
	 */
	limited = queue_limit_kind(ns, queue) != LIMIT_NONE &&
		queue_lock_limits(ns, queue, now, &limits);
	for (pass = 0; pass < 2 && claimed < max_tasks; pass++)
	{
		int			want = max_tasks - claimed;

		if (pass == 1)
			durable_note_idle_poll(ns, queue);
		if (limited)
		{
			want = Min(want, queue_room(ns, queue, &limits));
			if (want == 0)
				continue;		/* full: the idle flag gets it woken later */
		}
		values[3] = Int32GetDatum(want);
		durable_exec(plan, values, NULL, false, 0);

		/* the first POLL_COLUMNS columns are the result row; pos only orders */
		for (i = 0; i < SPI_processed; i++)
		{
			Datum		out[POLL_COLUMNS];
			bool		nulls[POLL_COLUMNS];
			int			c;

			for (c = 0; c < POLL_COLUMNS; c++)
				out[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									   c + 1, &nulls[c]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
		}
		claimed += (int) SPI_processed;
		limits.taken = claimed;
	}
	if (limited && limits.rate > 0)
		queue_spend_tokens(ns, queue, &limits, claimed < max_tasks);

	durable_leave(&call);
	return (Datum) 0;
}
