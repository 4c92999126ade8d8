/** What activity code sees. */
import type pg from "pg";
import { CancelledError } from "./errors.js";

/**
 * Returned by an activity to leave its attempt open: the worker does not
 * complete it, and something else does later, by workflow id and step
 * (`ctx.workflowId`, `ctx.seq`), with `Client.completeActivity` or
 * `Client.failActivity`.  The attempt's start-to-close timeout (or the
 * worker's lease) still applies.
 */
export const ASYNC_COMPLETION: unique symbol = Symbol("durable.async_completion");

export interface ActivityInfo {
  token: string;
  workflowId: string;
  runId: string;
  workflowType: string;
  name: string;
  seq: number;
  attempt: number;
  heartbeatDetails: unknown;
  cancelRequested: boolean;
}

export class ActivityContext {
  readonly token: string;
  readonly workflowId: string;
  readonly runId: string;
  readonly workflowType: string;
  readonly name: string;
  /** The activity's step in its run's journal. */
  readonly seq: number;
  readonly attempt: number;
  /** Details of the last heartbeat with details, from this attempt or an earlier one. */
  readonly heartbeatDetails: unknown;
  /** A pool (autocommit) for the activity's own SQL; the worker's task calls have their own. */
  readonly db: pg.Pool;
  private readonly controller = new AbortController();
  private readonly beat: (details: unknown) => Promise<boolean>;
  private cancel: boolean;
  /** @internal the details of the last ctx.heartbeat(), which the worker's own heartbeats keep sending */
  details: unknown = null;

  /** @internal */
  constructor(info: ActivityInfo, db: pg.Pool, beat: (details: unknown) => Promise<boolean>) {
    this.token = info.token;
    this.workflowId = info.workflowId;
    this.runId = info.runId;
    this.workflowType = info.workflowType;
    this.name = info.name;
    this.seq = info.seq;
    this.attempt = info.attempt;
    this.heartbeatDetails = info.heartbeatDetails;
    this.db = db;
    this.beat = beat;
    this.cancel = info.cancelRequested;
  }

  /**
   * Whether the activity's run was asked to cancel (from the task, then from
   * each heartbeat; the worker heartbeats running activities on its own).
   * Information only: an activity the workflow schedules after the request
   * (a cleanup) runs as usual.  To stop on it, throw `CancelledError`: the
   * attempt ends as cancelled, without retries.
   */
  get cancelRequested(): boolean {
    return this.cancel;
  }

  /**
   * Aborted (with a CancelledError) when the attempt is no longer wanted:
   * its task was withdrawn (the workflow cancelled the activity, the run
   * closed, a timeout) or the worker shuts down and hands the task back.
   */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get cancelled(): boolean {
    return this.controller.signal.aborted;
  }

  /** Throws the CancelledError the signal was aborted with. */
  throwIfCancelled(): void {
    if (this.cancelled) throw this.controller.signal.reason;
  }

  /**
   * Save progress details for the next attempt and extend the lease;
   * returns `cancelRequested`.
   */
  async heartbeat(details?: unknown): Promise<boolean> {
    if (details !== undefined) this.details = details;
    this._cancelRequested(await this.beat(this.details));
    return this.cancel;
  }

  /** @internal a heartbeat's answer */
  _cancelRequested(requested: boolean): void {
    if (requested) this.cancel = true;
  }

  /** @internal */
  _abort(message: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(new CancelledError({ type: "cancelled", message }));
  }
}
