/*-------------------------------------------------------------------------
 *
 * spi.c
 *	  The plan cache: every statement the engine runs is prepared once per
 *	  backend (SPI_prepare + SPI_keepplan) and executed many times, so hot
 *	  paths never parse or plan SQL.  Callers keep the plan in a static
 *	  SPIPlanPtr next to the SQL text, which keeps each statement beside the
 *	  code that uses it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi_priv.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "utils/snapmgr.h"

#include "durable.h"
#include "spi.h"

/* set once this backend has seen its database's extension at our version */
static bool schema_current = false;

/*
 * Set when this transaction ran a statement of the engine (the only writer
 * of durable's tables, so the only code that locks their rows); cleared at
 * the end of each transaction by claim_floor.c, which needs to know.
 */
bool		durable_xact_ran_statements = false;

/*
 * durable_schema_is_current: is the extension in this database at the
 * version this library implements?  After a package upgrade the new
 * library runs against the old release's tables until ALTER EXTENSION
 * durable UPDATE; every plan is written for this release's tables, so
 * until then the library must not run any (a half-matching schema could
 * fail in the middle of a transition, or worse, succeed wrongly).  SPI is
 * connected.  A true answer is kept: the version only moves forward, to
 * ours, and a backend's plans are prepared once.  On false, *installed
 * (if given) is the installed version, or NULL if there is none.
 */
bool
durable_schema_is_current(char **installed)
{
	SPITupleTable *saved_tuptable = SPI_tuptable;
	uint64		saved_processed = SPI_processed;
	char	   *version = NULL;

	if (schema_current)
		return true;
	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension"
					" WHERE extname = 'durable'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "durable: could not read the extension's version");
	if (SPI_processed == 1)
		version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_tuptable = saved_tuptable;
	SPI_processed = saved_processed;
	schema_current = version != NULL && strcmp(version, DURABLE_VERSION) == 0;
	if (installed)
		*installed = version;
	return schema_current;
}

/*
 * durable_plan: return the plan kept in *slot, preparing it on first use
 * (plan_with: with the plan cache's cursor options).  The functions that call this run with search_path pinned to
 * pg_catalog, pg_temp (their SET clause), and every table name in the
 * SQL is schema-qualified.
 */
static SPIPlanPtr
plan_with(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes,
		  int cursor_options)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan;
		char	   *installed;

		if (!durable_schema_is_current(&installed))
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_VERSION_MISMATCH),
					 errmsg("durable's library is version %s but the extension in this database is at version %s",
							DURABLE_VERSION, installed ? installed : "(none)"),
					 errdetail("The library was replaced by another release; the database's tables are still those of version %s.",
							   installed ? installed : "(none)"),
					 errhint("Run ALTER EXTENSION durable UPDATE in this database.")));
		plan = SPI_prepare_cursor(sql, nargs, (Oid *) argtypes, cursor_options);

		if (plan == NULL)
			elog(ERROR, "durable: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "durable: SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

SPIPlanPtr
durable_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes)
{
	return plan_with(slot, sql, nargs, argtypes, 0);
}

/*
 * durable_plan_generic: durable_plan for a statement the plan cache would
 * otherwise plan afresh at every call.  The plan cache compares the cost
 * of the generic plan with that of the custom plans it made for the first
 * five calls, and keeps making custom plans while the generic one looks
 * dearer.  It always does for a parameter the planner cannot see through:
 * LIMIT $n (the planner assumes a tenth of the rows) or unnest($n) (a
 * hundred elements), against custom plans that know a poll wants 8 tasks
 * or a batch holds 2 tokens.  It can also start doing so in the middle
 * of a steady load: after an autoanalyze the one-task claim and the close
 * of a completed run were planned at every call (the statistics moved the
 * costs, not the plan).  Planning these statements took 0.3-1.2 ms a call
 * (bench/README.md); the generic plan of each is the same index walk the
 * custom plans make.  Its one risk is shared with every generic plan:
 * planned while a table's statistics say it is empty, it seq-scans until
 * the next ANALYZE of the table replans it.  durable_exec runs such a
 * plan with seq scans, hash and merge joins off.
 */
SPIPlanPtr
durable_plan_generic(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes)
{
	return plan_with(slot, sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
}

/*
 * durable_exec_latest: execute a read-only kept plan with the latest
 * snapshot, not the statement's.  For loading backend caches: a change
 * whose invalidation this backend has already read must be visible to
 * the load, or the cache would keep the old state.
 */
int
durable_exec_latest(SPIPlanPtr plan, Datum *values, const char *nulls, long count)
{
	int			rc;

	durable_xact_ran_statements = true;
	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, count);

	if (rc < 0)
		elog(ERROR, "durable: SPI_execute_snapshot failed: %s",
			 SPI_result_code_string(rc));
	return rc;
}

/*
 * durable_exec: execute a kept plan; any SPI failure is a bug, not input.
 *
 * A plan of durable_plan_generic runs with the planner held to index scans
 * and nested loops.  A generic plan knows neither how many tasks a poll
 * wants nor how many tokens a batch holds; planned with a tenth of a
 * queue or a hundred tokens in mind, it could hash-join a seq scan of
 * durable.tasks on every call, and does not change until the plan is made
 * again.  Every statement prepared that way reaches a few rows through
 * indexes, so the planner gets no other choice whenever the plan cache
 * (re)plans one here.  The plan says how it was prepared, so no caller
 * can run it the other way.
 */
int
durable_exec(SPIPlanPtr plan, Datum *values, const char *nulls,
			 bool read_only, long count)
{
	return durable_exec_snapshot(plan, values, nulls, InvalidSnapshot, read_only, count);
}

/*
 * durable_exec_snapshot: durable_exec, reading with snapshot (registered by
 * the caller) instead of a new one, so that the caller can tell afterwards
 * what the statement saw (InvalidSnapshot: a new one, as durable_exec).
 */
int
durable_exec_snapshot(SPIPlanPtr plan, Datum *values, const char *nulls,
					  Snapshot snapshot, bool read_only, long count)
{
	bool		index_only = (plan->cursor_options & CURSOR_OPT_GENERIC_PLAN) != 0;
	int			nest = 0;
	int			rc;

	if (index_only)
	{
		nest = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	durable_xact_ran_statements = true;
	if (snapshot == InvalidSnapshot)
		rc = SPI_execute_plan(plan, values, nulls, read_only, count);
	else
		rc = SPI_execute_snapshot(plan, values, nulls, snapshot, InvalidSnapshot,
								  read_only, true, count);
	if (rc < 0)
		elog(ERROR, "durable: SPI_execute_plan failed: %s",
			 SPI_result_code_string(rc));
	if (index_only)
		AtEOXact_GUC(true, nest);
	return rc;
}

ErrorData *
durable_guarded(DurableGuardedFn fn, void *arg, bool rethrow_transient)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile result = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			code;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		code = edata->sqlerrcode;
		if (code == ERRCODE_QUERY_CANCELED || code == ERRCODE_ADMIN_SHUTDOWN ||
			(rethrow_transient &&
			 (code == ERRCODE_T_R_DEADLOCK_DETECTED ||
			  code == ERRCODE_T_R_SERIALIZATION_FAILURE ||
			  code == ERRCODE_LOCK_NOT_AVAILABLE ||
			  ERRCODE_TO_CATEGORY(code) == ERRCODE_INSUFFICIENT_RESOURCES)))
			ReThrowError(edata);
		result = edata;
	}
	PG_END_TRY();
	return result;
}
