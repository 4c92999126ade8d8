/**
 * Client calls (protocol section 14, README "Client functions"): thin,
 * typed wrappers over `durable.wf_*`.  Each call is one autocommit
 * statement on a pooled connection.
 */
import pg from "pg";
import { ClientTimeoutError, UpdateFailedError, WorkflowFailedError, type ErrorObject } from "./errors.js";
import { clientConfig, jsonParam, newPool, sqlstate, type Connection } from "./pgutil.js";
import {
  durationSeconds,
  nameOf,
  startOptionsJson,
  type Duration,
  type Named,
  type QueryDef,
  type SignalDef,
  type StartOptions,
  type UpdateDef,
  type InputArgs,
  type WorkflowRef,
} from "./types.js";

export interface ClientOptions {
  namespace?: string;
  /** Connections of the client's pool (default 4). */
  maxConnections?: number;
}

export interface StartCall extends StartOptions {
  workflowId?: string;
  queue?: string;
}

/** One row of `durable.wf_history` (protocol 15.1). */
export interface HistoryEvent {
  run_id: string;
  event_time: Date;
  event_type: string;
  seq: number | null;
  details: any;
}

/** One row of `durable.wf_list` (protocol 14.7). */
export interface ListedRun {
  namespace: string;
  workflow_id: string;
  run_id: string;
  workflow_type: string;
  queue: string;
  status: string;
  created_at: Date;
  closed_at: Date | null;
  search_attributes: Record<string, unknown> | null;
  memo: unknown;
  next_page_token: string;
}

/** A started workflow, typed by its output. */
export class WorkflowHandle<O = unknown> {
  constructor(
    readonly client: Client,
    readonly workflowId: string,
  ) {}

  /** The output, once the run completes (see Client.result). */
  result(options?: { timeout?: Duration }): Promise<O> {
    return this.client.result<O>(this.workflowId, options);
  }

  signal<P>(signal: SignalDef<P> | string, payload?: P, options?: { signalId?: string }): Promise<void> {
    return this.client.signal(this.workflowId, signal, payload, options);
  }

  query<A, R>(query: QueryDef<A, R> | string, args?: A, options?: { timeout?: Duration }): Promise<R> {
    return this.client.query(this.workflowId, query, args, options);
  }

  update<A, R>(update: UpdateDef<A, R> | string, args?: A, options?: { updateId?: string; timeout?: Duration }): Promise<R> {
    return this.client.update(this.workflowId, update, args, options);
  }

  cancel(reason?: string): Promise<void> {
    return this.client.cancel(this.workflowId, reason);
  }

  terminate(reason?: string): Promise<void> {
    return this.client.terminate(this.workflowId, reason);
  }

  describe(): Promise<any> {
    return this.client.describe(this.workflowId);
  }
}

export class Client {
  readonly pool: pg.Pool;
  private readonly ownPool: boolean;

  /** `connection`: a connection string, node-postgres settings, or a pool of yours. */
  constructor(connection: Connection | pg.Pool, options: ClientOptions = {}) {
    if (connection instanceof pg.Pool) {
      this.pool = connection;
      this.ownPool = false;
    } else {
      this.pool = newPool(clientConfig(connection, options.namespace), options.maxConnections ?? 4, () => {});
      this.ownPool = true;
    }
  }

  async close(): Promise<void> {
    if (this.ownPool) await this.pool.end();
  }

  private async one<T = any>(sql: string, params: unknown[]): Promise<T> {
    const r = await this.pool.query(sql, params);
    return r.rows[0]?.v as T;
  }

  /** A handle on a workflow started elsewhere. */
  getHandle<I = unknown, O = unknown>(_workflow: WorkflowRef<I, O> | string, workflowId: string): WorkflowHandle<O> {
    return new WorkflowHandle<O>(this, workflowId);
  }

