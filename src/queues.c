/*-------------------------------------------------------------------------
 *
 * queues.c
 *	  Queue settings, the only writer of durable.queues: pause and unpause
 *	  (queue_pause, queue_unpause), concurrency limits
 *	  (queue_set_concurrency) and rate limits (queue_set_rate, a token
 *	  bucket kept in the queue's row), and what a poll of a limited queue
 *	  needs: which queues have a limit (cached per backend, dropped when
 *	  the table changes), the room left, and spending tokens.  Unlimited
 *	  queues pay one hash probe per poll for the feature.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "json.h"
#include "queues.h"
#include "access.h"
#include "clock.h"
#include "shmem.h"
#include "spi.h"
#include "validate.h"

/*
 * The queues whose settings change what a poll does (a concurrency or rate
 * limit, or paused), as a set of "namespace/queue" keys with their flags,
 * loaded whole from durable.queues and dropped when it changes (its
 * trigger sends a relcache invalidation).  A set loaded while an
 * invalidation arrived is not kept (its snapshot may predate the change).
 * So a poll of a plain queue reads no settings row at all.
 */
typedef struct SetQueue
{
	char		key[DURABLE_MAX_NAME + DURABLE_MAX_QUEUE + 2];
	int			flags;			/* QUEUE_LIMITED, QUEUE_CONCURRENCY, QUEUE_PAUSED */
} SetQueue;

static HTAB *set_queues = NULL;
static Oid	queues_relid = InvalidOid;	/* unknown: any relcache change counts */
static uint64 settings_generation = 0;

static void
settings_relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == queues_relid || queues_relid == InvalidOid)
	{
		settings_generation++;
		if (set_queues != NULL)
		{
			hash_destroy(set_queues);
			set_queues = NULL;
		}
		queues_relid = InvalidOid;
	}
}

static void
queue_key(char *key, const char *ns, const char *queue)
{
	snprintf(key, sizeof(((SetQueue *) NULL)->key), "%s/%s", ns, queue);
}

static int
flags_in(HTAB *set, const char *ns, const char *queue)
{
	SetQueue	probe;
	SetQueue   *found;

	memset(&probe, 0, sizeof(probe));
	queue_key(probe.key, ns, queue);
	found = hash_search(set, &probe, HASH_FIND, NULL);
	return found == NULL ? QUEUE_PLAIN : found->flags;
}

/*
 * durable_queue_settings: QUEUE_PLAIN, or QUEUE_LIMITED (with
 * QUEUE_CONCURRENCY when the limit is on concurrency) and QUEUE_PAUSED.
 * Callers are connected to SPI (durable_enter).
 */
int
durable_queue_settings(const char *ns, const char *queue)
{
	static SPIPlanPtr plan = NULL;
	static bool callback = false;

	if (strlen(ns) > DURABLE_MAX_NAME || strlen(queue) > DURABLE_MAX_QUEUE)
		return QUEUE_PLAIN;		/* no such queue can have a row */
	if (!callback)
	{
		CacheRegisterRelcacheCallback(settings_relcache_changed, (Datum) 0);
		callback = true;
	}
	if (set_queues == NULL)
	{
		uint64		generation = settings_generation;
		HASHCTL		ctl;
		HTAB	   *set;
		uint64		i;

		durable_plan(&plan,
					 "SELECT namespace, queue, "
					 "       CASE WHEN max_concurrency IS NOT NULL THEN 3 ELSE 0 END "
					 "       | CASE WHEN max_rate IS NOT NULL THEN 17 ELSE 0 END "
					 "       | CASE WHEN paused THEN 4 ELSE 0 END "
					 "       | CASE WHEN key_concurrency IS NOT NULL "
					 "                OR key_concurrency_overrides IS NOT NULL "
					 "                OR key_rate IS NOT NULL THEN 9 ELSE 0 END "
					 "  FROM durable.queues "
					 " WHERE max_concurrency IS NOT NULL OR max_rate IS NOT NULL OR paused "
					 "    OR key_concurrency IS NOT NULL OR key_concurrency_overrides IS NOT NULL "
					 "    OR key_rate IS NOT NULL",
					 0, NULL);
		durable_exec_latest(plan, NULL, NULL, 0);
		ctl.keysize = sizeof(SetQueue);
		ctl.entrysize = sizeof(SetQueue);
		ctl.hcxt = TopMemoryContext;
		set = hash_create("durable queue settings", 16, &ctl,
						  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		for (i = 0; i < SPI_processed; i++)
		{
			SetQueue	key;
			SetQueue   *entry;
			bool		isnull;

			memset(&key, 0, sizeof(key));
			queue_key(key.key, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
					  SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
			entry = hash_search(set, &key, HASH_ENTER, NULL);
			entry->flags = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 3, &isnull));
		}
		if (!OidIsValid(queues_relid))
			queues_relid = get_relname_relid("queues", get_namespace_oid("durable", false));
		if (generation != settings_generation)
		{
			/* changed while loading: answer from this set, keep nothing */
			int			flags = flags_in(set, ns, queue);

			hash_destroy(set);
			return flags;
		}
		set_queues = set;
	}
	return flags_in(set_queues, ns, queue);
}


