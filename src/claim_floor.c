/*-------------------------------------------------------------------------
 *
 * claim_floor.c
 *	  Where a queue's claims start reading tasks_claim.
 *
 *	  A claim takes the first ready tasks of its queue in the order of
 *	  tasks_claim: (-priority, new_run, pass).  The tasks it takes become
 *	  leased, which leaves their entries in tasks_claim pointing at row
 *	  versions that are dead once the claim commits; an index scan steps
 *	  over them (and marks them dead) only once no snapshot can see them.
 *	  While something holds back that horizon (an idle transaction holding
 *	  an xid, a long pg_dump, a lagging replica with hot_standby_feedback),
 *	  every claim would walk every entry claimed since, and claims slow
 *	  down in proportion to the work done.
 *
 *	  So each queue has a floor: the key of the last task a committed claim
 *	  took.  Claims read from the floor on (a row comparison the index
 *	  starts at), so they step over what was claimed since the horizon
 *	  stopped moving without reading it.  The floor is a lower bound of the
 *	  keys of the queue's claimable tasks only while every task that
 *	  becomes claimable below it lowers it:
 *	  - a task given a pass (durable.fair_pass: inserts, retries, tasks
 *	    placed when they come due) lowers the floor to its key at commit;
 *	  - a task made ready with its old pass (an expired or released lease,
 *	    an unpaused run) resets its queue's floor at commit;
 *	  - an aborted transaction that ran the engine's statements resets
 *	    every floor of its database at once: a claim that skipped a row it
 *	    locked (SKIP LOCKED) may have moved past it.  Only the engine
 *	    writes (and so locks) durable's rows, so the aborts of the
 *	    application's own transactions in the database leave the floors
 *	    alone (each reset costs claims a walk from the beginning);
 *	  - the background worker resets its database's floors every 10 s, so
 *	    whatever else slips below a floor waits that long at most.
 *	  A claim moves the floor up at commit, and only if nothing lowered or
 *	  reset it since the claim read it (a generation number): a task that
 *	  became claimable while the claim ran stays above the floor.
 *
 *	  Where there is no floor (after a reset), a task made claimable does
 *	  not move the generation but is remembered as the lowest such key; the
 *	  first raise sets the floor no higher than that key, and moves the
 *	  generation, so that claims that read "no floor" before cannot raise
 *	  it past such a task either.  (When every start moved the generation,
 *	  a raise after a reset failed whenever a start committed while its
 *	  claim ran, and each failure is one more claim that reads from the
 *	  beginning: in bench/vacuum_lag.sh, 300 starts/s with an idle xid
 *	  holder, 477 raises failed in 100 s, against 94-117 now; the floor
 *	  came back within a second of each reset either way.)
 *
 *	  Tasks ready only later (a retry's backoff, a start delay) have no
 *	  pass until the background worker places them when they come due (in
 *	  the round that wakes their workers), so claims use floors only where
 *	  a background worker serves the database (durable.claim_floors =
 *	  auto), or when told to (on).  Without shared memory, or when the
 *	  table of floors is full, claims start at the beginning.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "claim_floor.h"
#include "spi.h"

#define MAX_FLOORS 4096

typedef struct ClaimKey
{
	int32		neg_priority;
	bool		new_run;
	double		pass;
} ClaimKey;

typedef struct FloorEntry
{
	uint64		id;				/* hash key: database, namespace, queue */
	Oid			dboid;
	bool		set;			/* false: claims start at the beginning */
	ClaimKey	floor;
	uint64		gen;			/* moves on each lowering, reset and first raise */
	/* while not set: the lowest key made claimable since (low_set) */
	bool		low_set;
	ClaimKey	low;
} FloorEntry;

/* what this transaction will do to a floor at commit */
typedef enum FloorChange
{
	FLOOR_RAISE,
	FLOOR_LOWER,
	FLOOR_RESET
} FloorChange;

typedef struct PendingFloor
{
	uint64		id;
	FloorChange change;
	ClaimKey	key;
	uint64		gen;			/* a raise: the generation the claim read */
	uint64		epoch;			/* and the database resets' count */
} PendingFloor;

typedef struct FloorShared
{
	pg_atomic_uint64 epoch;		/* resets of a database's floors, server-wide */
} FloorShared;

int			durable_claim_floors = CLAIM_FLOORS_AUTO;

static HTAB *floor_hash = NULL;
static LWLock *floor_lock = NULL;
static FloorShared *floor_shared = NULL;

