/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  Counters and histograms kept in shared memory, per database.
 *
 *	  The engine counts what happens (a run started, a task claimed, a
 *	  lease expired) into backend-local pending deltas; they reach shared
 *	  memory only when the transaction commits, so a rolled-back start is
 *	  never counted, and a subtransaction that aborts takes its own counts
 *	  with it.  The hot path pays a lookup in a short local list per event
 *	  and, at commit, one shared lock with an atomic add per series.
 *
 *	  A series is (database, metric, label values) in a fixed-size shared
 *	  hash (durable.metrics_series entries); when it is full, new series are
 *	  not created and their counts go to durable_metrics_dropped_total.
 *	  Shared memory does not survive a restart: counters start again from
 *	  zero, which Prometheus reads as a counter reset.  The gauges are
 *	  counted from the tables (stats.c) and kept here until the next count.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "metrics.h"

#define LABEL_BYTES 256			/* all label values of a series, NUL-separated */
#define LABEL_VALUE_MAX 63		/* longer values are cut (a series per value) */
#define NBOUNDS 15
#define SLOT_SUM NBOUNDS		/* histograms: microseconds observed */
#define SLOT_COUNT (NBOUNDS + 1)
#define NSLOTS (NBOUNDS + 2)

/* upper bounds of histogram buckets, in seconds (Prometheus' le) */
const double durable_metric_bounds[NBOUNDS] = {
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300
};
const int	durable_metric_nbounds = NBOUNDS;

const MetricDef durable_metric_defs[METRIC_COUNT] = {
	[METRIC_WORKFLOWS_STARTED] = {"durable_workflows_started_total", "counter",
		"Workflow runs started (by a client, a schedule, a parent, continue-as-new, a retry or a reset).",
	{"namespace", "type"}},
	[METRIC_WORKFLOWS_CLOSED] = {"durable_workflows_closed_total", "counter",
		"Workflow runs closed, by status.",
	{"namespace", "type", "status"}},
	[METRIC_TASKS_CLAIMED] = {"durable_tasks_claimed_total", "counter",
		"Tasks handed to workers by task_poll.",
	{"namespace", "queue", "kind"}},
	[METRIC_TASK_FAILURES] = {"durable_task_failures_total", "counter",
		"Task attempts that failed (task_fail, a timed-out lease, a failed workflow task).",
	{"namespace", "queue", "kind"}},
	[METRIC_TASK_RETRIES] = {"durable_task_retries_total", "counter",
		"Failed task attempts that were scheduled again.",
	{"namespace", "queue", "kind"}},
	[METRIC_LEASE_EXPIRIES] = {"durable_lease_expiries_total", "counter",
		"Leases that expired before their worker finished (start-to-close or heartbeat timeout).",
	{"namespace", "queue", "kind"}},
	[METRIC_WAKEUPS_SENT] = {"durable_wakeups_sent_total", "counter",
		"NOTIFYs sent to wake waiting workers.",
	{NULL}},
	[METRIC_SCHEDULE_TO_START] = {"durable_schedule_to_start_seconds", "histogram",
		"Time from a task being ready to a worker claiming it.",
	{"namespace", "queue", "kind"}},
	[METRIC_TIMER_LATENESS] = {"durable_timer_lateness_seconds", "histogram",
		"Time from a timer's due time to its firing.",
	{NULL}},
	[METRIC_TASKS] = {"durable_tasks", "gauge",
		"Tasks by state (ready includes tasks ready later, such as retries in backoff), counted at most every durable.metrics_gauge_interval.",
	{"namespace", "queue", "kind", "state"}},
	[METRIC_OLDEST_READY_AGE] = {"durable_oldest_ready_age_seconds", "gauge",
		"Age of the oldest task ready now and not claimed.",
	{"namespace", "queue", "kind"}},
	[METRIC_RUNS_OPEN] = {"durable_runs_open", "gauge",
		"Workflow runs not closed.",
	{"namespace"}},
	[METRIC_GAUGES_AGE] = {"durable_gauges_age_seconds", "gauge",
		"How long ago the gauges were counted.",
	{NULL}},
};

typedef struct MetricKey
{
	Oid			dboid;
	int32		metric;
	char		labels[LABEL_BYTES];
} MetricKey;