/* the names of KeyOnLimit, as queue_set_key_concurrency takes them */
static const char *const key_on_limit_names[] = {"wait", "cancel_newest", "cancel_oldest"};

/* key_on_limit_parse: a KeyOnLimit by its name; -1 for none */
static int
key_on_limit_lookup(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(key_on_limit_names); i++)
		if (strcmp(name, key_on_limit_names[i]) == 0)
			return i;
	return -1;
}

static KeyOnLimit
key_on_limit_parse(const char *name)
{
	int			i = key_on_limit_lookup(name);

	if (i < 0)
		elog(ERROR, "unknown on_limit \"%s\" in durable.queues", name);
	return (KeyOnLimit) i;
}

/*
 * read_key_limits: the per-key limits in columns 6-8 of the queue's row:
 * the default and the overrides as two arrays in key order.
 */
static void
read_key_limits(HeapTuple tup, TupleDesc desc, QueueLimits *q)
{
	bool		isnull;
	Datum		d;

	q->key_default = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
	if (isnull)
		q->key_default = -1;
	q->key_limits = !isnull;
	d = SPI_getbinval(tup, desc, 7, &isnull);
	if (!isnull)
	{
		Datum	   *keys;
		Datum	   *limits;
		int			n,
					m,
					i;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &keys, NULL, &n);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 8, &isnull)),
						  INT4OID, 4, true, TYPALIGN_INT, &limits, NULL, &m);
		Assert(n == m);
		q->noverrides = Min(n, m);
		q->override_keys = palloc(sizeof(char *) * Max(n, 1));
		q->override_limits = palloc(sizeof(int) * Max(n, 1));
		for (i = 0; i < q->noverrides; i++)
		{
			q->override_keys[i] = TextDatumGetCString(keys[i]);
			q->override_limits[i] = DatumGetInt32(limits[i]);
		}
		q->key_limits = true;
	}
	q->key_rate = DatumGetFloat8(SPI_getbinval(tup, desc, 9, &isnull));
	if (isnull)
		q->key_rate = 0;
	else
	{
		q->key_burst = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
		q->key_limits = true;
	}
	q->key_on_limit = key_on_limit_parse(TextDatumGetCString(SPI_getbinval(tup, desc, 11, &isnull)));
}

