/*-------------------------------------------------------------------------
 *
 * commands.c
 *	  Command validation and application: what a suspending workflow task
 *	  asks the engine to do.  Commands are a JSON array; each has a "seq"
 *	  (its journal entry) and a "type":
 *
 *		activity	run an activity on a queue, with retry policy and timeouts
 *		sleep		a durable timer ("duration" or "until")
 *		signal		wait for the next signal of a name, or of any of several
 *					("names"), with an optional "timeout"
 *		child		start a child workflow and wait for its result
 *		signal_external	signal another workflow's running run
 *		cancel_external	ask another workflow's running run to cancel
 *		cancel		cancel this run's pending step "seq" (no entry of its own)
 *		update		an update (wf_update) accepted and handled: its "result",
 *					or the "error" its handler raised
 *		reject_update	an update its validator refused ("error"); no "seq":
 *					a rejected update leaves no journal entry
 *
 *	  A command whose seq already holds the same kind and name is a replay
 *	  and changes nothing; another kind or name is a nondeterminism error.
 *	  A cancel of a step no longer pending changes nothing either.
 *	  The whole call runs in one transaction, so a bad command anywhere
 *	  leaves every table as it was.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "task.h"
#include "fairness.h"
#include "engine.h"
#include "json.h"
#include "retry.h"
#include "shmem.h"
#include "validate.h"

static void
bad_command(int n, const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_DURABLE_INVALID_COMMAND),
			 errmsg("invalid command %d: %s", n, msg),
			 hint ? errhint("%s", hint) : 0));
}

static Jsonb *
get_object(Jsonb *cmd, const char *key, const char *ctx)
{
	JsonbValue *v = durable_jb_get(cmd, key);
	Jsonb	   *obj;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	obj = (v->type == jbvBinary) ? JsonbValueToJsonb(v) : NULL;
	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_COMMAND),
				 errmsg("invalid %s: \"%s\" must be a JSON object", ctx, key)));
	return obj;
}

static Jsonb *
get_any(Jsonb *cmd, const char *key)
{
	JsonbValue *v = durable_jb_get(cmd, key);

	return v ? JsonbValueToJsonb(v) : NULL;
}

/*
 * apply_activity: journal entry + activity task, with the retry policy
 * as given (validated) and the timeouts in typed columns of the step.
 */
static void
apply_activity(TaskRef *task, int seq, Jsonb *cmd, TimestampTz now)
{
	static const char *const keys[] = {"seq", "type", "name", "input", "queue",
		"retry", "start_to_close", "schedule_to_close", "schedule_to_start",
		"heartbeat", "priority", "fairness_key", "fairness_weight", NULL};
	const char *ctx = "activity command";
	char	   *name;
	char	   *queue;
	Jsonb	   *input;
	RetryPolicy policy;
	ActivityOptions act;
	int64		priority = task->priority;
	int64		due_ms;

	memset(&act, 0, sizeof(act));
	durable_jb_check_keys(cmd, ctx, keys);
	name = durable_jb_get_string(cmd, "name", ctx, DURABLE_MAX_NAME, true);
	queue = durable_jb_get_string(cmd, "queue", ctx, DURABLE_MAX_QUEUE, false);
	if (queue)
		durable_check_queue_cstring(queue);
	else
		queue = task->queue;
	input = get_any(cmd, "input");
	durable_check_payload(input, "activity input");
	act.retry = get_object(cmd, "retry", ctx);
	durable_retry_policy_parse(act.retry, &policy, "retry policy");
	durable_jb_get_int(cmd, "priority", ctx, DURABLE_MIN_PRIORITY, DURABLE_MAX_PRIORITY, &priority);
	durable_jb_get_duration_ms(cmd, "start_to_close", ctx, &act.start_to_close_ms);
	durable_jb_get_duration_ms(cmd, "schedule_to_close", ctx, &act.schedule_to_close_ms);
	durable_jb_get_duration_ms(cmd, "schedule_to_start", ctx, &act.schedule_to_start_ms);
	durable_jb_get_duration_ms(cmd, "heartbeat", ctx, &act.heartbeat_ms);
	durable_get_fairness(cmd, ctx, &act.fairness_key, &act.fairness_weight);
	/* the step's due time is its first deadline; tick re-arms the next */
	due_ms = (act.schedule_to_start_ms &&
			  (!act.schedule_to_close_ms || act.schedule_to_start_ms < act.schedule_to_close_ms)) ?
		act.schedule_to_start_ms : act.schedule_to_close_ms;

	durable_engine_schedule_activity(task->run_id, seq, name, input, task->ns, queue,
									 (int) priority, &act,
									 due_ms ? now + due_ms * 1000 : DURABLE_NO_TIME, now);
}

