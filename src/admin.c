/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  Namespaces and rights: namespace_create, namespace_set_retention,
 *	  grant_client, grant_worker, grant_admin, revoke_all; the only writer
 *	  of durable.namespaces and durable.grants.  Like every engine function
 *	  they check the caller's right (admin) and then act as the extension's
 *	  owner, so an admin role granted with durable.grant_admin needs no
 *	  rights on the tables themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "durable.h"
#include "access.h"
#include "admin.h"
#include "spi.h"
#include "validate.h"

/* a namespace name: 1 to 255 bytes, what durable.namespace accepts */
static const char *
namespace_arg(FunctionCallInfo fcinfo)
{
	return durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
					  "namespace name", DURABLE_MAX_NAME);
}

/*
 * retention_arg: zero to ten years.  The purge computes now - retention
 * for every namespace in one statement: one retention whose arithmetic
 * overflowed made every round of the periodic work fail.
 */
static Interval *
retention_arg(FunctionCallInfo fcinfo)
{
	return durable_check_interval(PG_ARGISNULL(1) ? NULL : PG_GETARG_INTERVAL_P(1),
						  "retention", true);
}

/*
 * namespace_change: run sql ($1 the namespace, $2 the retention) for
 * namespace_create or namespace_set_retention, as the owner after the
 * admin check.  Returns whether it changed a row; *ns is the name.
 */
static bool
namespace_change(FunctionCallInfo fcinfo, SPIPlanPtr *plan, const char *sql,
				 const char **ns)
{
	static const Oid types[2] = {TEXTOID, INTERVALOID};
	Interval   *retention;
	DurableCall call;
	Datum		values[2];
	bool		changed;

	*ns = namespace_arg(fcinfo);
	retention = retention_arg(fcinfo);
	durable_check_right(DURABLE_RIGHT_ADMIN, *ns, NULL);
	durable_enter(&call);
	values[0] = CStringGetTextDatum(*ns);
	values[1] = IntervalPGetDatum(retention);
	durable_plan(plan, sql, 2, types);
	durable_exec(*plan, values, NULL, false, 0);
	changed = SPI_processed == 1;
	durable_leave(&call);
	return changed;
}

/*
 * durable.namespace_create(namespace, retention): closed runs of the
 * namespace are purged once retention has passed.
 */
PG_FUNCTION_INFO_V1(durable_namespace_create);
Datum
durable_namespace_create(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	const char *ns;

	if (!namespace_change(fcinfo, &plan,
						  "INSERT INTO durable.namespaces (namespace, retention) VALUES ($1, $2) "
						  "ON CONFLICT DO NOTHING", &ns))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
				 errmsg("namespace \"%s\" already exists", ns),
				 errhint("Use durable.namespace_set_retention to change its retention.")));
	PG_RETURN_VOID();
}

/*
 * durable.namespace_set_retention(namespace, retention)
 */
PG_FUNCTION_INFO_V1(durable_namespace_set_retention);
Datum
durable_namespace_set_retention(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	const char *ns;

	if (!namespace_change(fcinfo, &plan,
						  "UPDATE durable.namespaces SET retention = $2 WHERE namespace = $1",
						  &ns))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("namespace \"%s\" does not exist", ns),
				 errhint("Create it with durable.namespace_create.")));
	PG_RETURN_VOID();
}

/*
 * Rights.  The grant calls record the right in durable.grants (which the
 * engine's checks read) and grant EXECUTE on the functions the right
 * needs, both as the extension's owner after the admin check: so a role
 * given grant_admin can grant too, as the README promises.  Keep the
 * function lists in step with the install script (test/pgtap checks that
 * each kind of role can do its job).
 */
