/*-------------------------------------------------------------------------
 *
 * metrics.h
 *	  Counters and histograms in shared memory (metrics.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_METRICS_H
#define DURABLE_METRICS_H

#include "durable.h"

/*
 * What is counted.  The labels each metric takes are in metrics.c's table
 * of definitions; callers pass them in that order (NULL for the unused).
 */
typedef enum DurableMetric
{
	/* counters */
	METRIC_WORKFLOWS_STARTED,	/* namespace, type */
	METRIC_WORKFLOWS_CLOSED,	/* namespace, type, status */
	METRIC_TASKS_CLAIMED,		/* namespace, queue, kind */
	METRIC_TASK_FAILURES,		/* namespace, queue, kind */
	METRIC_TASK_RETRIES,		/* namespace, queue, kind */
	METRIC_LEASE_EXPIRIES,		/* namespace, queue, kind */
	METRIC_WAKEUPS_SENT,		/* (none) */
	/* histograms, in seconds */
	METRIC_SCHEDULE_TO_START,	/* namespace, queue, kind */
	METRIC_TIMER_LATENESS,		/* (none) */
	/* gauges, counted from the tables (stats.c) */
	METRIC_TASKS,				/* namespace, queue, kind, state */
	METRIC_OLDEST_READY_AGE,	/* namespace, queue, kind */
	METRIC_RUNS_OPEN,			/* namespace */
	METRIC_GAUGES_AGE,			/* (none) */
	METRIC_COUNT
} DurableMetric;

#define METRIC_MAX_LABELS 4

/* one series of this database, copied out of shared memory */
typedef struct MetricSample
{
	DurableMetric metric;
	const char *labels[METRIC_MAX_LABELS];
	double		value;			/* counters and gauges */
	uint64		buckets[16];	/* histograms: observations per bucket */
	uint64		count;
	double		sum;
} MetricSample;

typedef struct MetricDef
{
	const char *family;
	const char *kind;			/* counter, gauge or histogram */
	const char *help;
	const char *label_names[METRIC_MAX_LABELS];
} MetricDef;

extern const MetricDef durable_metric_defs[METRIC_COUNT];
extern const double durable_metric_bounds[];
extern const int durable_metric_nbounds;
extern int	durable_metrics_series;
extern bool durable_track_metrics;

extern void durable_metrics_shmem_request(void);
extern void durable_metrics_shmem_startup(void);
extern void durable_metrics_init(void);
extern void durable_metric_count(DurableMetric m, const char *l1, const char *l2,
								 const char *l3, int64 n);
extern void durable_metric_observe(DurableMetric m, const char *l1, const char *l2,
								   const char *l3, double seconds);
extern int	durable_metrics_read(MetricSample **out, uint64 *dropped);
extern void durable_metrics_set_gauges(const MetricSample *gauges, int n, double took_ms);
extern TimestampTz durable_metrics_gauges_at(double *took_ms);
extern bool durable_metrics_begin_refresh(void);
extern void durable_metrics_end_refresh(void);
extern bool durable_metrics_active(void);
extern void durable_metrics_reset_all(void);
extern int	durable_metrics_gauge_interval;

#endif							/* DURABLE_METRICS_H */