/*
 * parse_until: a timestamp with time zone as text, DU002 otherwise.
 */
static TimestampTz
parse_until(int n, const char *s)
{
	Datum		d;

	if (!durable_try_input(timestamptz_in, s, &d) || TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(d)))
		bad_command(n, psprintf("\"until\" is not a timestamp: \"%s\"", s),
					"Use ISO 8601 with a time zone, such as \"2030-01-01T00:00:00Z\".");
	return DatumGetTimestampTz(d);
}

/*
 * apply_sleep: a durable timer.  Its due time is computed from the
 * database clock, never the worker's; the background worker (or
 * durable.tick) resolves it when due.
 */
static void
apply_sleep(TaskRef *task, int n, int seq, Jsonb *cmd, TimestampTz now)
{
	static const char *const keys[] = {"seq", "type", "name", "duration", "until", NULL};
	const char *ctx = "sleep command";
	char	   *name;
	char	   *until;
	int64		ms;
	TimestampTz due;
	bool		inserted;

	durable_jb_check_keys(cmd, ctx, keys);
	name = durable_jb_get_string(cmd, "name", ctx, DURABLE_MAX_NAME, false);
	until = durable_jb_get_string(cmd, "until", ctx, 100, false);
	if (durable_jb_get_duration_ms(cmd, "duration", ctx, &ms))
	{
		if (until)
			bad_command(n, "a sleep takes \"duration\" or \"until\", not both", NULL);
		due = now + ms * 1000;
	}
	else if (until)
		due = parse_until(n, until);
	else
	{
		bad_command(n, "a sleep needs \"duration\" or \"until\"",
					"For example {\"seq\": 3, \"type\": \"sleep\", \"duration\": \"1h\"}.");
		return;
	}
	durable_step_insert_or_match(task->run_id, seq, STEP_SLEEP, name ? name : "sleep",
						 STEP_PENDING, NULL, NULL, NULL, NULL, now, due, &inserted);
	if (inserted)
		durable_bgw_wake(due);
}

/*
 * apply_signal: wait for the next signal of a name ("name"), or of any of
 * several names ("names": signal handlers that take whichever comes
 * first; the result is then {"name", "payload"}).  One already buffered
 * is consumed at once (oldest first); otherwise the step waits for
 * durable.wf_signal, or its timeout.  The run row is locked first, as
 * wf_signal does, so a signal and a wait that commit together meet.
 */
static void
apply_signal(TaskRef *task, int n, int seq, Jsonb *cmd, TimestampTz now)
{
	static const char *const keys[] = {"seq", "type", "name", "names", "timeout", NULL};
	const char *ctx = "signal command";
	char	   *name;
	JsonbValue *list;
	Datum	   *names;
	int			count = 0;
	int64		ms = 0;

	durable_jb_check_keys(cmd, ctx, keys);
	name = durable_jb_get_string(cmd, "name", ctx, DURABLE_MAX_NAME, false);
	list = durable_jb_get(cmd, "names");
	if ((name == NULL) == (list == NULL || list->type == jbvNull))
		bad_command(n, "a signal wait takes \"name\" or \"names\", one of them",
					"For example {\"seq\": 3, \"type\": \"signal\", \"names\": [\"approve\", \"reject\"]}.");
	durable_jb_get_duration_ms(cmd, "timeout", ctx, &ms);
	names = palloc(sizeof(Datum) * (DURABLE_MAX_SIGNAL_NAMES + 1));
	if (name)
		names[count++] = CStringGetTextDatum(name);
	else
	{
		Jsonb	   *arr = durable_jb_from_value(list);
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken r;

		if (arr == NULL || !JB_ROOT_IS_ARRAY(arr) || JB_ROOT_IS_SCALAR(arr))
			bad_command(n, "\"names\" must be an array of signal names", NULL);
		it = JsonbIteratorInit(&arr->root);
		while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *s;

			if (r != WJB_ELEM)
				continue;
			if (v.type != jbvString || v.val.string.len == 0 ||
				v.val.string.len > DURABLE_MAX_NAME)
				bad_command(n, "\"names\" must hold signal names: strings of 1 to 255 bytes", NULL);
			if (count >= DURABLE_MAX_SIGNAL_NAMES)
				bad_command(n, "more than 100 names in one signal wait", NULL);
			s = pnstrdup(v.val.string.val, v.val.string.len);
			durable_check_no_control_chars(s, v.val.string.len, "signal name", false);
			names[count++] = CStringGetTextDatum(s);
		}
		if (count == 0)
			bad_command(n, "\"names\" is empty", NULL);
		/* the entry's name: the list as given, so a replay matches it */
		name = durable_jb_text(arr);
	}
	durable_engine_wait_signal(task->run_id, seq, name,
							   PointerGetDatum(construct_array(names, count, TEXTOID, -1,
															   false, TYPALIGN_INT)),
							   list != NULL && list->type != jbvNull,
							   ms ? now + ms * 1000 : DURABLE_NO_TIME, now);
}

