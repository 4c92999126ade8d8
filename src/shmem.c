/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  durable's shared memory and the wake-ups it carries: NOTIFY
 *	  durable_<queue> when a queue gains ready work (coalesced, sent only
 *	  when a worker may be waiting), the registry of background workers
 *	  (commits wake them early) and the launcher, the throttle on lease
 *	  expiry by polls, and the wf_result waiters (a run's close wakes
 *	  them).
 *
 *	  NOTIFY coalescing:
 *
 *	  NOTIFY takes a database-wide lock at commit, which halves throughput
 *	  when every commit sends one.  So a poll that comes back with fewer
 *	  tasks than it asked for raises the queue's "idle" flag in shared
 *	  memory (its worker is about to wait), and a transaction that gave the
 *	  queue work sends the NOTIFY only while the flag is up, lowering it.
 *	  A busy queue, whose polls come back full, commits without NOTIFY.
 *	  Flags live in a fixed array indexed by a hash of the queue name; a
 *	  collision only costs a spurious NOTIFY.  Without shared memory (not
 *	  preloaded) every such transaction notifies.
 *
 *	  Targeted wake-ups: a worker that LISTENs on a channel of its own and
 *	  names it in durable.wake_channel (on its polling connection) is
 *	  listed, with the room its short poll left, as idle on the queue
 *	  until its next poll.  A transaction that gives the queue N tasks then
 *	  NOTIFYs just enough listed workers to take N, instead of the queue's
 *	  channel, which wakes every worker of the queue while all but one
 *	  poll for nothing.  When the listed workers cannot take N (or none is
 *	  listed: workers that only LISTEN on the queue's channel), it NOTIFYs
 *	  the queue's channel as before.
 *
 *	  The same shared memory lists the running background workers, so a
 *	  commit that creates a due time earlier than a worker's planned
 *	  wake-up (a short timer, a start delay) sets that worker's latch.
 *
 *	  Live queries (wf_query) travel through shared memory, not tables: a
 *	  caller inside its own transaction could not otherwise hand a query
 *	  to a worker and read the answer before it commits.  The caller posts
 *	  the query in a slot, asks the background worker to NOTIFY the run's
 *	  queue, and sleeps on its latch; a poll of that queue takes the query
 *	  (its row has kind 'query' and a negative token) and the worker's
 *	  task_answer_query writes the answer into the slot and sets the
 *	  caller's latch.  Nothing of it is durable: a query is only as long
 *	  as its caller waits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"
#include "pgstat.h"
#include "utils/memutils.h"

#include "durable.h"
#include "claim_floor.h"
#include "fairness.h"
#include "metrics.h"
#include "shmem.h"

#define IDLE_SLOTS 4096
#define WORKER_SLOTS 64
#define NOTIFY_REQUESTS 64

/* a NOTIFY a committed transaction could not send: the worker sends it */
typedef struct NotifyRequest
{
	Oid			dboid;			/* InvalidOid: free */
	char		queue[DURABLE_MAX_QUEUE + 1];
} NotifyRequest;

/* a running background worker, so commits can wake it early */
typedef struct WorkerSlot
{
	Oid			dboid;
	int			procno;
	pg_atomic_uint64 next_wake; /* real time it plans to wake up */
} WorkerSlot;

/*
 * A backend whose last poll came back short, and the channel its worker
 * waits on (durable.wake_channel); one entry per PGPROC number.
 */
typedef struct IdlePoller
{
	Oid			dboid;			/* InvalidOid: not waiting */
	uint32		queue_slot;		/* queue_slot() of the queue it polled */
	int			room;			/* tasks it asked for and did not get */
	char		channel[NAMEDATALEN];
} IdlePoller;

/* a backend in wf_result(.., wait): its latch is set when the run closes */
typedef struct ResultWaiter
{
	Oid			dboid;			/* InvalidOid: free */
	int			procno;
	int64		run_id;			/* the open run it waits for */
} ResultWaiter;

#define RESULT_WAITERS 256

/* a live query (wf_query), from its post to its answer */
typedef enum QueryState
{
	QUERY_FREE = 0,
	QUERY_POSTED,				/* waiting for a poll of its queue */
	QUERY_TAKEN,				/* handed to a worker */
	QUERY_ANSWERED
} QueryState;

typedef struct QuerySlot
{
	QueryState	state;
	uint32		generation;		/* part of the token: a reused slot's old
								 * token is stale */
	Oid			dboid;
	int			caller_procno;
	int64		run_id;
	TimestampTz deadline;		/* when the caller gives up */
	char		ns[DURABLE_MAX_NAME + 1];
	char		queue[DURABLE_MAX_QUEUE + 1];
	char		name[DURABLE_MAX_NAME + 1];
	bool		answer_is_error;
	int			args_len;
	char		args[DURABLE_QUERY_MAX_ARGS + 1];
	int			answer_len;
	char		answer[DURABLE_QUERY_MAX_ANSWER + 1];
} QuerySlot;

typedef struct DurableShared
{
	pg_atomic_uint32 idle[IDLE_SLOTS];
	pg_atomic_uint32 launcher_procno;	/* PGPROC number + 1; 0 = none */
	pg_atomic_uint64 last_expiry_scan;	/* when a poll last looked for
										 * expired leases */
	pg_atomic_uint32 launcher_wanted_db;	/* database whose worker a commit
											 * asked for, or InvalidOid */
	slock_t		mutex;			/* guards worker slots and requests */
	WorkerSlot	workers[WORKER_SLOTS];
	NotifyRequest requests[NOTIFY_REQUESTS];
	ResultWaiter waiters[RESULT_WAITERS];
	pg_atomic_uint32 queries_posted;	/* slots in QUERY_POSTED: polls look
										 * no further while 0 */
	pg_atomic_uint32 result_waiters;	/* waiters[] in use: a commit that
										 * closed runs looks no further
										 * while 0 */
} DurableShared;

static DurableShared *shared = NULL;
/* MaxBackends entries, by PGPROC number, guarded by shared->mutex */
static IdlePoller *pollers = NULL;
/* durable_max_queries slots, guarded by query_lock (answers are copied in
 * and out under it: too long for a spinlock) */
static QuerySlot *query_slots = NULL;
static LWLock *query_lock = NULL;
int			durable_max_queries = 16;
/* the slot this backend's wf_query posted, or -1 */
static int	my_query = -1;
static int	npollers = 0;
/* this backend is listed in pollers */
static bool listed_idle = false;
static bool poller_exit_registered = false;
char	   *durable_wake_channel = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Queues given work by the current transaction, and whether the
 * pre-commit check sent their NOTIFY.
 */
typedef struct PendingQueue
{
	char	   *queue;
	int			ntasks;			/* tasks made ready (INT_MAX: many) */
	bool		notified;
} PendingQueue;
static List *pending_queues = NIL;
/* earliest due time the current transaction created (durable clock) */
static TimestampTz pending_due = 0;
static WorkerSlot *my_slot = NULL;
/*
 * Runs the current transaction closed (for wf_result waiters); past
 * CLOSED_RUNS_KEPT, every waiter of the database is woken instead.
 */
#define CLOSED_RUNS_KEPT 64
static int64 closed_runs[CLOSED_RUNS_KEPT];
static int	nclosed_runs = 0;
/* this backend's slot in shared->waiters, or -1 */
static int	my_waiter = -1;
/* the committing transaction gave some queue work */
static bool pending_work = false;
static bool callback_registered = false;

static uint32
queue_slot(const char *queue)
{
	return hash_bytes((const unsigned char *) queue, strlen(queue)) % IDLE_SLOTS;
}

static void
durable_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(DurableShared)));
	RequestAddinShmemSpace(MAXALIGN(sizeof(IdlePoller) * MaxBackends));
	RequestAddinShmemSpace(MAXALIGN(sizeof(QuerySlot) * durable_max_queries));
	RequestNamedLWLockTranche("durable queries", 1);
	durable_fairness_shmem_request();
	durable_metrics_shmem_request();
	durable_claim_floor_shmem_request();
}