  /**
   * Start a run (wf_start); the handle carries the workflow's output type.
   * The input may be left out only when its type allows undefined.
   */
  async start<I, O>(workflow: WorkflowRef<I, O> | string, ...args: InputArgs<I, StartCall>): Promise<WorkflowHandle<O>> {
    const [input, options = {}] = args;
    const { workflowId, queue, ...start } = options;
    const id = await this.one<string>("SELECT durable.wf_start($1, $2::jsonb, $3, $4, $5::jsonb) AS v", [
      nameOf(workflow),
      jsonParam(input),
      workflowId ?? null,
      queue ?? "default",
      JSON.stringify(startOptionsJson(start)),
    ]);
    return new WorkflowHandle<O>(this, id);
  }

  /** Start a run and wait for its output. */
  async execute<I, O>(workflow: WorkflowRef<I, O> | string, ...args: InputArgs<I, StartCall & { timeout?: Duration }>): Promise<O> {
    const [input, options = {}] = args;
    const { timeout, ...start } = options;
    return (await this.start<unknown, O>(workflow, input, start)).result({ timeout });
  }

  /** One start per input, in one call, all or none (wf_start_many); the workflow ids in input order. */
  async startMany<I, O>(
    workflow: WorkflowRef<I, O> | string,
    inputs: I[],
    options: Omit<StartCall, "workflowId" | "requestId"> & { workflowIds?: (string | null)[] } = {},
  ): Promise<string[]> {
    const { workflowIds, queue, ...start } = options;
    const r = await this.pool.query("SELECT v FROM durable.wf_start_many($1, $2::jsonb[], $3::text[], $4, $5::jsonb) AS v", [
      nameOf(workflow),
      inputs.map((i) => jsonParam(i)),
      workflowIds ?? null,
      queue ?? "default",
      JSON.stringify(startOptionsJson(start)),
    ]);
    return r.rows.map((row) => row.v as string);
  }

  async signal<P>(workflowId: string, signal: SignalDef<P> | string, payload?: P, options: { signalId?: string } = {}): Promise<void> {
    await this.pool.query("SELECT durable.wf_signal($1, $2, $3::jsonb, $4)", [workflowId, nameOf(signal), jsonParam(payload), options.signalId ?? null]);
  }

  /** Start the workflow unless it runs, then signal it (wf_signal_with_start). */
  async signalWithStart<I, O, P>(
    workflow: WorkflowRef<I, O> | string,
    input: I,
    workflowId: string,
    signal: SignalDef<P> | string,
    payload?: P,
    options: Omit<StartCall, "workflowId"> & { signalId?: string } = {},
  ): Promise<WorkflowHandle<O>> {
    const { queue, signalId, ...start } = options;
    const id = await this.one<string>("SELECT durable.wf_signal_with_start($1, $2::jsonb, $3, $4, $5::jsonb, $6, $7::jsonb, $8) AS v", [
      nameOf(workflow),
      jsonParam(input),
      workflowId,
      nameOf(signal),
      jsonParam(payload),
      queue ?? "default",
      JSON.stringify(startOptionsJson(start)),
      signalId ?? null,
    ]);
    return new WorkflowHandle<O>(this, id);
  }

  async cancel(workflowId: string, reason?: string): Promise<void> {
    await this.pool.query("SELECT durable.wf_cancel($1, $2)", [workflowId, reason ?? null]);
  }

  async terminate(workflowId: string, reason?: string): Promise<void> {
    await this.pool.query("SELECT durable.wf_terminate($1, $2)", [workflowId, reason ?? null]);
  }

  /** Hold the running workflow (none of its tasks is handed out); false if it was paused already. */
  pause(workflowId: string, reason?: string): Promise<boolean> {
    return this.one("SELECT durable.wf_pause($1, $2) AS v", [workflowId, reason ?? null]);
  }

  unpause(workflowId: string, reason?: string): Promise<boolean> {
    return this.one("SELECT durable.wf_unpause($1, $2) AS v", [workflowId, reason ?? null]);
  }

