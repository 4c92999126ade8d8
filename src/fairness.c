/*-------------------------------------------------------------------------
 *
 * fairness.c
 *	  The fair order of a queue's ready tasks across fairness keys:
 *	  start-time fair queuing.  Claims take a queue's tasks by priority,
 *	  then runs in flight before new runs (durable.tasks.new_run), then by
 *	  pass (the keys of tasks_claim); each (queue, priority, new_run) is a
 *	  lane, a fair queue of its own.  Each task gets its pass when it
 *	  becomes ready:
 *
 *	    pass = max(V, last pass of its key in the lane) + 1 / weight
 *
 *	  where V, the lane's virtual time, is the highest pass claimed from
 *	  it so far.  (One V per queue would not do: a run in flight of a key
 *	  with a backlog gets a pass behind that backlog, is claimed first as
 *	  a run in flight, and would move V past the backlog of new runs.)  A key that enqueues 20,000 tasks at once gets passes V + 1 ...
 *	  V + 20,000; a key that enqueues one task a moment later gets
 *	  V' + 1, just behind the task being served, so it waits for about
 *	  one task of the first key, not for its backlog.  Over time each
 *	  backlogged key is served in proportion to its weight.  Tasks without
 *	  a key share the key '' (weight 1): on a queue that never sees a key,
 *	  the passes just count up, which is the order in which tasks became
 *	  ready.
 *
 *	  V and each key's last pass live in a shared hash (one entry per
 *	  lane, one per key with a backlog in it), so giving a pass costs a
 *	  hash probe under a lock.  Nothing here needs to be exact: an aborted
 *	  enqueue or claim only moves a key's place by one task.  The hash
 *	  forgets a key whose last pass V has passed (its next pass would be
 *	  the same), and after a restart a queue's V starts at its lowest
 *	  ready pass.  When the hash is full even so, or without shared memory
 *	  a task gets V + 1 / weight without remembering its key.  Without
 *	  shared memory (durable not preloaded) the pass is the time the task
 *	  became ready, in seconds: ready order.
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
#include "claim_floor.h"
#include "clock.h"
#include "json.h"
#include "spi.h"
#include "validate.h"

/* entries of the shared hash: a lane's V, or a key's last pass */
typedef struct FairEntry
{
	uint64		id;				/* hash key: fair_id() */
	uint64		lane_id;		/* a key's lane; 0 for a lane's own entry */
	double		value;			/* V, or the key's last pass */
} FairEntry;

int			durable_fairness_keys = 65536;
static HTAB *fair_hash = NULL;
static LWLock *fair_lock = NULL;
static bool warned_full = false;
/* when make_room found nothing to forget: not again for a second */
static TimestampTz full_until = 0;

/* 64-bit id of a lane (key NULL) or of a key in it, in this database */
static uint64
fair_id(const char *ns, const char *queue, int priority, bool new_run, const char *key)
{
	uint64		h = hash_bytes_extended((const unsigned char *) ns, strlen(ns), MyDatabaseId);

	h = hash_bytes_extended((const unsigned char *) queue, strlen(queue), h);
	h = hash_bytes_extended((const unsigned char *) &priority, sizeof(priority), h + new_run);
	if (key != NULL)
		h = hash_bytes_extended((const unsigned char *) key, strlen(key), h ^ UINT64CONST(0x9e3779b97f4a7c15));
	return h == 0 ? 1 : h;		/* 0 means "a lane" in lane_id */
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
	/* fixed size: past it, make_room, never the shared memory others need */
	fair_hash = ShmemInitHash("durable fairness", durable_fairness_keys,
							  durable_fairness_keys, &info,
							  HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	fair_lock = &(GetNamedLWLockTranche("durable fairness"))->lock;
}

/*
 * first_vtime: a lane's V when the hash does not know it (first use, or
 * after a restart): its lowest ready pass, so new keys line up with the
 * backlog; with no backlog, the current time in seconds, so that passes
 * stay in one range whether or not shared memory kept them.
 */
static double
first_vtime(const char *ns, const char *queue, int priority, bool new_run)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, TEXTOID, INT4OID, BOOLOID};
	Datum		values[4];
	bool		isnull;
	Datum		d;
	double		v;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "durable: SPI_connect failed");
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = Int32GetDatum(priority);
	values[3] = BoolGetDatum(new_run);
	/*
	 * qualified throughout: durable.fair_pass runs with the caller's
	 * search_path (see its definition)
	 */
	durable_plan(&plan,
				 "SELECT pg_catalog.min(pass) FROM durable.tasks "
				 " WHERE namespace OPERATOR(pg_catalog.=) $1 "
				 "   AND queue OPERATOR(pg_catalog.=) $2 "
				 "   AND state OPERATOR(pg_catalog.=) 'ready'::pg_catalog.text "
				 "   AND priority OPERATOR(pg_catalog.=) $3 "
				 "   AND new_run OPERATOR(pg_catalog.=) $4 "
				 "   AND pass OPERATOR(pg_catalog.<) 'Infinity'::pg_catalog.float8",
				 4, types);
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

		if (e->lane_id == 0)
			continue;
		q = hash_search(fair_hash, &e->lane_id, HASH_FIND, NULL);
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
enter(uint64 id, uint64 lane_id, double value)
{
	bool		found;
	FairEntry  *e = hash_search(fair_hash, &id, HASH_ENTER_NULL, &found);

	/* full: forget what can be forgotten, but scan at most once a second */
	if (e == NULL && GetCurrentTimestamp() >= full_until)
	{
		if (make_room() > 0)
			e = hash_search(fair_hash, &id, HASH_ENTER_NULL, &found);
		else
			full_until = GetCurrentTimestamp() + USECS_PER_SEC;
	}
	if (e != NULL && !found)
	{
		e->lane_id = lane_id;
		e->value = value;
	}
	return e;
}