typedef struct MetricEntry
{
	MetricKey	key;
	pg_atomic_uint64 v[NSLOTS];
} MetricEntry;

typedef struct MetricsShared
{
	pg_atomic_uint64 dropped;	/* counts of series the hash had no room for */
} MetricsShared;

/* a delta of this transaction, made at subtransaction level nest */
typedef struct PendingMetric
{
	MetricKey	key;
	int			nest;
	uint64		v[NSLOTS];
} PendingMetric;

int			durable_metrics_series = 4096;
bool		durable_track_metrics = true;

static HTAB *metric_hash = NULL;
static LWLock *metric_lock = NULL;
static MetricsShared *metrics_shared = NULL;

static PendingMetric *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;
static bool callbacks_registered = false;

void
durable_metrics_shmem_request(void)
{
	RequestAddinShmemSpace(hash_estimate_size(durable_metrics_series, sizeof(MetricEntry)));
	RequestAddinShmemSpace(MAXALIGN(sizeof(MetricsShared)));
	RequestNamedLWLockTranche("durable metrics", 1);
}

/* under AddinShmemInitLock */
void
durable_metrics_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(MetricKey);
	info.entrysize = sizeof(MetricEntry);
	metric_hash = ShmemInitHash("durable metrics", durable_metrics_series,
								durable_metrics_series, &info,
								HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	metric_lock = &(GetNamedLWLockTranche("durable metrics"))->lock;
	metrics_shared = ShmemInitStruct("durable metrics state", sizeof(MetricsShared), &found);
	if (!found)
	{
		pg_atomic_init_u64(&metrics_shared->dropped, 0);
	}
}

static void
make_key(MetricKey *key, DurableMetric m, const char *const *labels, int nlabels)
{
	int			off = 0;
	int			i;

	memset(key, 0, sizeof(MetricKey));
	key->dboid = MyDatabaseId;
	key->metric = (int32) m;
	for (i = 0; i < nlabels && i < METRIC_MAX_LABELS; i++)
	{
		const char *v = labels[i] ? labels[i] : "";
		int			full = strlen(v);
		int			len = full;

		if (full <= LABEL_VALUE_MAX)
			memcpy(key->labels + off, v, len);
		else
		{
			/*
			 * a prefix (whole characters), "~" and a hash of the whole value:
			 * long values that share a prefix stay distinct series
			 */
			len = pg_mbcliplen(v, full, LABEL_VALUE_MAX - 9);
			memcpy(key->labels + off, v, len);
			snprintf(key->labels + off + len, 10, "~%08x",
					 hash_bytes((const unsigned char *) v, full));
			len += 9;
		}
		off += len + 1;
	}
}

/* the label values of a key, in order */
static int
key_labels(const MetricKey *key, const char **out)
{
	const MetricDef *def = &durable_metric_defs[key->metric];
	int			off = 0;
	int			n = 0;

	while (n < METRIC_MAX_LABELS && def->label_names[n] != NULL)
	{
		out[n] = key->labels + off;
		off += strlen(key->labels + off) + 1;
		n++;
	}
	return n;
}

/* the shared entry of a key, made if new; NULL when the hash is full */
static MetricEntry *
shared_entry(const MetricKey *key)
{
	MetricEntry *e;
	bool		found;
	int			i;

	/* a reset may remove it between the two locks: then make it again */
	for (;;)
	{
		e = hash_search(metric_hash, key, HASH_FIND, NULL);
		if (e != NULL)
			return e;
		LWLockRelease(metric_lock);
		LWLockAcquire(metric_lock, LW_EXCLUSIVE);
		e = hash_search(metric_hash, key, HASH_ENTER_NULL, &found);
		if (e != NULL && !found)
			for (i = 0; i < NSLOTS; i++)
				pg_atomic_init_u64(&e->v[i], 0);
		LWLockRelease(metric_lock);
		LWLockAcquire(metric_lock, LW_SHARED);
		if (e == NULL)
			return NULL;
	}
}