/* the limit of a fairness key ('' for none): its override, or the default */
static int
key_limit(QueueLimits *q, const char *key)
{
	int			lo = 0,
				hi = q->noverrides - 1;

	/* the overrides are in key order (array_agg ORDER BY, C collation) */
	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = strcmp(key, q->override_keys[mid]);

		if (c == 0)
			return q->override_limits[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return q->key_default;
}

/*
 * durable_queue_key_entry: the usage entry of a fairness key in a poll's
 * table, made with the key's limit and no lease if missing.
 */
KeyUsage *
durable_queue_key_entry(HTAB *usage, QueueLimits *q, const char *key)
{
	char		k[DURABLE_MAX_NAME + 1];
	KeyUsage   *e;
	bool		found;

	memset(k, 0, sizeof(k));
	strlcpy(k, key, sizeof(k));
	e = hash_search(usage, k, HASH_ENTER, &found);
	if (!found)
	{
		e->limit = key_limit(q, key);
		e->locked = false;
		e->busy = false;
		e->leased = 0;
	}
	return e;
}

/*
 * durable_queue_key_usage: the table of fairness keys for a claim of a
 * queue with per-key limits: each key's tasks leased now (a hint: keys
 * found full are left out without taking their lock; the exact count is
 * taken under the lock), and an entry for every override (so a key
 * limited to 0 is left out from the start).  The keys this poll locked
 * in an earlier claim (before, or NULL) keep their exact state.  It reads
 * every leased task of the queue, like the queue's own concurrency limit.
 */
HTAB *
durable_queue_key_usage(const char *ns, const char *queue, QueueLimits *q, HTAB *before)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	HASHCTL		ctl;
	HTAB	   *usage;
	uint64		i;
	int			k;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = DURABLE_MAX_NAME + 1;
	ctl.entrysize = sizeof(KeyUsage);
	ctl.hcxt = CurrentMemoryContext;
	usage = hash_create("durable key usage", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (k = 0; k < q->noverrides; k++)
		durable_queue_key_entry(usage, q, q->override_keys[k]);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	durable_plan(&plan,
				 "SELECT coalesce(fairness_key, ''), count(*)::int FROM durable.tasks "
				 " WHERE token IS NOT NULL AND namespace = $1 AND queue = $2 "
				 " GROUP BY 1",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		KeyUsage   *e = durable_queue_key_entry(usage, q,
												SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));

		e->leased = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (before != NULL)
	{
		HASH_SEQ_STATUS seq;
		KeyUsage   *old;

		hash_seq_init(&seq, before);
		while ((old = hash_seq_search(&seq)) != NULL)
			if (old->locked)
				*durable_queue_key_entry(usage, q, old->key) = *old;
	}
	return usage;
}

/*
 * durable_queue_prune_key_buckets: buckets that are full again by now say
 * no more than no bucket: they go (so the table holds the keys recently
 * limited, not every key ever seen).  Returns how many.
 */
int
durable_queue_prune_key_buckets(TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	values[0] = TimestampTzGetDatum(now);
	durable_plan(&plan,
				 "DELETE FROM durable.key_buckets b USING durable.queues q "
				 " WHERE q.namespace = b.namespace AND q.queue = b.queue "
				 "   AND (q.key_rate IS NULL "
				 "        OR b.bucket + q.key_rate * extract(epoch FROM $1 - b.bucket_at)::float8 "
				 "           >= q.key_rate_burst)",
				 1, types);
	durable_exec(plan, values, NULL, false, 0);
	return (int) SPI_processed;
}

/* durable_queue_key_excluded: the key may not get another task in this poll */
bool
durable_queue_key_excluded(QueueLimits *q, KeyUsage *e)
{
	return e->busy || (e->limit >= 0 && e->leased >= e->limit) ||
		(q->key_rate > 0 && e->locked && e->tokens < 1);
}

/*
 * durable_queue_key_may_cancel: on a queue whose per-key limit cancels
 * (on_limit), a key that is full, or may be, gets locked and looked at:
 * never a key held back (limit 0), one without a token, or one another
 * poll holds.
 */
bool
durable_queue_key_may_cancel(QueueLimits *q, KeyUsage *e)
{
	return q->key_on_limit != KEY_ON_LIMIT_WAIT && !e->busy && e->limit > 0 &&
		!(q->key_rate > 0 && e->locked && e->tokens < 1);
}

/* durable_queue_key_needs_lock: a key with a limit is locked before a claim */
bool
durable_queue_key_needs_lock(QueueLimits *q, KeyUsage *e)
{
	return !e->locked && (e->limit >= 0 || q->key_rate > 0);
}

/* durable_queue_key_took: this poll claimed a task of the key */
void
durable_queue_key_took(QueueLimits *q, KeyUsage *e)
{
	e->leased++;
	if (q->key_rate > 0)
	{
		e->tokens -= 1;
		e->spent = true;
	}
}

/*
 * durable_queue_store_key_buckets: after a poll of a queue with a per-key
 * rate, the buckets of the keys it took tokens from (it holds their locks);
 * when a bucket ran dry and the poll came back short, the background
 * worker plans a round for its next token (that round notifies the queue).
 */
void
durable_queue_store_key_buckets(const char *ns, const char *queue, QueueLimits *q,
								HTAB *usage, TimestampTz now, bool came_back_short)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID, TIMESTAMPTZOID};
	HASH_SEQ_STATUS seq;
	KeyUsage   *e;

	if (q->key_rate <= 0 || usage == NULL)
		return;
	durable_plan(&plan,
				 "INSERT INTO durable.key_buckets AS b (namespace, queue, fairness_key, bucket, bucket_at) "
				 "VALUES ($1, $2, $3, $4, $5) "
				 "ON CONFLICT (namespace, queue, fairness_key) DO UPDATE "
				 "   SET bucket = $4, bucket_at = $5",
				 5, types);
	hash_seq_init(&seq, usage);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[5];

		if (!e->spent)
			continue;
		values[0] = CStringGetTextDatum(ns);
		values[1] = CStringGetTextDatum(queue);
		values[2] = CStringGetTextDatum(e->key);
		values[3] = Float8GetDatum(Max(e->tokens, 0));
		values[4] = TimestampTzGetDatum(e->bucket_at);
		durable_exec(plan, values, NULL, false, 0);
		if (came_back_short && e->tokens < 1)
			durable_bgw_wake(e->bucket_at +
							 (TimestampTz) ((1 - Max(e->tokens, 0)) / q->key_rate * USECS_PER_SEC) + 1);
	}
}