static void
durable_shmem_startup_hook(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	npollers = MaxBackends;
	pollers = ShmemInitStruct("durable pollers", sizeof(IdlePoller) * npollers, &found);
	if (!found)
	{
		int			i;

		for (i = 0; i < npollers; i++)
			pollers[i].dboid = InvalidOid;
	}
	query_slots = ShmemInitStruct("durable queries", sizeof(QuerySlot) * durable_max_queries,
								  &found);
	if (!found)
		memset(query_slots, 0, sizeof(QuerySlot) * durable_max_queries);
	query_lock = &(GetNamedLWLockTranche("durable queries"))->lock;
	durable_fairness_shmem_startup();
	durable_metrics_shmem_startup();
	durable_claim_floor_shmem_startup();
	shared = ShmemInitStruct("durable", sizeof(DurableShared), &found);
	if (!found)
	{
		int			i;

		pg_atomic_init_u32(&shared->queries_posted, 0);
		pg_atomic_init_u32(&shared->result_waiters, 0);

		for (i = 0; i < IDLE_SLOTS; i++)
			pg_atomic_init_u32(&shared->idle[i], 1);
		pg_atomic_init_u32(&shared->launcher_procno, 0);
		pg_atomic_init_u64(&shared->last_expiry_scan, 0);
		pg_atomic_init_u32(&shared->launcher_wanted_db, InvalidOid);
		for (i = 0; i < NOTIFY_REQUESTS; i++)
			shared->requests[i].dboid = InvalidOid;
		for (i = 0; i < RESULT_WAITERS; i++)
			shared->waiters[i].dboid = InvalidOid;
		SpinLockInit(&shared->mutex);
		for (i = 0; i < WORKER_SLOTS; i++)
		{
			shared->workers[i].dboid = InvalidOid;
			shared->workers[i].procno = -1;
			pg_atomic_init_u64(&shared->workers[i].next_wake, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
durable_shmem_request(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = durable_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = durable_shmem_startup_hook;
}

/*
 * wake_worker_if_later: set the latch of this database's background
 * worker when it plans to sleep past 'due'.
 */
static void
wake_worker_if_later(TimestampTz due)
{
	TimestampTz real_due = TIMESTAMP_NOT_FINITE(due) ? due :
		due - (int64) durable_clock_offset_s * USECS_PER_SEC;
	uint32		launcher;
	int			i;

	if (shared == NULL)
		return;
	for (i = 0; i < WORKER_SLOTS; i++)
	{
		WorkerSlot *w = &shared->workers[i];
		int			procno;

		if (w->dboid != MyDatabaseId)
			continue;
		procno = w->procno;
		if (procno >= 0 && (TimestampTz) pg_atomic_read_u64(&w->next_wake) > real_due)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
		return;
	}

	/*
	 * No worker serves this database yet (the extension was just created):
	 * have the launcher start one now rather than at its next rescan.
	 */
	launcher = pg_atomic_read_u32(&shared->launcher_procno);
	if (launcher != 0)
	{
		pg_atomic_write_u32(&shared->launcher_wanted_db, MyDatabaseId);
		SetLatch(&ProcGlobal->allProcs[launcher - 1].procLatch);
	}
}

/*
 * durable_launcher_take_wanted_db: the database a commit asked a worker
 * for, if any (and forget it).
 */
Oid
durable_launcher_take_wanted_db(void)
{
	if (shared == NULL)
		return InvalidOid;
	return pg_atomic_exchange_u32(&shared->launcher_wanted_db, InvalidOid);
}

/*
 * request_notify: after commit, a queue's idle flag is up although the
 * pre-commit check found it down: a poll ran between the check and the
 * commit becoming visible, missed this transaction's work, and its worker
 * may now sleep.  A committed transaction cannot NOTIFY, so the
 * background worker of this database sends it.
 */
static void
request_notify(const char *queue)
{
	int			i;
	int			free_slot = -1;

	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < NOTIFY_REQUESTS; i++)
	{
		NotifyRequest *r = &shared->requests[i];

		if (r->dboid == MyDatabaseId && strcmp(r->queue, queue) == 0)
		{
			free_slot = -2;		/* already requested */
			break;
		}
		if (r->dboid == InvalidOid && free_slot == -1)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		shared->requests[free_slot].dboid = MyDatabaseId;
		strlcpy(shared->requests[free_slot].queue, queue, DURABLE_MAX_QUEUE + 1);
	}
	SpinLockRelease(&shared->mutex);
	/* a full table only delays the wake-up to the workers' fallback poll */
	wake_worker_if_later(DT_NOBEGIN);
}

/*
 * durable_send_requested_notifies: the background worker sends the
 * NOTIFYs requested for its database, within its current transaction.
 */
int
durable_send_requested_notifies(void)
{
	char		queues[NOTIFY_REQUESTS][DURABLE_MAX_QUEUE + 1];
	int			n = 0;
	int			i;

	if (shared == NULL)
		return 0;
	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < NOTIFY_REQUESTS; i++)
		if (shared->requests[i].dboid == MyDatabaseId)
		{
			strlcpy(queues[n++], shared->requests[i].queue, DURABLE_MAX_QUEUE + 1);
			shared->requests[i].dboid = InvalidOid;
		}
	SpinLockRelease(&shared->mutex);
	for (i = 0; i < n; i++)
		Async_Notify(psprintf("durable_%s", queues[i]), NULL);
	durable_metric_count(METRIC_WAKEUPS_SENT, NULL, NULL, NULL, n);
	return n;
}

/*
 * durable_bgw_register_launcher_self: the launcher announces itself so
 * commits in a database without a worker can wake it.
 */
void
durable_bgw_register_launcher_self(void)
{
	if (shared != NULL)
		pg_atomic_write_u32(&shared->launcher_procno, (uint32) DURABLE_MY_PROCNO + 1);
}

/*
 * durable_bgw_wake: this transaction created something due at 'due'; at
 * commit, wake the background worker if it would sleep past it.
 */
void
durable_bgw_wake(TimestampTz due)
{
	if (pending_due == 0 || due < pending_due)
		pending_due = due;
}

static void
release_slot(int code, Datum arg)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	my_slot->dboid = InvalidOid;
	my_slot->procno = -1;
	SpinLockRelease(&shared->mutex);
	my_slot = NULL;
}

/*
 * durable_bgw_serves_database: does a background worker run for this
 * database (its rounds place due tasks in fair order and reset claim
 * floors)?
 */
bool
durable_bgw_serves_database(void)
{
	bool		found = false;
	int			i;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < WORKER_SLOTS && !found; i++)
		found = shared->workers[i].dboid == MyDatabaseId;
	SpinLockRelease(&shared->mutex);
	return found;
}

