/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  durable.metrics(): the counters and histograms of metrics.c and the
 *	  gauges counted from the tables, one row per Prometheus sample;
 *	  durable.metrics_reset().
 *
 *	  Counting ready and leased tasks and open runs reads whole tables, so
 *	  the count is kept in shared memory and redone at most every
 *	  durable.metrics_gauge_interval: any number of scrapers and UI pages
 *	  cost one count per interval.  Only one backend of the server counts
 *	  at a time; the others return the previous count
 *	  (durable_gauges_age_seconds says how old).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "access.h"
#include "clock.h"
#include "metrics.h"
#include "spi.h"

int			durable_metrics_gauge_interval = 5000;	/* ms */

/* members of pg_monitor may read the metrics, as admins may */
static void
check_may_read_metrics(void)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_MONITOR))
		durable_check_right(DURABLE_RIGHT_ADMIN, NULL, NULL);
}

/* the gauges, counted now */
static void
count_gauges(void)
{
	static SPIPlanPtr tasks_plan = NULL;
	static SPIPlanPtr runs_plan = NULL;
	static const Oid types[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	MetricSample *g;
	int			n = 0,
				max;
	uint64		i;
	DurableCall call;
	TimestampTz began = GetCurrentTimestamp();

	durable_enter(&call);
	values[0] = TimestampTzGetDatum(durable_now());
	durable_plan(&tasks_plan,
				 "SELECT namespace, queue, kind, state, count(*)::float8, "
				 "       extract(epoch FROM $1 - min(visible_at) "
				 "               FILTER (WHERE state = 'ready' AND visible_at <= $1))::float8 "
				 "  FROM durable.tasks GROUP BY 1, 2, 3, 4",
				 1, types);
	durable_exec(tasks_plan, values, NULL, true, 0);
	max = (int) SPI_processed * 2 + 16;
	g = palloc0(sizeof(MetricSample) * max);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		age;
		int			l;

		g[n].metric = METRIC_TASKS;
		for (l = 0; l < 4; l++)
			g[n].labels[l] = SPI_getvalue(tup, desc, l + 1);
		g[n].value = DatumGetFloat8(SPI_getbinval(tup, desc, 5, &isnull));
		n++;
		age = SPI_getbinval(tup, desc, 6, &isnull);
		if (!isnull)
		{
			g[n].metric = METRIC_OLDEST_READY_AGE;
			for (l = 0; l < 3; l++)
				g[n].labels[l] = g[n - 1].labels[l];
			g[n].value = Max(DatumGetFloat8(age), 0);
			n++;
		}
	}
	durable_plan(&runs_plan,
				 "SELECT namespace, count(*)::float8 FROM durable.runs "
				 " WHERE status = 'running' GROUP BY 1",
				 0, NULL);
	durable_exec(runs_plan, NULL, NULL, true, 0);
	if (n + (int) SPI_processed > max)
		g = repalloc(g, sizeof(MetricSample) * (n + SPI_processed));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		memset(&g[n], 0, sizeof(MetricSample));
		g[n].metric = METRIC_RUNS_OPEN;
		g[n].labels[0] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		g[n].value = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		n++;
	}
	/* before SPI_finish frees g and its labels */
	durable_metrics_set_gauges(g, n, (double) (GetCurrentTimestamp() - began) / 1000.0);
	durable_leave(&call);
}

/*
 * count the gauges if the last count is older than the interval, or than
 * GAUGE_COST_FACTOR times what the last count took: however often a
 * large backlog is scraped, counting it takes at most a twentieth of one
 * core (a million ready tasks and open runs took about 1 s)
 */
#define GAUGE_COST_FACTOR 20
static void
refresh_gauges(void)
{
	TimestampTz at;
	double		took_ms;

	if (!durable_metrics_active())
		return;					/* not preloaded: nowhere to keep them */
	at = durable_metrics_gauges_at(&took_ms);
	/* 0: every call counts (tests, and an operator who asks for it) */
	if (at != 0 && durable_metrics_gauge_interval > 0 &&
		!TimestampDifferenceExceeds(at, GetCurrentTimestamp(),
									Max(durable_metrics_gauge_interval,
										(int) Min(took_ms * GAUGE_COST_FACTOR, 3600 * 1000.0))))
		return;
	if (!durable_metrics_begin_refresh())
		return;
	PG_TRY();
	{
		count_gauges();
	}
	PG_FINALLY();
	{
		durable_metrics_end_refresh();
	}
	PG_END_TRY();
}

