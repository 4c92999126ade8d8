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
 *	  The same shared memory lists the running background workers, so a
 *	  commit that creates a due time earlier than a worker's planned
 *	  wake-up (a short timer, a start delay) sets that worker's latch.
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
#include "utils/memutils.h"

#include "durable.h"

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

/* a backend in wf_result(.., wait): its latch is set when the run closes */
typedef struct ResultWaiter
{
	Oid			dboid;			/* InvalidOid: free */
	int			procno;
	int64		run_id;			/* the open run it waits for */
} ResultWaiter;

#define RESULT_WAITERS 256

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
} DurableShared;

static DurableShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Queues given work by the current transaction, and whether the
 * pre-commit check sent their NOTIFY.
 */
typedef struct PendingQueue
{
	char	   *queue;
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
}

static void
durable_shmem_startup_hook(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("durable", sizeof(DurableShared), &found);
	if (!found)
	{
		int			i;

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
	SpinLockRelease(&shared->mutex);
	my_waiter = -1;
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
					Async_Notify(psprintf("durable_%s", p->queue), NULL);
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
	ListCell   *lc;
	MemoryContext old;

	PendingQueue *p;

	foreach(lc, pending_queues)
		if (strcmp(((PendingQueue *) lfirst(lc))->queue, queue) == 0)
			return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(PendingQueue));
	p->queue = pstrdup(queue);
	p->notified = false;
	pending_queues = lappend(pending_queues, p);
	MemoryContextSwitchTo(old);
}

/*
 * durable_poll_should_expire: polls look for expired leases at most every
 * POLL_EXPIRY_INTERVAL per server (the background worker does the bulk),
 * so a busy queue does not pay a scan per poll.  The poll that wins the
 * compare-and-swap does the scan.
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
	return pg_atomic_compare_exchange_u64(&shared->last_expiry_scan, &last, (uint64) now);
}

/*
 * durable_note_idle_poll: a poll came back short; its worker may wait.
 */
void
durable_note_idle_poll(const char *ns, const char *queue)
{
	if (shared != NULL)
		pg_atomic_write_u32(&shared->idle[queue_slot(queue)], 1);
}
