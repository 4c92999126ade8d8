/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The names of the engine's states and kinds, as the tables store them
 *	  and the views show them.  The C code works with the enums of
 *	  durable.h; a name is made only where a value goes into SQL or a
 *	  message, and parsed only where one comes back from a table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "durable.h"
#include "state.h"

/* in the order of the enums */
static const char *const run_status_names[] = {
	"running", "completed", "failed", "cancelled", "terminated", "timed_out",
	"continued_as_new"
};
static const char *const step_kind_names[] = {
	"local", "activity", "sleep", "signal", "child", "signal_external",
	"cancel_external", "upsert", "update"
};
static const char *const step_status_names[] = {
	"pending", "completed", "failed", "cancelled"
};

StaticAssertDecl(lengthof(run_status_names) == RUN_CONTINUED_AS_NEW + 1,
				 "a name for every run status");
StaticAssertDecl(lengthof(step_kind_names) == STEP_UPDATE + 1,
				 "a name for every step kind");
StaticAssertDecl(lengthof(step_status_names) == STEP_CANCELLED + 1,
				 "a name for every step status");

/*
 * The tables are written by the engine alone, so a name it does not know
 * is a bug (or a table edited by hand), never user input.
 */
static int
parse(const char *const *names, int n, const char *name, const char *what)
{
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	elog(ERROR, "durable: unknown %s \"%s\"", what, name);
	return -1;					/* keep the compiler quiet */
}

const char *
durable_run_status_name(RunStatus status)
{
	Assert(status >= 0 && status < lengthof(run_status_names));
	return run_status_names[status];
}

RunStatus
durable_run_status_parse(const char *name)
{
	return (RunStatus) parse(run_status_names, lengthof(run_status_names), name,
							 "run status");
}

const char *
durable_step_kind_name(StepKind kind)
{
	Assert(kind >= 0 && kind < lengthof(step_kind_names));
	return step_kind_names[kind];
}

StepKind
durable_step_kind_parse(const char *name)
{
	return (StepKind) parse(step_kind_names, lengthof(step_kind_names), name,
							"step kind");
}

const char *
durable_step_status_name(StepStatus status)
{
	Assert(status >= 0 && status < lengthof(step_status_names));
	return step_status_names[status];
}