  /** Replace the latest run by one that keeps its steps before toSeq; the new run id. */
  reset(workflowId: string, toSeq: number, reason?: string): Promise<string> {
    return this.one("SELECT durable.wf_reset($1, $2, $3) AS v", [workflowId, toSeq, reason ?? null]);
  }

  fork(workflowId: string, toSeq: number, newWorkflowId?: string): Promise<string> {
    return this.one("SELECT durable.wf_fork($1, $2, $3) AS v", [workflowId, toSeq, newWorkflowId ?? null]);
  }

  status(workflowId: string): Promise<string> {
    return this.one("SELECT durable.wf_status($1) AS v", [workflowId]);
  }

  /**
   * The output of the latest run, waiting for it to close (at most `timeout`
   * when given: ClientTimeoutError).  WorkflowFailedError when the
   * run failed, was cancelled, terminated or timed out.
   */
  async result<O = unknown>(workflowId: string, options: { timeout?: Duration } = {}): Promise<O> {
    const deadline = options.timeout === undefined ? Infinity : Date.now() + durationSeconds(options.timeout, "timeout") * 1000;
    for (;;) {
      const wait = Math.max(0, Math.min(30, (deadline - Date.now()) / 1000));
      let row: { r: O; running: boolean };
      try {
        // r IS NULL: still running (a null output is JSON null)
        const q = await this.pool.query("SELECT r, r IS NULL AS running FROM durable.wf_result($1, $2 * interval '1 s') r", [workflowId, wait]);
        row = q.rows[0];
      } catch (e) {
        if (sqlstate(e) === "DU010") {
          const err = e as pg.DatabaseError;
          let error: ErrorObject;
          try {
            error = JSON.parse(err.detail ?? "{}");
          } catch {
            error = { message: err.detail };
          }
          throw new WorkflowFailedError(err.message, error);
        }
        throw e;
      }
      if (!row.running) return row.r;
      if (Date.now() >= deadline) throw new ClientTimeoutError(`workflow ${workflowId} still running after ${options.timeout}`);
    }
  }

  /** wf_describe: the latest run's state and pending steps (protocol 15.3). */
  describe(workflowId: string): Promise<any> {
    return this.one("SELECT durable.wf_describe($1) AS v", [workflowId]);
  }

  async history(workflowId: string): Promise<HistoryEvent[]> {
    return (await this.pool.query("SELECT * FROM durable.wf_history($1)", [workflowId])).rows;
  }

  /** Every run a visibility query matches (wf_list), fetched `pageSize` at a time. */
  async *list(query = "", pageSize = 100): AsyncGenerator<ListedRun> {
    let token: string | null = null;
    for (;;) {
      const rows: ListedRun[] = (await this.pool.query("SELECT * FROM durable.wf_list($1, $2, $3)", [query, pageSize, token])).rows;
      yield* rows;
      if (rows.length < pageSize) return;
      token = rows[rows.length - 1].next_page_token;
    }
  }

  async count(query = ""): Promise<number> {
    return Number(await this.one<string>("SELECT durable.wf_count($1) AS v", [query]));
  }

  /**
   * A live query of the latest run, answered by a worker of its queue with
   * the workflow's handler (ctx.onQuery).  Raises the database errors DU016
   * (no answer within `timeout`, default 10 s) and DU015 (no such handler, or it
   * failed).
   */
  query<A, R>(workflowId: string, query: QueryDef<A, R> | string, args?: A, options: { timeout?: Duration } = {}): Promise<R> {
    return this.one("SELECT durable.wf_query($1, $2, $3::jsonb, $4 * interval '1 s') AS v", [
      workflowId,
      nameOf(query),
      jsonParam(args),
      durationSeconds(options.timeout ?? "10s", "timeout"),
    ]);
  }

