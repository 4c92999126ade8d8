/*-------------------------------------------------------------------------
 *
 * bgworker.c
 *	  The background worker.  A launcher (started by the postmaster when
 *	  durable is preloaded) starts one worker per database: those named in
 *	  durable.databases, or every connectable database.  A worker whose
 *	  database lacks the extension exits, and the launcher tries it again
 *	  later, so CREATE EXTENSION is picked up without a restart.
 *
 *	  Each worker loops: one transaction runs durable_tick_once (expired leases,
 *	  due timers and deadlines, run timeouts, delayed tasks, retention),
 *	  then it sleeps on its latch until the next due time, at most
 *	  durable.naptime.  A commit that creates an earlier due time sets the
 *	  latch (durable_bgw_wake).  An error in a round is logged, the
 *	  transaction rolled back, and the next round waits with backoff.
 *	  All state is in tables, so a crash or restart loses nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "durable.h"
#include "clock.h"
#include "shmem.h"
#include "spi.h"
#include "tick.h"

PGDLLEXPORT void durable_launcher_main(Datum arg);
PGDLLEXPORT void durable_worker_main(Datum arg);

#define MAX_DATABASES 64
#define LAUNCHER_RESCAN_MS 10000

void
durable_bgw_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "durable");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "durable_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "durable launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "durable launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * list_databases: the databases to serve, read from pg_database.
 */
static List *
list_databases(void)
{
	List	   *wanted = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;
	char	   *guc = pstrdup(durable_bgw_databases ? durable_bgw_databases : "");

	/* the list outlives the transaction: it is made in the caller's context */
	MemoryContext cxt = CurrentMemoryContext;

	if (guc[0] != '\0' && !SplitIdentifierString(guc, ',', &wanted))
		ereport(WARNING,
				(errmsg("durable.databases is not a valid list of database names")));

	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		ListCell   *lc;
		bool		ok = wanted == NIL;

		if (!db->datallowconn || db->datistemplate)
			continue;
		foreach(lc, wanted)
			if (strcmp(lfirst(lc), NameStr(db->datname)) == 0)
				ok = true;
		if (ok)
			result = lappend_oid(result, db->oid);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return result;
}

