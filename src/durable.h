/*-------------------------------------------------------------------------
 *
 * durable.h
 *	  Declarations shared by the parts of the durable engine: error codes,
 *	  GUCs, the SPI plan cache, privilege checks and the clock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_H
#define DURABLE_H

#include "compat.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/*
 * SQLSTATEs of class DU ("durable"): clients branch on these.
 * Keep docs/protocol.md in step.
 */
#define ERRCODE_DURABLE_INVALID_ARGUMENT	MAKE_SQLSTATE('D','U','0','0','1')
#define ERRCODE_DURABLE_INVALID_COMMAND		MAKE_SQLSTATE('D','U','0','0','2')
#define ERRCODE_DURABLE_NONDETERMINISM		MAKE_SQLSTATE('D','U','0','0','3')
#define ERRCODE_DURABLE_STALE_TOKEN			MAKE_SQLSTATE('D','U','0','0','4')
#define ERRCODE_DURABLE_WORKFLOW_NOT_FOUND	MAKE_SQLSTATE('D','U','0','0','5')
#define ERRCODE_DURABLE_WORKFLOW_EXISTS		MAKE_SQLSTATE('D','U','0','0','6')
#define ERRCODE_DURABLE_WORKFLOW_CLOSED		MAKE_SQLSTATE('D','U','0','0','7')
#define ERRCODE_DURABLE_PAYLOAD_TOO_LARGE	MAKE_SQLSTATE('D','U','0','0','8')
#define ERRCODE_DURABLE_ACCESS_DENIED		MAKE_SQLSTATE('D','U','0','0','9')
#define ERRCODE_DURABLE_WORKFLOW_FAILED		MAKE_SQLSTATE('D','U','0','1','0')
#define ERRCODE_DURABLE_WRONG_TASK_KIND		MAKE_SQLSTATE('D','U','0','1','1')
#define ERRCODE_DURABLE_NOT_READY			MAKE_SQLSTATE('D','U','0','1','2')
#define ERRCODE_DURABLE_VERSION_MISMATCH	MAKE_SQLSTATE('D','U','0','1','3')

/* the release this library implements (Makefile: EXTVERSION) */
#ifndef DURABLE_VERSION
#error "DURABLE_VERSION must be defined (the Makefile passes EXTVERSION)"
#endif

/* 'no due time' for durable_step_insert_or_match (0 is a valid time: 2000-01-01) */
#define DURABLE_NO_TIME DT_NOBEGIN

/* limits on names; queue names also become NOTIFY channels */
#define DURABLE_MAX_NAME		255
#define DURABLE_MAX_WORKFLOW_ID	1000
#define DURABLE_MAX_QUEUE		54
#define DURABLE_MAX_BATCH		1000
/* starts in one wf_start_many call */
#define DURABLE_MAX_STARTS		100000

/* durations longer than ten years are taken for mistakes */
#define MAX_DURATION_MS ((int64) 10 * 366 * 86400000)

/* GUCs (durable.c) */
extern char *durable_namespace;
extern int	durable_max_payload_kb;
extern int	durable_clock_offset_s;
extern bool durable_bgw_enabled;
extern int	durable_bgw_naptime_ms;
extern int	durable_bgw_batch_size;
extern char *durable_bgw_databases;

/* what a caller is allowed to do (access.c) */
typedef enum DurableRight
{
	DURABLE_RIGHT_CLIENT,
	DURABLE_RIGHT_WORKER,
	DURABLE_RIGHT_ADMIN
} DurableRight;

/*
 * A call into the engine: checks rights as the caller, then runs SPI as
 * the extension's owner.  durable_enter / durable_leave bracket it.
 */
typedef struct DurableCall
{
	Oid			saved_userid;
	int			saved_sec_context;
	int			guc_nest;		/* GUC nest level if search_path was pinned */
} DurableCall;

/* the only search_path the engine's statements ever run with */
#define DURABLE_SEARCH_PATH GUC_SAFE_SEARCH_PATH

extern void durable_enter(DurableCall *call);
extern void durable_leave(DurableCall *call);
extern void durable_check_right(DurableRight right, const char *ns,
								const char *queue);
extern void durable_check_right_of(Oid uid, DurableRight right, const char *ns,
								   const char *queue);

/*
 * States and kinds (state.c names them as the tables store them).  Run
 * statuses: running until one statement closes the run with another.
 */
