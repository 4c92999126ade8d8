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
#define QUEUE_KEY_LIMITS 8		/* (with QUEUE_LIMITED) per-fairness-key concurrency */
#define QUEUE_RATE 16			/* (with QUEUE_LIMITED) a rate limit */

/* the first key of the advisory locks of fairness keys (durable_queue_lock_key) */
#define DURABLE_KEY_LOCK_CLASS 0x64757261	/* "dura" */

/* what a poll does with a task whose fairness key is at its concurrency limit */
typedef enum KeyOnLimit
{
	KEY_ON_LIMIT_WAIT,			/* it waits for a slot (the default) */
	KEY_ON_LIMIT_CANCEL_NEWEST, /* it is cancelled */
	KEY_ON_LIMIT_CANCEL_OLDEST	/* the key's oldest leased task is cancelled */
} KeyOnLimit;

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
	/* per-fairness-key concurrency (queue_set_key_concurrency) */
	bool		key_limits;
	int			key_default;	/* a key not in the overrides; -1: no limit */
	int			noverrides;
	char	  **override_keys;
	int		   *override_limits;
	KeyOnLimit	key_on_limit;	/* what a key at its limit does */
	/* per-fairness-key rate limit (queue_set_key_rate; 0: none) */
	double		key_rate;		/* tasks per second, per key */
	int			key_burst;
} QueueLimits;

/*
 * A fairness key during one poll of a queue with per-key limits: its
 * limit and its tasks leased (at the poll's start; exact once this poll
 * holds the key's lock).
 */
typedef struct KeyUsage
{
	char		key[DURABLE_MAX_NAME + 1];
	int			limit;			/* -1: none */
	bool		locked;			/* this transaction holds the key's lock */
	bool		busy;			/* another poll holds it, or nothing to claim */
	int			leased;			/* its tasks leased */
	/* (locked, on a queue with a per-key rate) its token bucket */
	double		tokens;
	TimestampTz bucket_at;		/* the time tokens is for */
	bool		spent;			/* this poll took tokens: store the bucket */
} KeyUsage;

extern int	durable_queue_settings(const char *ns, const char *queue);
extern bool durable_queue_lock_limits(const char *ns, const char *queue,
									  TimestampTz now, QueueLimits *q, bool lock);
extern int	durable_queue_room(const char *ns, const char *queue, QueueLimits *q);
extern void durable_queue_spend_tokens(const char *ns, const char *queue,
									   QueueLimits *q, bool came_back_short);
extern HTAB *durable_queue_key_usage(const char *ns, const char *queue, QueueLimits *q,
									 HTAB *before);
extern int	durable_queue_prune_key_buckets(TimestampTz now);
extern KeyUsage *durable_queue_key_entry(HTAB *usage, QueueLimits *q, const char *key);
extern bool durable_queue_key_excluded(QueueLimits *q, KeyUsage *e);
extern bool durable_queue_key_may_cancel(QueueLimits *q, KeyUsage *e);
extern bool durable_queue_key_needs_lock(QueueLimits *q, KeyUsage *e);
extern bool durable_queue_lock_key(const char *ns, const char *queue, QueueLimits *q,
								   KeyUsage *e, TimestampTz now);
extern void durable_queue_key_took(QueueLimits *q, KeyUsage *e);
extern void durable_queue_store_key_buckets(const char *ns, const char *queue, QueueLimits *q,
											HTAB *usage, TimestampTz now, bool came_back_short);

/* a leased task of a queue ended: wake a worker waiting on its limit */
extern void durable_queue_slot_freed(const char *ns, const char *queue);

#endif							/* DURABLE_QUEUES_H */