static int
sample_cmp(const void *a, const void *b)
{
	const MetricSample *x = a;
	const MetricSample *y = b;
	int			c = strcmp(durable_metric_defs[x->metric].family,
						   durable_metric_defs[y->metric].family);
	int			i;

	for (i = 0; c == 0 && i < METRIC_MAX_LABELS; i++)
		c = strcmp(x->labels[i] ? x->labels[i] : "", y->labels[i] ? y->labels[i] : "");
	return c;
}

/* a labels object: the series' labels, then extra (le) if given */
static Datum
labels_jsonb(const MetricSample *s, const char *le)
{
	const MetricDef *def = &durable_metric_defs[s->metric];
	StringInfoData buf;
	int			i;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < METRIC_MAX_LABELS && def->label_names[i] != NULL; i++)
	{
		if (!first)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, def->label_names[i]);
		appendStringInfoString(&buf, ": ");
		escape_json(&buf, s->labels[i] ? s->labels[i] : "");
		first = false;
	}
	if (le != NULL)
	{
		if (!first)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, "\"le\": ");
		escape_json(&buf, le);
	}
	appendStringInfoChar(&buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

static void
put_row(ReturnSetInfo *rsinfo, const MetricDef *def, const char *suffix,
		Datum labels, double value)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	values[0] = CStringGetTextDatum(def->family);
	values[1] = CStringGetTextDatum(def->kind);
	values[2] = CStringGetTextDatum(def->help);
	values[3] = CStringGetTextDatum(psprintf("%s%s", def->family, suffix));
	values[4] = labels;
	values[5] = Float8GetDatum(value);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static void
put_sample(ReturnSetInfo *rsinfo, const MetricSample *s)
{
	const MetricDef *def = &durable_metric_defs[s->metric];
	uint64		cumulative = 0;
	int			b;
	double		total;

	if (strcmp(def->kind, "histogram") != 0)
	{
		put_row(rsinfo, def, "", labels_jsonb(s, NULL), s->value);
		return;
	}
	for (b = 0; b < durable_metric_nbounds; b++)
	{
		cumulative += s->buckets[b];
		put_row(rsinfo, def, "_bucket",
				labels_jsonb(s, psprintf("%g", durable_metric_bounds[b])), (double) cumulative);
	}
	/* a commit adds the buckets before the count: never show fewer in +Inf */
	total = Max((double) s->count, (double) cumulative);
	put_row(rsinfo, def, "_bucket", labels_jsonb(s, "+Inf"), total);
	put_row(rsinfo, def, "_sum", labels_jsonb(s, NULL), s->sum);
	put_row(rsinfo, def, "_count", labels_jsonb(s, NULL), total);
}

/*
 * durable.metrics(): one row per sample, grouped by family; families
 * without labels are always there (zero until something happens).
 */
PG_FUNCTION_INFO_V1(durable_metrics);
Datum
durable_metrics(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MetricSample *samples;
	uint64		dropped;
	int			n,
				i,
				m;
	TimestampTz at;
	double		took_ms;
	static const MetricDef dropped_def = {"durable_metrics_dropped_total", "counter",
		"Counts lost because durable.metrics_series was full.", {NULL}};

	check_may_read_metrics();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	refresh_gauges();
	n = durable_metrics_read(&samples, &dropped);
	/* the families without labels, zero if nothing was counted yet */
	samples = repalloc(samples, sizeof(MetricSample) * (n + METRIC_COUNT));
	for (m = 0; m < METRIC_COUNT; m++)
	{
		bool		seen = false;

		if (durable_metric_defs[m].label_names[0] != NULL || m == METRIC_GAUGES_AGE)
			continue;
		for (i = 0; i < n && !seen; i++)
			seen = samples[i].metric == (DurableMetric) m;
		if (!seen)
		{
			memset(&samples[n], 0, sizeof(MetricSample));
			samples[n++].metric = (DurableMetric) m;
		}
	}
	qsort(samples, n, sizeof(MetricSample), sample_cmp);
	for (i = 0; i < n; i++)
		put_sample(rsinfo, &samples[i]);
	at = durable_metrics_gauges_at(&took_ms);
	if (at != 0)
		put_row(rsinfo, &durable_metric_defs[METRIC_GAUGES_AGE], "",
				DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")),
				(double) (GetCurrentTimestamp() - at) / USECS_PER_SEC);
	put_row(rsinfo, &dropped_def, "", DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")),
			(double) dropped);
	return (Datum) 0;
}

/*
 * durable.metrics_reset(): this database's counters and histograms start
 * again from zero (admins only).
 */
PG_FUNCTION_INFO_V1(durable_metrics_reset);
Datum
durable_metrics_reset(PG_FUNCTION_ARGS)
{
	durable_check_right(DURABLE_RIGHT_ADMIN, NULL, NULL);
	durable_metrics_reset_all();
	PG_RETURN_VOID();
}