/* at commit: never fails (no allocation, no error) */
static void
flush_pending(void)
{
	int			i,
				s;

	if (npending == 0 || metric_hash == NULL)
	{
		npending = 0;
		return;
	}
	LWLockAcquire(metric_lock, LW_SHARED);
	for (i = 0; i < npending; i++)
	{
		MetricEntry *e = shared_entry(&pending[i].key);

		if (e == NULL)
		{
			pg_atomic_fetch_add_u64(&metrics_shared->dropped,
									pending[i].v[SLOT_COUNT] ? pending[i].v[SLOT_COUNT] : pending[i].v[0]);
			continue;
		}
		for (s = 0; s < NSLOTS; s++)
			if (pending[i].v[s] != 0)
				pg_atomic_fetch_add_u64(&e->v[s], pending[i].v[s]);
	}
	LWLockRelease(metric_lock);
	npending = 0;
}

static void
metrics_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			/*
			 * a prepared transaction is counted when prepared: nothing
			 * calls back when COMMIT PREPARED or ROLLBACK PREPARED ends it
			 */
			flush_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			npending = 0;
			break;
		default:
			break;
	}
}

/*
 * A subtransaction that aborts drops what it counted; one that commits
 * hands its counts to its parent.
 */
static void
metrics_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i,
				j,
				s;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		for (i = 0, j = 0; i < npending; i++)
			if (pending[i].nest < level)
				pending[j++] = pending[i];
		npending = j;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0, j = 0; i < npending; i++)
		{
			PendingMetric *p = &pending[i];
			int			k;

			if (p->nest >= level)
			{
				p->nest = level - 1;
				for (k = 0; k < j; k++)
					if (pending[k].nest == p->nest &&
						memcmp(&pending[k].key, &p->key, sizeof(MetricKey)) == 0)
						break;
				if (k < j)
				{
					for (s = 0; s < NSLOTS; s++)
						pending[k].v[s] += p->v[s];
					continue;
				}
			}
			pending[j++] = *p;
		}
		npending = j;
	}
}

void
durable_metrics_init(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(metrics_xact_callback, NULL);
	RegisterSubXactCallback(metrics_subxact_callback, NULL);
	callbacks_registered = true;
}

/* this transaction's pending delta of a series, made if new */
static PendingMetric *
pending_of(DurableMetric m, const char *l1, const char *l2, const char *l3)
{
	const char *labels[3] = {l1, l2, l3};
	MetricKey	key;
	int			nest = GetCurrentTransactionNestLevel();
	int			i;

	make_key(&key, m, labels, 3);
	for (i = npending - 1; i >= 0; i--)
		if (pending[i].nest == nest && memcmp(&pending[i].key, &key, sizeof(key)) == 0)
			return &pending[i];
	if (npending == maxpending)
	{
		int			newmax = maxpending ? maxpending * 2 : 16;

		if (pending == NULL)
			pending = MemoryContextAlloc(TopMemoryContext, sizeof(PendingMetric) * newmax);
		else
			pending = repalloc(pending, sizeof(PendingMetric) * newmax);
		maxpending = newmax;
	}
	memset(&pending[npending], 0, sizeof(PendingMetric));
	pending[npending].key = key;
	pending[npending].nest = nest;
	return &pending[npending++];
}

/*
 * durable_metric_count: add n to a counter when this transaction commits.
 */
void
durable_metric_count(DurableMetric m, const char *l1, const char *l2,
					 const char *l3, int64 n)
{
	if (metric_hash == NULL || n <= 0 || !durable_track_metrics)
		return;
	pending_of(m, l1, l2, l3)->v[0] += (uint64) n;
}

/*
 * durable_metric_observe: put one observation of seconds into a histogram
 * when this transaction commits.
 */
void
durable_metric_observe(DurableMetric m, const char *l1, const char *l2,
					   const char *l3, double seconds)
{
	PendingMetric *p;
	int			b;

	if (metric_hash == NULL || !durable_track_metrics)
		return;
	if (seconds < 0 || isnan(seconds))
		seconds = 0;
	p = pending_of(m, l1, l2, l3);
	for (b = 0; b < NBOUNDS && seconds > durable_metric_bounds[b]; b++)
		;
	if (b < NBOUNDS)
		p->v[b]++;
	p->v[SLOT_SUM] += (uint64) Min(seconds * 1e6, 1e15);
	p->v[SLOT_COUNT]++;
}

