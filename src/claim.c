/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  The claim path: durable.task_poll.  One prepared statement claims up
 *	  to max_tasks ready tasks of a queue in priority, then ready-time order
 *	  with FOR UPDATE SKIP LOCKED, gives each a new fencing token and lease,
 *	  and returns everything the worker needs (input, journal, heartbeat
 *	  details) in the same round trip.
 *
 *	  Before claiming, a poll expires a few leases that ran out (any
 *	  queue; at most one poll per 100 ms does this), so abandoned work
 *	  comes back even without the background worker.  It may also first complete the caller's previous tasks, so
 *	  a busy worker pays one commit per batch (finish + claim).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "task.h"
#include "tick.h"

/* leases expired per poll; the background worker takes larger batches */
#define POLL_EXPIRE_LIMIT 10
#define POLL_COLUMNS 13

extern void complete_many(ArrayType *tokens, ArrayType *results, Oid caller,
						  TimestampTz now);


PG_FUNCTION_INFO_V1(durable_task_poll);
Datum
durable_task_poll(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID,
	INTERVALOID, TEXTOID};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *ns = current_namespace();
	const char *queue;
	const char *worker;
	int			max_tasks;
	Interval   *lease;
	TimestampTz now = durable_now();
	DurableCall call;
	Datum		values[6];
	uint64		i;
	int			pass;
	int			claimed = 0;

	queue = check_queue_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	worker = check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1),
						"worker name", DURABLE_MAX_NAME);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("max_tasks must not be NULL")));
	max_tasks = check_positive_int(PG_GETARG_INT32(2), "max_tasks", DURABLE_MAX_BATCH);
	lease = check_interval(PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3),
						   "lease", false);
	if (PG_ARGISNULL(4) && !PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("done_results needs done_tokens")));

	InitMaterializedSRF(fcinfo, 0);
	durable_check_right(DURABLE_RIGHT_WORKER, ns, queue);
	durable_enter(&call);

	if (!PG_ARGISNULL(4))
		complete_many(PG_GETARG_ARRAYTYPE_P(4),
					  PG_ARGISNULL(5) ? NULL : PG_GETARG_ARRAYTYPE_P(5),
					  call.saved_userid, now);

	if (durable_poll_should_expire())
		expire_leases(now, POLL_EXPIRE_LIMIT);

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(queue);
	values[2] = TimestampTzGetDatum(now);
	values[3] = Int32GetDatum(max_tasks);
	values[4] = IntervalPGetDatum(lease);
	values[5] = CStringGetTextDatum(worker);
	durable_plan(&plan,
				 "WITH c AS (SELECT run_id, seq, row_number() OVER () AS pos FROM "
				 "           (SELECT run_id, seq FROM durable.tasks "
				 "             WHERE namespace = $1 AND queue = $2 AND state = 'ready' "
				 "               AND visible_at <= $3 "
				 "               AND NOT EXISTS (SELECT FROM durable.queues q "
				 "                   WHERE q.namespace = $1 AND q.queue = $2 AND q.paused) "
				 "             ORDER BY priority DESC, visible_at "
				 "             LIMIT $4 FOR UPDATE SKIP LOCKED) x), "
				 "     u AS (UPDATE durable.tasks t "
				 "   SET state = 'leased', token = nextval('durable.token_seq'), "
				 "       worker = $6, attempt = t.attempt + 1, claimed_at = $3, "
				 "       rerun = false, heartbeat_at = NULL, "
				 "       lease = LEAST(coalesce((s.options->>'start_to_close_ms')::bigint "
				 "                              * interval '1 ms', $5), "
				 "                     (s.options->>'heartbeat_ms')::bigint * interval '1 ms'), "
				 "       visible_at = $3 + LEAST(coalesce((s.options->>'start_to_close_ms')::bigint "
				 "                                          * interval '1 ms', $5), "
				 "                                 (s.options->>'heartbeat_ms')::bigint "
				 "                                          * interval '1 ms') "
				 "  FROM c JOIN durable.runs r ON r.run_id = c.run_id "
				 "       LEFT JOIN durable.steps s ON s.run_id = c.run_id AND s.seq = c.seq "
				 " WHERE t.run_id = c.run_id AND t.seq = c.seq "
				 "RETURNING t.token, t.kind, r.workflow_id, t.run_id, r.workflow_type, "
				 "       coalesce(s.name, r.workflow_type) AS name, nullif(t.seq, 0) AS seq, "
				 "       CASE WHEN t.seq = 0 THEN r.input ELSE s.input END AS input, t.attempt, "
				 "       CASE WHEN t.seq = 0 THEN "
				 "         (SELECT coalesce(jsonb_agg(jsonb_build_object("
				 "                   'seq', j.seq, 'kind', j.kind, 'name', j.name, "
				 "                   'status', j.status, 'result', j.result, "
				 "                   'error', j.error) ORDER BY j.seq), '[]') "
				 "            FROM durable.steps j WHERE j.run_id = t.run_id) END AS journal, "
				 "       t.heartbeat, r.cancel_requested, t.visible_at, c.pos) "
				 "SELECT * FROM u ORDER BY pos",
				 6, types);
	/*
	 * A poll that comes back short raises the queue's idle flag (its worker
	 * is about to wait for NOTIFY) and then claims once more with a fresh
	 * snapshot.  A producer that committed before the flag went up is seen
	 * by that second claim; one that commits after sees the flag, at
	 * pre-commit or at commit (notify.c), and sends the wake-up.  So no
	 * wake-up is lost between a poll's snapshot and its worker's wait.
	 */
	for (pass = 0; pass < 2 && claimed < max_tasks; pass++)
	{
		if (pass == 1)
			durable_note_idle_poll(ns, queue);
		values[3] = Int32GetDatum(max_tasks - claimed);
		durable_exec(plan, values, NULL, false, 0);

		/* the first POLL_COLUMNS columns are the result row; pos only orders */
		for (i = 0; i < SPI_processed; i++)
		{
			Datum		out[POLL_COLUMNS];
			bool		nulls[POLL_COLUMNS];
			int			c;

			for (c = 0; c < POLL_COLUMNS; c++)
				out[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									   c + 1, &nulls[c]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
		}
		claimed += (int) SPI_processed;
	}

	durable_leave(&call);
	return (Datum) 0;
}
