/*-------------------------------------------------------------------------
 *
 * tick.h
 *	  The periodic work (tick.c), called by the background worker and by
 *	  durable.tick().
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_TICK_H
#define DURABLE_TICK_H

#include "durable.h"

extern bool durable_tick_backoff;
extern int	durable_tick_once(TimestampTz since, TimestampTz now, int limit, bool *more);
extern TimestampTz durable_tick_next_due(TimestampTz now);
extern int	durable_fire_schedules(TimestampTz now, int limit);

#endif							/* DURABLE_TICK_H */
