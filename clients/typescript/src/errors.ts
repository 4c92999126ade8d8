/**
 * Errors of the SDK.  Errors stored by the engine are JSON objects with a
 * string `type` and a `message` (protocol section 6); the classes here carry
 * that object in `error`.
 */

/** An error object as the engine stores it (protocol section 6). */
export interface ErrorObject {
  type?: string;
  message?: string;
  [key: string]: unknown;
}

/** A durable call failed for good: the journal holds its error. */
export class ActivityError extends Error {
  readonly error: ErrorObject;
  readonly type: string | undefined;

  constructor(error: ErrorObject | null | undefined) {
    const e = error ?? {};
    super(typeof e.message === "string" ? e.message : JSON.stringify(e));
    this.name = new.target.name;
    this.error = e;
    this.type = typeof e.type === "string" ? e.type : undefined;
  }
}

/** The call timed out (error type "timeout"; see `error.timeout_type`). */
export class DurableTimeout extends ActivityError {}

/**
 * The call was cancelled: by the workflow's cancel request (sleeps, signal
 * waits), by a handle's `cancel()`, or an activity that stopped on a cancel
 * request.  Unhandled in a workflow, it fails the run, which then closes as
 * `cancelled` when a cancel was requested (protocol section 9).
 */
export class CancelledError extends ActivityError {
  constructor(error?: ErrorObject | null) {
    super(error ?? { type: "cancelled", message: "cancelled" });
  }
}

/**
 * Thrown by workflow code to fail the run (not retried), or by an activity
 * to fail the attempt with a given `type` (matched by the retry policy's
 * `nonRetryableErrorTypes`).
 */
export class ApplicationError extends Error {
  readonly type: string;
  readonly details: unknown;
  readonly nonRetryable: boolean;

  constructor(message: string, options: { type?: string; details?: unknown; nonRetryable?: boolean } = {}) {
    super(message);
    this.name = new.target.name;
    this.type = options.type ?? new.target.name;
    this.details = options.details;
    this.nonRetryable = options.nonRetryable ?? false;
  }
}

/** Thrown by an activity whose failure must not be retried. */
export class NonRetryableError extends ApplicationError {
  constructor(message: string, options: { type?: string; details?: unknown } = {}) {
    super(message, { ...options, nonRetryable: true });
  }
}

/** Client.result: the workflow closed without a result (DU010). */
export class WorkflowFailedError extends Error {
  readonly error: ErrorObject;

  constructor(message: string, error: ErrorObject) {
    super(message);
    this.name = "WorkflowFailedError";
    this.error = error;
  }
}

/** Client.update: the update failed, was rejected or never handled (DU017). */
export class UpdateFailedError extends Error {
  readonly detail: string | undefined;

  constructor(message: string, detail: string | undefined) {
    super(detail ? `${message}: ${detail}` : message);
    this.name = "UpdateFailedError";
    this.detail = detail;
  }
}

/** Client calls that wait (result, update) gave up after their timeout. */
export class ClientTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClientTimeoutError";
  }
}

/**
 * The workflow code does not match the run's journal.  Mismatches of a
 * call's kind or name come from the engine as `DU003` (a `pg` DatabaseError);
 * this class is for what only the SDK can see (an order-of-resolution record
 * that no longer fits, a replay in `replay()` that goes past the journal).
 */
export class Nondeterminism extends Error {
  readonly seq: number;

  constructor(seq: number, message: string) {
    super(`nondeterminism in step ${seq}: ${message}`);
    this.name = "Nondeterminism";
    this.seq = seq;
  }
}

/** The error object stored for a workflow or activity failure. */
export function errorObject(e: unknown): ErrorObject {
  if (e instanceof ActivityError) {
    return { ...e.error, type: e.type ?? e.name, message: e.message };
  }
  if (e instanceof ApplicationError) {
    const o: ErrorObject = { type: e.type, message: e.message };
    if (e.details !== undefined) o.details = e.details;
    return o;
  }
  if (e instanceof Error) return { type: e.name, message: e.message };
  return { type: "Error", message: String(e) };
}

/** The error a failed or cancelled journal entry raises when awaited. */
export function entryError(status: string, error: ErrorObject | null): ActivityError {
  const err = error ?? { message: `step ${status}` };
  if (status === "cancelled" || err.type === "cancelled") return new CancelledError(err);
  if (err.type === "timeout") return new DurableTimeout(err);
  return new ActivityError(err);
}
