/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  The state machine: the only writer of runs, tasks, steps, signals,
 *	  events and published (engine.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_ENGINE_H
#define DURABLE_ENGINE_H

#include "durable.h"
#include "state.h"

/* an activity's retry policy and timeouts (0: none), as its step keeps them */
typedef struct ActivityOptions
{
	Jsonb	   *retry;			/* as given, validated; NULL: defaults */
	int64		start_to_close_ms;
	int64		schedule_to_close_ms;
	int64		schedule_to_start_ms;
	int64		heartbeat_ms;
	/* fair order: both unset (NULL, 0): the run's key and weight */
	char	   *fairness_key;
	double		fairness_weight;
} ActivityOptions;

/* history (engine.c) */
extern void durable_history_add(int64 run_id, int seq, const char *event,
						Jsonb *details);

/* the state machine's transitions (engine.c) */
extern void durable_engine_wake_workflow(int64 run_id, TimestampTz now);
extern void durable_engine_wake_workflows(Datum run_ids, TimestampTz now);
extern int	durable_engine_close_runs(Datum run_ids, Datum outputs, RunStatus status,
							  Jsonb *error, TimestampTz now);
extern bool durable_engine_complete_by_token(int64 token, Jsonb *output,
											 TimestampTz now, int64 *run_id,
											 int *seq, char **ns, char **queue);
extern int64 durable_engine_reset_run(int64 run_id, const char *new_workflow_id,
									  int to_seq, TimestampTz now);
extern int64 durable_engine_reset(int64 run_id, bool running, int to_seq,
								  const char *reason, TimestampTz now);
extern char *durable_engine_reset_point(int64 run_id, int to_seq, bool fork);
extern int64 durable_engine_next_run(int64 run_id, Jsonb *input, bool retry,
							 TimestampTz now, TimestampTz ready_at);
extern void durable_engine_close_run(int64 run_id, RunStatus status, Jsonb *output,
							 Jsonb *error, TimestampTz now);
extern void durable_engine_resolve_step(int64 run_id, int seq, StepStatus status,
								Jsonb *result, Jsonb *error, TimestampTz now);
extern void durable_engine_delete_task(int64 run_id, int seq);
extern bool durable_engine_cancel_step(int64 run_id, int seq, TimestampTz now);
extern void durable_engine_upsert_search_attributes(int64 run_id, int seq,
													Jsonb *attributes, TimestampTz now);
extern void durable_engine_publish(int64 run_id, const char *name, Jsonb *value,
								   TimestampTz now);
extern bool durable_engine_lock_activity(int64 run_id, int seq, char **ns, char **queue,
										 bool *leased);
extern void durable_engine_cancel_run(int64 run_id, const char *reason, TimestampTz now);
extern bool durable_engine_set_paused(int64 run_id, bool pause, const char *reason,
									  TimestampTz now);
extern int	durable_engine_park_paused(TimestampTz now, int limit);

extern int	durable_engine_expire_leases(TimestampTz now, int limit);
extern int	durable_engine_fire_timers(TimestampTz now, int limit);
extern int	durable_engine_fire_due_steps(TimestampTz now, int limit);
extern int	durable_engine_expire_runs(TimestampTz now, int limit);
extern int	durable_engine_purge(TimestampTz now, int limit, bool anywhere);
extern void durable_start_runs(const char *ns, const char *type, const char *queue,
							   Datum *ids, Datum *inputs, bool *input_nulls, int n,
							   bool generated_ids, Jsonb *options, TimestampTz now);
extern int64 durable_start_run(const char *ns, const char *workflow_id,
					   const char *type, const char *queue, Jsonb *input,
					   Jsonb *options, const char *parent_close_policy,
					   int64 parent_run, int parent_seq, TimestampTz now,
					   bool generated_id);
extern void durable_lock_run(int64 run_id);
extern void durable_engine_read_run(int64 run_id);
extern bool durable_engine_find_latest_run(const char *ns, const char *workflow_id,
										   int64 *run_id, RunStatus *status,
										   char **request_id, char **queue, bool lock);
extern void durable_engine_signal(int64 run_id, const char *signal, Jsonb *payload,
								  const char *signal_id, TimestampTz now);
extern void durable_engine_terminate_run(int64 run_id, const char *reason,
										 TimestampTz now);
extern void durable_engine_record_local_steps(int64 run_id, int n, Datum *seqs,
											  Datum *names, Datum *results,
											  TimestampTz now);
extern void durable_step_insert_or_match(int64 run_id, int seq, StepKind kind,
								 const char *name, StepStatus status,
								 Jsonb *input, Jsonb *result, const char *queue,
								 const ActivityOptions *act, TimestampTz now,
								 TimestampTz due_at, bool *inserted);
extern int	durable_engine_pass_due_tasks(TimestampTz now, int limit);
extern void durable_engine_schedule_activity(int64 run_id, int seq, const char *name,
											 Jsonb *input, const char *ns,
											 const char *queue, int priority,
											 const ActivityOptions *act, TimestampTz due,
											 TimestampTz now);
extern void durable_engine_wait_signal(int64 run_id, int seq, const char *name,
									   Datum names, bool any, TimestampTz due,
									   TimestampTz now);
extern int	durable_engine_claim(const char *ns, const char *queue,
								 const char *worker, int want, Interval *lease,
								 TimestampTz now, const char *only_key);
extern int	durable_engine_age_tasks(TimestampTz now, int limit);
extern int	durable_engine_cancel_key_tasks(const char *ns, const char *queue,
											const char *key, bool leased, int n,
											TimestampTz now);
extern int	durable_engine_next_keys(const char *ns, const char *queue, TimestampTz now,
									 int n, Datum **keys);
extern void durable_engine_end_workflow_task(int64 run_id, const char *ns,
											 const char *queue, TimestampTz now);
extern void durable_engine_retry_workflow_task(int64 run_id, int attempt,
											   Jsonb *error, TimestampTz now);
extern void durable_engine_heartbeat(int64 token, TimestampTz lease_until,
									 Jsonb *details, TimestampTz now);
extern void durable_engine_release_task(int64 token, int64 run_id, int seq,
										int attempt, const char *ns,
										const char *queue, TimestampTz now);
extern void durable_engine_activity_failed(int64 run_id, int seq, Jsonb *error,
								   bool retryable, const char *event,
								   TimestampTz now);

/* updates (wf_update) */
extern bool durable_engine_request_update(int64 run_id, const char *update_id,
										  const char *name, Jsonb *args, TimestampTz now);
extern bool durable_engine_accept_update(int64 run_id, int seq, const char *update_id,
										 int waiting_on, Jsonb *result, Jsonb *error,
										 TimestampTz now);
extern bool durable_engine_reject_update(int64 run_id, const char *update_id,
										 Jsonb *error, TimestampTz now);

#endif							/* DURABLE_ENGINE_H */
