/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  Schedules: the SQL functions that manage them and durable_fire_schedules,
 *	  which the periodic work calls to start the workflows of due fire
 *	  times.
 *
 *	  Each fire time gets a deterministic workflow id, <schedule>-<UTC time>
 *	  (e.g. nightly-20301231T030000Z), and a fire whose id already has a run
 *	  is skipped, so a fire never starts twice, whatever crashes or
 *	  backfills happen.  Overlap policies decide what to do while the
 *	  previous fire's run is still open: skip (default), buffer_one (start
 *	  it when the open one closes), allow_all, cancel_other (ask it to
 *	  cancel and start) and terminate_other.  After downtime, missed fires
 *	  within the catch-up window fire (in order, subject to the overlap
 *	  policy); older ones are counted as skipped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include "cron.h"
#include "task.h"
#include "tick.h"
#include "access.h"
#include "clock.h"
#include "engine.h"
#include "json.h"
#include "shmem.h"
#include "spi.h"
#include "validate.h"

typedef struct Schedule
{
	char	   *ns;
	char	   *name;
	char	   *spec;
	char	   *timezone;
	char	   *type;
	Jsonb	   *input;
	char	   *queue;
	Jsonb	   *options;
	char	   *overlap;
	int64		catchup_ms;
	bool		paused;
	TimestampTz next_fire_at;	/* 0 = never */
	char	   *last_workflow_id;
	TimestampTz buffered_fire_at;
	TimestampTz created_at;
	CronSpec	cron;
} Schedule;

static const char *
name_arg(FunctionCallInfo fcinfo)
{
	return durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
					  "schedule name", DURABLE_MAX_NAME);
}

static TimestampTz
get_ts(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

static Jsonb *
get_jsonb(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

/*
 * load_schedule: read and lock a schedule of the current namespace.
 */
static bool
load_schedule(const char *ns, const char *name, Schedule *s, bool must_exist)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	durable_plan(&plan,
				 "SELECT spec, timezone, workflow_type, input, queue, workflow_options, "
				 "       overlap, (extract(epoch FROM catchup_window) * 1000.0)::bigint, "
				 "       paused, next_fire_at, last_workflow_id, buffered_fire_at, created_at "
				 "  FROM durable.schedules WHERE namespace = $1 AND name = $2 FOR UPDATE",
				 2, types);
	durable_exec(plan, values, NULL, false, 1);
	if (SPI_processed != 1)
	{
		if (must_exist)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("schedule \"%s\" does not exist", name),
					 errdetail("No schedule of that name is in namespace \"%s\".", ns),
					 errhint("durable.schedule_list shows the schedules.")));
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	s->ns = pstrdup(ns);
	s->name = pstrdup(name);
	s->spec = SPI_getvalue(tup, desc, 1);
	s->timezone = SPI_getvalue(tup, desc, 2);
	s->type = SPI_getvalue(tup, desc, 3);
	s->input = get_jsonb(tup, desc, 4);
	s->queue = SPI_getvalue(tup, desc, 5);
	s->options = get_jsonb(tup, desc, 6);
	s->overlap = SPI_getvalue(tup, desc, 7);
	s->catchup_ms = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
	s->paused = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
	s->next_fire_at = get_ts(tup, desc, 10);
	s->last_workflow_id = SPI_getvalue(tup, desc, 11);
	s->buffered_fire_at = get_ts(tup, desc, 12);
	s->created_at = get_ts(tup, desc, 13);
	durable_cron_parse(s->spec, s->timezone, &s->cron);
	return true;
}

static void
save_schedule(Schedule *s, TimestampTz last_fire, int64 fired, int64 skipped)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[9] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TEXTOID, TIMESTAMPTZOID, INT8OID, INT8OID, BOOLOID};
	Datum		values[9];
	char		nulls[9] = "         ";

	values[0] = CStringGetTextDatum(s->ns);
	values[1] = CStringGetTextDatum(s->name);
	values[2] = TimestampTzGetDatum(s->next_fire_at);
	nulls[2] = s->next_fire_at ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(last_fire);
	nulls[3] = last_fire ? ' ' : 'n';
	values[4] = s->last_workflow_id ? CStringGetTextDatum(s->last_workflow_id) : (Datum) 0;
	nulls[4] = s->last_workflow_id ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(s->buffered_fire_at);
	nulls[5] = s->buffered_fire_at ? ' ' : 'n';
	values[6] = Int64GetDatum(fired);
	values[7] = Int64GetDatum(skipped);
	values[8] = BoolGetDatum(s->paused);
	durable_plan(&plan,
				 "UPDATE durable.schedules SET next_fire_at = $3, "
				 "       last_fire_at = coalesce($4, last_fire_at), last_workflow_id = $5, "
				 "       buffered_fire_at = $6, fires = fires + $7, skipped = skipped + $8, "
				 "       paused = $9 "
				 " WHERE namespace = $1 AND name = $2",
				 9, types);
	durable_exec(plan, values, nulls, false, 0);
}