/*
 * durable_bgw_register_self: a background worker announces itself for
 * its database.
 */
void
durable_bgw_register_self(void)
{
	int			i;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < WORKER_SLOTS; i++)
		if (shared->workers[i].dboid == MyDatabaseId ||
			shared->workers[i].dboid == InvalidOid)
		{
			my_slot = &shared->workers[i];
			my_slot->dboid = MyDatabaseId;
			my_slot->procno = DURABLE_MY_PROCNO;
			break;
		}
	SpinLockRelease(&shared->mutex);
	if (my_slot)
		on_shmem_exit(release_slot, (Datum) 0);
	else
		ereport(WARNING,
				(errmsg("durable: no free worker slot in shared memory for database %u", MyDatabaseId),
				 errdetail("At most %d databases have a background worker that commits can wake early; this one wakes only every durable.naptime.",
						   WORKER_SLOTS)));
}

void
durable_bgw_set_next_wake(TimestampTz when)
{
	if (my_slot)
		pg_atomic_write_u64(&my_slot->next_wake, (uint64) when);
}

/*
 * Waiting for results.  durable.wf_result(id, wait) sleeps on its latch
 * instead of re-reading the run every few milliseconds: it registers the
 * open run it found in shared memory and reads it once more, and a
 * transaction that closes runs sets the latches of their waiters when it
 * commits.  Registering before that second read means a close that
 * commits after it still finds the waiter.  A close costs an array slot;
 * the waiter table is only scanned at commit when a run was closed.
 */
