/*-------------------------------------------------------------------------
 *
 * task.h
 *	  A leased task as the token calls see it (task.c, commands.c, claim.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_TASK_H
#define DURABLE_TASK_H

#include "durable.h"
#include "utils/array.h"

typedef struct TaskRef
{
	int64		token;
	int64		run_id;
	int			seq;			/* 0 for the workflow task */
	bool		is_workflow;
	char	   *ns;
	char	   *queue;
	int			priority;
	int			attempt;
	bool		cancel_requested;
} TaskRef;

extern void durable_task_lookup(int64 token, Oid caller, TaskRef *task);
extern void durable_task_complete_one(int64 token, Jsonb *result, Jsonb *steps,
							  Oid caller, TimestampTz now);
extern void durable_complete_many(ArrayType *tokens, ArrayType *results, Oid caller,
								  TimestampTz now);
extern void durable_record_steps(TaskRef *task, Jsonb *steps, TimestampTz now);
extern void durable_apply_commands(TaskRef *task, Jsonb *commands, TimestampTz now,
								   bool updates_only);
extern Jsonb *durable_get_jsonb_arg(FunctionCallInfo fcinfo, int argno);

#endif							/* DURABLE_TASK_H */