/*
 * apply_child: start a child workflow; its close resolves this step.
 */
static void
apply_child(TaskRef *task, int n, int seq, Jsonb *cmd, TimestampTz now)
{
	static const char *const keys[] = {"seq", "type", "name", "input",
		"workflow_id", "queue", "options", "parent_close_policy", NULL};
	const char *ctx = "child command";
	char	   *name;
	char	   *workflow_id;
	char	   *queue;
	char	   *policy;
	Jsonb	   *input;
	Jsonb	   *options;
	bool		inserted;

	durable_jb_check_keys(cmd, ctx, keys);
	name = durable_jb_get_string(cmd, "name", ctx, DURABLE_MAX_NAME, true);
	workflow_id = durable_jb_get_string(cmd, "workflow_id", ctx, DURABLE_MAX_WORKFLOW_ID, false);
	queue = durable_jb_get_string(cmd, "queue", ctx, DURABLE_MAX_QUEUE, false);
	if (queue)
		durable_check_queue_cstring(queue);
	policy = durable_jb_get_string(cmd, "parent_close_policy", ctx, 32, false);
	if (policy && strcmp(policy, "terminate") != 0 &&
		strcmp(policy, "request_cancel") != 0 && strcmp(policy, "abandon") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_COMMAND),
				 errmsg("invalid child command: unknown parent_close_policy \"%s\"", policy),
				 errhint("Use \"terminate\" (the default), \"request_cancel\" or \"abandon\".")));
	input = get_any(cmd, "input");
	durable_check_payload(input, "child input");
	options = get_object(cmd, "options", ctx);
	if (durable_jb_get(options, "id_conflict_policy") || durable_jb_get(options, "request_id") ||
		durable_jb_get(options, "debounce") || durable_jb_get(options, "throttle"))
		bad_command(n, "a child cannot take id_conflict_policy, request_id, debounce or throttle",
					"A child is always a new run linked to its parent; choose a workflow id that is not running.");

	durable_step_insert_or_match(task->run_id, seq, STEP_CHILD, name, STEP_PENDING, input,
						 NULL, queue ? queue : task->queue, NULL, now, DURABLE_NO_TIME, &inserted);
	if (!inserted)
		return;
	if (workflow_id == NULL)
		workflow_id = psprintf("%s/" INT64_FORMAT "/%d", "child", task->run_id, seq);
	durable_start_run(task->ns, workflow_id, name, queue ? queue : task->queue, input,
			  options, policy ? policy : "terminate", task->run_id, seq, now, false);
}

/*
 * apply_message: signal_external or cancel_external.  The target is the
 * running run of a workflow id in this namespace (locked, as wf_signal
 * and wf_cancel lock it); it gets the signal or the cancel request in
 * this transaction, and the step resolves at once: completed, or failed
 * with workflow_not_found when the id has no running run.  A signal's
 * default signal_id is "<run>/<seq>" of the sender, so a step applied
 * again never signals twice.
 */
