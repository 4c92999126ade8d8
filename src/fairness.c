/*-------------------------------------------------------------------------
 *
 * fairness.c
 *	  The fair order of a queue's ready tasks across fairness keys:
 *	  start-time fair queuing.  Each task gets a number, its pass, when it
 *	  becomes ready, and claims take a queue's tasks (of one priority) in
 *	  pass order (durable.tasks.pass, the last key of tasks_claim).
 *
 *	    pass = max(V, last pass of its key in the queue) + 1 / weight
 *
 *	  where V, the queue's virtual time, is the highest pass claimed so
 *	  far.  A key that enqueues 20,000 tasks at once gets passes V + 1 ...
 *	  V + 20,000; a key that enqueues one task a moment later gets
 *	  V' + 1, just behind the task being served, so it waits for about
 *	  one task of the first key, not for its backlog.  Over time each
 *	  backlogged key is served in proportion to its weight.  Tasks without
 *	  a key share the key '' (weight 1): on a queue that never sees a key,
 *	  the passes just count up, which is the order in which tasks became
 *	  ready.
 *
 *	  V and each key's last pass live in a shared hash (one entry per
 *	  queue, one per key with a backlog), so giving a pass costs a hash
 *	  probe under a lock.  Nothing here needs to be exact: an aborted
 *	  enqueue or claim only moves a key's place by one task.  The hash
 *	  forgets a key whose last pass V has passed (its next pass would be
 *	  the same), and after a restart a queue's V starts at its lowest
 *	  ready pass.  When the hash is full even so, or without shared memory
 *	  (durable not preloaded), a task gets V + 1 / weight without
 *	  remembering its key: fair order degrades to ready order.
 *
 *	  The engine calls durable.fair_pass() in the statements that insert
 *	  tasks or make them ready, and durable_fairness_claimed() after a
 *	  claim.  A task that is ready only later (a start delay, a retry's
 *	  backoff) gets the pass 'Infinity' (last) until it comes due and the
 *	  periodic work gives it one: so the tasks a claim walks past at the
 *	  head of tasks_claim are those it can take.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "durable.h"
#include "fairness.h"
#include "clock.h"
#include "json.h"
#include "spi.h"
#include "validate.h"

/* entries of the shared hash: a queue's V, or a key's last pass */
typedef struct FairEntry
{
	uint64		id;				/* hash key: fair_id() */
	uint64		queue_id;		/* a key's queue; 0 for a queue's own entry */
	double		value;			/* V, or the key's last pass */
} FairEntry;

int			durable_fairness_keys = 65536;
static HTAB *fair_hash = NULL;
static LWLock *fair_lock = NULL;
static bool warned_full = false;

/* 64-bit id of a queue (key NULL) or of a key in it, in this database */
static uint64
fair_id(const char *ns, const char *queue, const char *key)
{
	uint64		h = hash_bytes_extended((const unsigned char *) ns, strlen(ns), MyDatabaseId);

	h = hash_bytes_extended((const unsigned char *) queue, strlen(queue), h);
	if (key != NULL)
		h = hash_bytes_extended((const unsigned char *) key, strlen(key), h ^ UINT64CONST(0x9e3779b97f4a7c15));
	return h == 0 ? 1 : h;		/* 0 means "a queue" in queue_id */
}

void
durable_fairness_shmem_request(void)
{
	RequestAddinShmemSpace(hash_estimate_size(durable_fairness_keys, sizeof(FairEntry)));
	RequestNamedLWLockTranche("durable fairness", 1);
}

/* under AddinShmemInitLock */
void
durable_fairness_shmem_startup(void)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(uint64);
	info.entrysize = sizeof(FairEntry);
	fair_hash = ShmemInitHash("durable fairness", durable_fairness_keys,
							  durable_fairness_keys, &info, HASH_ELEM | HASH_BLOBS);
	fair_lock = &(GetNamedLWLockTranche("durable fairness"))->lock;
}

/*
 * first_vtime: a queue's V when the hash does not know it (first use, or
 * after a restart): its lowest ready pass, so new keys line up with the
 * backlog; with no backlog, the current time in seconds, so that passes
 * stay in one range whether or not shared memory kept them.
 */
static double
first_vtime(const char *ns, const char *queue)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	Datum		d;
	double		v;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "durable: SPI_connect failed");
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	/*
	 * qualified throughout: durable.fair_pass runs with the caller's
	 * search_path (see its definition)
	 */
	durable_plan(&plan,
				 "SELECT pg_catalog.min(pass) FROM durable.tasks "
				 " WHERE namespace OPERATOR(pg_catalog.=) $1 "
				 "   AND queue OPERATOR(pg_catalog.=) $2 "
				 "   AND state OPERATOR(pg_catalog.=) 'ready'::pg_catalog.text "
				 "   AND pass OPERATOR(pg_catalog.<) 'Infinity'::pg_catalog.float8",
				 2, types);
	durable_exec(plan, values, NULL, true, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	v = isnull ? (double) durable_now() / USECS_PER_SEC : DatumGetFloat8(d);
	SPI_finish();
	return v;
}