typedef enum RunStatus
{
	RUN_RUNNING,
	RUN_COMPLETED,
	RUN_FAILED,
	RUN_CANCELLED,
	RUN_TERMINATED,
	RUN_TIMED_OUT,
	RUN_CONTINUED_AS_NEW
} RunStatus;

/* a journal entry's kind and status (pending until resolved, once) */
typedef enum StepKind
{
	STEP_LOCAL,
	STEP_ACTIVITY,
	STEP_SLEEP,
	STEP_SIGNAL,
	STEP_CHILD
} StepKind;

typedef enum StepStatus
{
	STEP_PENDING,
	STEP_COMPLETED,
	STEP_FAILED,
	STEP_CANCELLED
} StepStatus;

extern const char *durable_run_status_name(RunStatus status);
extern RunStatus durable_run_status_parse(const char *name);
extern const char *durable_step_kind_name(StepKind kind);
extern StepKind durable_step_kind_parse(const char *name);
extern const char *durable_step_status_name(StepStatus status);

/* SPI plans prepared once per backend (spi.c) */
extern bool durable_schema_is_current(char **installed);
extern SPIPlanPtr durable_plan(SPIPlanPtr *slot, const char *sql,
							   int nargs, const Oid *argtypes);
extern int	durable_exec_latest(SPIPlanPtr plan, Datum *values, const char *nulls,
								long count);
extern int	durable_exec(SPIPlanPtr plan, Datum *values, const char *nulls,
						 bool read_only, long count);

/* the clock: the database's, shifted by durable.clock_offset for tests (clock.c) */
extern TimestampTz durable_now(void);

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
extern void durable_bgw_register_launcher(void);
extern void durable_bgw_register_launcher_self(void);
extern void durable_bgw_set_next_wake(TimestampTz when);
extern void durable_run_closed(int64 run_id);
extern bool durable_result_wait_begin(int64 run_id);
extern void durable_result_wait_end(void);

/* validation helpers (validate.c); the session's namespace (clock.c) */
extern int	durable_input_errcode;
extern const char *durable_check_name(text *t, const char *what, int maxlen);
extern const char *durable_check_queue_name(text *t);
extern const char *durable_check_note_arg(FunctionCallInfo fcinfo, int argno);
extern const char *durable_check_text_arg(FunctionCallInfo fcinfo, int argno,
								  const char *what, int maxlen);
extern bool durable_has_control_char(const char *s, int len);
extern void durable_check_no_control_chars(const char *s, int len, const char *what,
								   bool free_text);
extern void durable_check_queue_cstring(const char *s);
extern void durable_check_payload(Jsonb *jb, const char *what);
extern int	durable_check_positive_int(int v, const char *what, int max);
extern Interval *durable_check_interval(Interval *iv, const char *what, bool allow_zero);
extern int64 durable_interval_to_ms(const Interval *iv);
extern Interval *durable_ms_interval(int64 ms);
extern const char *durable_current_namespace(void);

/* JSON access (json.c) */
extern void durable_jb_wrong_type(const char *ctx, const char *key,
								  const char *expected);
extern JsonbValue *durable_jb_get(Jsonb *obj, const char *key);
extern Jsonb *durable_jb_from_value(JsonbValue *v);
extern char *durable_jb_get_string(Jsonb *obj, const char *key, const char *ctx,
						   int maxlen, bool required);
extern bool durable_jb_get_int(Jsonb *obj, const char *key, const char *ctx,
					   int64 minval, int64 maxval, int64 *out);
extern bool durable_jb_get_double(Jsonb *obj, const char *key, const char *ctx,
						  double minval, double maxval, double *out);
extern bool durable_jb_get_duration_ms(Jsonb *obj, const char *key, const char *ctx,
							   int64 *out_ms);
extern void durable_jb_check_keys(Jsonb *obj, const char *ctx, const char *const *allowed);
extern Jsonb *durable_jb_error_object(Jsonb *err);
extern char *durable_jb_text(Jsonb *jb);
extern Jsonb *durable_jb_cstring(const char *json);
extern char *durable_json_quote(const char *s);

/* an activity's retry policy and timeouts (0: none), as its step keeps them */
typedef struct ActivityOptions
{
	Jsonb	   *retry;			/* as given, validated; NULL: defaults */
	int64		start_to_close_ms;
	int64		schedule_to_close_ms;
	int64		schedule_to_start_ms;
	int64		heartbeat_ms;
} ActivityOptions;

