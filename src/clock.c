/*-------------------------------------------------------------------------
 *
 * clock.c
 *	  durable's clock: the only source of "now" for due times, leases and
 *	  deadlines (the database's, never a client's), and the namespace the
 *	  session's calls act in.  Everything above reads these; they call
 *	  nothing of durable's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"

#include "durable.h"
#include "clock.h"

/*
 * durable_now: the engine's clock.  It is the transaction's timestamp
 * (the database clock, never a client's), shifted by durable.clock_offset
 * so tests can move time forward without sleeping.
 */
TimestampTz
durable_now(void)
{
	return GetCurrentTransactionStartTimestamp() +
		(int64) durable_clock_offset_s * USECS_PER_SEC;
}

/*
 * durable_current_namespace: the namespace the session's calls act in
 * (the durable.namespace setting).
 */
const char *
durable_current_namespace(void)
{
	return durable_namespace ? durable_namespace : "default";
}