void
durable_launcher_main(Datum arg)
{
	Oid			dbs[MAX_DATABASES];
	BackgroundWorkerHandle *handles[MAX_DATABASES];
	TimestampTz started[MAX_DATABASES];
	bool		start_failed[MAX_DATABASES];
	int			ndbs = 0;
	bool		too_many_logged = false;
	MemoryContext pass_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("durable launcher");
	durable_bgw_register_launcher_self();

	memset(handles, 0, sizeof(handles));
	memset(start_failed, 0, sizeof(start_failed));

	/* everything a pass allocates goes with it (the database list) */
	pass_cxt = AllocSetContextCreate(TopMemoryContext, "durable launcher pass",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		List	   *current;
		ListCell   *lc;
		Oid			wanted;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		wanted = durable_launcher_take_wanted_db();
		now = GetCurrentTimestamp();
		MemoryContextReset(pass_cxt);
		MemoryContextSwitchTo(pass_cxt);

		current = durable_bgw_enabled ? list_databases() : NIL;
		foreach(lc, current)
		{
			Oid			dboid = lfirst_oid(lc);
			int			i;
			pid_t		pid;

			for (i = 0; i < ndbs; i++)
				if (dbs[i] == dboid)
					break;
			if (i == ndbs)
			{
				if (ndbs == MAX_DATABASES)
				{
					if (!too_many_logged)
						ereport(WARNING,
								(errmsg("durable launcher: more than %d databases to serve; database %u gets no background worker",
										MAX_DATABASES, dboid),
								 errhint("List the databases that use durable in durable.databases, or run durable.tick() from cron in the others.")));
					too_many_logged = true;
					continue;
				}
				dbs[ndbs] = dboid;
				handles[ndbs++] = NULL;
			}
			if (handles[i] != NULL &&
				GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
				continue;

			/*
			 * A worker exits at once where the extension is missing: try
			 * that database again only after a rescan interval, unless a
			 * commit there just asked for a worker.
			 */
			if (handles[i] != NULL && dboid != wanted &&
				now - started[i] < (int64) LAUNCHER_RESCAN_MS * 1000)
				continue;
			started[i] = now;
			{
				BackgroundWorker worker;
				bool		registered;

				memset(&worker, 0, sizeof(worker));
				worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
					BGWORKER_BACKEND_DATABASE_CONNECTION;
				worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
				worker.bgw_restart_time = BGW_NEVER_RESTART;
				snprintf(worker.bgw_library_name, BGW_MAXLEN, "durable");
				snprintf(worker.bgw_function_name, BGW_MAXLEN, "durable_worker_main");
				snprintf(worker.bgw_name, BGW_MAXLEN, "durable worker %u", dboid);
				snprintf(worker.bgw_type, BGW_MAXLEN, "durable worker");
				worker.bgw_main_arg = ObjectIdGetDatum(dboid);
				worker.bgw_notify_pid = MyProcPid;
				/*
				 * The handle outlives the pass (its memory is reset): keep
				 * it in the launcher's top context, one per database.
				 */
				if (handles[i] != NULL)
					pfree(handles[i]);
				handles[i] = NULL;
				MemoryContextSwitchTo(TopMemoryContext);
				registered = RegisterDynamicBackgroundWorker(&worker, &handles[i]);
				MemoryContextSwitchTo(pass_cxt);
				if (!registered)
				{
					/* said once per database until a start succeeds */
					if (!start_failed[i])
						ereport(WARNING,
								(errmsg("durable launcher: could not start the background worker for database %u", dboid),
								 errdetail("No background worker slot is free."),
								 errhint("durable needs one slot for its launcher and one per database it serves: raise max_worker_processes (it takes a restart), or serve fewer databases with durable.databases.")));
					start_failed[i] = true;
					handles[i] = NULL;
				}
				else
				{
					if (start_failed[i])
						ereport(LOG,
								(errmsg("durable launcher: started the background worker for database %u", dboid)));
					start_failed[i] = false;
				}
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_RESCAN_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

static bool
extension_installed(void)
{
	bool		found;

	StartTransactionCommand();
	found = OidIsValid(get_extension_oid("durable", true));
	CommitTransactionCommand();
	return found;
}

/*
 * Rounds start at least MIN_ROUND_GAP apart, unless a part hit its limit
 * (round_now).  Commits wake the worker to send the NOTIFYs they could
 * not (shmem.c), up to hundreds of times a second under load; a round
 * each time ran the statements of every part and of the next due time
 * that many times, and while an idle transaction holds back vacuum some
 * of them read every index entry of the finished tasks (lease expiry and
 * its next due time through tasks_token): the worker took 30-50% of a
 * core in bench/vacuum_lag.sh.  Those wake-ups now only send the
 * NOTIFYs; a due time comes at most this much late.
 */
#define MIN_ROUND_GAP (100 * 1000)	/* 100 ms */
static TimestampTz last_round_at = 0;
static bool round_now = false;

void
durable_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext round_cxt;
	volatile TimestampTz since = 0;
	volatile int failures = 0;
	volatile bool said_waiting = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("durable worker");
	/* as the engine functions' SET clause does for backends (see the SQL) */
	SetConfigOption("enable_bitmapscan", "off", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * The worker runs as the bootstrap superuser: its statements must never
	 * resolve an operator or function through a schema a user can create
	 * objects in: pin the path RestrictSearchPath() uses in PG 17, for the
	 * life of the process.
	 */
	SetConfigOption("search_path", GUC_SAFE_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
	durable_tick_backoff = true;

	if (!extension_installed())
		proc_exit(0);
	durable_bgw_register_self();
	elog(LOG, "durable worker started for database %u", dboid);

	round_cxt = AllocSetContextCreate(TopMemoryContext, "durable worker round",
									  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		volatile long sleep_ms = durable_bgw_naptime_ms;
		volatile bool more = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!durable_bgw_enabled)
			proc_exit(0);

		MemoryContextSwitchTo(round_cxt);
		PG_TRY();
		{
			TimestampTz now;
			TimestampTz next;
			char	   *installed;

			/*
			 * While a round runs, any commit that creates a due time must
			 * set the latch: this round's snapshot may not see it.
			 */
			durable_bgw_set_next_wake(DT_NOEND);
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			if (!OidIsValid(get_extension_oid("durable", true)))
			{
				CommitTransactionCommand();
				proc_exit(0);
			}
			SPI_connect();
			PushActiveSnapshot(GetTransactionSnapshot());
			now = durable_now();
			if (!durable_schema_is_current(&installed))
			{
				/*
				 * A package upgrade replaced the library and ALTER
				 * EXTENSION durable UPDATE has not run yet: wait for it
				 * (checked each round), saying so once.
				 */
				if (!said_waiting)
					ereport(LOG,
							(errmsg("durable worker waits: the library is version %s, the extension in database %u is at version %s",
									DURABLE_VERSION, dboid, installed ? installed : "(none)"),
							 errhint("Run ALTER EXTENSION durable UPDATE in that database.")));
				said_waiting = true;
			}
			else
			{
				TimestampTz real_now = GetCurrentTimestamp();

				if (said_waiting)
					ereport(LOG,
							(errmsg("durable worker: the extension in database %u is at version %s, work resumes",
									dboid, DURABLE_VERSION)));
				said_waiting = false;

				pgstat_report_activity(STATE_RUNNING, "durable: tick");
				durable_send_requested_notifies();
				/* (a clock that stepped back does not hold rounds off) */
				if (!round_now && real_now >= last_round_at &&
					real_now - last_round_at < MIN_ROUND_GAP)
				{
					/*
					 * Woken soon after a round (a NOTIFY to send, or a
					 * commit's due time): the notifies went out above, the
					 * round waits for the rest of the gap.
					 */
					sleep_ms = (long) ((MIN_ROUND_GAP - (real_now - last_round_at)) / 1000) + 1;
				}
				else
				{
					bool		m;

					last_round_at = real_now;
					if (since == 0)
						since = now - USECS_PER_DAY;
					durable_tick_once(since, now, durable_bgw_batch_size, &m);
					more = m;
					since = now;
					next = durable_tick_next_due(now);
					if (next != 0)
					{
						long		ms = (long) ((next - now) / 1000) + 1;

						sleep_ms = Max(0, Min(sleep_ms, ms));
					}
				}
			}
			durable_bgw_set_next_wake(now + (int64) sleep_ms * 1000 - (int64) durable_clock_offset_s * USECS_PER_SEC);
			SPI_finish();
			PopActiveSnapshot();
			CommitTransactionCommand();
			/* a background worker reports its table statistics itself */
			pgstat_report_stat(false);
			pgstat_report_activity(STATE_IDLE, NULL);
			failures = 0;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(round_cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
			failures++;
			/* back off: 1 s, 2 s, 4 s ... up to a minute */
			sleep_ms = Min(60000L, 1000L << Min(failures - 1, 6));
			more = false;
		}
		PG_END_TRY();
		MemoryContextReset(round_cxt);

		round_now = more;
		if (more)
			continue;
		if (sleep_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
