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
 *	  comes back even without the background worker.  It may also first
 *	  complete the caller's previous tasks, so a busy worker pays one
 *	  commit per batch (finish + claim).
 *
 *	  A paused queue hands out nothing; a queue with a concurrency limit or
 *	  a rate limit hands out only what fits (queues.c says which and how
 *	  much, from a cache of the queues' settings).  The claim itself is
 *	  durable_engine_claim.
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

#include "queues.h"
#include "task.h"
#include "access.h"
#include "clock.h"
#include "engine.h"
#include "fairness.h"
#include "json.h"
#include "metrics.h"
#include "shmem.h"
#include "validate.h"

/* leases expired per poll; the background worker takes larger batches */
#define POLL_EXPIRE_LIMIT 10
#define POLL_COLUMNS 14
/*
 * A poll of a queue with per-key limits for want tasks looks at the keys
 * of the first KEY_CANDIDATES(want) ready tasks of the queue (a few per
 * task it wants, at most 200), and locks at most KEY_LOCKS_PER_POLL keys
 * (each lock is an entry of the shared lock table until commit)
 */
#define KEY_CANDIDATES(want) Min(200, 8 + 4 * (want))
#define KEY_LOCKS_PER_POLL 64

/* at most this many ready activities of one key cancelled by one poll (cancel_newest) */
#define CANCELS_PER_KEY 100

/*
 * make_room: a key at its concurrency limit (by the exact count, under
 * its lock) on a queue whose per-key limit cancels.  cancel_newest
 * cancels the key's ready activities, which found it full, and leaves the
 * key out of this poll; cancel_oldest cancels as many of its oldest
 * leased activities as make room for one more task (never what this poll
 * leased).  Workflow tasks are never cancelled: they wait.  True when the
 * key has room now.
 */
static bool
make_room(const char *ns, const char *queue, QueueLimits *q, KeyUsage *e, TimestampTz now)
{
	if (!durable_queue_key_may_cancel(q, e) || e->leased < e->limit)
		return false;			/* no token, or a limit that holds it back */
	if (q->key_on_limit == KEY_ON_LIMIT_CANCEL_NEWEST)
	{
		durable_engine_cancel_key_tasks(ns, queue, e->key, false, CANCELS_PER_KEY, now);
		e->busy = true;
		return false;
	}
	e->leased -= durable_engine_cancel_key_tasks(ns, queue, e->key, true,
												 e->leased - e->limit + 1, now);
	return !durable_queue_key_excluded(q, e);
}

/*
 * put_queries: take up to max live queries posted for ns/queue (wf_query)
 * and add a row of kind 'query' for each: the run to replay, the query's
 * name and arguments (input), and its caller's deadline (lease_until).
 * Returns how many.
 */
static int
put_queries(ReturnSetInfo *rsinfo, const char *ns, const char *queue, int max)
{
	DurableQueryTask *queries = NULL;
	int			n = durable_queries_take(ns, queue, max, &queries);
	int			i;

	for (i = 0; i < n; i++)
	{
		DurableQueryTask *q = &queries[i];
		Datum		out[POLL_COLUMNS];
		bool		nulls[POLL_COLUMNS];
		TupleDesc	desc;
		HeapTuple	tup;

		durable_engine_read_run(q->run_id);
		if (SPI_processed != 1)
		{
			/* purged since the query was posted */
			(void) durable_query_answer(q->token,
										"{\"type\": \"NotFound\", \"message\": \"the run no longer exists\"}",
										true);
			continue;
		}
		desc = SPI_tuptable->tupdesc;
		tup = SPI_tuptable->vals[0];
		memset(nulls, false, sizeof(nulls));
		out[0] = Int64GetDatum(q->token);
		out[1] = CStringGetTextDatum("query");
		out[2] = SPI_getbinval(tup, desc, 1, &nulls[2]);	/* workflow_id */
		out[3] = Int64GetDatum(q->run_id);
		out[4] = SPI_getbinval(tup, desc, 2, &nulls[4]);	/* workflow_type */
		out[5] = CStringGetTextDatum(q->name);
		nulls[6] = true;		/* seq */
		out[7] = JsonbPGetDatum(durable_jb_cstring(q->args));
		out[8] = SPI_getbinval(tup, desc, 5, &nulls[8]);	/* attempt */
		out[9] = SPI_getbinval(tup, desc, 6, &nulls[9]);	/* journal */
		nulls[10] = true;		/* heartbeat */
		out[11] = SPI_getbinval(tup, desc, 7, &nulls[11]);	/* cancel_requested */
		out[12] = TimestampTzGetDatum(q->deadline);
		out[13] = SPI_getbinval(tup, desc, 8, &nulls[13]);	/* updates */
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	return n;
}

/*
 * put_claimed: the rows of a claim (SPI_tuptable) into the poll's result;
 * the first POLL_COLUMNS columns are the result row, then the pass, key,
 * priority and new_run: the fair order of the task's lane moves on
 * (fairness.c); pos only orders.
 */
static void
put_claimed(ReturnSetInfo *rsinfo, const char *ns, const char *queue, TimestampTz now)
{
	uint64		i;
	/* the highest pass per lane, told once per run of rows of one lane */
	int			lane_priority = 0;
	bool		lane_new_run = false;
	double		lane_pass = -1;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		out[POLL_COLUMNS];
		bool		nulls[POLL_COLUMNS];
		int			c;
		bool		isnull;
		double		task_pass;
		int			priority;
		bool		new_run;

		for (c = 0; c < POLL_COLUMNS; c++)
			out[c] = SPI_getbinval(tup, desc, c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
		{
			/* out[1] is the kind; the column after pos when it was ready */
			const char *kind = TextDatumGetCString(out[1]);
			TimestampTz ready_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, POLL_COLUMNS + 6, &isnull));

			durable_metric_count(METRIC_TASKS_CLAIMED, ns, queue, kind, 1);
			durable_metric_observe(METRIC_SCHEDULE_TO_START, ns, queue, kind,
								   (double) (now - ready_at) / USECS_PER_SEC);
		}
		task_pass = DatumGetFloat8(SPI_getbinval(tup, desc, POLL_COLUMNS + 1, &isnull));
		priority = DatumGetInt32(SPI_getbinval(tup, desc, POLL_COLUMNS + 3, &isnull));
		new_run = DatumGetBool(SPI_getbinval(tup, desc, POLL_COLUMNS + 4, &isnull));
		if (lane_pass >= 0 && (priority != lane_priority || new_run != lane_new_run))
		{
			durable_fairness_claimed(ns, queue, lane_priority, lane_new_run, lane_pass);
			lane_pass = -1;
		}
		lane_priority = priority;
		lane_new_run = new_run;
		if (!isinf(task_pass))	/* not placed yet: moves nothing */
			lane_pass = Max(lane_pass, task_pass);
	}
	if (lane_pass >= 0)
		durable_fairness_claimed(ns, queue, lane_priority, lane_new_run, lane_pass);
}