static void
apply_message(TaskRef *task, int seq, Jsonb *cmd, StepKind kind, TimestampTz now)
{
	static const char *const signal_keys[] = {"seq", "type", "workflow_id", "signal",
		"payload", "signal_id", NULL};
	static const char *const cancel_keys[] = {"seq", "type", "workflow_id", "reason", NULL};
	bool		is_signal = (kind == STEP_SIGNAL_EXTERNAL);
	const char *ctx = is_signal ? "signal_external command" : "cancel_external command";
	char	   *workflow_id;
	char	   *signal = NULL;
	char	   *signal_id = NULL;
	char	   *reason = NULL;
	Jsonb	   *payload = NULL;
	Jsonb	   *input;
	bool		inserted;
	int64		target;
	RunStatus	status;

	durable_jb_check_keys(cmd, ctx, is_signal ? signal_keys : cancel_keys);
	workflow_id = durable_jb_get_string(cmd, "workflow_id", ctx, DURABLE_MAX_WORKFLOW_ID, true);
	if (is_signal)
	{
		signal = durable_jb_get_string(cmd, "signal", ctx, DURABLE_MAX_NAME, true);
		signal_id = durable_jb_get_string(cmd, "signal_id", ctx, DURABLE_MAX_NAME, false);
		payload = get_any(cmd, "payload");
		durable_check_payload(payload, "signal payload");
	}
	else
		reason = durable_jb_get_string(cmd, "reason", ctx, 10000, false);

	/* the step's input says what was sent where */
	input = durable_jb_cstring(psprintf("{\"workflow_id\": %s, \"%s\": %s}",
										durable_json_quote(workflow_id),
										is_signal ? "payload" : "reason",
										is_signal ? (payload ? durable_jb_text(payload) : "null") :
										(reason ? durable_json_quote(reason) : "null")));

	durable_step_insert_or_match(task->run_id, seq, kind, is_signal ? signal : workflow_id,
								 STEP_PENDING, input, NULL, NULL, NULL, now, DURABLE_NO_TIME,
								 &inserted);
	if (!inserted)
		return;
	if (!durable_engine_find_latest_run(task->ns, workflow_id, &target, &status, NULL, NULL, true) ||
		status != RUN_RUNNING)
	{
		durable_engine_resolve_step(task->run_id, seq, STEP_FAILED, NULL,
									durable_jb_cstring(psprintf("{\"type\": \"workflow_not_found\", "
																"\"message\": %s}",
																durable_json_quote(psprintf("workflow \"%s\" has no running run",
																							workflow_id)))),
									now);
		return;
	}
	if (is_signal)
		durable_engine_signal(target, signal, payload,
							  signal_id ? signal_id : psprintf(INT64_FORMAT "/%d", task->run_id, seq),
							  now);
	else
		durable_engine_cancel_run(target, reason ? reason :
								  psprintf("cancel requested by run " INT64_FORMAT, task->run_id),
								  now);
	durable_engine_resolve_step(task->run_id, seq, STEP_COMPLETED, durable_jb_cstring("null"), NULL, now);
}

/*
 * apply_cancel: cancel this run's pending step "seq" (a handle's cancel):
 * durable_engine_cancel_step says what that does for each kind.
 */
static void
apply_cancel(TaskRef *task, int n, int seq, Jsonb *cmd, TimestampTz now)
{
	static const char *const keys[] = {"seq", "type", NULL};

	durable_jb_check_keys(cmd, "cancel command", keys);
	if (!durable_engine_cancel_step(task->run_id, seq, now))
		bad_command(n, psprintf("step %d does not exist", seq),
					"A cancel names the journal entry (seq) of the call it cancels.");
}

/*
 * apply_update: an update of this run accepted at entry seq and handled,
 * or (seq 0) rejected by its validator.
 */
static void
apply_update(TaskRef *task, int n, int seq, Jsonb *cmd, TimestampTz now)
{
	static const char *const keys[] = {"seq", "type", "update_id", "result", "error",
	"waiting_on", NULL};
	static const char *const reject_keys[] = {"type", "update_id", "error", NULL};
	const char *ctx = seq ? "update command" : "reject_update command";
	char	   *update_id;
	Jsonb	   *result;
	Jsonb	   *error;
	int64		waiting_on = 0;

	durable_jb_check_keys(cmd, ctx, seq ? keys : reject_keys);
	if (seq)
		(void) durable_jb_get_int(cmd, "waiting_on", ctx, 1, PG_INT32_MAX, &waiting_on);
	update_id = durable_jb_get_string(cmd, "update_id", ctx, DURABLE_MAX_NAME, true);
	result = get_any(cmd, "result");
	error = get_object(cmd, "error", ctx);
	durable_check_payload(result, "update result");
	durable_check_payload(error, "update error");
	if (seq == 0)
	{
		if (error == NULL)
			bad_command(n, "a rejected update needs an \"error\"",
						"For example {\"type\": \"reject_update\", \"update_id\": \"u1\", \"error\": {\"message\": \"amount must be positive\"}}.");
		if (!durable_engine_reject_update(task->run_id, update_id, error, now))
			bad_command(n, psprintf("update \"%s\" is not waiting to be handled", update_id),
						"Only an update the poll listed with state requested can be rejected.");
		return;
	}
	if (result && error)
		bad_command(n, "an update has a \"result\" or an \"error\", not both", NULL);
	if (!durable_engine_accept_update(task->run_id, seq, update_id, (int) waiting_on,
									  result, error, now))
		bad_command(n, psprintf("update \"%s\" is not waiting to be handled", update_id),
					"Only an update the poll listed with state requested can be accepted, once.");
}