static PendingFloor *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;
static bool callbacks_registered = false;

void
durable_claim_floor_shmem_request(void)
{
	RequestAddinShmemSpace(hash_estimate_size(MAX_FLOORS, sizeof(FloorEntry)));
	RequestAddinShmemSpace(MAXALIGN(sizeof(FloorShared)));
	RequestNamedLWLockTranche("durable claim floors", 1);
}

/* under AddinShmemInitLock */
void
durable_claim_floor_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	floor_shared = ShmemInitStruct("durable claim floors state", sizeof(FloorShared), &found);
	if (!found)
		pg_atomic_init_u64(&floor_shared->epoch, 0);
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(uint64);
	info.entrysize = sizeof(FloorEntry);
	floor_hash = ShmemInitHash("durable claim floors", MAX_FLOORS, MAX_FLOORS, &info,
							   HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	floor_lock = &(GetNamedLWLockTranche("durable claim floors"))->lock;
}

static uint64
queue_id(const char *ns, const char *queue)
{
	uint64		h = hash_bytes_extended((const unsigned char *) ns, strlen(ns), MyDatabaseId);

	return hash_bytes_extended((const unsigned char *) queue, strlen(queue), h + 1);
}

static int
key_cmp(const ClaimKey *a, const ClaimKey *b)
{
	if (a->neg_priority != b->neg_priority)
		return a->neg_priority < b->neg_priority ? -1 : 1;
	if (a->new_run != b->new_run)
		return a->new_run ? 1 : -1;
	if (a->pass != b->pass)
		return a->pass < b->pass ? -1 : 1;
	return 0;
}

/* reset every floor of this database, now */
static void
reset_database(void)
{
	HASH_SEQ_STATUS seq;
	FloorEntry *e;

	if (floor_hash == NULL)
		return;
	LWLockAcquire(floor_lock, LW_EXCLUSIVE);
	/* a raise read before this fails, also for a queue with no entry yet */
	pg_atomic_fetch_add_u64(&floor_shared->epoch, 1);
	hash_seq_init(&seq, floor_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->dboid == MyDatabaseId && (e->set || e->low_set))
		{
			e->set = false;
			e->low_set = false;
			e->gen++;
		}
	LWLockRelease(floor_lock);
}

/* at commit: never fails (no allocation, no error) */
static void
apply_pending(void)
{
	int			i;

	if (npending == 0 || floor_hash == NULL)
	{
		npending = 0;
		return;
	}
	LWLockAcquire(floor_lock, LW_EXCLUSIVE);
	for (i = 0; i < npending; i++)
	{
		PendingFloor *p = &pending[i];
		bool		found;

		/*
		 * Made if missing, also to lower or reset: a raise that read "no
		 * entry" (generation 0) must fail after either.  Full: no floor.
		 */
		FloorEntry *e = hash_search(floor_hash, &p->id, HASH_ENTER_NULL, &found);

		if (e == NULL)
			continue;
		if (!found)
		{
			e->dboid = MyDatabaseId;
			e->set = false;
			e->gen = 0;
			e->low_set = false;
		}
		switch (p->change)
		{
			case FLOOR_RAISE:
				if (e->gen != p->gen ||
					pg_atomic_read_u64(&floor_shared->epoch) != p->epoch)
					break;
				if (!e->set)
				{
					/*
					 * The first floor since a reset: no higher than a task
					 * made claimable since, which this claim's snapshot
					 * may have missed; and other claims that read "no
					 * floor" may have missed it too, so their raises fail.
					 */
					e->floor = p->key;
					if (e->low_set && key_cmp(&e->low, &e->floor) < 0)
						e->floor = e->low;
					e->set = true;
					e->low_set = false;
					e->gen++;
				}
				else if (key_cmp(&p->key, &e->floor) > 0)
					e->floor = p->key;
				break;
			case FLOOR_LOWER:
				if (e->set)
				{
					if (key_cmp(&p->key, &e->floor) < 0)
					{
						e->floor = p->key;
						e->gen++;
					}
				}
				else if (!e->low_set || key_cmp(&p->key, &e->low) < 0)
				{
					e->low = p->key;
					e->low_set = true;
				}
				break;
			case FLOOR_RESET:
				e->set = false;
				e->low_set = false;
				e->gen++;
				break;
		}
	}
	LWLockRelease(floor_lock);
	npending = 0;
}

