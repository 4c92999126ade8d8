/*-------------------------------------------------------------------------
 *
 * queues.h
 *	  Queue settings (queues.c): pause, concurrency and rate limits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_QUEUES_H
#define DURABLE_QUEUES_H

#include "durable.h"

/* what durable_queue_settings says of a queue */
#define QUEUE_PLAIN 0
#define QUEUE_LIMITED 1			/* a concurrency or rate limit */
#define QUEUE_CONCURRENCY 2		/* (with QUEUE_LIMITED) a concurrency limit */
#define QUEUE_PAUSED 4			/* queue_pause: no task is handed out */

/*
 * A limited queue's state during one poll: its concurrency limit (0:
 * none) and its token bucket (rate 0: none), read under the queue row's
 * lock.
 */
typedef struct QueueLimits
{
	int			max_concurrency;
	double		rate;			/* tasks per second */
	double		tokens;			/* in the bucket at bucket_at */
	TimestampTz bucket_at;		/* now, or later if a newer poll wrote it */
	int			taken;			/* claimed so far by this poll */
} QueueLimits;

extern int	durable_queue_settings(const char *ns, const char *queue);
extern bool durable_queue_lock_limits(const char *ns, const char *queue,
									  TimestampTz now, QueueLimits *q);
extern int	durable_queue_room(const char *ns, const char *queue, QueueLimits *q);
extern void durable_queue_spend_tokens(const char *ns, const char *queue,
									   QueueLimits *q, bool came_back_short);

/* a leased task of a queue ended: wake a worker waiting on its limit */
extern void durable_queue_slot_freed(const char *ns, const char *queue);

#endif							/* DURABLE_QUEUES_H */