/*
 * durable_queue_lock_key: take the key's lock for this transaction, then
 * count its leased tasks (e->leased); false, marking it busy, when another
 * transaction holds it (that poll is claiming for the key: this one
 * leaves the key out).  A transaction-level advisory lock per key: polls
 * that claim for one key take turns, so the count each reads under the
 * lock (a fresh snapshot, READ COMMITTED) sees every lease of the key
 * made before, and an aborted poll gives its leases back with its lock.
 * Polls for different keys do not wait for each other.  The lock is a
 * hash of the key: two keys may share one, which only makes them take
 * turns.
 */
bool
durable_queue_lock_key(const char *ns, const char *queue, QueueLimits *q, KeyUsage *e,
					   TimestampTz now)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr bucket_plan = NULL;
	static const Oid types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	uint32		h;
	bool		isnull;

	if (e->locked)
		return true;
	h = hash_bytes((const unsigned char *) ns, strlen(ns));
	h = hash_combine(h, hash_bytes((const unsigned char *) queue, strlen(queue)));
	h = hash_combine(h, hash_bytes((const unsigned char *) e->key, strlen(e->key)));
	if (!DatumGetBool(DirectFunctionCall2(pg_try_advisory_xact_lock_int4,
										  Int32GetDatum(DURABLE_KEY_LOCK_CLASS),
										  Int32GetDatum((int32) h))))
	{
		e->busy = true;
		return false;
	}
	e->locked = true;
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = CStringGetTextDatum(e->key);
	durable_plan(&plan,
				 "SELECT count(*)::int FROM durable.tasks "
				 " WHERE token IS NOT NULL AND namespace = $1 AND queue = $2 "
				 "   AND coalesce(fairness_key, '') = $3",
				 3, types);
	durable_exec(plan, values, NULL, false, 1);
	e->leased = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (q->key_rate > 0)
	{
		/* its bucket, refilled up to now (full when it has none yet) */
		durable_plan(&bucket_plan,
					 "SELECT bucket, bucket_at FROM durable.key_buckets "
					 " WHERE namespace = $1 AND queue = $2 AND fairness_key = $3",
					 3, types);
		durable_exec(bucket_plan, values, NULL, false, 1);
		e->tokens = q->key_burst;
		e->bucket_at = now;
		if (SPI_processed == 1)
		{
			double		bucket = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0],
															  SPI_tuptable->tupdesc, 1, &isnull));
			TimestampTz at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
															   SPI_tuptable->tupdesc, 2, &isnull));

			/* a poll whose transaction began earlier refills nothing */
			e->bucket_at = Max(now, at);
			e->tokens = Min(q->key_burst,
							bucket + q->key_rate * (double) (e->bucket_at - at) / USECS_PER_SEC);
		}
	}
	return true;
}

