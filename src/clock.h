/*-------------------------------------------------------------------------
 *
 * clock.h
 *	  durable's clock and the session's namespace (clock.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_CLOCK_H
#define DURABLE_CLOCK_H

#include "durable.h"

/* the clock: the database's, shifted by durable.clock_offset for tests (clock.c) */
extern TimestampTz durable_now(void);
extern const char *durable_current_namespace(void);

#endif							/* DURABLE_CLOCK_H */
