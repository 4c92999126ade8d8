/*-------------------------------------------------------------------------
 *
 * cron.h
 *	  Schedule specs: cron expressions and fixed intervals (cron.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_CRON_H
#define DURABLE_CRON_H

#include "durable.h"
#include "pgtime.h"

typedef struct CronSpec
{
	bool		is_interval;
	int64		interval_ms;	/* every N ms from the anchor */
	uint64		seconds;		/* bit n: second n matches */
	uint64		minutes;
	uint32		hours;
	uint32		days;			/* bit 1..31 */
	uint32		months;			/* bit 1..12 */
	uint32		weekdays;		/* bit 0..6, Sunday = 0 */
	bool		days_star;
	bool		weekdays_star;
	pg_tz	   *tz;
} CronSpec;

extern void durable_cron_parse(const char *spec, const char *timezone, CronSpec *out);
extern TimestampTz durable_cron_next(const CronSpec *spec, TimestampTz after,
							 TimestampTz anchor);

#endif							/* DURABLE_CRON_H */