/*
 * durable_queue_lock_limits: read the queue's limits, refilling the bucket
 * up to now; with lock, under the queue row's lock (polls of a queue with
 * a concurrency or rate limit take turns; per-key limits alone need only
 * the keys' locks, durable_queue_lock_key).  False when the queue has no
 * limit after all (lifted since the cache was loaded).
 */
bool
durable_queue_lock_limits(const char *ns, const char *queue, TimestampTz now, QueueLimits *q,
						  bool lock)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr read_plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
#define LIMITS_OF_QUEUE \
	"SELECT max_concurrency, max_rate, rate_burst, bucket, bucket_at, " \
	"       key_concurrency, " \
	"       (SELECT array_agg(o.key ORDER BY o.key COLLATE \"C\") " \
	"          FROM jsonb_each(key_concurrency_overrides) o), " \
	"       (SELECT array_agg(o.value::text::int ORDER BY o.key COLLATE \"C\") " \
	"          FROM jsonb_each(key_concurrency_overrides) o), " \
	"       key_rate, key_rate_burst, key_on_limit " \
	"  FROM durable.queues WHERE namespace = $1 AND queue = $2"
	if (lock)
		durable_plan(&plan, LIMITS_OF_QUEUE " FOR UPDATE", 2, types);
	else
		durable_plan(&read_plan, LIMITS_OF_QUEUE, 2, types);
	durable_exec(lock ? plan : read_plan, values, NULL, false, 1);
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
	read_key_limits(tup, desc, q);
	return q->max_concurrency > 0 || q->rate > 0 || q->key_limits;
}

/*
 * durable_queue_room: how many more of the queue's tasks this poll may claim now.
 * The leased count takes a new snapshot each time (after the row lock, so
 * it sees what the previous poll of the queue committed).
 */
int
durable_queue_room(const char *ns, const char *queue, QueueLimits *q)
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
					 " WHERE token IS NOT NULL AND namespace = $1 AND queue = $2",
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
 * durable_queue_spend_tokens: a rate-limited poll took q->taken tokens.  If the
 * bucket ran dry, the background worker is woken to plan its next round
 * for when the next token is due (durable_tick_next_due); that round notifies the
 * queue.
 */
