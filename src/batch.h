/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  Batch operations over the runs a visibility query matches (batch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_BATCH_H
#define DURABLE_BATCH_H

#include "durable.h"

#include "datatype/timestamp.h"

extern int	durable_batches_step(TimestampTz now, int limit);

#endif							/* DURABLE_BATCH_H */