void
durable_run_closed(int64 run_id)
{
	if (shared == NULL)
		return;
	if (nclosed_runs < CLOSED_RUNS_KEPT)
		closed_runs[nclosed_runs] = run_id;
	nclosed_runs++;
}

static void
wake_result_waiters(void)
{
	int			i;
	int			j;

	/*
	 * The close is visible already; a waiter counts itself before its
	 * second read of the run, so one this misses sees the close there.
	 */
	pg_memory_barrier();
	if (pg_atomic_read_u32(&shared->result_waiters) == 0)
		return;
	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < RESULT_WAITERS; i++)
	{
		ResultWaiter *w = &shared->waiters[i];

		if (w->dboid != MyDatabaseId)
			continue;
		for (j = 0; j < nclosed_runs; j++)
			if (j >= CLOSED_RUNS_KEPT || closed_runs[j] == w->run_id)
			{
				SetLatch(&ProcGlobal->allProcs[w->procno].procLatch);
				break;
			}
	}
	SpinLockRelease(&shared->mutex);
}

static void
release_waiter(int code, Datum arg)
{
	durable_result_wait_end();
}

/*
 * durable_result_wait_begin: register this backend as waiting for the
 * run to close (replacing what it waited for before).  False when it cannot (not preloaded,
 * or every slot taken): the caller polls instead.
 */