void
durable_queue_spend_tokens(const char *ns, const char *queue, QueueLimits *q,
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
	if (durable_queue_settings(ns, queue) & (QUEUE_CONCURRENCY | QUEUE_KEY_LIMITS))
		durable_queue_gained_work(ns, queue);
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
	const char *ns = durable_current_namespace();
	const char *note;
	DurableCall call;
	Datum		values[4];
	char		nulls[4] = "    ";
	bool		changed;

	*queue = durable_check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	note = durable_check_note_arg(fcinfo, 1);
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
	const char *ns = durable_current_namespace();
	const char *queue = durable_check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	DurableCall call;
	Datum		values[4];
	char		nulls[4] = "    ";

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	if (!PG_ARGISNULL(1))
		(void) durable_check_positive_int(PG_GETARG_INT32(1), "max_concurrency", PG_INT32_MAX);
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
 * set_rate: queue_set_rate and queue_set_key_rate, which differ only in
 * the statement (sql) that stores the queue's new rate: checks the
 * arguments (queue, per_second, burst: default per_second rounded up;
 * NULL per_second lifts the limit), runs sql with $1 namespace, $2
 * queue, $3 rate, $4 burst (both NULL to lift), $5 durable's time, and
 * notifies the queue.
 */
static void
set_rate(FunctionCallInfo fcinfo, SPIPlanPtr *plan, const char *sql)
{
	static const Oid types[5] = {TEXTOID, TEXTOID, FLOAT8OID, INT4OID, TIMESTAMPTZOID};
	const char *ns = durable_current_namespace();
	const char *queue = durable_check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
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
			durable_check_positive_int(PG_GETARG_INT32(2), "burst", 1000000);
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
	durable_plan(plan, sql, 5, types);
	durable_exec(*plan, values, nulls, false, 0);
	durable_leave(&call);
	Async_Notify(psprintf("durable_%s", queue), "");
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

	set_rate(fcinfo, &plan,
			 "INSERT INTO durable.queues AS q (namespace, queue, max_rate, rate_burst, "
			 "       bucket, bucket_at, updated_at) "
			 "VALUES ($1, $2, $3, $4, $4, CASE WHEN $3 IS NOT NULL THEN $5 END, $5) "
			 "ON CONFLICT ON CONSTRAINT queues_pkey DO UPDATE "
			 "   SET max_rate = $3, rate_burst = $4, bucket = $4, "
			 "       bucket_at = CASE WHEN $3 IS NOT NULL THEN $5 END, updated_at = $5");
	PG_RETURN_VOID();
}

#define MAX_KEY_OVERRIDES 10000

/*
 * check_key_overrides: a JSON object of at most MAX_KEY_OVERRIDES fairness
 * keys (names: at most DURABLE_MAX_NAME bytes, no control characters),
 * each with a whole number 0 ... 2^31-1.
 */
static void
check_key_overrides(Jsonb *overrides)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	int			n = 0;
	char	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(overrides))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("overrides must be a JSON object of fairness keys and limits"),
				 errhint("For example {\"tenant-1\": 5, \"bulk\": 1}.")));
	it = JsonbIteratorInit(&overrides->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (r == WJB_KEY)
		{
			if (++n > MAX_KEY_OVERRIDES)
				ereport(ERROR,
						(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
						 errmsg("overrides name more than %d keys", MAX_KEY_OVERRIDES)));
			if (v.val.string.len > DURABLE_MAX_NAME)
				ereport(ERROR,
						(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
						 errmsg("fairness key in overrides is too long"),
						 errdetail("It has %d bytes; the limit is %d.", v.val.string.len,
								   DURABLE_MAX_NAME)));
			key = pnstrdup(v.val.string.val, v.val.string.len);
			durable_check_no_control_chars(key, v.val.string.len, "fairness key", false);
		}
		else if (r == WJB_VALUE)
		{
			bool		whole = false;

			if (v.type == jbvNumeric && !numeric_is_nan(v.val.numeric))
			{
				char	   *txt = DatumGetCString(DirectFunctionCall1(numeric_out,
																	  NumericGetDatum(v.val.numeric)));
				char	   *end;
				long		l = strtol(txt, &end, 10);

				whole = *end == '\0' && l >= 0 && l <= PG_INT32_MAX;
			}
			if (!whole)
				ereport(ERROR,
						(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
						 errmsg("the limit of fairness key \"%s\" in overrides is not a whole number from 0 to %d",
								key ? key : "", PG_INT32_MAX)));
		}
	}
}

/*
 * durable.queue_set_key_concurrency(queue, max_per_key, overrides,
 * on_limit): at most max_per_key tasks of each fairness key of the queue
 * leased at once (NULL: no limit), and for the keys named in overrides
 * ({key: n}, n >= 0; 0 holds the key's tasks back) their own limit.  NULL
 * and NULL lift the per-key limits.  on_limit says what happens to an
 * activity whose key is full: wait, cancel_newest (it is cancelled) or
 * cancel_oldest (the key's oldest leased activity is cancelled; claim.c).
 */
PG_FUNCTION_INFO_V1(durable_queue_set_key_concurrency);
Datum
durable_queue_set_key_concurrency(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {TEXTOID, TEXTOID, INT4OID, JSONBOID, TIMESTAMPTZOID, TEXTOID};
	const char *ns = durable_current_namespace();
	const char *queue = durable_check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	Jsonb	   *overrides = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	char	   *on_limit = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	DurableCall call;
	Datum		values[6];
	char		nulls[6] = "      ";

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("max_per_key must not be negative"),
				 errhint("Pass NULL for no limit on the keys the overrides do not name.")));
	if (overrides != NULL)
		check_key_overrides(overrides);
	if (on_limit == NULL || key_on_limit_lookup(on_limit) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("on_limit must be wait, cancel_newest or cancel_oldest"),
				 errdetail("It is %s.", on_limit ? durable_json_quote(on_limit) : "NULL"),
				 errhint("wait (the default) keeps a key's tasks ready until it has room; "
						 "the cancel strategies cancel activities.")));
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[2] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[3] = PointerGetDatum(overrides);
	nulls[3] = overrides ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[5] = CStringGetTextDatum(on_limit);
	durable_plan(&plan,
				 "INSERT INTO durable.queues AS q (namespace, queue, key_concurrency, "
				 "       key_concurrency_overrides, updated_at, key_on_limit) "
				 "VALUES ($1, $2, $3, $4, $5, $6) "
				 "ON CONFLICT ON CONSTRAINT queues_pkey DO UPDATE "
				 "   SET key_concurrency = $3, key_concurrency_overrides = $4, updated_at = $5, "
				 "       key_on_limit = $6",
				 6, types);
	durable_exec(plan, values, nulls, false, 0);
	durable_leave(&call);
	/* a raised limit may let waiting tasks run */
	Async_Notify(psprintf("durable_%s", queue), "");
	PG_RETURN_VOID();
}