/* retry policy (retry.c) */
typedef struct RetryPolicy
{
	int64		initial_ms;
	double		coefficient;
	int64		maximum_ms;
	int			maximum_attempts;	/* 0 = unlimited */
	Jsonb	   *non_retryable;	/* array of strings or NULL */
} RetryPolicy;

extern void durable_retry_policy_parse(Jsonb *policy, RetryPolicy *out, const char *ctx);
extern int64 durable_retry_backoff_ms(const RetryPolicy *p, int attempt);
extern bool durable_retry_error_is_retryable(const RetryPolicy *p, Jsonb *error);

/* history (engine.c) */
extern void durable_history_add(int64 run_id, int seq, const char *event,
						Jsonb *details);

/* the state machine, the only writer of runs, tasks, steps, signals and events (engine.c) */
extern void durable_engine_wake_workflow(int64 run_id, TimestampTz now);
extern void durable_engine_wake_workflows(Datum run_ids, TimestampTz now);
extern int	durable_engine_close_runs(Datum run_ids, Datum outputs, RunStatus status,
							  Jsonb *error, TimestampTz now);
extern bool durable_engine_complete_by_token(int64 token, Jsonb *output,
											 TimestampTz now, int64 *run_id,
											 int *seq, char **ns, char **queue);
extern int64 durable_engine_next_run(int64 run_id, Jsonb *input, bool retry,
							 TimestampTz now, TimestampTz ready_at);
extern void durable_engine_close_run(int64 run_id, RunStatus status, Jsonb *output,
							 Jsonb *error, TimestampTz now);
extern void durable_engine_resolve_step(int64 run_id, int seq, StepStatus status,
								Jsonb *result, Jsonb *error, TimestampTz now);
extern void durable_engine_delete_task(int64 run_id, int seq);
extern void durable_engine_cancel_run(int64 run_id, const char *reason, TimestampTz now);
extern void durable_bgw_wake(TimestampTz due);

/* a leased task of a queue ended: wake a worker waiting on its limit (queues.c) */
extern void durable_queue_slot_freed(const char *ns, const char *queue);

/* rights (admin.c) */
extern int	durable_grants_forget_dropped_roles(void);
extern int	durable_engine_expire_leases(TimestampTz now, int limit);
extern int	durable_engine_fire_timers(TimestampTz now, int limit);
extern int	durable_engine_fire_due_steps(TimestampTz now, int limit);
extern int	durable_engine_expire_runs(TimestampTz now, int limit);
extern int	durable_engine_purge(TimestampTz now, int limit);
extern void durable_start_runs(const char *ns, const char *type, const char *queue,
							   Datum *ids, Datum *inputs, bool *input_nulls, int n,
							   Jsonb *options, TimestampTz now);
extern int64 durable_start_run(const char *ns, const char *workflow_id,
					   const char *type, const char *queue, Jsonb *input,
					   Jsonb *options, const char *parent_close_policy,
					   int64 parent_run, int parent_seq, TimestampTz now);
extern void durable_lock_run(int64 run_id);
extern bool durable_engine_find_latest_run(const char *ns, const char *workflow_id,
										   int64 *run_id, RunStatus *status,
										   char **request_id, bool lock);
extern void durable_engine_signal(int64 run_id, const char *signal, Jsonb *payload,
								  const char *signal_id, TimestampTz now);
extern void durable_engine_terminate_run(int64 run_id, const char *reason,
										 TimestampTz now);
extern void durable_step_insert_or_match(int64 run_id, int seq, StepKind kind,
								 const char *name, StepStatus status,
								 Jsonb *input, Jsonb *result, const char *queue,
								 const ActivityOptions *act, TimestampTz now,
								 TimestampTz due_at, bool *inserted);
extern void durable_engine_schedule_activity(int64 run_id, int seq, const char *name,
											 Jsonb *input, const char *ns,
											 const char *queue, int priority,
											 const ActivityOptions *act, TimestampTz due,
											 TimestampTz now);
extern void durable_engine_wait_signal(int64 run_id, int seq, const char *name,
									   TimestampTz due, TimestampTz now);
extern int	durable_engine_claim(const char *ns, const char *queue,
								 const char *worker, int want, Interval *lease,
								 TimestampTz now);
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

#endif							/* DURABLE_H */