/*
 * apply_each_command: validate and apply each command, in order.
 */
static void
apply_each_command(TaskRef *task, Jsonb *commands, TimestampTz now, bool updates_only)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;
	int			n = 0;

	it = JsonbIteratorInit(&commands->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Jsonb	   *cmd;
		JsonbValue *t;
		char	   *type;
		int64		seq;

		if (r != WJB_ELEM)
			continue;
		if (++n > DURABLE_MAX_BATCH)
			bad_command(n, "too many commands in one call", NULL);
		if (v.type != jbvBinary)
			bad_command(n, "expected a JSON object", NULL);
		cmd = JsonbValueToJsonb(&v);
		if (!JB_ROOT_IS_OBJECT(cmd))
			bad_command(n, "expected a JSON object", NULL);
		t = durable_jb_get(cmd, "type");
		if (t == NULL || t->type != jbvString)
			bad_command(n, "\"type\" is missing or not a string",
						"Known types: activity, sleep, signal, child, signal_external, cancel_external, cancel, update, reject_update.");
		type = pnstrdup(t->val.string.val, Min(t->val.string.len, 64));
		if (updates_only && strcmp(type, "update") != 0 && strcmp(type, "reject_update") != 0)
			bad_command(n, psprintf("a command of type \"%s\" cannot be applied before the task ends", type),
						"durable.task_updates takes update and reject_update commands; pass the others to task_suspend.");
		if (strcmp(type, "reject_update") == 0)
		{
			apply_update(task, n, 0, cmd, now);
			continue;
		}
		if (!durable_jb_get_int(cmd, "seq", "command", 1, PG_INT32_MAX, &seq))
			bad_command(n, "\"seq\" is missing", "Every command names the journal entry it creates.");

		if (strcmp(type, "activity") == 0)
			apply_activity(task, (int) seq, cmd, now);
		else if (strcmp(type, "sleep") == 0)
			apply_sleep(task, n, (int) seq, cmd, now);
		else if (strcmp(type, "signal") == 0)
			apply_signal(task, n, (int) seq, cmd, now);
		else if (strcmp(type, "child") == 0)
			apply_child(task, n, (int) seq, cmd, now);
		else if (strcmp(type, "signal_external") == 0)
			apply_message(task, (int) seq, cmd, STEP_SIGNAL_EXTERNAL, now);
		else if (strcmp(type, "cancel_external") == 0)
			apply_message(task, (int) seq, cmd, STEP_CANCEL_EXTERNAL, now);
		else if (strcmp(type, "cancel") == 0)
			apply_cancel(task, n, (int) seq, cmd, now);
		else if (strcmp(type, "update") == 0)
			apply_update(task, n, (int) seq, cmd, now);
		else
			bad_command(n, psprintf("unknown type \"%s\"", type),
						"Known types: activity, sleep, signal, child, signal_external, cancel_external, cancel, update, reject_update.");
	}
}

/*
 * durable_apply_commands: validate and apply every command of the array, in order
 * (only update and reject_update commands when updates_only: the task
 * goes on).  Input errors inside commands report DU002.
 */
void
durable_apply_commands(TaskRef *task, Jsonb *commands, TimestampTz now, bool updates_only)
{
	if (!JB_ROOT_IS_ARRAY(commands) || JB_ROOT_IS_SCALAR(commands))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_COMMAND),
				 errmsg("commands must be a JSON array"),
				 errhint("Pass [{\"seq\": 2, \"type\": \"activity\", \"name\": \"...\"}, ...].")));
	durable_input_errcode = ERRCODE_DURABLE_INVALID_COMMAND;
	PG_TRY();
	{
		apply_each_command(task, commands, now, updates_only);
	}
	PG_FINALLY();
	{
		durable_input_errcode = ERRCODE_DURABLE_INVALID_ARGUMENT;
	}
	PG_END_TRY();
}
