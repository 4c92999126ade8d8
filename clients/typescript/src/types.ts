/**
 * Typed references to workflows, activities, signals, queries and updates,
 * and the options of commands and starts, with their translation to the
 * engine's JSON (snake_case keys, protocol sections 4 and 14).
 */
import type { ActivityContext } from "./activity.js";
import type { WorkflowContext } from "./workflow.js";

/**
 * A duration: a number of **milliseconds** (as setTimeout), or a string as
 * the engine takes it (protocol 4.2): "250ms", "30s", "5m", "2h", "3d" (a
 * string without a unit is seconds).
 */
export type Duration = number | string;

const UNIT_SECONDS: Record<string, number> = {
  ms: 0.001, millisecond: 0.001, milliseconds: 0.001,
  s: 1, sec: 1, second: 1, seconds: 1,
  m: 60, min: 60, minute: 60, minutes: 60,
  h: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
};

/**
 * A duration in seconds, for the SDK's own settings (worker leases, client
 * timeouts); the same rules as the engine's (protocol 4.2): positive (or
 * zero, where allowed), a number of milliseconds or a string with an
 * optional unit (none: seconds).  A TypeError otherwise.
 */
export function durationSeconds(d: Duration, what: string, allowZero = false): number {
  let seconds = NaN;
  if (typeof d === "number") seconds = d / 1000;
  else if (typeof d === "string") {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(d);
    const unit = m ? UNIT_SECONDS[(m[2] || "s").toLowerCase()] : undefined;
    if (m && unit !== undefined) seconds = Number(m[1]) * unit;
  }
  if (!(seconds > 0 || (allowZero && seconds === 0)) || !Number.isFinite(seconds))
    throw new TypeError(`${what} must be a positive duration (milliseconds, or a string such as "30s"): ${String(d)}`);
  return seconds;
}

/** A duration as the engine's JSON (protocol 4.2, where a plain number is seconds). */
export function durationJson(d: Duration | undefined): string | undefined {
  return typeof d === "number" ? `${d}ms` : d;
}

/**
 * The input and options arguments of a call: the input may be left out only
 * when its type allows undefined (an untyped call's input is unknown).
 */
export type InputArgs<I, Options> = undefined extends I ? [input?: I, options?: Options] : [input: I, options?: Options];

export type WorkflowFn<I, O> = (ctx: WorkflowContext<I>, input: I) => Promise<O>;
export type ActivityFn<I, O> = (ctx: ActivityContext, input: I) => O | Promise<O>;

/**
 * A workflow type known by name, typed by its input and output (its code may
 * live in another process, or another language).
 */
export interface WorkflowRef<I = unknown, O = unknown> {
  readonly name: string;
  /**
   * Phantom fields that carry the types; never set.  In tuples: inference
   * from an optional field drops `undefined`, which decides whether the
   * input may be left out (InputArgs).
   */
  readonly __input?: [I];
  readonly __output?: [O];
}

export interface ActivityRef<I = unknown, O = unknown> {
  readonly name: string;
  readonly __input?: [I];
  readonly __output?: [O];
}

/** A workflow type: its name, and its code for workers. */
export interface WorkflowDef<I = unknown, O = unknown> extends WorkflowRef<I, O> {
  readonly kind: "workflow";
  readonly fn: WorkflowFn<I, O>;
}

/** An activity: its name, and its code for workers. */
export interface ActivityDef<I = unknown, O = unknown> extends ActivityRef<I, O> {
  readonly kind: "activity";
  readonly fn: ActivityFn<I, O>;
}

export interface SignalDef<P = unknown> {
  readonly name: string;
  readonly __payload?: P;
}

export interface QueryDef<A = unknown, R = unknown> {
  readonly name: string;
  readonly __args?: A;
  readonly __result?: R;
}

export interface UpdateDef<A = unknown, R = unknown> {
  readonly name: string;
  readonly __args?: A;
  readonly __result?: R;
}

export function defineWorkflow<I = unknown, O = unknown>(name: string, fn: WorkflowFn<I, O>): WorkflowDef<I, O> {
  return { kind: "workflow", name, fn };
}

export function defineActivity<I = unknown, O = unknown>(name: string, fn: ActivityFn<I, O>): ActivityDef<I, O> {
  return { kind: "activity", name, fn };
}

export function workflowRef<I = unknown, O = unknown>(name: string): WorkflowRef<I, O> {
  return { name };
}

export function activityRef<I = unknown, O = unknown>(name: string): ActivityRef<I, O> {
  return { name };
}

export function defineSignal<P = unknown>(name: string): SignalDef<P> {
  return { name };
}

export function defineQuery<A = unknown, R = unknown>(name: string): QueryDef<A, R> {
  return { name };
}

