/**
 * The worker: polls one queue and runs its workflow, activity and query
 * tasks (protocol sections 3, 8, 10 and 13).
 *
 * - `concurrency` tasks run at once; polls claim up to `maxTasks`, and hand
 *   in the results of finished tasks in the same call (finish and claim:
 *   `done_tokens` / `done_results`).
 * - An idle worker waits for NOTIFY on `durable_<queue>` and on a channel of
 *   its own (targeted wake-ups, section 10), and polls anyway every
 *   `pollInterval` seconds.
 * - Running tasks are heartbeated every third of their lease; an activity
 *   learns a cancel request (or that its task was withdrawn) from them,
 *   through `ctx.signal`.
 * - A lost connection never ends the worker: token calls are sent again on a
 *   new connection until the server answers (a repeated call is a no-op or
 *   gets DU004), the poll and LISTEN connections come back with a backoff,
 *   and a workflow task whose connection broke inside `ctx.transaction()` is
 *   released, to be replayed at once.
 * - SIGTERM / SIGINT (or `stop()`): stop polling, let running tasks finish
 *   for up to `grace` seconds, hand in their results, release the rest.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import pg from "pg";
import { ASYNC_COMPLETION, ActivityContext } from "./activity.js";
import { ApplicationError, CancelledError, Nondeterminism, errorObject, type ErrorObject } from "./errors.js";
import {
  LostConnection,
  RETRY_FIRST_MS,
  RETRY_MAX_MS,
  clientConfig,
  defaultLogger,
  isLost,
  jsonParam,
  reason,
  sleep,
  sqlstate,
  type Connection,
  type Logger,
} from "./pgutil.js";
import type { ActivityDef, TaskRow, WorkflowDef } from "./types.js";
import { runWorkflow, type StepRecord, type TaskIO } from "./workflow.js";

export interface WorkerOptions {
  /** Connection string or node-postgres settings. */
  connection: Connection;
  queue?: string;
  workflows?: WorkflowDef<any, any>[];
  activities?: ActivityDef<any, any>[];
  /** Tasks run at once (default 4). */
  concurrency?: number;
  /** Tasks claimed per poll at most (default: concurrency). */
  maxTasks?: number;
  /** Lease of claimed tasks, seconds (default 30). */
  lease?: number;
  /** Fallback poll while idle, seconds (default 5). */
  pollInterval?: number;
  /** How long running tasks may finish at shutdown, seconds (default: lease). */
  grace?: number;
  /** Worker name recorded on its tasks (default host-pid). */
  name?: string;
  namespace?: string;
  /** Stop on SIGTERM / SIGINT (default true). */
  handleSignals?: boolean;
  logger?: Logger;
}

/** Results handed in with one poll at most. */
const MAX_DONE = 100;

const POLL_SQL = `
SELECT token, kind, workflow_id, run_id, workflow_type, name, seq, input,
       attempt, journal, heartbeat, cancel_requested, updates,
       extract(epoch FROM lease_until - now())::float8 AS lease_left
  FROM durable.task_poll($1, $2, $3, $4 * interval '1 s', $5::bigint[], $6::jsonb[])`;

interface Running {
  task: TaskRow;
  hbPeriod: number;
  hbNext: number;
  beating: boolean;
  activity?: ActivityContext;
}

export class Worker {
  readonly queue: string;
  readonly name: string;
  /** Tasks finished (any outcome) and tasks handed back at shutdown. */
  completed = 0;
  released = 0;

  private readonly cfg: pg.ClientConfig;
  private readonly pool: pg.Pool;
  private readonly workflows: Map<string, WorkflowDef<any, any>>;
  private readonly activities: Map<string, ActivityDef<any, any>>;
  private readonly concurrency: number;
  private readonly maxTasks: number;
  private readonly lease: number;
  private readonly pollInterval: number;
  private readonly grace: number;
  private readonly handleSignals: boolean;
  private readonly log: Logger;
  /** targeted wake-ups: the LISTEN connection also listens here, the poll connection names it */
  private readonly wakeChannel = "durable_w_" + randomBytes(8).toString("hex");
  private readonly running = new Map<string, Running>();
  private done: [string, string][] = [];
  private stopping = false;
  private graceEnd: number | null = null;
  private woken = false;
  private wakeUp: (() => void) | null = null;
  private stopListener: (() => void) | null = null;