bool
durable_result_wait_begin(int64 run_id)
{
	static bool exit_hook = false;
	int			i;

	if (shared == NULL)
		return false;
	if (!exit_hook)
	{
		before_shmem_exit(release_waiter, (Datum) 0);
		exit_hook = true;
	}
	durable_result_wait_end();
	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < RESULT_WAITERS; i++)
		if (shared->waiters[i].dboid == InvalidOid)
		{
			shared->waiters[i].dboid = MyDatabaseId;
			shared->waiters[i].procno = DURABLE_MY_PROCNO;
			shared->waiters[i].run_id = run_id;
			my_waiter = i;
			pg_atomic_fetch_add_u32(&shared->result_waiters, 1);
			break;
		}
	SpinLockRelease(&shared->mutex);
	return my_waiter >= 0;
}

void
durable_result_wait_end(void)
{
	if (my_waiter < 0 || shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->waiters[my_waiter].dboid = InvalidOid;
	pg_atomic_fetch_sub_u32(&shared->result_waiters, 1);
	SpinLockRelease(&shared->mutex);
	my_waiter = -1;
}

/*
 * take_idle_pollers: list, and unlist, idle pollers of this database's
 * queue whose room adds up to ntasks (the longest-listed first, in
 * PGPROC order).  False, changing nothing, if all of them together have
 * less room.  *others: some stay listed.
 */
static bool
take_idle_pollers(const char *queue, int ntasks, List **channels, bool *others)
{
	uint32		slot = queue_slot(queue);
	char		(*names)[NAMEDATALEN];
	int			nnames = 0;
	int			room = 0;
	int			i;

	*channels = NIL;
	*others = false;
	if (pollers == NULL || ntasks == INT_MAX)
		return false;
	/* allocated before the spinlock: nothing under it may fail */
	names = palloc(sizeof(*names) * npollers);
	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < npollers && room < ntasks; i++)
		if (pollers[i].dboid == MyDatabaseId && pollers[i].queue_slot == slot)
			room += pollers[i].room;
	if (room < ntasks)
	{
		SpinLockRelease(&shared->mutex);
		return false;
	}
	room = 0;
	for (i = 0; i < npollers; i++)
	{
		IdlePoller *p = &pollers[i];

		if (p->dboid != MyDatabaseId || p->queue_slot != slot)
			continue;
		if (room >= ntasks)
		{
			*others = true;
			break;
		}
		room += p->room;
		p->dboid = InvalidOid;
		memcpy(names[nnames++], p->channel, NAMEDATALEN);
	}
	SpinLockRelease(&shared->mutex);
	for (i = 0; i < nnames; i++)
		*channels = lappend(*channels, names[i]);
	return true;
}

/*
 * notify_queue: wake workers for ntasks new tasks of a queue: the idle
 * pollers that can take them, else every listener of the queue's channel.
 */
static void
notify_queue(const char *queue, int ntasks)
{
	List	   *channels;
	bool		others;
	ListCell   *lc;

	if (!take_idle_pollers(queue, ntasks, &channels, &others))
	{
		Async_Notify(psprintf("durable_%s", queue), NULL);
		durable_metric_count(METRIC_WAKEUPS_SENT, NULL, NULL, NULL, 1);
		return;
	}
	foreach(lc, channels)
		Async_Notify((const char *) lfirst(lc), NULL);
	durable_metric_count(METRIC_WAKEUPS_SENT, NULL, NULL, NULL, list_length(channels));
	/* pollers still listed keep the queue's flag up for the next producer */
	if (others)
		pg_atomic_write_u32(&shared->idle[queue_slot(queue)], 1);
}

static void
unlist_poller(int code, Datum arg)
{
	durable_poller_busy();
}

/*
 * durable_poller_busy: this backend polls: it is no longer waiting.
 */
void
durable_poller_busy(void)
{
	int			me = DURABLE_MY_PROCNO;

	if (!listed_idle)
		return;
	listed_idle = false;
	if (pollers == NULL || me < 0 || me >= npollers)
		return;
	SpinLockAcquire(&shared->mutex);
	pollers[me].dboid = InvalidOid;
	SpinLockRelease(&shared->mutex);
}

/*
 * durable_poller_set_room: the poll ends with room tasks short (0: it got
 * all it asked for, and its worker will not wait).
 */
