/*-------------------------------------------------------------------------
 *
 * visibility.h
 *	  Runs that match a visibility query, for batch operations
 *	  (visibility.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_VISIBILITY_H
#define DURABLE_VISIBILITY_H

#include "durable.h"

extern void durable_list_check(const char *ns, const char *query);
extern int	durable_list_running(const char *ns, const char *query, int64 after_run,
								 int64 max_run, int limit, int64 **run_ids);

#endif							/* DURABLE_VISIBILITY_H */