/*
 * fire_workflow_id: <schedule>-<fire time in UTC>, to the second
 * (nightly-20301231T030000Z), or to the microsecond when the time has a
 * fraction (a trigger fires at the moment it is called).
 */
static char *
fire_workflow_id(Schedule *s, TimestampTz fire)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(fire, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "durable: fire time out of range");
	if (fsec != 0)
		return psprintf("%s-%04d%02d%02dT%02d%02d%02d.%06dZ", s->name, tm.tm_year,
						tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
						(int) fsec);
	return psprintf("%s-%04d%02d%02dT%02d%02d%02dZ", s->name, tm.tm_year,
					tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* latest_run: does a run of the workflow id exist; the latest, and is it running */
static bool
latest_run(const char *ns, const char *workflow_id, int64 *run_id, bool *running)
{
	RunStatus	status;

	if (!durable_engine_find_latest_run(ns, workflow_id, run_id, &status, NULL, NULL, false))
		return false;
	*running = status == RUN_RUNNING;
	return true;
}

/*
 * fire: start the workflow of one fire time, by the overlap policy.
 * Returns the workflow id started, or NULL when the fire was skipped or
 * buffered.
 */
static char *
fire(Schedule *s, TimestampTz fire_time, const char *overlap, TimestampTz now)
{
	char	   *workflow_id = fire_workflow_id(s, fire_time);
	int64		run_id;
	bool		running;

	if (latest_run(s->ns, workflow_id, &run_id, &running))
		return NULL;			/* this fire already started a run */

	if (s->last_workflow_id &&
		latest_run(s->ns, s->last_workflow_id, &run_id, &running) && running)
	{
		if (strcmp(overlap, "skip") == 0)
			return NULL;
		if (strcmp(overlap, "buffer_one") == 0)
		{
			if (s->buffered_fire_at == 0)
				s->buffered_fire_at = fire_time;
			return NULL;
		}
		if (strcmp(overlap, "cancel_other") == 0)
			durable_engine_cancel_run(run_id, psprintf("schedule %s overlap", s->name), now);
		else if (strcmp(overlap, "terminate_other") == 0)
			durable_engine_terminate_run(run_id, psprintf("schedule %s overlap", s->name), now);
	}
	durable_start_run(s->ns, workflow_id, s->type, s->queue, s->input, s->options,
			  NULL, 0, 0, now, false);
	s->last_workflow_id = workflow_id;
	return workflow_id;
}

/*
 * durable_fire_schedules: due fire times of unpaused schedules, and buffered
 * fires whose blocking run has closed.  Part of the periodic work.
 */
int
durable_fire_schedules(TimestampTz now, int limit)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];
	int			n;
	int			i;
	char	  **nss;
	char	  **names;
	int			handled = 0;

	values[0] = TimestampTzGetDatum(now);
	values[1] = Int32GetDatum(limit);
	durable_plan(&plan,
				 "SELECT namespace, name FROM durable.schedules "
				 " WHERE NOT paused AND (next_fire_at <= $1 OR buffered_fire_at IS NOT NULL) "
				 " ORDER BY next_fire_at LIMIT $2 FOR UPDATE SKIP LOCKED",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	n = (int) SPI_processed;
	nss = palloc(sizeof(char *) * (n + 1));
	names = palloc(sizeof(char *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		nss[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}
	for (i = 0; i < n; i++)
	{
		Schedule	s;
		TimestampTz last = 0;
		int64		fired = 0;
		int64		skipped = 0;

		if (!load_schedule(nss[i], names[i], &s, false))
			continue;
		if (s.buffered_fire_at)
		{
			TimestampTz b = s.buffered_fire_at;
			int64		run_id;
			bool		running = false;

			if (s.last_workflow_id == NULL ||
				!latest_run(s.ns, s.last_workflow_id, &run_id, &running) || !running)
			{
				s.buffered_fire_at = 0;
				if (fire(&s, b, "allow_all", now))
					fired++;
			}
		}
		while (s.next_fire_at != 0 && s.next_fire_at <= now && handled < limit)
		{
			if (now - s.next_fire_at > s.catchup_ms * 1000)
				skipped++;		/* missed beyond the catch-up window */
			else if (fire(&s, s.next_fire_at, s.overlap, now))
				fired++;
			else
				skipped++;
			last = s.next_fire_at;
			s.next_fire_at = durable_cron_next(&s.cron, s.next_fire_at, s.created_at);
			handled++;
		}
		save_schedule(&s, last, fired, skipped);
	}
	return handled;
}

static void set_note(Schedule *s, const char *note);

/*
 * The options of schedule_create and schedule_update; NULL, or has_* false,
 * where the options do not say.
 */
typedef struct ScheduleOptions
{
	char	   *queue;
	char	   *timezone;
	char	   *overlap;
	bool		has_catchup;
	int64		catchup_ms;
	bool		has_paused;
	bool		paused;
	char	   *note;
	Jsonb	   *workflow_options;
} ScheduleOptions;

static void
parse_schedule_options(Jsonb *options, ScheduleOptions *o)
{
	static const char *const keys[] = {"queue", "timezone", "overlap",
	"catchup_window", "paused", "note", "workflow_options", NULL};
	const char *ctx = "schedule options";
	JsonbValue *v;

	memset(o, 0, sizeof(*o));
	durable_jb_check_keys(options, ctx, keys);
	o->queue = durable_jb_get_string(options, "queue", ctx, DURABLE_MAX_QUEUE, false);
	if (o->queue)
		durable_check_queue_cstring(o->queue);
	o->timezone = durable_jb_get_string(options, "timezone", ctx, 100, false);
	o->overlap = durable_jb_get_string(options, "overlap", ctx, 32, false);
	if (o->overlap && strcmp(o->overlap, "skip") != 0 && strcmp(o->overlap, "buffer_one") != 0 &&
		strcmp(o->overlap, "allow_all") != 0 && strcmp(o->overlap, "cancel_other") != 0 &&
		strcmp(o->overlap, "terminate_other") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("invalid schedule options: unknown overlap policy \"%s\"", o->overlap),
				 errhint("Use skip, buffer_one, allow_all, cancel_other or terminate_other.")));
	o->has_catchup = durable_jb_get_duration_ms(options, "catchup_window", ctx, &o->catchup_ms);
	v = durable_jb_get(options, "paused");
	if (v && v->type == jbvBool)
	{
		o->has_paused = true;
		o->paused = v->val.boolean;
	}
	else if (v && v->type != jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("invalid schedule options: \"paused\" must be true or false")));
	o->note = durable_jb_get_string(options, "note", ctx, 1000, false);
	v = durable_jb_get(options, "workflow_options");
	if (v && v->type != jbvNull)
	{
		o->workflow_options = JsonbValueToJsonb(v);
		if (!JB_ROOT_IS_OBJECT(o->workflow_options))
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("invalid schedule options: \"workflow_options\" must be a JSON object")));
		if (durable_jb_get(o->workflow_options, "start_delay") ||
			durable_jb_get(o->workflow_options, "request_id"))
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("invalid schedule options: workflow_options cannot set start_delay or request_id")));
	}
}

