/*-------------------------------------------------------------------------
 *
 * spi.h
 *	  The plan cache and the schema version check (spi.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_SPI_H
#define DURABLE_SPI_H

#include "durable.h"

/* SPI plans prepared once per backend (spi.c) */
extern bool durable_schema_is_current(char **installed);
extern SPIPlanPtr durable_plan(SPIPlanPtr *slot, const char *sql,
							   int nargs, const Oid *argtypes);
extern int	durable_exec_latest(SPIPlanPtr plan, Datum *values, const char *nulls,
								long count);
extern int	durable_exec(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, long count);

#endif							/* DURABLE_SPI_H */