/*
 * durable_metrics_read: this database's series, copied (palloc'd) into
 * *out; returns how many.  *dropped: counts no series had room for.
 */
int
durable_metrics_read(MetricSample **out, uint64 *dropped)
{
	HASH_SEQ_STATUS seq;
	MetricEntry *e;
	int			n = 0,
				max = 64;
	MetricSample *samples;

	*dropped = 0;
	samples = palloc(sizeof(MetricSample) * max);
	if (metric_hash == NULL)
	{
		*out = samples;
		return 0;
	}
	LWLockAcquire(metric_lock, LW_SHARED);
	hash_seq_init(&seq, metric_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		MetricSample *s;
		int			b;

		if (e->key.dboid != MyDatabaseId || e->key.metric == METRIC_GAUGES_AGE)
			continue;
		if (n == max)
		{
			max *= 2;
			samples = repalloc(samples, sizeof(MetricSample) * max);
		}
		s = &samples[n++];
		memset(s, 0, sizeof(MetricSample));
		s->metric = (DurableMetric) e->key.metric;
		{
			const char *labels[METRIC_MAX_LABELS];
			int			nl = key_labels(&e->key, labels),
						i;

			for (i = 0; i < nl; i++)
				s->labels[i] = pstrdup(labels[i]);
		}
		if (strcmp(durable_metric_defs[s->metric].kind, "histogram") == 0)
		{
			for (b = 0; b < NBOUNDS; b++)
				s->buckets[b] = pg_atomic_read_u64(&e->v[b]);
			s->sum = pg_atomic_read_u64(&e->v[SLOT_SUM]) / 1e6;
			s->count = pg_atomic_read_u64(&e->v[SLOT_COUNT]);
		}
		else if (strcmp(durable_metric_defs[s->metric].kind, "gauge") == 0)
		{
			uint64		bits = pg_atomic_read_u64(&e->v[0]);

			memcpy(&s->value, &bits, sizeof(double));
		}
		else
			s->value = (double) pg_atomic_read_u64(&e->v[0]);
	}
	LWLockRelease(metric_lock);
	*dropped = pg_atomic_read_u64(&metrics_shared->dropped);
	*out = samples;
	return n;
}

static double
gauge_value(MetricEntry *e)
{
	uint64		bits = pg_atomic_read_u64(&e->v[0]);
	double		d;

	memcpy(&d, &bits, sizeof(double));
	return d;
}

/*
 * remove this database's series of the given kind ("gauge": not the
 * entry of the gauges' count times), or all of them (NULL)
 */
static void
remove_series(const char *kind)
{
	HASH_SEQ_STATUS seq;
	MetricEntry *e;

	hash_seq_init(&seq, metric_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.dboid == MyDatabaseId &&
			(kind == NULL ||
			 (strcmp(durable_metric_defs[e->key.metric].kind, kind) == 0 &&
			  e->key.metric != METRIC_GAUGES_AGE)))
			hash_search(metric_hash, &e->key, HASH_REMOVE, NULL);
}

/*
 * this database's entry of METRIC_GAUGES_AGE, made if new (NULL: the hash
 * is full): v[0] when the gauges were last counted and v[2] how long that
 * took in ms (doubles), v[1] when a count began (0: none running).  Under metric_lock, exclusive.
 */
static MetricEntry *
stamp_entry(void)
{
	MetricKey	key;
	MetricEntry *e;
	const char *none[1] = {NULL};
	bool		found;
	int			s;

	make_key(&key, METRIC_GAUGES_AGE, none, 0);
	e = hash_search(metric_hash, &key, HASH_ENTER_NULL, &found);
	if (e != NULL && !found)
		for (s = 0; s < NSLOTS; s++)
			pg_atomic_init_u64(&e->v[s], 0);
	return e;
}

static uint64
double_bits(double d)
{
	uint64		bits;

	memcpy(&bits, &d, sizeof(double));
	return bits;
}

/*
 * durable_metrics_set_gauges: this database's gauges become gauges[0..n)
 * (each a value with its labels), counted now in took_ms.
 */
