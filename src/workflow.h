/*-------------------------------------------------------------------------
 *
 * workflow.h
 *	  Starting runs and finding them (workflow.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_WORKFLOW_H
#define DURABLE_WORKFLOW_H

#include "durable.h"

extern int64 durable_start_run(const char *ns, const char *workflow_id,
					   const char *type, const char *queue, Jsonb *input,
					   Jsonb *options, const char *parent_close_policy,
					   int64 parent_run, int parent_seq, TimestampTz now);
extern void durable_lock_run(int64 run_id);

#endif							/* DURABLE_WORKFLOW_H */