/*
 * first_fire: the first fire time of a spec after now (an interval counts
 * from anchor, the schedule's creation); a spec that never fires is an
 * error.
 */
static TimestampTz
first_fire(const char *spec, const char *timezone, TimestampTz now, TimestampTz anchor)
{
	CronSpec	cron;
	TimestampTz next;

	durable_cron_parse(spec, timezone, &cron);
	next = durable_cron_next(&cron, now, anchor);
	if (next == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("schedule spec \"%s\" never fires", spec),
				 errdetail("No fire time was found in the next five years.")));
	return next;
}

/*
 * durable.schedule_create(name, spec, workflow, input, options)
 */
PG_FUNCTION_INFO_V1(durable_schedule_create);
Datum
durable_schedule_create(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[14] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		JSONBOID, TEXTOID, JSONBOID, TEXTOID, FLOAT8OID, BOOLOID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID};
	const char *ns = durable_current_namespace();
	const char *name = name_arg(fcinfo);
	const char *spec;
	const char *type;
	Jsonb	   *input = durable_get_jsonb_arg(fcinfo, 3);
	ScheduleOptions o;
	TimestampTz now = durable_now();
	TimestampTz next;
	Datum		values[14];
	char		nulls[14] = "              ";
	DurableCall call;

	spec = durable_check_name(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1), "schedule spec", 200);
	type = durable_check_name(PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2), "workflow name", DURABLE_MAX_NAME);
	durable_check_payload(input, "schedule input");
	parse_schedule_options(durable_get_jsonb_arg(fcinfo, 4), &o);
	next = first_fire(spec, o.timezone, now, now);

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(spec);
	values[3] = CStringGetTextDatum(o.timezone ? o.timezone : "UTC");
	values[4] = CStringGetTextDatum(type);
	values[5] = PointerGetDatum(input);
	nulls[5] = input ? ' ' : 'n';
	values[6] = CStringGetTextDatum(o.queue ? o.queue : "default");
	values[7] = PointerGetDatum(o.workflow_options ? o.workflow_options : durable_jb_cstring("{}"));
	values[8] = CStringGetTextDatum(o.overlap ? o.overlap : "skip");
	values[9] = Float8GetDatum((double) (o.has_catchup ? o.catchup_ms : (int64) 365 * 86400000));
	values[10] = BoolGetDatum(o.paused);
	values[11] = o.note ? CStringGetTextDatum(o.note) : (Datum) 0;
	nulls[11] = o.note ? ' ' : 'n';
	values[12] = TimestampTzGetDatum(now);
	values[13] = TimestampTzGetDatum(next);
	durable_plan(&plan,
				 "INSERT INTO durable.schedules (namespace, name, spec, timezone, "
				 "       workflow_type, input, queue, workflow_options, overlap, "
				 "       catchup_window, paused, note, created_at, next_fire_at) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10 * interval '1 ms', "
				 "        $11, $12, $13, $14) "
				 "ON CONFLICT DO NOTHING",
				 14, types);
	durable_exec(plan, values, nulls, false, 0);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_WORKFLOW_EXISTS),
				 errmsg("schedule \"%s\" already exists", name),
				 errdetail("Namespace \"%s\" has a schedule of that name.", ns),
				 errhint("Delete it first with durable.schedule_delete, or choose another name.")));
	durable_leave(&call);
	durable_bgw_wake(next);
	PG_RETURN_TIMESTAMPTZ(next);
}

