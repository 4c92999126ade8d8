/*-------------------------------------------------------------------------
 *
 * access.c
 *	  Who may call what.  Every engine function is SECURITY INVOKER: it
 *	  checks the caller's rights against durable.grants, then switches to
 *	  the extension's owner for its SPI work (as RI triggers and REFRESH
 *	  MATERIALIZED VIEW do), so tables stay unwritable by clients and
 *	  workers.  Transaction and subtransaction abort restore the user.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/genam.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "storage/proc.h"
#include "commands/trigger.h"
#include "utils/hsearch.h"
#include "utils/inval.h"

#include "durable.h"
#include "access.h"
#include "spi.h"
#include "validate.h"

static Oid	owner_oid = InvalidOid;

/*
 * extension_owner: the role that owns the durable extension, looked up
 * once per backend.
 */
static Oid
extension_owner(void)
{
	if (!OidIsValid(owner_oid))
	{
		Relation	rel;
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		rel = table_open(ExtensionRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
					F_NAMEEQ, CStringGetDatum("durable"));
		scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
		tup = systable_getnext(scan);
		if (!HeapTupleIsValid(tup))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"durable\" is not installed in this database"),
					 errhint("Run CREATE EXTENSION durable.")));
		owner_oid = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
	}
	return owner_oid;
}

/*
 * caller_is_admin: the extension's owner, superusers and members of the
 * owner's role need no grant.
 */
static bool
caller_is_admin(Oid uid)
{
	return uid == extension_owner() || superuser_arg(uid) ||
		has_privs_of_role(uid, extension_owner());
}

/*
 * Answers of the grants lookup, kept per backend: a worker or client that
 * is not an admin would otherwise pay one more statement per call.  The
 * cache empties whenever durable.grants changes (its trigger sends a
 * relcache invalidation to every backend at commit, and to this one at
 * once) and whenever role memberships or roles change (pg_has_role).
 * A backend reads those invalidations when its next transaction starts
 * (or takes a new lock), so a revoke applies from the worker's next
 * transaction on.
 *
 * An answer is kept only if no invalidation arrived while it was looked
 * up (rights_generation): the lookup's snapshot may predate a change
 * whose invalidation the lookup itself consumed.  Names too long for the
 * key are looked up every time.
 */
#define RIGHTS_CACHE_MAX 1024

typedef struct RightsKey
{
	Oid			uid;
	int			right;
	char		ns[DURABLE_MAX_NAME + 1];
	char		queue[DURABLE_MAX_NAME + 1];
} RightsKey;

typedef struct RightsEntry
{
	RightsKey	key;
	bool		ok;
} RightsEntry;

static HTAB *rights_cache = NULL;
static Oid	grants_relid = InvalidOid;	/* unknown: any relcache change counts */
static uint64 rights_generation = 0;

static void
rights_cache_reset(void)
{
	rights_generation++;
	if (rights_cache != NULL)
	{
		hash_destroy(rights_cache);
		rights_cache = NULL;
	}
}

static void
rights_relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == grants_relid || grants_relid == InvalidOid)
	{
		rights_cache_reset();
		grants_relid = InvalidOid;
	}
}

static void
rights_roles_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	rights_cache_reset();
}

