/*-------------------------------------------------------------------------
 *
 * durable.c
 *	  Module entry point: GUCs, shared-memory hooks, the background worker
 *	  launcher's registration, and the engine's clock.
 *
 *	  Everything here runs in _PG_init.  Without shared_preload_libraries
 *	  the GUCs still exist and every SQL function works; only the
 *	  background worker and the shared-memory NOTIFY coalescing are absent
 *	  (durable.tick() does the worker's job when called).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "durable.h"
#include "claim_floor.h"
#include "fairness.h"
#include "metrics.h"
#include "shmem.h"

PG_MODULE_MAGIC;

char	   *durable_namespace = NULL;
int			durable_max_payload_kb = 2048;
int			durable_clock_offset_s = 0;
bool		durable_bgw_enabled = true;
int			durable_bgw_naptime_ms = 1000;
int			durable_bgw_batch_size = 500;
char	   *durable_bgw_databases = NULL;

void		_PG_init(void);

/*
 * check_namespace_guc: a namespace name is a non-empty name of at most
 * DURABLE_MAX_NAME bytes; it is checked against durable.namespaces when
 * used, not here (the table may not exist in every database).
 */
static bool
check_namespace_guc(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errmsg("durable.namespace must not be empty");
		return false;
	}
	if (strlen(*newval) > DURABLE_MAX_NAME)
	{
		GUC_check_errmsg("durable.namespace is longer than %d bytes", DURABLE_MAX_NAME);
		return false;
	}
	for (const char *p = *newval; *p; p++)
		if ((unsigned char) *p < 0x20 || (unsigned char) *p == 0x7f)
		{
			GUC_check_errmsg("durable.namespace contains a control character");
			return false;
		}
	return true;
}

/*
 * check_wake_channel_guc: a NOTIFY channel name (shorter than NAMEDATALEN,
 * printable ASCII), or empty (no targeted wake-ups).
 */
static bool
check_wake_channel_guc(char **newval, void **extra, GucSource source)
{
	const char *c;

	if (*newval == NULL)
		return true;
	if (strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errcode(ERRCODE_DURABLE_INVALID_ARGUMENT);
		GUC_check_errmsg("durable.wake_channel must be shorter than %d bytes", NAMEDATALEN);
		return false;
	}
	for (c = *newval; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
		{
			GUC_check_errcode(ERRCODE_DURABLE_INVALID_ARGUMENT);
			GUC_check_errmsg("durable.wake_channel must be printable ASCII without spaces");
			return false;
		}
	return true;
}

static const struct config_enum_entry claim_floors_options[] = {
	{"auto", CLAIM_FLOORS_AUTO, false},
	{"on", CLAIM_FLOORS_ON, false},
	{"off", CLAIM_FLOORS_OFF, false},
	{NULL, 0, false}
};

void
_PG_init(void)
{
	DefineCustomStringVariable("durable.namespace",
							   "Namespace that durable functions act in.",
							   NULL,
							   &durable_namespace,
							   "default",
							   PGC_USERSET, 0,
							   check_namespace_guc, NULL, NULL);

	DefineCustomStringVariable("durable.wake_channel",
							   "Channel this session's worker LISTENs on for targeted wake-ups.",
							   "Set on a polling connection: a poll that comes back short lists it, and a commit that gives the queue work NOTIFYs just enough listed channels instead of waking every worker of the queue.",
							   &durable_wake_channel,
							   "",
							   PGC_USERSET, 0,
							   check_wake_channel_guc, NULL, NULL);

	DefineCustomIntVariable("durable.max_payload_size",
							"Largest input, result, error or signal payload accepted.",
							"Like Temporal's blob size limit; 2 MB by default.",
							&durable_max_payload_kb,
							2048, 1, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.clock_offset",
							"Shifts durable's notion of now, for tests.",
							"Only superusers may set it, so no client can fire timers early.",
							&durable_clock_offset_s,
							0, INT_MIN, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("durable.enable_background_worker",
							 "Starts durable's background worker (needs preloading).",
							 NULL,
							 &durable_bgw_enabled,
							 true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("durable.naptime",
							"Longest time the background worker sleeps between rounds.",
							"It wakes earlier for the next due timer, lease or timeout; rounds start at least 100 ms apart.",
							&durable_bgw_naptime_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("durable.batch_size",
							"Items the background worker handles per transaction.",
							NULL,
							&durable_bgw_batch_size,
							500, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("durable.databases",
							   "Databases the background worker serves (comma-separated).",
							   "Empty: every database where the extension is installed.",
							   &durable_bgw_databases,
							   "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	/* sizes shared memory: only when preloaded (it cannot exist later) */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("durable.fairness_keys",
								"Fairness keys with a backlog that the fair order of queues remembers at once.",
								"Each takes about 64 bytes of shared memory; keys beyond it get ready order.",
								&durable_fairness_keys,
								65536, 1024, 16 * 1024 * 1024,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("durable.max_queries",
								"Live queries (wf_query) that can wait for an answer at once.",
								"Each takes about 74 kB of shared memory.",
								&durable_max_queries,
								16, 1, 1024,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("durable.metrics_series",
								"Series (a metric with one set of label values) durable.metrics() can keep.",
								"Each takes about 400 bytes of shared memory; counts of series beyond it are dropped (durable_metrics_dropped_total).",
								&durable_metrics_series,
								4096, 128, 1024 * 1024,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	DefineCustomBoolVariable("durable.track_metrics",
							 "Counts durable's events (starts, closes, claims, failures, wake-ups) for durable.metrics().",
							 "Like track_counts: off saves the counting on the hot path (bench/run measures it).",
							 &durable_track_metrics,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("durable.claim_floors",
							 "Whether claims start at their queue's floor, past what was claimed before.",
							 "auto: when a background worker serves the database (it places tasks that come due); on; off.",
							 &durable_claim_floors,
							 CLAIM_FLOORS_AUTO, claim_floors_options,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("durable.metrics_gauge_interval",
							"How long durable.metrics() reuses its count of tasks and open runs.",
							"The count reads the tasks table and the open runs, and waits at least 20 times as long as the last count took; 0 counts on every call.",
							&durable_metrics_gauge_interval,
							5000, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("durable");

	durable_notify_init();
	durable_metrics_init();
	durable_claim_floor_init();

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	durable_shmem_request();
	durable_bgw_register_launcher();
}