void
durable_metrics_set_gauges(const MetricSample *gauges, int n, double took_ms)
{
	int			i,
				s;
	MetricKey	key;
	MetricEntry *e;
	bool		found;

	if (metric_hash == NULL)
		return;
	LWLockAcquire(metric_lock, LW_EXCLUSIVE);
	remove_series("gauge");
	for (i = 0; i < n; i++)
	{
		make_key(&key, gauges[i].metric, gauges[i].labels, METRIC_MAX_LABELS);
		e = hash_search(metric_hash, &key, HASH_ENTER_NULL, &found);
		if (e == NULL)
		{
			pg_atomic_fetch_add_u64(&metrics_shared->dropped, 1);
			continue;
		}
		if (!found)
			for (s = 0; s < NSLOTS; s++)
				pg_atomic_init_u64(&e->v[s], 0);
		/* two groups whose labels were cut to one key add up */
		pg_atomic_write_u64(&e->v[0], double_bits(gauges[i].value +
												  (found ? gauge_value(e) : 0)));
	}
	e = stamp_entry();
	if (e != NULL)
	{
		pg_atomic_write_u64(&e->v[0], double_bits((double) GetCurrentTimestamp()));
		pg_atomic_write_u64(&e->v[2], double_bits(took_ms));
	}
	LWLockRelease(metric_lock);
}

/*
 * when this database's gauges were counted (0 if never), and how long
 * that count took (*took_ms)
 */
TimestampTz
durable_metrics_gauges_at(double *took_ms)
{
	MetricKey	key;
	MetricEntry *e;
	const char *none[1] = {NULL};
	double		at = 0;

	*took_ms = 0;
	if (metric_hash == NULL)
		return 0;
	make_key(&key, METRIC_GAUGES_AGE, none, 0);
	LWLockAcquire(metric_lock, LW_SHARED);
	e = hash_search(metric_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		uint64		bits = pg_atomic_read_u64(&e->v[2]);

		at = gauge_value(e);
		memcpy(took_ms, &bits, sizeof(double));
	}
	LWLockRelease(metric_lock);
	return (TimestampTz) at;
}

/* the begin time of this backend's count, to end only its own */
static uint64 my_refresh_began = 0;

/*
 * durable_metrics_begin_refresh: may this backend count the gauges of its
 * database now?  One count per database at a time; one that has not ended
 * after a minute (its backend died) no longer holds others back.  Not an
 * LWLock held across the count: the count runs statements, which must
 * stay cancellable.
 */
bool
durable_metrics_begin_refresh(void)
{
	uint64		now = (uint64) GetCurrentTimestamp();
	MetricEntry *e;
	uint64		began;
	bool		ok = true;

	if (metric_hash == NULL)
		return false;
	LWLockAcquire(metric_lock, LW_EXCLUSIVE);
	e = stamp_entry();
	if (e != NULL)
	{
		began = pg_atomic_read_u64(&e->v[1]);
		ok = began == 0 || now - began >= 60 * USECS_PER_SEC;
		if (ok)
			pg_atomic_write_u64(&e->v[1], now);
	}
	LWLockRelease(metric_lock);
	if (ok)
		my_refresh_began = now;
	return ok;
}

void
durable_metrics_end_refresh(void)
{
	MetricKey	key;
	MetricEntry *e;
	const char *none[1] = {NULL};

	if (metric_hash == NULL)
		return;
	make_key(&key, METRIC_GAUGES_AGE, none, 0);
	LWLockAcquire(metric_lock, LW_EXCLUSIVE);
	e = hash_search(metric_hash, &key, HASH_FIND, NULL);
	if (e != NULL && pg_atomic_read_u64(&e->v[1]) == my_refresh_began)
		pg_atomic_write_u64(&e->v[1], 0);
	LWLockRelease(metric_lock);
}

bool
durable_metrics_active(void)
{
	return metric_hash != NULL;
}

/* durable.metrics_reset(): this database's series start from zero */
void
durable_metrics_reset_all(void)
{
	if (metric_hash == NULL)
		return;
	LWLockAcquire(metric_lock, LW_EXCLUSIVE);
	remove_series(NULL);
	LWLockRelease(metric_lock);
}