export function defineUpdate<A = unknown, R = unknown>(name: string): UpdateDef<A, R> {
  return { name };
}

/** A name, or any of the typed references that carry one. */
export type Named = string | { readonly name: string };

export function nameOf(x: Named): string {
  return typeof x === "string" ? x : x.name;
}

export interface RetryPolicy {
  initialInterval?: Duration;
  backoffCoefficient?: number;
  maximumInterval?: Duration;
  /** 0 = unlimited; 1 = no retries. */
  maximumAttempts?: number;
  nonRetryableErrorTypes?: string[];
}

export interface ActivityOptions {
  /** Queue of the activity task; default: the workflow's queue. */
  queue?: string;
  retry?: RetryPolicy;
  startToClose?: Duration;
  scheduleToClose?: Duration;
  scheduleToStart?: Duration;
  /** Heartbeat timeout: the longest gap allowed between heartbeats. */
  heartbeat?: Duration;
  priority?: number;
  fairnessKey?: string;
  fairnessWeight?: number;
}

/** Options of wf_start (protocol 14) and of child workflows (4.6). */
export interface StartOptions {
  idConflictPolicy?: "fail" | "use_existing" | "terminate_existing";
  idReusePolicy?: "allow_duplicate" | "allow_duplicate_failed_only" | "reject_duplicate";
  requestId?: string;
  priority?: number;
  startDelay?: Duration;
  executionTimeout?: Duration;
  runTimeout?: Duration;
  memo?: unknown;
  searchAttributes?: Record<string, unknown>;
  retryPolicy?: RetryPolicy;
  debounce?: Duration;
  throttle?: Duration;
  fairnessKey?: string;
  fairnessWeight?: number;
}

export interface ChildOptions extends Omit<StartOptions, "idConflictPolicy" | "requestId" | "debounce" | "throttle"> {
  workflowId?: string;
  queue?: string;
  parentClosePolicy?: "terminate" | "request_cancel" | "abandon";
}

type Json = Record<string, unknown>;

/** Drops undefined and null values: absent optional keys (protocol 4.1). */
export function compact(o: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}

export function retryJson(r: RetryPolicy | undefined): Json | undefined {
  if (r === undefined) return undefined;
  return compact({
    initial_interval: durationJson(r.initialInterval),
    backoff_coefficient: r.backoffCoefficient,
    maximum_interval: durationJson(r.maximumInterval),
    maximum_attempts: r.maximumAttempts,
    non_retryable_error_types: r.nonRetryableErrorTypes,
  });
}

export function activityCommandKeys(o: ActivityOptions): Json {
  return compact({
    queue: o.queue,
    retry: retryJson(o.retry),
    start_to_close: durationJson(o.startToClose),
    schedule_to_close: durationJson(o.scheduleToClose),
    schedule_to_start: durationJson(o.scheduleToStart),
    heartbeat: durationJson(o.heartbeat),
    priority: o.priority,
    fairness_key: o.fairnessKey,
    fairness_weight: o.fairnessWeight,
  });
}

export function startOptionsJson(o: StartOptions): Json {
  return compact({
    id_conflict_policy: o.idConflictPolicy,
    id_reuse_policy: o.idReusePolicy,
    request_id: o.requestId,
    priority: o.priority,
    start_delay: durationJson(o.startDelay),
    execution_timeout: durationJson(o.executionTimeout),
    run_timeout: durationJson(o.runTimeout),
    memo: o.memo,
    search_attributes: o.searchAttributes,
    retry_policy: retryJson(o.retryPolicy),
    debounce: durationJson(o.debounce),
    throttle: durationJson(o.throttle),
    fairness_key: o.fairnessKey,
    fairness_weight: o.fairnessWeight,
  });
}

/** A journal entry of a workflow task (protocol 5.1). */
export interface JournalEntry {
  seq: number;
  kind: string;
  name: string;
  status: "pending" | "completed" | "failed" | "cancelled";
  result: unknown;
  error: import("./errors.js").ErrorObject | null;
}

/** An update of a task's `updates` column (protocol 3.1). */
export interface UpdateRow {
  update_id: string;
  name: string;
  args: unknown;
  state: string;
  seq: number | null;
  waiting_on: number | null;
}

/** A row of durable.task_poll (protocol 3.1); 64-bit ids stay strings. */
export interface TaskRow {
  token: string;
  kind: "workflow" | "activity" | "query";
  workflow_id: string;
  run_id: string;
  workflow_type: string;
  name: string;
  seq: number | null;
  input: unknown;
  attempt: number;
  journal: JournalEntry[] | null;
  heartbeat: unknown;
  cancel_requested: boolean;
  updates: UpdateRow[] | null;
  /** Seconds left on the lease, on the database clock. */
  lease_left: number | null;
}