/*
 * durable_fair_pass: the pass of a task of key (NULL: '') with weight,
 * made ready now in the lane (ns, queue, priority, new_run); remembers it
 * as the key's last.
 */
double
durable_fair_pass(const char *ns, const char *queue, int priority, bool new_run,
				  const char *key, double weight)
{
	uint64		qid = fair_id(ns, queue, priority, new_run, NULL);
	uint64		kid = fair_id(ns, queue, priority, new_run, key ? key : "");
	FairEntry  *q;
	FairEntry  *k;
	double		v;
	double		pass;

	/* no shared memory: ready order (microseconds, exact in a float8) */
	if (fair_hash == NULL)
		return (double) durable_now() / USECS_PER_SEC;

	/*
	 * One lock acquisition on the hot path; only a lane the hash does not
	 * know releases it to read its first V (a query) and takes it again.
	 */
	LWLockAcquire(fair_lock, LW_EXCLUSIVE);
	q = hash_search(fair_hash, &qid, HASH_FIND, NULL);
	v = 0;
	if (q == NULL)
	{
		LWLockRelease(fair_lock);
		v = first_vtime(ns, queue, priority, new_run);
		LWLockAcquire(fair_lock, LW_EXCLUSIVE);
	}
	q = enter(qid, 0, v);
	if (q != NULL)
		v = q->value;
	k = enter(kid, qid, v);
	pass = Max(v, k ? k->value : v) + 1.0 / weight;
	if (k != NULL)
		k->value = pass;
	LWLockRelease(fair_lock);
	/* claims must not start past it (claim_floor.c) */
	durable_claim_floor_lower(ns, queue, -priority, new_run, pass);
	if ((q == NULL || k == NULL) && !warned_full)
	{
		warned_full = true;
		ereport(WARNING,
				(errmsg("durable: the fairness table is full; some tasks get ready order instead of fair order"),
				 errhint("Raise durable.fairness_keys (it takes a server restart).")));
	}
	return pass;
}

/* durable_fairness_claimed: a claim took a task with pass from the lane */
void
durable_fairness_claimed(const char *ns, const char *queue, int priority, bool new_run,
						 double pass)
{
	uint64		qid;
	FairEntry  *q;

	if (fair_hash == NULL || isinf(pass))
		return;
	qid = fair_id(ns, queue, priority, new_run, NULL);
	LWLockAcquire(fair_lock, LW_EXCLUSIVE);
	q = hash_search(fair_hash, &qid, HASH_FIND, NULL);
	if (q != NULL && pass > q->value)
		q->value = pass;
	LWLockRelease(fair_lock);
}

/*
 * durable.fair_pass(namespace, queue, fairness_key, fairness_weight,
 * priority, new_run): for the engine's statements, which pass values it
 * checked (administrators may call it, as every function; no other
 * role).  A NULL key is '', a NULL weight 1.
 */
PG_FUNCTION_INFO_V1(durable_fair_pass_sql);
Datum
durable_fair_pass_sql(PG_FUNCTION_ARGS)
{
	char	   *key = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	double		weight = PG_ARGISNULL(3) ? 1.0 : PG_GETARG_FLOAT4(3);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("fair_pass needs a namespace, a queue, a priority and new_run")));
	if (key != NULL && strlen(key) > DURABLE_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("fairness key is too long")));
	if (!(weight >= 0.001 && weight <= 1000))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("fairness weight must be between 0.001 and 1000")));
	PG_RETURN_FLOAT8(durable_fair_pass(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									   text_to_cstring(PG_GETARG_TEXT_PP(1)),
									   PG_GETARG_INT32(4), PG_GETARG_BOOL(5), key, weight));
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