/*
 * durable.schedule_update(name, spec, workflow, input, options) -> next
 * fire time: change a schedule in place.  NULL arguments, and options the
 * object does not name, keep what the schedule has (JSON null as input
 * clears it: pass 'null'::jsonb).  A new spec or time zone recomputes the
 * next fire time from now; the schedule keeps its counts, its last run
 * and a buffered fire.
 */
PG_FUNCTION_INFO_V1(durable_schedule_update);
Datum
durable_schedule_update(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[13] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		JSONBOID, BOOLOID, TEXTOID, JSONBOID, TEXTOID, FLOAT8OID, BOOLOID,
	TIMESTAMPTZOID};
	const char *ns = durable_current_namespace();
	const char *name = name_arg(fcinfo);
	const char *spec = NULL;
	const char *type = NULL;
	Jsonb	   *input = durable_get_jsonb_arg(fcinfo, 3);
	ScheduleOptions o;
	Schedule	s;
	TimestampTz now = durable_now();
	TimestampTz next;
	Datum		values[13];
	char		nulls[13] = "             ";
	DurableCall call;

	if (!PG_ARGISNULL(1))
		spec = durable_check_name(PG_GETARG_TEXT_PP(1), "schedule spec", 200);
	if (!PG_ARGISNULL(2))
		type = durable_check_name(PG_GETARG_TEXT_PP(2), "workflow name", DURABLE_MAX_NAME);
	durable_check_payload(input, "schedule input");
	parse_schedule_options(durable_get_jsonb_arg(fcinfo, 4), &o);

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	load_schedule(ns, name, &s, true);
	if (spec || o.timezone)
		next = first_fire(spec ? spec : s.spec, o.timezone ? o.timezone : s.timezone, now,
						  s.created_at);
	else
		next = s.next_fire_at;
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(spec ? spec : s.spec);
	values[3] = CStringGetTextDatum(o.timezone ? o.timezone : s.timezone);
	values[4] = CStringGetTextDatum(type ? type : s.type);
	values[5] = PointerGetDatum(input);
	nulls[5] = input ? ' ' : 'n';
	values[6] = BoolGetDatum(input != NULL);
	values[7] = CStringGetTextDatum(o.queue ? o.queue : s.queue);
	values[8] = PointerGetDatum(o.workflow_options ? o.workflow_options : s.options);
	values[9] = CStringGetTextDatum(o.overlap ? o.overlap : s.overlap);
	values[10] = Float8GetDatum((double) (o.has_catchup ? o.catchup_ms : s.catchup_ms));
	values[11] = BoolGetDatum(o.has_paused ? o.paused : s.paused);
	values[12] = TimestampTzGetDatum(next);
	nulls[12] = next ? ' ' : 'n';
	durable_plan(&plan,
				 "UPDATE durable.schedules SET spec = $3, timezone = $4, workflow_type = $5, "
				 "       input = CASE WHEN $7 THEN nullif($6, 'null'::jsonb) ELSE input END, "
				 "       queue = $8, workflow_options = $9, overlap = $10, "
				 "       catchup_window = $11 * interval '1 ms', paused = $12, "
				 "       next_fire_at = $13 "
				 " WHERE namespace = $1 AND name = $2",
				 13, types);
	durable_exec(plan, values, nulls, false, 0);
	set_note(&s, o.note);
	durable_leave(&call);
	if (next)
		durable_bgw_wake(next);
	if (next == 0)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(next);
}