void
durable_poller_set_room(int room)
{
	int			me = DURABLE_MY_PROCNO;

	if (!listed_idle)
		return;
	if (room <= 0)
	{
		durable_poller_busy();
		return;
	}
	SpinLockAcquire(&shared->mutex);
	if (pollers[me].dboid == MyDatabaseId)
		pollers[me].room = room;
	SpinLockRelease(&shared->mutex);
}

/*
 * list_idle_poller: a poll of the queue came back with room tasks short;
 * with durable.wake_channel set, its worker waits on that channel.
 */
static void
list_idle_poller(const char *queue, int room)
{
	int			me = DURABLE_MY_PROCNO;

	if (pollers == NULL || durable_wake_channel == NULL || durable_wake_channel[0] == '\0' ||
		me < 0 || me >= npollers || room <= 0)
		return;
	if (!poller_exit_registered)
	{
		before_shmem_exit(unlist_poller, (Datum) 0);
		poller_exit_registered = true;
	}
	SpinLockAcquire(&shared->mutex);
	pollers[me].dboid = MyDatabaseId;
	pollers[me].queue_slot = queue_slot(queue);
	pollers[me].room = room;
	strlcpy(pollers[me].channel, durable_wake_channel, NAMEDATALEN);
	SpinLockRelease(&shared->mutex);
	listed_idle = true;
}

/*
 * durable_xact_callback: at pre-commit, NOTIFY each queue the transaction
 * gave work whose flag says a worker may be waiting.  This runs before
 * PreCommit_Notify, so the notifications go out with this commit.
 */
static void
durable_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			foreach(lc, pending_queues)
			{
				PendingQueue *p = lfirst(lc);

				p->notified = true;
				if (shared != NULL)
					p->notified = pg_atomic_exchange_u32(&shared->idle[queue_slot(p->queue)], 0) != 0;
				if (p->notified)
					notify_queue(p->queue, p->ntasks);
			}
			pending_work = pending_queues != NIL;
			break;
		case XACT_EVENT_COMMIT:
			/* the work is visible now: repair a wake-up the race lost */
			foreach(lc, pending_queues)
			{
				PendingQueue *p = lfirst(lc);

				if (!p->notified && shared != NULL &&
					pg_atomic_read_u32(&shared->idle[queue_slot(p->queue)]) != 0)
					request_notify(p->queue);
			}
			if (pending_due != 0 || pending_work)
				wake_worker_if_later(pending_due != 0 ? pending_due : DT_NOEND);
			if (nclosed_runs > 0 && shared != NULL)
				wake_result_waiters();
			pending_queues = NIL;
			pending_due = 0;
			pending_work = false;
			nclosed_runs = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PRE_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			/* a prepared transaction cannot NOTIFY; the worker's tick covers it */
			pending_queues = NIL;
			pending_due = 0;
			pending_work = false;
			nclosed_runs = 0;
			break;
	}
}

void
durable_notify_init(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(durable_xact_callback, NULL);
		callback_registered = true;
	}
}

/*
 * durable_queue_gained_work: remember that this transaction made work
 * ready on a queue.  The namespace is not part of the channel: a
 * same-named queue in another namespace only gets a spurious wake-up.
 */
void
durable_queue_gained_work(const char *ns, const char *queue)
{
	durable_queue_gained_tasks(ns, queue, 1);
}

/*
 * durable_queue_gained_tasks: the same for ntasks tasks (INT_MAX: an
 * unknown number, such as a whole queue unpaused).
 */
void
durable_queue_gained_tasks(const char *ns, const char *queue, int ntasks)
{
	ListCell   *lc;
	MemoryContext old;
	PendingQueue *p;

	foreach(lc, pending_queues)
	{
		p = lfirst(lc);
		if (strcmp(p->queue, queue) == 0)
		{
			p->ntasks = (ntasks == INT_MAX || p->ntasks > INT_MAX - 1 - ntasks) ?
				INT_MAX : p->ntasks + ntasks;
			return;
		}
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(PendingQueue));
	p->queue = pstrdup(queue);
	p->ntasks = ntasks;
	p->notified = false;
	pending_queues = lappend(pending_queues, p);
	MemoryContextSwitchTo(old);
}

/*
 * durable_poll_should_expire: polls look for expired leases only where no
 * background worker serves the database (a worker does it every round,
 * and sleeps at most durable.naptime), and at most every
 * POLL_EXPIRY_INTERVAL per server, so a busy queue does not pay a scan per
 * poll.  The poll that wins the compare-and-swap does the scan.  The scan
 * walks tasks_token, whose entries of finished tasks stay while something
 * holds back vacuum: in bench/vacuum_lag.sh's conditions it read about
 * 5,800 buffers a call, ten times a second, on top of the worker's rounds.
 */
