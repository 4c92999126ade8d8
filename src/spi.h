/*-------------------------------------------------------------------------
 *
 * spi.h
 *	  The plan cache, the schema version check and subtransactions (spi.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_SPI_H
#define DURABLE_SPI_H

#include "durable.h"

/* SPI plans prepared once per backend (spi.c) */
extern bool durable_xact_ran_statements;
extern bool durable_schema_is_current(char **installed);
extern SPIPlanPtr durable_plan(SPIPlanPtr *slot, const char *sql,
							   int nargs, const Oid *argtypes);
extern SPIPlanPtr durable_plan_generic(SPIPlanPtr *slot, const char *sql,
									   int nargs, const Oid *argtypes);
extern int	durable_exec_latest(SPIPlanPtr plan, Datum *values, const char *nulls,
								long count);
extern int	durable_exec(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, long count);
extern int	durable_exec_snapshot(SPIPlanPtr plan, Datum *values, const char *nulls,
								  Snapshot snapshot, bool read_only, long count);
/*
 * durable_guarded: run fn(arg) in a subtransaction; NULL when it went
 * through, else its error (its changes undone).  A cancel or shutdown, and
 * when rethrow_transient a deadlock, lock timeout, serialization failure or
 * lack of resources, is raised again instead.
 */
typedef void (*DurableGuardedFn) (void *arg);
extern ErrorData *durable_guarded(DurableGuardedFn fn, void *arg, bool rethrow_transient);

#endif							/* DURABLE_SPI_H */