static void
set_note(Schedule *s, const char *note)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];

	if (note == NULL)
		return;
	values[0] = CStringGetTextDatum(s->ns);
	values[1] = CStringGetTextDatum(s->name);
	values[2] = CStringGetTextDatum(note);
	durable_plan(&plan,
				 "UPDATE durable.schedules SET note = $3 WHERE namespace = $1 AND name = $2",
				 3, types);
	durable_exec(plan, values, NULL, false, 0);
}

PG_FUNCTION_INFO_V1(durable_schedule_pause);
Datum
durable_schedule_pause(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *name = name_arg(fcinfo);
	const char *note = durable_check_note_arg(fcinfo, 1);
	DurableCall call;
	Schedule	s;

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	load_schedule(ns, name, &s, true);
	s.paused = true;
	save_schedule(&s, 0, 0, 0);
	set_note(&s, note);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.schedule_unpause: resume from now; fires missed while paused
 * are not caught up.
 */
PG_FUNCTION_INFO_V1(durable_schedule_unpause);
Datum
durable_schedule_unpause(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *name = name_arg(fcinfo);
	const char *note = durable_check_note_arg(fcinfo, 1);
	TimestampTz now = durable_now();
	DurableCall call;
	Schedule	s;

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	load_schedule(ns, name, &s, true);
	if (s.paused)
	{
		s.paused = false;
		s.next_fire_at = durable_cron_next(&s.cron, now, s.created_at);
	}
	save_schedule(&s, 0, 0, 0);
	set_note(&s, note);
	durable_leave(&call);
	if (s.next_fire_at)
		durable_bgw_wake(s.next_fire_at);
	if (s.next_fire_at == 0)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(s.next_fire_at);
}

PG_FUNCTION_INFO_V1(durable_schedule_trigger);
Datum
durable_schedule_trigger(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *name = name_arg(fcinfo);
	TimestampTz now = durable_now();
	DurableCall call;
	Schedule	s;
	char	   *workflow_id;
	TimestampTz fire_at;
	int64		run_id;
	bool		running;

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	load_schedule(ns, name, &s, true);

	/*
	 * A trigger fires at the moment of the call, to the microsecond (the
	 * wall clock, shifted like durable's): two triggers in one second, or
	 * in one transaction, are two fires.  A time that already named a run
	 * (only possible within one microsecond) moves on by a microsecond.
	 */
	fire_at = GetCurrentTimestamp() + (int64) durable_clock_offset_s * USECS_PER_SEC;
	if (fire_at % USECS_PER_SEC == 0)
		fire_at++;				/* keep the microsecond form of the id */
	while (latest_run(s.ns, fire_workflow_id(&s, fire_at), &run_id, &running))
		fire_at++;
	workflow_id = fire(&s, fire_at, s.overlap, now);
	save_schedule(&s, 0, workflow_id ? 1 : 0, workflow_id ? 0 : 1);
	durable_leave(&call);
	if (workflow_id == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(workflow_id));
}

/*
 * durable.schedule_backfill(name, start, end): every fire time in
 * [start, end) that has no run yet starts one (overlap: allow_all).
 */
PG_FUNCTION_INFO_V1(durable_schedule_backfill);
Datum
durable_schedule_backfill(PG_FUNCTION_ARGS)
{
	const char *ns = durable_current_namespace();
	const char *name = name_arg(fcinfo);
	TimestampTz now = durable_now();
	TimestampTz start;
	TimestampTz end;
	TimestampTz t;
	DurableCall call;
	Schedule	s;
	char	   *last_workflow_id;
	int			started = 0;
	int			count = 0;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("backfill start and end must not be NULL")));
	start = PG_GETARG_TIMESTAMPTZ(1);
	end = PG_GETARG_TIMESTAMPTZ(2);
	if (TIMESTAMP_NOT_FINITE(start) || TIMESTAMP_NOT_FINITE(end) || end <= start)
		ereport(ERROR,
				(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
				 errmsg("backfill range is empty or infinite"),
				 errhint("Pass a finite start earlier than the end.")));
	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	load_schedule(ns, name, &s, true);
	/* backfilled runs are older fires: the latest fire's run stays last */
	last_workflow_id = s.last_workflow_id;
	for (t = durable_cron_next(&s.cron, start - 1, s.created_at); t != 0 && t < end;
		 t = durable_cron_next(&s.cron, t, s.created_at))
	{
		if (++count > 10000)
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("backfill range holds more than 10000 fire times"),
					 errhint("Backfill a shorter range at a time.")));
		if (fire(&s, t, "allow_all", now))
			started++;
	}
	s.last_workflow_id = last_workflow_id;
	save_schedule(&s, 0, started, 0);
	durable_leave(&call);
	PG_RETURN_INT32(started);
}