#define POLL_EXPIRY_INTERVAL (100 * 1000)	/* 100 ms */

bool
durable_poll_should_expire(void)
{
	TimestampTz now;
	uint64		last;

	/* without shared memory, or with a shifted (test) clock, always scan */
	if (shared == NULL || durable_clock_offset_s != 0)
		return true;
	now = GetCurrentTimestamp();
	last = pg_atomic_read_u64(&shared->last_expiry_scan);
	if (now - (TimestampTz) last < POLL_EXPIRY_INTERVAL)
		return false;
	/* the worker check takes the spinlock: only the poll that would scan */
	if (durable_bgw_serves_database())
		return false;
	return pg_atomic_compare_exchange_u64(&shared->last_expiry_scan, &last, (uint64) now);
}

/*
 * durable_note_idle_poll: a poll came back room tasks short; its worker
 * may wait.  (Listed before the flag goes up: a producer that sees the
 * flag also sees the poller.)
 */
void
durable_note_idle_poll(const char *ns, const char *queue, int room)
{
	if (shared == NULL)
		return;
	list_idle_poller(queue, room);
	pg_atomic_write_u32(&shared->idle[queue_slot(queue)], 1);
}

/*
 * Live queries (see the header).  A token names a slot and its
 * generation: -(generation << 16 | slot), negative so that it can never
 * be a task's token.
 */
static int64
query_token(int slot)
{
	return -(((int64) query_slots[slot].generation << 16) | slot);
}

/* the slot a token names while that query is still the slot's, else -1 */
static int
query_slot_of(int64 token)
{
	int64		t = -token;
	int			slot = (int) (t & 0xFFFF);

	if (token >= 0 || slot >= durable_max_queries ||
		query_slots[slot].generation != (uint32) (t >> 16) ||
		query_slots[slot].dboid != MyDatabaseId ||
		query_slots[slot].state == QUERY_FREE)
		return -1;
	return slot;
}

static void
release_query(int code, Datum arg)
{
	durable_query_end();
}

bool
durable_queries_available(void)
{
	return query_slots != NULL;
}

/*
 * durable_query_post: post a query of run_id (of ns/queue) for a poll of
 * that queue to take, and have the background worker NOTIFY the queue.
 * False, posting nothing, when every slot is in use.
 */
bool
durable_query_post(const char *ns, const char *queue, int64 run_id, const char *name,
				   const char *args, TimestampTz deadline)
{
	static bool exit_hook = false;
	int			i;

	Assert(query_slots != NULL);
	Assert(strlen(args) <= DURABLE_QUERY_MAX_ARGS);
	Assert(my_query < 0);		/* wf_query ends each query it posts */
	if (!exit_hook)
	{
		before_shmem_exit(release_query, (Datum) 0);
		exit_hook = true;
	}
	LWLockAcquire(query_lock, LW_EXCLUSIVE);
	for (i = 0; i < durable_max_queries; i++)
		if (query_slots[i].state == QUERY_FREE)
		{
			QuerySlot  *q = &query_slots[i];

			q->generation = (q->generation + 1) & 0x3FFFFFFF;
			if (q->generation == 0)
				q->generation = 1;
			q->dboid = MyDatabaseId;
			q->caller_procno = DURABLE_MY_PROCNO;
			q->run_id = run_id;
			q->deadline = deadline;
			strlcpy(q->ns, ns, sizeof(q->ns));
			strlcpy(q->queue, queue, sizeof(q->queue));
			strlcpy(q->name, name, sizeof(q->name));
			q->args_len = strlen(args);
			memcpy(q->args, args, q->args_len + 1);
			q->answer_len = 0;
			q->answer_is_error = false;
			q->state = QUERY_POSTED;
			pg_atomic_fetch_add_u32(&shared->queries_posted, 1);
			my_query = i;
			break;
		}
	LWLockRelease(query_lock);
	if (my_query < 0)
		return false;
	request_notify(queue);
	return true;
}

/*
 * durable_query_wait: sleep until the posted query is answered or the
 * deadline (real time) passes.  Returns the answer (palloc'd jsonb text)
 * and whether it is an error, or NULL when no answer came; *taken says
 * whether a worker took the query.
 */