static const char *const client_functions =
	"durable.wf_start(text, jsonb, text, text, jsonb), "
	"durable.wf_start_many(text, jsonb[], text[], text, jsonb), "
	"durable.activity_complete(text, int, jsonb), "
	"durable.activity_fail(text, int, jsonb, boolean), "
	"durable.wf_published(text), durable.wf_query(text, text, jsonb, interval), "
	"durable.wf_update(text, text, jsonb, text), durable.wf_update_result(text, text, interval), "
	"durable.wf_signal(text, text, jsonb, text), "
	"durable.wf_signal_with_start(text, jsonb, text, text, jsonb, text, jsonb, text), "
	"durable.wf_cancel(text, text), durable.wf_terminate(text, text), "
	"durable.wf_pause(text, text), durable.wf_unpause(text, text), "
	"durable.wf_reset(text, int, text), durable.wf_fork(text, int, text), "
	"durable.wf_list(text, int, text), durable.wf_count(text), "
	"durable.batch_start(text, text, text, text, jsonb), durable.batch_run(bigint, int), "
	"durable.batch_stop(bigint), "
	"durable.wf_result(text, interval), durable.wf_status(text), "
	"durable.wf_history(text), durable.wf_describe(text), "
	"durable.may_read(text)";
static const char *const worker_functions =
	"durable.task_poll(text, text, int, interval, bigint[], jsonb[]), "
	"durable.step_record(bigint, int, text, jsonb), "
	"durable.step_record(bigint, jsonb), "
	"durable.task_suspend(bigint, jsonb, jsonb), "
	"durable.task_complete(bigint, jsonb, jsonb, jsonb), "
	"durable.task_complete_many(bigint[], jsonb[]), "
	"durable.task_fail(bigint, jsonb, boolean), "
	"durable.task_heartbeat(bigint, jsonb, interval), "
	"durable.task_release(bigint), "
	"durable.task_publish(bigint, text, jsonb), "
	"durable.task_answer_query(bigint, jsonb, jsonb), "
	"durable.task_updates(bigint, jsonb), "
	"durable.task_upsert_search_attributes(bigint, int, jsonb)";

/*
 * run_utility: a GRANT or REVOKE built from fixed text and a quoted role
 * name (no parameters to bind; these are rare administrative calls).
 */
static void
run_utility(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "durable: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

static Oid
role_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("role must not be NULL"),
				 errhint("Pass a role name, such as 'app'.")));
	return PG_GETARG_OID(0);
}

/*
 * grant_namespace_arg: a namespace that exists, or '*' (every namespace).
 */
static const char *
grant_namespace_arg(FunctionCallInfo fcinfo, int argno)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	const char *ns = durable_check_name(PG_ARGISNULL(argno) ? NULL : PG_GETARG_TEXT_PP(argno),
								"namespace", DURABLE_MAX_NAME);
	Datum		values[1];
	bool		exists;

	if (strcmp(ns, "*") == 0)
		return ns;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	values[0] = CStringGetTextDatum(ns);
	durable_plan(&plan, "SELECT 1 FROM durable.namespaces WHERE namespace = $1",
				 1, types);
	durable_exec(plan, values, NULL, true, 1);
	exists = SPI_processed == 1;
	SPI_finish();
	if (!exists)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("namespace \"%s\" does not exist", ns),
				 errhint("Create it with durable.namespace_create(), or pass '*' for every namespace.")));
	return ns;
}

/*
 * grant_right: record (role, kind, namespace, queue) and grant EXECUTE on
 * the kind's functions (every function and SELECT on every table for
 * admin), as the owner after the admin check.
 */
static void
grant_right(Oid role, const char *kind, const char *ns, const char *queue,
			const char *functions, const char *views)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {OIDOID, TEXTOID, TEXTOID, TEXTOID};
	const char *rolename;
	Datum		values[4];
	DurableCall call;

	durable_check_right(DURABLE_RIGHT_ADMIN, NULL, NULL);
	rolename = quote_identifier(GetUserNameFromId(role, false));
	durable_enter(&call);
	values[0] = ObjectIdGetDatum(role);
	values[1] = CStringGetTextDatum(kind);
	values[2] = CStringGetTextDatum(ns);
	values[3] = CStringGetTextDatum(queue);
	durable_plan(&plan,
				 "INSERT INTO durable.grants (role, kind, namespace, queue) "
				 "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
				 4, types);
	durable_exec(plan, values, NULL, false, 0);
	run_utility(psprintf("GRANT USAGE ON SCHEMA durable TO %s", rolename));
	if (functions)
		run_utility(psprintf("GRANT EXECUTE ON FUNCTION %s TO %s", functions, rolename));
	if (views)
		run_utility(psprintf("GRANT SELECT ON %s TO %s", views, rolename));
	if (functions == NULL)
	{
		run_utility(psprintf("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA durable TO %s", rolename));
		run_utility(psprintf("GRANT SELECT ON ALL TABLES IN SCHEMA durable TO %s", rolename));
	}
	durable_leave(&call);
}