PG_FUNCTION_INFO_V1(durable_schedule_delete);
Datum
durable_schedule_delete(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	const char *ns = durable_current_namespace();
	const char *name = name_arg(fcinfo);
	Datum		values[2];
	DurableCall call;
	Schedule	s;

	durable_check_right(DURABLE_RIGHT_ADMIN, ns, NULL);
	durable_enter(&call);
	load_schedule(ns, name, &s, true);
	values[0] = CStringGetTextDatum(ns);
	values[1] = CStringGetTextDatum(name);
	durable_plan(&plan,
				 "DELETE FROM durable.schedules WHERE namespace = $1 AND name = $2",
				 2, types);
	durable_exec(plan, values, NULL, false, 0);
	durable_leave(&call);
	PG_RETURN_VOID();
}

/*
 * durable.schedule_next_times(spec, count, timezone): check a spec.
 */
PG_FUNCTION_INFO_V1(durable_schedule_next_times);
Datum
durable_schedule_next_times(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *spec;
	const char *timezone = NULL;
	int			count;
	CronSpec	cron;
	TimestampTz t = durable_now();
	TimestampTz anchor;
	int			i;

	spec = durable_check_name(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), "schedule spec", 200);
	count = durable_check_positive_int(PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1), "count", 1000);
	if (!PG_ARGISNULL(2))
		timezone = durable_check_name(PG_GETARG_TEXT_PP(2), "time zone", 100);
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		t = PG_GETARG_TIMESTAMPTZ(3);
		if (TIMESTAMP_NOT_FINITE(t))
			ereport(ERROR,
					(errcode(ERRCODE_DURABLE_INVALID_ARGUMENT),
					 errmsg("after must be a finite time")));
	}
	durable_cron_parse(spec, timezone, &cron);
	anchor = t;
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (i = 0; i < count; i++)
	{
		Datum		v;
		bool		isnull = false;

		t = durable_cron_next(&cron, t, anchor);
		if (t == 0)
			break;
		v = TimestampTzGetDatum(t);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	return (Datum) 0;
}