char *
durable_query_wait(TimestampTz deadline, bool *is_error, bool *taken)
{
	Assert(my_query >= 0);
	for (;;)
	{
		QuerySlot  *q = &query_slots[my_query];
		TimestampTz now;
		char	   *answer = NULL;

		LWLockAcquire(query_lock, LW_SHARED);
		*taken = q->state != QUERY_POSTED;
		if (q->state == QUERY_ANSWERED)
		{
			answer = palloc(q->answer_len + 1);
			memcpy(answer, q->answer, q->answer_len + 1);
			*is_error = q->answer_is_error;
		}
		LWLockRelease(query_lock);
		if (answer != NULL)
			return answer;
		now = GetCurrentTimestamp();
		if (now >= deadline)
			return NULL;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min((deadline - now) / 1000 + 1, 1000), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* durable_query_end: free the slot this backend's query holds, if any */
void
durable_query_end(void)
{
	if (my_query < 0 || query_slots == NULL)
		return;
	LWLockAcquire(query_lock, LW_EXCLUSIVE);
	if (query_slots[my_query].state == QUERY_POSTED)
		pg_atomic_fetch_sub_u32(&shared->queries_posted, 1);
	query_slots[my_query].state = QUERY_FREE;
	query_slots[my_query].dboid = InvalidOid;
	LWLockRelease(query_lock);
	my_query = -1;
}

/*
 * durable_queries_take: hand up to max posted queries of ns/queue to the
 * polling worker (lowest slot first), in *taken (palloc'd).  Costs one
 * atomic read while no query is posted anywhere.
 */
int
durable_queries_take(const char *ns, const char *queue, int max, DurableQueryTask **taken)
{
	DurableQueryTask *out;
	int			n = 0;
	int			i;

	if (query_slots == NULL || max <= 0 || pg_atomic_read_u32(&shared->queries_posted) == 0)
		return 0;
	out = *taken = palloc(sizeof(DurableQueryTask) * max);
	LWLockAcquire(query_lock, LW_EXCLUSIVE);
	for (i = 0; i < durable_max_queries && n < max; i++)
	{
		QuerySlot  *q = &query_slots[i];

		if (q->state != QUERY_POSTED || q->dboid != MyDatabaseId ||
			strcmp(q->ns, ns) != 0 || strcmp(q->queue, queue) != 0)
			continue;
		q->state = QUERY_TAKEN;
		pg_atomic_fetch_sub_u32(&shared->queries_posted, 1);
		out[n].token = query_token(i);
		out[n].run_id = q->run_id;
		out[n].name = pstrdup(q->name);
		out[n].args = pstrdup(q->args);
		out[n].deadline = q->deadline;
		n++;
	}
	LWLockRelease(query_lock);
	return n;
}

/*
 * durable_query_lookup: the namespace and queue of the query a token
 * names; false when it is not a live query (answered, or its caller gave
 * up).
 */
bool
durable_query_lookup(int64 token, char **ns, char **queue)
{
	int			slot;

	if (query_slots == NULL)
		return false;
	LWLockAcquire(query_lock, LW_SHARED);
	slot = query_slot_of(token);
	if (slot >= 0)
	{
		*ns = pstrdup(query_slots[slot].ns);
		*queue = pstrdup(query_slots[slot].queue);
	}
	LWLockRelease(query_lock);
	return slot >= 0;
}

/*
 * durable_query_answer: give the query a token names its answer (jsonb
 * text, at most DURABLE_QUERY_MAX_ANSWER bytes) and wake its caller.
 * False when the query is gone or already answered.
 */
bool
durable_query_answer(int64 token, const char *answer, bool is_error)
{
	int			slot;
	int			procno = -1;

	Assert(strlen(answer) <= DURABLE_QUERY_MAX_ANSWER);
	if (query_slots == NULL)
		return false;
	LWLockAcquire(query_lock, LW_EXCLUSIVE);
	slot = query_slot_of(token);
	if (slot >= 0 && query_slots[slot].state == QUERY_TAKEN)
	{
		QuerySlot  *q = &query_slots[slot];

		q->answer_len = strlen(answer);
		memcpy(q->answer, answer, q->answer_len + 1);
		q->answer_is_error = is_error;
		q->state = QUERY_ANSWERED;
		procno = q->caller_procno;
	}
	LWLockRelease(query_lock);
	if (procno < 0)
		return false;
	SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	return true;
}