PG_FUNCTION_INFO_V1(durable_grant_client);
Datum
durable_grant_client(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo);
	const char *ns = grant_namespace_arg(fcinfo, 1);

	grant_right(role, "client", ns, "*", client_functions,
				"durable.workflows, durable.journal, durable.history, durable.published_state, "
				"durable.batch_list, durable.search_attribute_list, durable.search_attribute_values");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(durable_grant_worker);
Datum
durable_grant_worker(PG_FUNCTION_ARGS)
{
	Oid			role = role_arg(fcinfo);
	const char *queue;
	const char *ns;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("queue name must not be NULL"),
				 errhint("Pass a queue name, or '*' for every queue.")));
	queue = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(queue, "*") != 0)
		queue = durable_check_queue_name(PG_GETARG_TEXT_PP(1));
	ns = grant_namespace_arg(fcinfo, 2);
	grant_right(role, "worker", ns, queue, worker_functions, NULL);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(durable_grant_admin);
Datum
durable_grant_admin(PG_FUNCTION_ARGS)
{
	grant_right(role_arg(fcinfo), "admin", "*", "*", NULL, NULL);
	PG_RETURN_VOID();
}

/*
 * durable.revoke_all(role): every grant row of the role goes, and every
 * privilege the owner gave it on durable's objects.
 */
PG_FUNCTION_INFO_V1(durable_revoke_all);
Datum
durable_revoke_all(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {OIDOID};
	Oid			role = role_arg(fcinfo);
	const char *rolename;
	Datum		values[1];
	DurableCall call;

	durable_check_right(DURABLE_RIGHT_ADMIN, NULL, NULL);
	rolename = quote_identifier(GetUserNameFromId(role, false));
	durable_enter(&call);
	values[0] = ObjectIdGetDatum(role);
	durable_plan(&plan, "DELETE FROM durable.grants WHERE role = $1", 1, types);
	durable_exec(plan, values, NULL, false, 0);
	run_utility(psprintf("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA durable FROM %s", rolename));
	run_utility(psprintf("REVOKE ALL ON ALL TABLES IN SCHEMA durable FROM %s", rolename));
	run_utility(psprintf("REVOKE USAGE ON SCHEMA durable FROM %s", rolename));
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable_grants_forget_dropped_roles: rows of roles that no longer
 * exist (DROP OWNED BY, then DROP ROLE) are deleted by the periodic work,
 * so a later role that happens to get the same oid inherits nothing.
 * Until then they match no caller.  Returns how many went.
 */
int
durable_grants_forget_dropped_roles(void)
{
	static SPIPlanPtr find = NULL;
	static SPIPlanPtr plan = NULL;
	static const char *const dropped =
		" FROM durable.grants g WHERE NOT EXISTS "
		"  (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) g.role::pg_catalog.oid)";

	/*
	 * Look before deleting: a DELETE fires the grants trigger even when it
	 * deletes nothing, and that would empty every backend's rights cache
	 * on every round.
	 */
	durable_plan(&find, psprintf("SELECT 1 %s LIMIT 1", dropped), 0, NULL);
	durable_exec(find, NULL, NULL, true, 1);
	if (SPI_processed == 0)
		return 0;
	durable_plan(&plan, psprintf("DELETE %s", dropped), 0, NULL);
	durable_exec(plan, NULL, NULL, false, 0);
	return (int) SPI_processed;
}