/*
 * make_room: forget the keys whose last pass their queue's V has passed;
 * under the exclusive lock.  Returns how many left.
 */
static int
make_room(void)
{
	HASH_SEQ_STATUS seq;
	FairEntry  *e;
	int			n = 0;

	hash_seq_init(&seq, fair_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		FairEntry  *q;

		if (e->queue_id == 0)
			continue;
		q = hash_search(fair_hash, &e->queue_id, HASH_FIND, NULL);
		if (q == NULL || e->value <= q->value)
		{
			hash_search(fair_hash, &e->id, HASH_REMOVE, NULL);
			n++;
		}
	}
	return n;
}

/* the entry for id, made (with value) if missing; NULL when full */
static FairEntry *
enter(uint64 id, uint64 queue_id, double value)
{
	bool		found;
	FairEntry  *e = hash_search(fair_hash, &id, HASH_ENTER_NULL, &found);

	if (e == NULL && make_room() > 0)
		e = hash_search(fair_hash, &id, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
	{
		e->queue_id = queue_id;
		e->value = value;
	}
	return e;
}

/*
 * durable_fair_pass: the pass of a task of key (NULL: '') with weight,
 * made ready now in ns/queue; remembers it as the key's last.
 */
double
durable_fair_pass(const char *ns, const char *queue, const char *key, double weight)
{
	uint64		qid = fair_id(ns, queue, NULL);
	uint64		kid = fair_id(ns, queue, key ? key : "");
	FairEntry  *q;
	FairEntry  *k;
	double		v;
	double		pass;

	if (fair_hash == NULL)
		return (double) durable_now() / USECS_PER_SEC + 1.0 / weight;

	LWLockAcquire(fair_lock, LW_SHARED);
	q = hash_search(fair_hash, &qid, HASH_FIND, NULL);
	LWLockRelease(fair_lock);
	v = q ? 0 : first_vtime(ns, queue);

	LWLockAcquire(fair_lock, LW_EXCLUSIVE);
	q = enter(qid, 0, v);
	if (q != NULL)
		v = q->value;
	k = enter(kid, qid, v);
	pass = Max(v, k ? k->value : v) + 1.0 / weight;
	if (k != NULL)
		k->value = pass;
	LWLockRelease(fair_lock);
	if ((q == NULL || k == NULL) && !warned_full)
	{
		warned_full = true;
		ereport(WARNING,
				(errmsg("durable: the fairness table is full; some tasks get ready order instead of fair order"),
				 errhint("Raise durable.fairness_keys (it takes a server restart).")));
	}
	return pass;
}

/* durable_fairness_claimed: a claim of ns/queue took tasks up to pass */
void
durable_fairness_claimed(const char *ns, const char *queue, double pass)
{
	uint64		qid;
	FairEntry  *q;

	if (fair_hash == NULL || isinf(pass))
		return;
	qid = fair_id(ns, queue, NULL);
	LWLockAcquire(fair_lock, LW_EXCLUSIVE);
	q = hash_search(fair_hash, &qid, HASH_FIND, NULL);
	if (q != NULL && pass > q->value)
		q->value = pass;
	LWLockRelease(fair_lock);
}

/*
 * durable.fair_pass(namespace, queue, fairness_key, fairness_weight): for
 * the engine's statements (administrators may call it, as every function;
 * no other role).
 */
PG_FUNCTION_INFO_V1(durable_fair_pass_sql);
Datum
durable_fair_pass_sql(PG_FUNCTION_ARGS)
{
	char	   *key = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	double		weight = PG_ARGISNULL(3) ? 1.0 : PG_GETARG_FLOAT4(3);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (!(weight > 0))
		weight = 1.0;
	PG_RETURN_FLOAT8(durable_fair_pass(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									   text_to_cstring(PG_GETARG_TEXT_PP(1)), key, weight));
}

/*
 * durable_get_fairness: the "fairness_key" (a name, at most
 * DURABLE_MAX_NAME bytes, no control characters) and "fairness_weight" (a
 * number from 0.001 to 1000) of a start's options or a command; NULL and
 * 0 when absent.
 */
void
durable_get_fairness(Jsonb *obj, const char *ctx, char **key, double *weight)
{
	*key = durable_jb_get_string(obj, "fairness_key", ctx, DURABLE_MAX_NAME, false);
	if (*key != NULL)
		durable_check_no_control_chars(*key, strlen(*key), "fairness key", false);
	*weight = 0;
	durable_jb_get_double(obj, "fairness_weight", ctx, 0.001, 1000, weight);
}