  constructor(options: WorkerOptions) {
    this.queue = options.queue ?? "default";
    this.name = options.name ?? `${hostname()}-${process.pid}`;
    this.concurrency = options.concurrency ?? 4;
    this.maxTasks = options.maxTasks ?? this.concurrency;
    this.lease = options.lease ?? 30;
    this.pollInterval = options.pollInterval ?? 5;
    this.grace = options.grace ?? this.lease;
    this.handleSignals = options.handleSignals ?? true;
    this.log = options.logger ?? defaultLogger();
    this.workflows = new Map((options.workflows ?? []).map((w) => [w.name, w]));
    this.activities = new Map((options.activities ?? []).map((a) => [a.name, a]));
    this.cfg = clientConfig(options.connection, options.namespace, `durable-worker ${this.name}`);
    // task calls, heartbeats and activities' SQL
    this.pool = new pg.Pool({ ...this.cfg, max: this.concurrency * 2 + 2 });
    this.pool.on("error", (e) => this.log("debug", `idle connection lost: ${reason(e)}`));
  }

  /** Stop polling; `run()` then finishes (safe from a signal handler). */
  stop(): void {
    this.stopping = true;
    this.stopListener?.();
    this.wake();
  }

  /** Work until stopped.  Connection trouble never ends it. */
  async run(): Promise<void> {
    const onSignal = () => this.stop();
    if (this.handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    const heartbeats = setInterval(() => this.heartbeatRound(), 100);
    const listening = this.listenLoop();
    this.log("info", `worker ${this.name} polling queue ${this.queue}`);
    let conn: pg.Client | null = null;
    try {
      conn = await this.pollLoop();
    } finally {
      this.graceEnd = Date.now() + this.grace * 1000;
      await this.shutdown();
      clearInterval(heartbeats);
      this.stopListener?.();
      await listening;
      await conn?.end().catch(() => {});
      await this.pool.end().catch(() => {});
      if (this.handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
    }
  }

  // ------------------------------------------------------------ wake-ups

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Wait up to `seconds` for a wake-up: a NOTIFY, a (re)LISTEN, a finished task, stop. */
  private async waitWake(seconds: number): Promise<void> {
    if (this.woken || this.stopping) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, seconds * 1000);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = null;
  }

  /**
   * Keep a connection LISTENing on the queue's channel and on the worker's
   * own (a connection of its own, so that losing it does not hold up
   * polling); wake the poll loop on each notification, and after each
   * (re)LISTEN, since a NOTIFY may have been missed meanwhile.
   */
  private async listenLoop(): Promise<void> {
    let delay = RETRY_FIRST_MS;
    let failures = 0;
    while (!this.stopping) {
      const c = new pg.Client(this.cfg);
      c.on("notification", () => this.wake());
      const gone = new Promise<void>((resolve) => {
        c.on("error", (e) => {
          this.log("warn", `lost the LISTEN connection: ${reason(e)}; reconnecting`);
          resolve();
        });
        c.on("end", () => resolve());
        this.stopListener = resolve;
      });
      try {
        await c.connect();
        await c.query(`LISTEN "durable_${this.queue}"`);
        await c.query(`LISTEN "${this.wakeChannel}"`);
      } catch (e) {
        c.end().catch(() => {});
        failures += 1;
        this.log("debug", `LISTEN connection: cannot connect (${failures} attempts): ${reason(e)}`);
        await Promise.race([sleep(delay), gone]);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        continue;
      }
      if (failures > 0) this.log("info", `listening again after ${failures} failed attempt(s)`);
      failures = 0;
      delay = RETRY_FIRST_MS;
      this.wake();
      await gone;
      await c.end().catch(() => {});
    }
  }

  // ------------------------------------------------------------ polling

  private async connectPoll(): Promise<pg.Client> {
    let delay = RETRY_FIRST_MS;
    let failures = 0;
    for (;;) {
      const c = new pg.Client(this.cfg);
      c.on("error", (e) => this.log("debug", `poll connection: ${reason(e)}`));
      try {
        await c.connect();
        await c.query("SELECT set_config('durable.wake_channel', $1, false)", [this.wakeChannel]);
        if (failures > 0) this.log("info", `connected to the server after ${failures} failed attempt(s): polling now`);
        return c;
      } catch (e) {
        c.end().catch(() => {});
        failures += 1;
        if (this.stopping) throw e;
        this.log(failures === 1 ? "warn" : "info", `cannot connect to the server: ${reason(e)}; retrying`);
        await Promise.race([sleep(delay), new Promise<void>((r) => (this.wakeUp = r))]);
        this.wakeUp = null;
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /** The poll loop; returns its connection (or null) once stopping. */
  private async pollLoop(): Promise<pg.Client | null> {
    let conn: pg.Client | null = null;
    while (!this.stopping) {
      if (conn === null) {
        try {
          conn = await this.connectPoll();
        } catch {
          continue;
        }
      }
      const free = this.concurrency - this.running.size;
      if (free <= 0) {
        this.woken = false;
        await this.waitWake(this.pollInterval);
        continue;
      }
      const n = Math.min(free, this.maxTasks);
      let tasks: TaskRow[];
      try {
        tasks = await this.poll(conn, n);
      } catch (e) {
        if (isLost(e)) {
          this.log("warn", `lost the connection to the server: ${reason(e)}; reconnecting`);
          conn.end().catch(() => {});
          conn = null;
        } else {
          this.log("warn", `poll failed: ${reason(e)}`);
          await sleep(1000);
        }
        continue;
      }
      for (const t of tasks) this.start(t);
      if (tasks.length < n && this.done.length === 0) await this.waitWake(this.pollInterval);
    }
    return conn;
  }

  /** Claim up to n tasks, handing in the finished results in the same call. */
  private async poll(conn: pg.Client, n: number): Promise<TaskRow[]> {
    this.woken = false; // drain: what woke us is covered by this poll
    const done = this.done.splice(0, MAX_DONE);
    const args: unknown[] = [this.queue, this.name, n, this.lease, null, null];
    if (done.length > 0) {
      args[4] = done.map(([t]) => t);
      args[5] = done.map(([, r]) => r);
    }
    try {
      return (await conn.query(POLL_SQL, args)).rows as TaskRow[];
    } catch (e) {
      if (done.length === 0) throw e;
      if (isLost(e)) {
        this.done.unshift(...done); // keep them for the next connection
        throw e;
      }
      // one of them went stale (or so): nothing was done; finish them one
      // by one, then claim
      await this.completeEach(conn, done);
      args[4] = args[5] = null;
      return (await conn.query(POLL_SQL, args)).rows as TaskRow[];
    }
  }

  /** Complete results one by one: a stale token fails alone. */
  private async completeEach(conn: pg.ClientBase | pg.Pool, done: [string, string][]): Promise<void> {
    for (let i = 0; i < done.length; i++) {
      const [token, result] = done[i];
      try {
        await conn.query("SELECT durable.task_complete($1, $2::jsonb)", [token, result]);
      } catch (e) {
        if (isLost(e)) {
          this.done.unshift(...done.slice(i));
          throw e;
        }
        this.log("warn", `completing task ${token} failed: ${reason(e)}: result dropped`);
      }
    }
  }

  private start(t: TaskRow): void {
    const lease = t.lease_left && t.lease_left > 0 ? Math.min(t.lease_left, this.lease) : this.lease;
    const period = Math.max(lease / 3, 0.1) * 1000;
    const r: Running = { task: t, hbPeriod: period, hbNext: Date.now() + period, beating: false };
    this.running.set(t.token, r);
    const started = Date.now();
    const work =
      t.kind === "workflow" ? this.runWorkflowTask(t) : t.kind === "query" ? this.runQuery(t) : this.runActivity(t, r);
    work
      .catch((e) => `error: ${reason(e)}`)
      .then((outcome) => {
        this.completed += 1;
        this.log("info", `${this.queue} ${t.kind} ${t.workflow_id}/${t.name} attempt ${t.attempt}: ${outcome} (${Date.now() - started} ms)`);
      })
      .finally(() => {
        this.running.delete(t.token);
        this.wake();
      });
  }

  // ------------------------------------------------------------ token calls

  /**
   * One call on a task's token.  A lost connection does not lose it: it is
   * sent again on a new connection, at once and then with capped backoff,
   * until the server answers (or, once stopping, the grace is over).  That
   * is safe: a call that did commit is a no-op or gets DU004 the second time.
   */
  private async call(token: string, what: string, sql: string, params: unknown[]): Promise<pg.QueryResult> {
    return this.withClient(token, what, (c) => c.query(sql, params));
  }

  /** Runs fn on a pooled connection, again on a new one while connections are lost. */
  private async withClient<T>(token: string, what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let delay = RETRY_FIRST_MS;
    let lostAt: number | null = null;
    for (;;) {
      let client: pg.PoolClient | null = null;
      try {
        client = await this.pool.connect();
        const r = await fn(client);
        client.release();
        if (lostAt !== null) this.log("info", `task ${token}: ${what} delivered after reconnecting`);
        return r;
      } catch (e) {
        client?.release(isLost(e) ? (e as Error) : undefined);
        if (!isLost(e)) {
          if (sqlstate(e) === "DU004") this.log("warn", `task ${token}: ${what} refused, the token is stale (DU004): task dropped`);
          throw e;
        }
        if (this.graceEnd !== null && Date.now() > this.graceEnd) {
          this.log("warn", `task ${token}: giving up ${what}, the worker is stopping: ${reason(e)}`);
          throw e;
        }
        if (lostAt === null) {
          lostAt = Date.now();
          this.log("warn", `task ${token}: connection lost during ${what} (${reason(e)}): sending it again`);
        }
        await sleep(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /** Several statements in one transaction, sent again as a whole after a lost connection. */
  private async callTx(token: string, what: string, statements: [string, unknown[]][]): Promise<void> {
    await this.withClient(token, what, async (c) => {
      await c.query("BEGIN");
      try {
        for (const [sql, params] of statements) await c.query(sql, params);
        await c.query("COMMIT");
      } catch (e) {
        if (!isLost(e)) await c.query("ROLLBACK");
        throw e;
      }
    });
  }

  private finish(token: string, result: unknown): void {
    this.done.push([token, JSON.stringify(result ?? null)]);
    this.wake();
  }

  /** Runs a call that ends a task; DU004 means the task is not ours any more. */
  private async end(token: string, what: string, sql: string, params: unknown[]): Promise<boolean> {
    try {
      await this.call(token, what, sql, params);
      return true;
    } catch (e) {
      if (sqlstate(e) === "DU004") return false;
      throw e;
    }
  }

  // ------------------------------------------------------------ heartbeats

  private async heartbeat(token: string, details: unknown): Promise<boolean> {
    const r = await this.pool.query("SELECT durable.task_heartbeat($1, $2, $3 * interval '1 s') AS cancel", [
      token,
      jsonParam(details ?? undefined),
      this.lease,
    ]);
    return r.rows[0].cancel === true;
  }

  private heartbeatRound(): void {
    const now = Date.now();
    for (const [token, r] of this.running) {
      if (r.task.kind === "query" || r.beating || now < r.hbNext) continue;
      r.hbNext = now + r.hbPeriod;
      r.beating = true;
      this.heartbeat(token, r.activity?.details)
        .then((cancel) => {
          if (cancel) r.activity?._cancel("workflow cancel requested");
        })
        .catch((e) => {
          this.log("warn", `heartbeat of task ${token} failed: ${reason(e)}`);
          if (sqlstate(e) === "DU004") {
            // withdrawn (cancelled by its workflow, the run closed, a timeout): stop
            r.hbNext = Infinity;
            r.activity?._cancel("the activity's task was withdrawn (DU004)");
          }
        })
        .finally(() => (r.beating = false));
    }
  }

  // ------------------------------------------------------------ activities

  private async runActivity(t: TaskRow, r: Running): Promise<string> {
    const def = this.activities.get(t.name);
    if (def === undefined) {
      await this.end(t.token, "task_fail", "SELECT durable.task_fail($1, $2, true)", [
        t.token,
        JSON.stringify({ type: "UnknownActivity", message: `no activity "${t.name}" on this worker` }),
      ]);
      return "unknown activity, retried later";
    }
    const ctx = new ActivityContext(
      {
        token: t.token,
        workflowId: t.workflow_id,
        runId: t.run_id,
        workflowType: t.workflow_type,
        name: t.name,
        seq: t.seq!,
        attempt: t.attempt,
        heartbeatDetails: t.heartbeat,
        cancelRequested: t.cancel_requested,
      },
      this.pool,
      async (details) => {
        r.hbNext = Date.now() + r.hbPeriod;
        return this.heartbeat(t.token, details);
      },
    );
    r.activity = ctx;
    let result: unknown;
    try {
      result = await def.fn(ctx, t.input);
    } catch (e) {
      if (e instanceof CancelledError || (ctx.cancelled && (e === ctx.signal.reason || (e as Error)?.name === "AbortError"))) {
        // the run was asked to cancel: this attempt ends for good
        const err = { type: "cancelled", message: (e as Error)?.message || "activity cancelled" };
        await this.end(t.token, "task_fail", "SELECT durable.task_fail($1, $2, false)", [t.token, JSON.stringify(err)]);
        return "cancelled";
      }
      const retryable = !(e instanceof ApplicationError && e.nonRetryable);
      await this.end(t.token, "task_fail", "SELECT durable.task_fail($1, $2, $3)", [t.token, JSON.stringify(errorObject(e)), retryable]);
      return `failed: ${reason(e)}`;
    } finally {
      r.hbNext = Infinity;
    }
    if (result === ASYNC_COMPLETION) return "left open for async completion";
    this.finish(t.token, result);
    return "completed";
  }

  // ------------------------------------------------------------ workflows

  private taskIO(token: string): TaskIO {
    const stepSql = (steps: StepRecord[]): [string, unknown[]] => ["SELECT durable.step_record($1, $2::jsonb)", [token, JSON.stringify(steps)]];
    return {
      recordSteps: async (steps) => {
        await this.call(token, "step_record", ...stepSql(steps));
      },
      transaction: async (fn, stepsFor) => {
        // no second try here: whether it committed is unknown, the journal knows
        let c: pg.PoolClient;
        try {
          c = await this.pool.connect();
        } catch (e) {
          throw new LostConnection(e);
        }
        let broken: Error | undefined;
        try {
          await c.query("BEGIN");
          const result = await fn(c);
          await c.query(...stepSql(stepsFor(result)));
          await c.query("COMMIT");
          return result;
        } catch (e) {
          // the code's own error, or the engine's, if the connection still answers
          try {
            await c.query("ROLLBACK");
          } catch (e2) {
            broken = e2 as Error;
            throw new LostConnection(e);
          }
          throw e;
        } finally {
          c.release(broken);
        }
      },
      upsertSearchAttributes: async (seq, attributes, steps) => {
        const upsert: [string, unknown[]] = [
          "SELECT durable.task_upsert_search_attributes($1, $2, $3::jsonb)",
          [token, seq, JSON.stringify(attributes)],
        ];
        await this.callTx(token, "task_upsert_search_attributes", steps.length ? [stepSql(steps), upsert] : [upsert]);
      },
      publish: async (name, value) => {
        await this.call(token, `task_publish ${name}`, "SELECT durable.task_publish($1, $2, $3::jsonb)", [token, name, jsonParam(value ?? undefined)]);
      },
      sendUpdates: async (commands, steps) => {
        const updates: [string, unknown[]] = ["SELECT durable.task_updates($1, $2::jsonb)", [token, JSON.stringify(commands)]];
        await this.callTx(token, "task_updates", steps.length ? [stepSql(steps), updates] : [updates]);
      },
      judge: async (call) => {
        let stmt: [string, unknown[]];
        if ("local" in call) stmt = ["SELECT durable.step_record($1, $2, $3, NULL)", [token, call.local.seq, call.local.name]];
        else if ("upsert" in call)
          stmt = ["SELECT durable.task_upsert_search_attributes($1, $2, $3::jsonb)", [token, call.upsert.seq, JSON.stringify(call.upsert.attributes)]];
        else stmt = ["SELECT durable.task_suspend($1, $2::jsonb)", [token, JSON.stringify([call.command])]];
        // in a transaction that is always rolled back: the engine judges, nothing changes
        await this.withClient(token, "nondeterminism check", async (c) => {
          await c.query("BEGIN");
          try {
            await c.query(...stmt);
          } finally {
            await c.query("ROLLBACK").catch(() => {});
          }
        });
        throw new Nondeterminism(0, `the engine accepted a call that does not match the journal: ${JSON.stringify(call)}`);
      },
    };
  }

  private async runWorkflowTask(t: TaskRow): Promise<string> {
    const token = t.token;
    const def = this.workflows.get(t.workflow_type);
    if (def === undefined) {
      await this.end(token, "task_fail", "SELECT durable.task_fail($1, $2, true)", [
        token,
        JSON.stringify({ type: "UnknownWorkflow", message: `no workflow "${t.workflow_type}" on this worker` }),
      ]);
      return "unknown workflow type, retried later";
    }
    const { outcome } = await runWorkflow(def.fn, t, this.taskIO(token));
    const steps = (s: StepRecord[]) => (s.length ? JSON.stringify(s) : null);
    switch (outcome.type) {
      case "suspend":
        if (!(await this.end(token, "task_suspend", "SELECT durable.task_suspend($1, $2::jsonb, $3::jsonb)", [token, JSON.stringify(outcome.commands), steps(outcome.steps)])))
          return "dropped: the token is stale (DU004)";
        return `suspended with ${outcome.commands.length} command(s)`;
      case "complete":
        if (outcome.steps.length === 0) {
          this.finish(token, outcome.result);
        } else if (!(await this.end(token, "task_complete", "SELECT durable.task_complete($1, $2::jsonb, $3::jsonb)", [token, JSON.stringify(outcome.result), steps(outcome.steps)]))) {
          return "dropped: the token is stale (DU004)";
        }
        return "completed";
      case "continueAsNew":
        await this.end(token, "task_complete", "SELECT durable.task_complete($1, NULL, $2::jsonb, $3::jsonb)", [
          token,
          steps(outcome.steps),
          JSON.stringify(outcome.input ?? null),
        ]);
        return "continued as new";
      case "fail":
        await this.end(token, "task_fail", "SELECT durable.task_fail($1, $2, false)", [token, JSON.stringify(outcome.error)]);
        return `failed: ${outcome.error.message}`;
      case "taskError":
        return this.taskError(token, outcome.cause);
      case "replayEnd":
        throw new Error("a workflow task cannot end as a replay");
    }
  }

  /** A workflow task that went wrong: dropped (DU004), released (lost connection), or failed to be retried. */
  private async taskError(token: string, cause: unknown): Promise<string> {
    const code = sqlstate(cause);
    if (code === "DU004") return "dropped: the token is stale (DU004)";
    if (cause instanceof LostConnection) {
      // lost in the middle of a transaction step: whether it committed is
      // unknown, the engine's journal knows; hand the task back so that it
      // is replayed from there at once
      await this.end(token, "task_release", "SELECT durable.task_release($1)", [token]);
      return "connection lost in a transaction step: released, to be replayed";
    }
    let err: ErrorObject;
    if (code === "DU003" || cause instanceof Nondeterminism) {
      err = { type: "nondeterminism", message: (cause as Error).message };
      if (code) err.sqlstate = code;
    } else if (code !== undefined) {
      err = { type: "WorkflowTaskError", sqlstate: code, message: (cause as Error).message };
    } else {
      err = { ...errorObject(cause), stack: (cause as Error)?.stack };
    }
    await this.end(token, "task_fail", "SELECT durable.task_fail($1, $2, true)", [token, JSON.stringify(err)]);
    return `workflow task failed: ${err.message}`;
  }

  /** Answer a live query: replay the run from its journal (nothing is written), then run the handler. */
  private async runQuery(t: TaskRow): Promise<string> {
    let result: unknown = null;
    let error: ErrorObject | null = null;
    const def = this.workflows.get(t.workflow_type);
    if (def === undefined) {
      error = { type: "UnknownWorkflow", message: `no workflow "${t.workflow_type}" on this worker` };
    } else {
      const { outcome, ctx } = await runWorkflow(def.fn, t, null, "query");
      const handler = ctx.queryHandlers.get(t.name);
      if (outcome.type === "taskError") {
        error = { ...errorObject(outcome.cause), message: `replay failed: ${reason(outcome.cause)}` };
      } else if (handler === undefined) {
        error = { type: "QueryNotFound", message: `workflow "${t.workflow_type}" has no handler for query "${t.name}" (ctx.onQuery)` };
      } else {
        try {
          result = t.input === null || t.input === undefined ? handler() : handler(t.input);
        } catch (e) {
          error = errorObject(e);
        }
      }
    }
    const answer = "SELECT durable.task_answer_query($1, $2::jsonb, $3::jsonb)";
    try {
      await this.call(t.token, "task_answer_query", answer, [t.token, JSON.stringify(result ?? null), error && JSON.stringify(error)]);
    } catch (e) {
      if (sqlstate(e) !== "DU008") throw e;
      await this.call(t.token, "task_answer_query", answer, [t.token, null, JSON.stringify({ type: "AnswerTooLarge", message: (e as Error).message })]);
      return `query ${t.name}: answer too large`;
    }
    return `query ${t.name} answered${error ? " with an error" : ""}`;
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Hand in what finishes within the grace, then hand the rest back: ready
   * again at once for another worker.  Their code may go on, but the engine
   * rejects their late calls (DU004).
   */
  private async shutdown(): Promise<void> {
    this.log("info", `worker ${this.name} stopping: waiting for ${this.running.size} running task(s)`);
    for (;;) {
      await this.flushDone();
      if (this.running.size === 0 || Date.now() >= this.graceEnd!) break;
      await sleep(50);
    }
    for (const [token, r] of [...this.running]) {
      if (r.task.kind === "query") continue;
      r.activity?._cancel("the worker is shutting down");
      try {
        await this.pool.query("SELECT durable.task_release($1)", [token]);
        this.released += 1;
        this.log("info", `released task ${token}`);
      } catch (e) {
        this.log("warn", `releasing task ${token} failed: ${reason(e)}`);
      }
    }
    await this.flushDone();
    if (this.done.length > 0) {
      this.log("warn", `${this.done.length} finished result(s) could not be handed in: their tasks run again once their leases expire`);
    }
  }

  private async flushDone(): Promise<void> {
    while (this.done.length > 0) {
      const done = this.done.splice(0, MAX_DONE);
      try {
        await this.pool.query("SELECT durable.task_complete_many($1::bigint[], $2::jsonb[])", [done.map(([t]) => t), done.map(([, r]) => r)]);
      } catch (e) {
        if (isLost(e)) {
          this.done.unshift(...done);
          this.log("warn", `completing finished tasks failed: ${reason(e)}`);
          return;
        }
        try {
          await this.completeEach(this.pool, done);
        } catch {
          return;
        }
      }
    }
  }
}