/*
 * durable.queue_set_key_rate(queue, per_second, burst): at most per_second
 * claims per second of each fairness key's tasks of the queue, in bursts
 * of up to burst (default: per_second rounded up); a token bucket per key
 * (durable.key_buckets) that starts full.  NULL per_second lifts the
 * limit and forgets the buckets.
 */
PG_FUNCTION_INFO_V1(durable_queue_set_key_rate);
Datum
durable_queue_set_key_rate(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	set_rate(fcinfo, &plan,
			 "WITH q AS (INSERT INTO durable.queues AS q (namespace, queue, key_rate, "
			 "             key_rate_burst, updated_at) "
			 "           VALUES ($1, $2, $3, $4, $5) "
			 "           ON CONFLICT ON CONSTRAINT queues_pkey DO UPDATE "
			 "              SET key_rate = $3, key_rate_burst = $4, updated_at = $5) "
			 /* new rates start with full buckets */
			 "DELETE FROM durable.key_buckets WHERE namespace = $1 AND queue = $2");
	PG_RETURN_VOID();
}

/*
 * durable.queue_set_priority_aging(queue, every, up_to): a ready task of
 * the queue runs one priority higher for each `every` it has waited, up
 * to up_to (never above; a task already at or above it is left alone), so
 * that a stream of higher-priority work cannot starve lower priorities
 * forever (durable_engine_age_tasks raises them).  NULL every lifts it.
 */
PG_FUNCTION_INFO_V1(durable_queue_set_priority_aging);
Datum
durable_queue_set_priority_aging(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {TEXTOID, TEXTOID, INTERVALOID, INT4OID, TIMESTAMPTZOID};
	const char *ns = durable_current_namespace();
	const char *queue = durable_check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	DurableCall call;
	Datum		values[5];
	char		nulls[5] = "     ";

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	if (!PG_ARGISNULL(1))
	{
		Interval   *every = durable_check_interval(PG_GETARG_INTERVAL_P(1), "every", false);

		if (durable_interval_to_ms(every) < 1000)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("every must be at least 1 second"),
					 errhint("Aging is checked about once a second.")));
		values[2] = IntervalPGetDatum(every);
	}
	else
		nulls[2] = 'n';
	if (PG_ARGISNULL(2) || PG_GETARG_INT32(2) < DURABLE_MIN_PRIORITY ||
		PG_GETARG_INT32(2) > DURABLE_MAX_PRIORITY)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("up_to must be a priority from %d to %d",
						DURABLE_MIN_PRIORITY, DURABLE_MAX_PRIORITY)));
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[3] = PG_GETARG_DATUM(2);
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	durable_plan(&plan,
				 "INSERT INTO durable.queues AS q (namespace, queue, aging_every, aging_up_to, "
				 "       updated_at) "
				 "VALUES ($1, $2, $3, $4, $5) "
				 "ON CONFLICT ON CONSTRAINT queues_pkey DO UPDATE "
				 "   SET aging_every = $3, aging_up_to = $4, updated_at = $5",
				 5, types);
	durable_exec(plan, values, nulls, false, 0);
	durable_leave(&call);
	/* the background worker looks at the new setting at once */
	durable_bgw_wake(durable_now());
	PG_RETURN_VOID();
}