PG_FUNCTION_INFO_V1(durable_task_poll);
Datum
durable_task_poll(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *ns = durable_current_namespace();
	const char *queue;
	const char *worker;
	int			max_tasks;
	Interval   *lease;
	TimestampTz now = durable_now();
	DurableCall call;
	int			pass;
	int			claimed = 0;
	int			settings;
	bool		limited;
	QueueLimits limits;
	HTAB	   *usage = NULL;	/* per-key limits: leased per key */
	int			nlocked = 0;	/* per-key limits: keys locked by this poll */

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
	/* polling again: no longer a worker waiting for a targeted wake-up */
	durable_poller_busy();
	durable_enter(&call);

	if (!PG_ARGISNULL(4))
		durable_complete_many(PG_GETARG_ARRAYTYPE_P(4),
					  PG_ARGISNULL(5) ? NULL : PG_GETARG_ARRAYTYPE_P(5),
					  call.saved_userid, now);

	if (durable_poll_should_expire())
		durable_engine_expire_leases(now, POLL_EXPIRE_LIMIT);

	/* live queries of the queue first: a caller is waiting on each */
	max_tasks -= put_queries(rsinfo, ns, queue, max_tasks);

	/*
	 * A poll that comes back short raises the queue's idle flag (its worker
	 * is about to wait for NOTIFY) and then claims once more with a fresh
	 * snapshot.  A producer that committed before the flag went up is seen
	 * by that second claim; one that commits after sees the flag, at
	 * pre-commit or at commit (shmem.c), and sends the wake-up.  So no
	 * wake-up is lost between a poll's snapshot and its worker's wait.
	 */
	settings = durable_queue_settings(ns, queue);
	limited = (settings & QUEUE_LIMITED) &&
		durable_queue_lock_limits(ns, queue, now, &limits,
								  (settings & (QUEUE_CONCURRENCY | QUEUE_RATE)) != 0);
	for (pass = 0; pass < 2 && claimed < max_tasks; pass++)
	{
		int			want = max_tasks - claimed;

		if (pass == 1)
			durable_note_idle_poll(ns, queue, want);
		if (settings & QUEUE_PAUSED)
			continue;			/* queue_unpause wakes its idle workers */
		if (limited)
		{
			want = Min(want, durable_queue_room(ns, queue, &limits));
			if (want == 0)
				continue;		/* full: the idle flag gets it woken later */
		}
		if (limited && limits.key_limits)
		{
			/*
			 * per-key limits: one task at a time, from the keys of the
			 * first ready tasks in claim order.  A limited
			 * key is locked and counted before its first claim; a key at
			 * its limit (by the counts read at the poll's start, then by
			 * the exact count under its lock), or that another poll holds,
			 * is left out.
			 */
			Datum	   *keys;
			int			nkeys,
						k;

			/* the second claim counts afresh what it did not lock */
			usage = durable_queue_key_usage(ns, queue, &limits, usage);
			nkeys = durable_engine_next_keys(ns, queue, now, KEY_CANDIDATES(want), &keys);
			for (k = 0; k < nkeys && want > 0; k++)
			{
				char	   *key = TextDatumGetCString(keys[k]);
				KeyUsage   *e = durable_queue_key_entry(usage, &limits, key);

				if (durable_queue_key_excluded(&limits, e) &&
					!durable_queue_key_may_cancel(&limits, e))
					continue;
				/* a key without a limit needs no lock */
				if (durable_queue_key_needs_lock(&limits, e))
				{
					if (nlocked >= KEY_LOCKS_PER_POLL ||
						!durable_queue_lock_key(ns, queue, &limits, e, now))
						continue;
					nlocked++;
				}
				/* full by the exact count, or no token */
				if (durable_queue_key_excluded(&limits, e) &&
					!make_room(ns, queue, &limits, e, now))
					continue;
				if (durable_engine_claim(ns, queue, worker, 1, lease, now, key) != 1)
				{
					e->busy = true; /* its next task is locked or its run paused */
					continue;
				}
				durable_queue_key_took(&limits, e);
				put_claimed(rsinfo, ns, queue, now);
				want--;
				claimed++;
			}
		}
		else
		{
			durable_engine_claim(ns, queue, worker, want, lease, now, NULL);
			put_claimed(rsinfo, ns, queue, now);
			claimed += (int) SPI_processed;
		}
		limits.taken = claimed;
	}
	if (limited && limits.rate > 0)
		durable_queue_spend_tokens(ns, queue, &limits, claimed < max_tasks);
	if (limited && limits.key_rate > 0)
		durable_queue_store_key_buckets(ns, queue, &limits, usage, now, claimed < max_tasks);
	/* the second claim may have taken some: what room the worker has left */
	durable_poller_set_room(max_tasks - claimed);

	durable_leave(&call);
	return (Datum) 0;
}