static HTAB *
rights_cache_get(void)
{
	static bool callbacks = false;

	if (!callbacks)
	{
		CacheRegisterRelcacheCallback(rights_relcache_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, rights_roles_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, rights_roles_changed, (Datum) 0);
		callbacks = true;
	}
	if (rights_cache == NULL || hash_get_num_entries(rights_cache) >= RIGHTS_CACHE_MAX)
	{
		HASHCTL		ctl;

		rights_cache_reset();
		ctl.keysize = sizeof(RightsKey);
		ctl.entrysize = sizeof(RightsEntry);
		rights_cache = hash_create("durable rights", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	return rights_cache;
}

/*
 * has_right: does the current user hold the right for the namespace (and
 * queue, for workers)?  Admin grants cover everything.
 */
static bool
has_right(Oid uid, DurableRight right, const char *ns, const char *queue)
{
	static SPIPlanPtr plan = NULL;
	static const char *const kinds[] = {"client", "worker", "admin"};
	Oid			argtypes[4] = {OIDOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	DurableCall call;
	RightsKey	key;
	RightsEntry *entry;
	bool		found;
	bool		ok;
	bool		cacheable;
	uint64		generation;

	if (caller_is_admin(uid))
		return true;

	ns = ns ? ns : "*";
	queue = queue ? queue : "*";
	cacheable = strlen(ns) < sizeof(key.ns) && strlen(queue) < sizeof(key.queue);
	if (cacheable)
	{
		memset(&key, 0, sizeof(key));
		key.uid = uid;
		key.right = (int) right;
		strlcpy(key.ns, ns, sizeof(key.ns));
		strlcpy(key.queue, queue, sizeof(key.queue));
		entry = hash_search(rights_cache_get(), &key, HASH_FIND, NULL);
		if (entry != NULL)
			return entry->ok;
	}
	generation = rights_generation;

	values[0] = ObjectIdGetDatum(uid);
	values[1] = CStringGetTextDatum(kinds[right]);
	values[2] = CStringGetTextDatum(ns);
	values[3] = CStringGetTextDatum(queue);

	durable_enter(&call);
	durable_plan(&plan,
				 "SELECT 1 FROM durable.grants g "
				 " WHERE pg_catalog.pg_has_role($1, g.role, 'USAGE') "
				 "   AND (g.kind = 'admin' OR (g.kind = $2 "
				 "        AND g.namespace IN ($3, '*') "
				 "        AND g.queue IN ($4, '*'))) LIMIT 1",
				 4, argtypes);
	durable_exec_latest(plan, values, NULL, 1);
	ok = SPI_processed > 0;
	if (!OidIsValid(grants_relid))
		grants_relid = get_relname_relid("grants", get_namespace_oid("durable", false));
	durable_leave(&call);

	if (cacheable && generation == rights_generation)
	{
		entry = hash_search(rights_cache_get(), &key, HASH_ENTER, &found);
		entry->ok = ok;
	}
	return ok;
}

/*
 * durable.table_changed(): statement trigger on durable.grants and
 * durable.queues.  Every backend drops what it cached of the table when
 * the change commits (this one at once).
 */
PG_FUNCTION_INFO_V1(durable_table_changed);
Datum
durable_table_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("durable.table_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * durable_check_right: raise DU009 unless the current user holds the
 * right.  Call it before durable_enter, while still acting as the caller.
 */
void
durable_check_right(DurableRight right, const char *ns, const char *queue)
{
	durable_check_right_of(GetUserId(), right, ns, queue);
}

/*
 * durable_check_right_of: the same for a given role, for checks made
 * after durable_enter (the caller is then in DurableCall.saved_userid).
 */
void
durable_check_right_of(Oid uid, DurableRight right, const char *ns,
					   const char *queue)
{
	if (has_right(uid, right, ns, queue))
		return;
	if (right == DURABLE_RIGHT_WORKER)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_ACCESS_DENIED),
				 errmsg("permission denied for queue \"%s\" in namespace \"%s\"",
						queue ? queue : "*", ns),
				 errdetail("Role \"%s\" holds no worker right on this queue.",
						   GetUserNameFromId(uid, false)),
				 errhint("An administrator can run durable.grant_worker().")));
	else if (right == DURABLE_RIGHT_CLIENT)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_ACCESS_DENIED),
				 errmsg("permission denied for namespace \"%s\"", ns),
				 errdetail("Role \"%s\" holds no client right on this namespace.",
						   GetUserNameFromId(uid, false)),
				 errhint("An administrator can run durable.grant_client().")));
	else
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_ACCESS_DENIED),
				 errmsg("permission denied for durable administration"),
				 errdetail("Role \"%s\" holds no admin right.",
						   GetUserNameFromId(uid, false)),
				 errhint("An administrator can run durable.grant_admin().")));
}

/*
 * durable_enter: connect SPI and act as the extension's owner until
 * durable_leave.  Errors in between abort the (sub)transaction, which
 * restores the user and closes SPI.
 */
void
durable_enter(DurableCall *call)
{
	Oid			owner = extension_owner();

	/*
	 * The engine's statements resolve operators and functions through
	 * search_path while acting as the owner, so they must never see the
	 * caller's schemas.  Functions declared with SET search_path already
	 * run with the pinned path; anything else (the views' may_read) gets
	 * it here.
	 */
	durable_input_errcode = ERRCODE_DURABLE_INVALID_ARGUMENT;
	call->guc_nest = -1;
	if (namespace_search_path == NULL ||
		strcmp(namespace_search_path, DURABLE_SEARCH_PATH) != 0)
	{
		call->guc_nest = NewGUCNestLevel();
		(void) set_config_option("search_path", DURABLE_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
	}
	GetUserIdAndSecContext(&call->saved_userid, &call->saved_sec_context);
	SetUserIdAndSecContext(owner,
						   call->saved_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
durable_leave(DurableCall *call)
{
	SPI_finish();
	SetUserIdAndSecContext(call->saved_userid, call->saved_sec_context);
	if (call->guc_nest >= 0)
		AtEOXact_GUC(true, call->guc_nest);
}

/*
 * durable_may_read(namespace): true when the current user may read runs of
 * the namespace.  Used by the views once per row, so the last answer is
 * remembered for the rest of the transaction.
 */
PG_FUNCTION_INFO_V1(durable_may_read);
Datum
durable_may_read(PG_FUNCTION_ARGS)
{
	static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
	static Oid	cached_user = InvalidOid;
	static char cached_ns[DURABLE_MAX_NAME + 1];
	static bool cached_answer;
	char	   *ns;
	bool		answer;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	ns = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (DURABLE_MY_LXID == cached_lxid && GetUserId() == cached_user &&
		strcmp(ns, cached_ns) == 0)
		PG_RETURN_BOOL(cached_answer);

	answer = has_right(GetUserId(), DURABLE_RIGHT_CLIENT, ns, NULL);

	cached_lxid = DURABLE_MY_LXID;
	cached_user = GetUserId();
	strlcpy(cached_ns, ns, sizeof(cached_ns));
	cached_answer = answer;
	PG_RETURN_BOOL(answer);
}
