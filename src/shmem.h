/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared memory and wake-ups (shmem.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_SHMEM_H
#define DURABLE_SHMEM_H

#include "durable.h"

/* shared memory and wake-ups (shmem.c) */
extern void durable_queue_gained_work(const char *ns, const char *queue);
extern void durable_note_idle_poll(const char *ns, const char *queue, int room);
extern void durable_queue_gained_tasks(const char *ns, const char *queue, int ntasks);
extern void durable_poller_busy(void);
extern void durable_poller_set_room(int room);
extern char *durable_wake_channel;
extern bool durable_poll_should_expire(void);
extern int	durable_send_requested_notifies(void);
extern Oid	durable_launcher_take_wanted_db(void);
extern void durable_notify_init(void);
extern void durable_shmem_request(void);
extern void durable_bgw_register_self(void);
extern bool durable_bgw_serves_database(void);
extern void durable_bgw_register_launcher(void);
extern void durable_bgw_register_launcher_self(void);
extern void durable_bgw_set_next_wake(TimestampTz when);
extern void durable_run_closed(int64 run_id);
extern bool durable_result_wait_begin(int64 run_id);
extern void durable_result_wait_end(void);
extern void durable_bgw_wake(TimestampTz due);

/* live queries (wf_query): posted by the caller, taken by a poll */
typedef struct DurableQueryTask
{
	int64		token;			/* negative: not a task's */
	int64		run_id;
	char	   *name;
	char	   *args;			/* jsonb text */
	TimestampTz deadline;		/* when its caller gives up */
} DurableQueryTask;

extern int	durable_max_queries;
extern bool durable_queries_available(void);
extern bool durable_query_post(const char *ns, const char *queue, int64 run_id,
							   const char *name, const char *args, TimestampTz deadline);
extern char *durable_query_wait(TimestampTz deadline, bool *is_error, bool *taken);
extern void durable_query_end(void);
extern int	durable_queries_take(const char *ns, const char *queue, int max,
								 DurableQueryTask **taken);
extern bool durable_query_lookup(int64 token, char **ns, char **queue);
extern bool durable_query_answer(int64 token, const char *answer, bool is_error);

#endif							/* DURABLE_SHMEM_H */
