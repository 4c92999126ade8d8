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

#include "utils/snapmgr.h"

#include "durable.h"

/*
 * durable_plan: return the plan kept in *slot, preparing it on first use.
 * The functions that call this run with search_path pinned to
 * pg_catalog, pg_temp (their SET clause), and every table name in the
 * SQL is schema-qualified.
 */
SPIPlanPtr
durable_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);

		if (plan == NULL)
			elog(ERROR, "durable: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "durable: SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
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
	int			rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
										  InvalidSnapshot, true, false, count);

	if (rc < 0)
		elog(ERROR, "durable: SPI_execute_snapshot failed: %s",
			 SPI_result_code_string(rc));
	return rc;
}

/*
 * durable_exec: execute a kept plan; any SPI failure is a bug, not input.
 */
int
durable_exec(SPIPlanPtr plan, Datum *values, const char *nulls,
			 bool read_only, long count)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, count);

	if (rc < 0)
		elog(ERROR, "durable: SPI_execute_plan failed: %s",
			 SPI_result_code_string(rc));
	return rc;
}