  /** Send an update (wf_update); its id.  Its result: updateResult. */
  sendUpdate<A>(workflowId: string, update: Named, args?: A, options: { updateId?: string } = {}): Promise<string> {
    return this.one("SELECT durable.wf_update($1, $2, $3::jsonb, $4) AS v", [workflowId, nameOf(update), jsonParam(args), options.updateId ?? null]);
  }

  /**
   * The update's result once the workflow handled it.  UpdateFailedError
   * when it failed, was rejected or its run closed first; ClientTimeoutError
   * when not handled within `timeout` (default 30 s).
   */
  async updateResult<R = unknown>(workflowId: string, updateId: string, options: { timeout?: Duration } = {}): Promise<R> {
    const timeout = durationSeconds(options.timeout ?? "30s", "timeout");
    let row: { r: R; pending: boolean };
    try {
      const q = await this.pool.query("SELECT r, r IS NULL AS pending FROM durable.wf_update_result($1, $2, $3 * interval '1 s') r", [
        workflowId,
        updateId,
        timeout,
      ]);
      row = q.rows[0];
    } catch (e) {
      if (sqlstate(e) === "DU017") throw new UpdateFailedError((e as Error).message, (e as pg.DatabaseError).detail);
      throw e;
    }
    if (row.pending) throw new ClientTimeoutError(`update ${updateId} of ${workflowId} not handled within ${timeout} s`);
    return row.r;
  }

  /**
   * Send an update and wait for its result (Temporal's ExecuteUpdate).  A
   * retry with the same updateId sends nothing new and waits for the same
   * result.
   */
  async update<A, R>(workflowId: string, update: UpdateDef<A, R> | string, args?: A, options: { updateId?: string; timeout?: Duration } = {}): Promise<R> {
    const id = await this.sendUpdate(workflowId, update, args, options);
    return this.updateResult<R>(workflowId, id, options);
  }

  /** Start the workflow unless it runs (use_existing) and send it an update, in one transaction; then wait. */
  async updateWithStart<I, O, A, R>(
    workflow: WorkflowRef<I, O> | string,
    input: I,
    workflowId: string,
    update: UpdateDef<A, R> | string,
    args?: A,
    options: Omit<StartCall, "workflowId"> & { updateId?: string; timeout?: Duration } = {},
  ): Promise<R> {
    const { queue, updateId, timeout, ...start } = options;
    const c = await this.pool.connect();
    let id: string;
    try {
      await c.query("BEGIN");
      await c.query("SELECT durable.wf_start($1, $2::jsonb, $3, $4, $5::jsonb)", [
        nameOf(workflow),
        jsonParam(input),
        workflowId,
        queue ?? "default",
        JSON.stringify(startOptionsJson({ idConflictPolicy: "use_existing", ...start })),
      ]);
      id = (await c.query("SELECT durable.wf_update($1, $2, $3::jsonb, $4) AS v", [workflowId, nameOf(update), jsonParam(args), updateId ?? null])).rows[0].v;
      await c.query("COMMIT");
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      throw e;
    } finally {
      c.release();
    }
    return this.updateResult<R>(workflowId, id, { timeout });
  }

  /** What the latest run published ({name: value}). */
  published(workflowId: string): Promise<Record<string, unknown>> {
    return this.one("SELECT durable.wf_published($1) AS v", [workflowId]);
  }

  /** Complete a pending activity left open (ASYNC_COMPLETION) by its workflow id and step. */
  async completeActivity(workflowId: string, seq: number, result?: unknown): Promise<void> {
    await this.pool.query("SELECT durable.activity_complete($1, $2, $3::jsonb)", [workflowId, seq, jsonParam(result)]);
  }

  /** Fail the current attempt of a pending activity; its retry policy decides. */
  async failActivity(workflowId: string, seq: number, error: ErrorObject, retryable = true): Promise<void> {
    await this.pool.query("SELECT durable.activity_fail($1, $2, $3::jsonb, $4)", [workflowId, seq, JSON.stringify(error), retryable]);
  }
}
