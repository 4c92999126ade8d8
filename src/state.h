/*-------------------------------------------------------------------------
 *
 * state.h
 *	  Run statuses, step kinds and step statuses (state.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_STATE_H
#define DURABLE_STATE_H

#include "durable.h"

/*
 * States and kinds (state.c names them as the tables store them).  Run
 * statuses: running until one statement closes the run with another.
 */
typedef enum RunStatus
{
	RUN_RUNNING,
	RUN_COMPLETED,
	RUN_FAILED,
	RUN_CANCELLED,
	RUN_TERMINATED,
	RUN_TIMED_OUT,
	RUN_CONTINUED_AS_NEW
} RunStatus;

/* a journal entry's kind and status (pending until resolved, once) */
typedef enum StepKind
{
	STEP_LOCAL,
	STEP_ACTIVITY,
	STEP_SLEEP,
	STEP_SIGNAL,
	STEP_CHILD,
	STEP_SIGNAL_EXTERNAL,		/* a signal sent to another workflow */
	STEP_CANCEL_EXTERNAL,		/* a cancel request sent to another workflow */
	STEP_UPSERT,				/* search attributes the workflow set */
	STEP_UPDATE					/* an update the workflow accepted (wf_update) */
} StepKind;

typedef enum StepStatus
{
	STEP_PENDING,
	STEP_COMPLETED,
	STEP_FAILED,
	STEP_CANCELLED
} StepStatus;

extern const char *durable_run_status_name(RunStatus status);
extern RunStatus durable_run_status_parse(const char *name);
extern const char *durable_step_kind_name(StepKind kind);
extern StepKind durable_step_kind_parse(const char *name);
extern const char *durable_step_status_name(StepStatus status);

#endif							/* DURABLE_STATE_H */