/*
 * All changes wait for COMMIT, after the transaction's tasks are visible:
 * a lowering made before would let a claim read the lowered floor with a
 * snapshot that does not see the task yet, and raise the floor past it.
 * A raise checks the generation it read, so it never undoes a lowering or
 * reset applied since.
 */
static void
floor_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			apply_pending();
			durable_xact_ran_statements = false;
			break;
		case XACT_EVENT_PREPARE:
			apply_pending();
			/*
			 * Its row locks outlive it, and a ROLLBACK PREPARED is another
			 * transaction's commit: reset now, so that only claims made
			 * while it stays prepared can step past its rows.
			 */
			if (durable_xact_ran_statements)
				reset_database();
			durable_xact_ran_statements = false;
			break;
		case XACT_EVENT_ABORT:
			npending = 0;
			/* only a transaction with an xid can have locked rows */
			if (durable_xact_ran_statements &&
				GetTopTransactionIdIfAny() != InvalidTransactionId)
				reset_database();
			durable_xact_ran_statements = false;
			break;
		default:
			break;
	}
}

/* a claim in the aborted subtransaction, or one that skipped its rows */
static void
floor_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && durable_xact_ran_statements &&
		GetCurrentTransactionIdIfAny() != InvalidTransactionId)
		reset_database();
}

void
durable_claim_floor_init(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(floor_xact_callback, NULL);
	RegisterSubXactCallback(floor_subxact_callback, NULL);
	callbacks_registered = true;
}

static void
add_pending(const char *ns, const char *queue, FloorChange change,
			const ClaimKey *key, uint64 gen, uint64 epoch)
{
	PendingFloor *p;

	if (floor_hash == NULL)
		return;
	if (npending == maxpending)
	{
		int			newmax = maxpending ? maxpending * 2 : 16;

		if (pending == NULL)
			pending = MemoryContextAlloc(TopMemoryContext, sizeof(PendingFloor) * newmax);
		else
			pending = repalloc(pending, sizeof(PendingFloor) * newmax);
		maxpending = newmax;
	}
	p = &pending[npending++];
	p->id = queue_id(ns, queue);
	p->change = change;
	if (key != NULL)
		p->key = *key;
	p->gen = gen;
	p->epoch = epoch;
}

/*
 * durable_claim_floor_get: the floor a claim of the queue starts at, as
 * (neg_priority, new_run, pass); (INT_MIN, false, -Infinity) when none.
 * *gen: what a raise after this claim must find unchanged.
 */
void
durable_claim_floor_get(const char *ns, const char *queue, int *neg_priority,
						bool *new_run, double *pass, uint64 *gen, uint64 *epoch)
{
	uint64		id = queue_id(ns, queue);
	FloorEntry *e;

	*neg_priority = PG_INT32_MIN;
	*new_run = false;
	*pass = -INFINITY;
	*gen = 0;
	*epoch = 0;
	if (floor_hash == NULL)
		return;
	LWLockAcquire(floor_lock, LW_SHARED);
	*epoch = pg_atomic_read_u64(&floor_shared->epoch);
	e = hash_search(floor_hash, &id, HASH_FIND, NULL);
	if (e != NULL)
	{
		*gen = e->gen;
		if (e->set)
		{
			*neg_priority = e->floor.neg_priority;
			*new_run = e->floor.new_run;
			*pass = e->floor.pass;
		}
	}
	LWLockRelease(floor_lock);
}

/* a claim took the queue's tasks up to this key: the floor, at commit */
void
durable_claim_floor_raise(const char *ns, const char *queue, uint64 gen, uint64 epoch,
						  int neg_priority, bool new_run, double pass)
{
	ClaimKey	key = {neg_priority, new_run, pass};

	add_pending(ns, queue, FLOOR_RAISE, &key, gen, epoch);
}

/* a task with this key becomes claimable at commit */
void
durable_claim_floor_lower(const char *ns, const char *queue, int neg_priority,
						  bool new_run, double pass)
{
	ClaimKey	key = {neg_priority, new_run, pass};

	add_pending(ns, queue, FLOOR_LOWER, &key, 0, 0);
}

/* a task of the queue with an unknown key becomes claimable at commit */
void
durable_claim_floor_reset(const char *ns, const char *queue)
{
	add_pending(ns, queue, FLOOR_RESET, NULL, 0, 0);
}

/* every floor of this database, now (the background worker's rounds) */
void
durable_claim_floor_reset_database(void)
{
	reset_database();
}
