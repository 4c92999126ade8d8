/**
 * The worker: polls one queue and runs its workflow, activity and query
 * tasks (protocol sections 3, 8, 10 and 13).
 *
 * - `concurrency` tasks run at once, and up to `prefetch` more wait claimed
 *   beside them (heartbeated like the running ones), so that a poll claims
 *   several tasks at a time: a poll has a large fixed cost, and polling for
 *   each slot as it frees up doubled the server's work per task.  Polls
 *   claim up to `maxTasks`, and hand in the results of finished tasks in the
 *   same call (finish and claim: `done_tokens` / `done_results`); results
 *   that no poll is about to carry go in with `task_complete_many` after
 *   LINGER_MS.
 * - An idle worker waits for NOTIFY on `durable_<queue>` and on a channel of
 *   its own (targeted wake-ups, section 10), and polls anyway every
 *   `pollInterval`.
 * - Running tasks are heartbeated every third of their lease.  An activity
 *   learns a cancel request from them (`ctx.cancelRequested`), and is
 *   aborted (`ctx.signal`) when its task was withdrawn; a workflow task
 *   whose task was withdrawn stops.
 * - A task call the engine refuses (a bad command, a payload too large …)
 *   fails the task instead (section 11): nothing stays leased to run again
 *   and again at each lease expiry.
 * - A lost connection never ends the worker: token calls are sent again on a
 *   new connection until the server answers (a repeated call is a no-op or
 *   gets DU004), the poll and LISTEN connections come back with a backoff,
 *   and a workflow task whose connection broke inside `ctx.transaction()` is
 *   released, to be replayed at once.
 * - SIGTERM / SIGINT (or `stop()`): stop polling, let running tasks finish
 *   for up to `grace`, hand in their results, release the rest; a
 *   second signal releases them at once.
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
  checkQueue,
  clientConfig,
  defaultLogger,
  isLost,
  jsonParam,
  newPool,
  reason,
  sleep,
  sqlstate,
  type Connection,
  type Logger,
} from "./pgutil.js";
import { durationSeconds, type ActivityDef, type Duration, type TaskRow, type WorkflowDef } from "./types.js";
import { runWorkflow, type StepRecord, type TaskIO } from "./workflow.js";

export interface WorkerOptions {
  /** Connection string or node-postgres settings. */
  connection: Connection;
  queue?: string;
  workflows?: WorkflowDef<any, any>[];
  activities?: ActivityDef<any, any>[];
  /** Tasks run at once (default 4). */
  concurrency?: number;
  /**
   * Tasks claimed ahead, waiting for a free slot (default: concurrency; 0:
   * claim only for free slots).  They are leased to this worker meanwhile.
   */
  prefetch?: number;
  /** Tasks claimed per poll at most (default: concurrency + prefetch). */
  maxTasks?: number;
  /** Lease of claimed tasks (default "30s"; a number is milliseconds, as every Duration). */
  lease?: Duration;
  /** Fallback poll while idle (default "5s"). */
  pollInterval?: Duration;
  /** How long running tasks may finish at shutdown (default: the lease). */
  grace?: Duration;
  /**
   * Watchdog of workflow tasks (default "300s"): local work (step
   * functions, transactions) that makes no progress for this long fails
   * the workflow task, to be retried.
   */
  stepTimeout?: Duration;
  /** Worker name recorded on its tasks (default host-pid). */
  name?: string;
  namespace?: string;
  /** Stop on SIGTERM / SIGINT (default true); a second signal stops at once. */
  handleSignals?: boolean;
  logger?: Logger;
}

/** Results handed in with one poll at most (protocol 16). */
const MAX_DONE = 1000;

/**
 * How long a finished task's result may wait for a poll to carry it, while
 * the worker has tasks claimed ahead and so does not poll at once.
 */
const LINGER_MS = 5;

/** How long run() waits at the end for connections that activities still hold. */
const POOL_END_MS = 2000;

/**
 * A statement under a name of its own: node-postgres prepares it once per
 * connection and then only binds and executes it, as psycopg does after a
 * few runs (an unnamed statement is parsed and planned at every call).
 */
const statementNames = new Map<string, string>();
function named(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `durable_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

const POLL_SQL = `
SELECT token, kind, workflow_id, run_id, workflow_type, name, seq, input,
       attempt, journal, heartbeat, cancel_requested, updates,
       extract(epoch FROM lease_until - now())::float8 AS lease_left
  FROM durable.task_poll($1, $2, $3, $4 * interval '1 s', $5::bigint[], $6::jsonb[])`;

interface Running {
  task: TaskRow;
  /** its code runs (else it waits for a slot, claimed ahead) */
  started: boolean;
  hbPeriod: number;
  hbNext: number;
  beating: boolean;
  activity?: ActivityContext;
  /** aborted when the task is no longer ours: its workflow code stops */
  lost: AbortController;
  /** the pooled connection its calls use, kept between them (withClient) */
  client?: pg.PoolClient;
}

/** How a task ended, for the log: `warn` for every outcome that is an error. */
interface Done {
  text: string;
  warn?: boolean;
}

/** An error object small enough for task_fail whatever went wrong. */
function smallError(type: string, e: unknown): ErrorObject {
  const err: ErrorObject = { type, message: reason(e).slice(0, 10_000) };
  const code = sqlstate(e);
  if (code !== undefined) err.sqlstate = code;
  return err;
}

export class Worker {
  readonly queue: string;
  readonly name: string;
  /** Tasks finished (any outcome) and tasks handed back at shutdown. */
  completed = 0;
  released = 0;

  private readonly cfg: pg.ClientConfig;
  /** the worker's own calls: polls' results, token calls, heartbeats */
  private readonly pool: pg.Pool;
  /** the code's SQL: activities' `ctx.db`, workflows' `ctx.transaction` */
  private readonly dbPool: pg.Pool;
  private readonly workflows: Map<string, WorkflowDef<any, any>>;
  private readonly activities: Map<string, ActivityDef<any, any>>;
  private readonly concurrency: number;
  private readonly prefetch: number;
  private readonly maxTasks: number;
  /** claimed tasks waiting for a slot, oldest first; they are in `running` too */
  private readonly waiting: string[] = [];
  /** tasks whose code runs */
  private executing = 0;
  private readonly lease: number;
  private readonly pollInterval: number;
  private readonly grace: number;
  private readonly stepTimeout: number;
  private readonly handleSignals: boolean;
  private readonly log: Logger;
  /** targeted wake-ups: the LISTEN connection also listens here, the poll connection names it */
  private readonly wakeChannel = "durable_w_" + randomBytes(8).toString("hex");
  private readonly running = new Map<string, Running>();
  private done: [string, string][] = [];
  private stopping = false;
  /** a second signal: release the running tasks without waiting for the grace */
  private hardStop = false;
  private readonly stopped: Promise<void>;
  private resolveStopped!: () => void;
  private graceEnd: number | null = null;
  private woken = false;
  private wakeUp: (() => void) | null = null;

  constructor(options: WorkerOptions) {
    this.queue = checkQueue(options.queue ?? "default");
    this.name = options.name ?? `${hostname()}-${process.pid}`;
    this.concurrency = options.concurrency ?? 4;
    this.prefetch = options.prefetch ?? this.concurrency;
    this.maxTasks = options.maxTasks ?? this.concurrency + this.prefetch;
    // kept in seconds
    this.lease = durationSeconds(options.lease ?? "30s", "lease");
    this.pollInterval = durationSeconds(options.pollInterval ?? "5s", "pollInterval");
    this.grace = options.grace === undefined ? this.lease : durationSeconds(options.grace, "grace", true);
    this.stepTimeout = durationSeconds(options.stepTimeout ?? "300s", "stepTimeout");
    this.handleSignals = options.handleSignals ?? true;
    this.log = options.logger ?? defaultLogger();
    this.workflows = new Map((options.workflows ?? []).map((w) => [w.name, w]));
    this.activities = new Map((options.activities ?? []).map((a) => [a.name, a]));
    this.cfg = clientConfig(options.connection, options.namespace, `durable-worker ${this.name}`);
    const lost = (e: Error) => this.log("debug", `connection lost: ${reason(e)}`);
    // separate pools: the code's SQL can never starve heartbeats and token calls
    this.pool = newPool(this.cfg, this.concurrency * 2 + 2, lost);
    this.dbPool = newPool(this.cfg, this.concurrency * 2, lost);
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
  }

  /** Stop polling; `run()` then finishes (safe from a signal handler). */
  stop(): void {
    this.stopping = true;
    this.resolveStopped();
    this.wake();
  }

  /** Work until stopped.  Connection trouble never ends it. */
  async run(): Promise<void> {
    const onSignal = (signal: string) => {
      if (this.stopping) {
        this.log("warn", `${signal} again: releasing the running tasks now`);
        this.hardStop = true;
      }
      this.stop();
    };
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
      await listening;
      await conn?.end().catch(() => {});
      // pool.end() waits for the connections activities still hold
      const ended = Promise.all([this.pool.end(), this.dbPool.end()]).then(() => true, () => true);
      if (!(await Promise.race([ended, sleep(this.hardStop ? 0 : POOL_END_MS).then(() => false)]))) {
        this.log("warn", "connections still in use by running code are closed when it releases them");
      }
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

  /** Sleep for a backoff, or until stop(). */
  private backoff(ms: number): Promise<void> {
    return Promise.race([sleep(ms), this.stopped]);
  }

  /**
   * Keep a connection LISTENing on the queue's channel and on the worker's
   * own (a connection of its own, so that losing it does not hold up
   * polling); wake the poll loop on each notification, and after each
   * (re)LISTEN, since a NOTIFY may have been missed meanwhile.  Reconnects
   * at once after a loss, then with a backoff of 0.1 s doubling to 5 s.
   */
  private async listenLoop(): Promise<void> {
    let delay = RETRY_FIRST_MS;
    let failures = 0;
    while (!this.stopping) {
      const c = new pg.Client(this.cfg);
      c.on("notification", () => this.wake());
      let lost = (e: Error) => this.log("debug", `LISTEN connection: ${reason(e)}`);
      c.on("error", (e) => lost(e));
      try {
        await c.connect();
        // only now: a failed connect ends the client too, which must not cut the backoff short
        const gone = new Promise<void>((resolve) => {
          c.once("end", resolve);
          lost = (e) => {
            this.log("warn", `lost the LISTEN connection: ${reason(e)}; reconnecting`);
            resolve();
          };
        });
        await c.query(`LISTEN "durable_${this.queue}"`);
        await c.query(`LISTEN "${this.wakeChannel}"`);
        if (failures > 0) this.log("info", `listening again after ${failures} failed attempt(s)`);
        failures = 0;
        delay = RETRY_FIRST_MS;
        this.wake();
        await Promise.race([gone, this.stopped]);
        await c.end().catch(() => {});
      } catch (e) {
        c.end().catch(() => {});
        failures += 1;
        this.log(failures === 1 ? "warn" : "debug", `LISTEN connection: cannot connect (${failures} attempts): ${reason(e)}`);
        await this.backoff(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
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
        await this.backoff(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  /** The poll loop; returns its connection (or null) once stopping. */
  private async pollLoop(): Promise<pg.Client | null> {
    let conn: pg.Client | null = null;
    /** when results waiting for a poll go in alone (task_complete_many) */
    let lingerUntil: number | null = null;
    while (!this.stopping) {
      if (conn === null) {
        try {
          conn = await this.connectPoll();
        } catch {
          continue;
        }
      }
      // poll when a slot would otherwise idle, or when prefetch slots
      // are free: one poll claims several tasks
      const free = this.concurrency + this.prefetch - this.running.size;
      if (free <= 0 || (this.waiting.length > 0 && free < Math.max(this.prefetch, 1))) {
        this.woken = false;
        if (this.done.length > 0) {
          // results wait a moment for the next poll, then go in alone.  A
          // wake-up before then (the finished task freeing its slot comes
          // just after its result) looks again whether a poll is due: the
          // linger ends only when its time is up
          lingerUntil ??= Date.now() + LINGER_MS;
          const left = lingerUntil - Date.now();
          if (left > 0) {
            await this.waitWake(left / 1000);
            continue;
          }
          lingerUntil = null;
          if (!this.stopping) await this.flushDone();
        } else await this.waitWake(this.pollInterval);
        continue;
      }
      lingerUntil = null; // the poll carries the results
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
          await this.backoff(1000);
        }
        continue;
      }
      if (this.stopping) {
        // stop() came during the poll: hand these back rather than start them
        for (const t of tasks) await this.release(t.token);
        break;
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
      return (await conn.query(named(POLL_SQL, args))).rows as TaskRow[];
    } catch (e) {
      if (done.length === 0) throw e;
      if (isLost(e)) {
        this.done.unshift(...done); // keep them for the next connection
        throw e;
      }
      // one of them went stale or too large (or so): nothing was done;
      // finish them one by one, then claim
      await this.completeEach(conn, done);
      args[4] = args[5] = null;
      return (await conn.query(named(POLL_SQL, args))).rows as TaskRow[];
    }
  }

  /**
   * Complete results one by one: a stale token fails alone, and a result
   * over the payload limit (DU008) fails its task with a small error
   * instead (protocol 11), so that it is not run again at each lease expiry.
   */
  private async completeEach(conn: pg.ClientBase | pg.Pool, done: [string, string][]): Promise<void> {
    for (let i = 0; i < done.length; i++) {
      const [token, result] = done[i];
      try {
        try {
          await conn.query("SELECT durable.task_complete($1, $2::jsonb)", [token, result]);
        } catch (e) {
          if (sqlstate(e) !== "DU008") throw e;
          this.log("warn", `task ${token}: its result is too large (${reason(e)}): failing the task`);
          await conn.query("SELECT durable.task_fail($1, $2, true)", [token, JSON.stringify(smallError("ResultTooLarge", e))]);
        }
      } catch (e) {
        if (isLost(e)) {
          this.done.unshift(...done.slice(i));
          throw e;
        }
        this.log("warn", `completing task ${token} failed: ${reason(e)}: result dropped`);
      }
    }
  }

  /** A claimed task: it runs when a slot is free, heartbeated meanwhile. */
  private start(t: TaskRow): void {
    const lease = t.lease_left && t.lease_left > 0 ? Math.min(t.lease_left, this.lease) : this.lease;
    const period = Math.max(lease / 3, 0.1) * 1000;
    const r: Running = { task: t, started: false, hbPeriod: period, hbNext: Date.now() + period, beating: false, lost: new AbortController() };
    this.running.set(t.token, r);
    this.waiting.push(t.token);
    this.dispatch();
  }

  /** Start waiting tasks while slots are free (not once stopping: they are released). */
  private dispatch(): void {
    while (this.executing < this.concurrency && this.waiting.length > 0 && !this.stopping) {
      const r = this.running.get(this.waiting.shift()!);
      if (r !== undefined) this.execute(r);
    }
  }

  private execute(r: Running): void {
    const t = r.task;
    r.started = true;
    this.executing += 1;
    const started = Date.now();
    const work = t.kind === "workflow" ? this.runWorkflowTask(t, r) : t.kind === "query" ? this.runQuery(t) : this.runActivity(t, r);
    work
      .catch((e): Done => ({ text: `error: ${reason(e)}`, warn: true }))
      .then((outcome) => {
        this.completed += 1;
        this.log(outcome.warn ? "warn" : "info", `${this.queue} ${t.kind} ${t.workflow_id}/${t.name} attempt ${t.attempt}: ${outcome.text} (${Date.now() - started} ms)`);
      })
      .finally(() => {
        this.executing -= 1;
        r.client?.release();
        r.client = undefined;
        this.running.delete(t.token);
        this.dispatch();
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
    return this.withClient(token, what, (c) => c.query(named(sql, params)));
  }

  /**
   * Runs fn on a pooled connection, again on a new one while connections
   * are lost.  A running task keeps the connection between its calls (a
   * workflow's steps come one after another) and gives it back when it
   * ends: a checkout and release per call took about 7% of the worker
   * process's busy CPU in a profile of bench/sdk_bench_ts.py.
   */
  private async withClient<T>(token: string, what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let delay = RETRY_FIRST_MS;
    let lostAt: number | null = null;
    for (;;) {
      let client: pg.PoolClient | null = null;
      try {
        const task = this.running.get(token);
        client = task?.client ?? (await this.pool.connect());
        if (task !== undefined) task.client = undefined; // a concurrent call of the task takes another
        const r = await fn(client);
        // kept while the task runs (execute() releases it at the end)
        if (task !== undefined && this.running.get(token) === task && task.client === undefined) task.client = client;
        else client.release();
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
        for (const [sql, params] of statements) await c.query(named(sql, params));
        await c.query("COMMIT");
      } catch (e) {
        if (!isLost(e)) await c.query("ROLLBACK");
        throw e;
      }
    });
  }

  /** Queue a result for the next poll (finish and claim); a result that is not JSON throws here. */
  private finish(token: string, result: unknown): void {
    this.done.push([token, JSON.stringify(result ?? null)]);
    this.wake();
  }

  /**
   * Ends a task with `finish` (its task_suspend, task_complete …).  DU004:
   * the task is not ours any more.  Any other refusal of the engine (a bad
   * command DU002, a taken child id DU006, a payload too large DU008 …) or
   * a value that is not JSON fails the task instead, retryable, with that
   * error (protocol 11): else it would stay leased, and run again at each
   * lease expiry, without a trace.
   */
  private async ending(token: string, type: string, finish: () => Promise<string>): Promise<Done> {
    try {
      return { text: await finish() };
    } catch (e) {
      if (sqlstate(e) === "DU004") return { text: "dropped: the token is stale (DU004)", warn: true };
      if (isLost(e)) throw e; // given up at shutdown: the lease expires
      const err = smallError(sqlstate(e) === "DU008" ? "ResultTooLarge" : type, e);
      try {
        await this.call(token, "task_fail", "SELECT durable.task_fail($1, $2, true)", [token, JSON.stringify(err)]);
      } catch (e2) {
        if (sqlstate(e2) === "DU004") return { text: "dropped: the token is stale (DU004)", warn: true };
        throw e2;
      }
      return { text: `failed, to be retried: ${err.message}`, warn: true };
    }
  }

  /** Hand a task back (shutdown). */
  private async release(token: string): Promise<void> {
    try {
      await this.pool.query("SELECT durable.task_release($1)", [token]);
      this.released += 1;
      this.log("info", `released task ${token}`);
    } catch (e) {
      this.log("warn", `releasing task ${token} failed: ${reason(e)}`);
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

  /** The task was withdrawn (DU004): its activity is aborted, its workflow code stops. */
  private withdrawn(r: Running): void {
    r.hbNext = Infinity;
    const why = "the task was withdrawn (DU004)";
    r.activity?._abort(why);
    r.lost.abort(new Error(why));
  }

  private heartbeatRound(): void {
    const now = Date.now();
    for (const [token, r] of this.running) {
      if (r.task.kind === "query" || r.beating || now < r.hbNext) continue;
      r.hbNext = now + r.hbPeriod;
      r.beating = true;
      this.heartbeat(token, r.activity?.details)
        .then((cancel) => r.activity?._cancelRequested(cancel))
        .catch((e) => {
          this.log("warn", `heartbeat of task ${token} failed: ${reason(e)}`);
          if (sqlstate(e) === "DU004") this.withdrawn(r);
        })
        .finally(() => (r.beating = false));
    }
  }

  // ------------------------------------------------------------ activities

  private async runActivity(t: TaskRow, r: Running): Promise<Done> {
    const def = this.activities.get(t.name);
    if (def === undefined) {
      return this.ending(t.token, "UnknownActivity", async () => {
        const err = { type: "UnknownActivity", message: `no activity "${t.name}" on this worker` };
        await this.call(t.token, "task_fail", "SELECT durable.task_fail($1, $2, true)", [t.token, JSON.stringify(err)]);
        return "unknown activity, retried later";
      });
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
      this.dbPool,
      async (details) => {
        r.hbNext = Date.now() + r.hbPeriod;
        try {
          return await this.heartbeat(t.token, details);
        } catch (e) {
          if (sqlstate(e) !== "DU004") throw e;
          this.withdrawn(r);
          throw ctx.signal.reason;
        }
      },
    );
    r.activity = ctx;
    let result: unknown;
    try {
      result = await def.fn(ctx, t.input);
    } catch (e) {
      if (e instanceof CancelledError || (ctx.cancelled && (e === ctx.signal.reason || (e as Error)?.name === "AbortError"))) {
        // the activity stopped on a cancel request (or was aborted): this attempt ends for good
        const err = { type: "cancelled", message: (e as Error)?.message || "activity cancelled" };
        return this.ending(t.token, "ActivityTaskError", async () => {
          await this.call(t.token, "task_fail", "SELECT durable.task_fail($1, $2, false)", [t.token, JSON.stringify(err)]);
          return "cancelled";
        });
      }
      const retryable = !(e instanceof ApplicationError && e.nonRetryable);
      return this.ending(t.token, "ActivityTaskError", async () => {
        await this.call(t.token, "task_fail", "SELECT durable.task_fail($1, $2, $3)", [t.token, JSON.stringify(errorObject(e)), retryable]);
        return `failed: ${reason(e)}`;
      }).then((d) => ({ ...d, warn: true }));
    } finally {
      r.hbNext = Infinity;
    }
    if (result === ASYNC_COMPLETION) return { text: "left open for async completion" };
    return this.ending(t.token, "ActivityTaskError", async () => {
      this.finish(t.token, result);
      return "completed";
    });
  }

  // ------------------------------------------------------------ workflows

  private taskIO(token: string): TaskIO {
    // one step (the usual case) in the plain form: the server reads no JSON array
    const stepSql = (steps: StepRecord[]): [string, unknown[]] =>
      steps.length === 1
        ? ["SELECT durable.step_record($1, $2, $3, $4::jsonb)", [token, steps[0].seq, steps[0].name, JSON.stringify(steps[0].result ?? null)]]
        : ["SELECT durable.step_record($1, $2::jsonb)", [token, JSON.stringify(steps)]];
    /** `statement` after recording `steps`, in one transaction when there are steps */
    const withSteps = (what: string, steps: StepRecord[], statement: [string, unknown[]]) =>
      this.callTx(token, what, steps.length ? [stepSql(steps), statement] : [statement]);
    return {
      recordSteps: async (steps) => {
        await this.call(token, "step_record", ...stepSql(steps));
      },
      transaction: async (fn, stepsFor) => {
        // no second try here: whether it committed is unknown, the journal knows
        let c: pg.PoolClient;
        try {
          c = await this.dbPool.connect();
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
      upsertSearchAttributes: (seq, attributes, steps) =>
        withSteps("task_upsert_search_attributes", steps, [
          "SELECT durable.task_upsert_search_attributes($1, $2, $3::jsonb)",
          [token, seq, JSON.stringify(attributes)],
        ]),
      publish: (name, value, steps) =>
        withSteps(`task_publish ${name}`, steps, ["SELECT durable.task_publish($1, $2, $3::jsonb)", [token, name, jsonParam(value ?? undefined)]]),
      sendUpdates: (commands, steps) => withSteps("task_updates", steps, ["SELECT durable.task_updates($1, $2::jsonb)", [token, JSON.stringify(commands)]]),
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

  private async runWorkflowTask(t: TaskRow, r: Running): Promise<Done> {
    const token = t.token;
    const def = this.workflows.get(t.workflow_type);
    if (def === undefined) {
      return this.ending(token, "UnknownWorkflow", async () => {
        const err = { type: "UnknownWorkflow", message: `no workflow "${t.workflow_type}" on this worker` };
        await this.call(token, "task_fail", "SELECT durable.task_fail($1, $2, true)", [token, JSON.stringify(err)]);
        return "unknown workflow type, retried later";
      });
    }
    const { outcome } = await runWorkflow(def.fn, t, this.taskIO(token), "task", { signal: r.lost.signal, stepTimeoutMs: this.stepTimeout * 1000 });
    if (r.lost.signal.aborted) return { text: `dropped: ${reason(r.lost.signal.reason)}`, warn: true };
    const steps = (s: StepRecord[]) => (s.length ? JSON.stringify(s) : null);
    if (outcome.type === "taskError") return this.taskError(token, outcome.cause);
    return this.ending(token, "WorkflowTaskError", async () => {
      switch (outcome.type) {
        case "suspend":
          await this.call(token, "task_suspend", "SELECT durable.task_suspend($1, $2::jsonb, $3::jsonb)", [token, JSON.stringify(outcome.commands), steps(outcome.steps)]);
          return `suspended with ${outcome.commands.length} command(s)`;
        case "complete":
          if (outcome.steps.length === 0) this.finish(token, outcome.result);
          else await this.call(token, "task_complete", "SELECT durable.task_complete($1, $2::jsonb, $3::jsonb)", [token, JSON.stringify(outcome.result), steps(outcome.steps)]);
          return "completed";
        case "continueAsNew":
          await this.call(token, "task_complete", "SELECT durable.task_complete($1, NULL, $2::jsonb, $3::jsonb)", [
            token,
            steps(outcome.steps),
            JSON.stringify(outcome.input ?? null),
          ]);
          return "continued as new";
        case "fail":
          await this.call(token, "task_fail", "SELECT durable.task_fail($1, $2, false)", [token, JSON.stringify(outcome.error)]);
          return `failed: ${outcome.error.message}`;
        case "replayEnd":
          throw new Error("a workflow task cannot end as a replay");
      }
    }).then((d) => (outcome.type === "fail" ? { ...d, warn: true } : d));
  }

  /** A workflow task that went wrong: dropped (DU004), released (lost connection), or failed to be retried. */
  private async taskError(token: string, cause: unknown): Promise<Done> {
    const code = sqlstate(cause);
    if (code === "DU004") return { text: "dropped: the token is stale (DU004)", warn: true };
    if (cause instanceof LostConnection) {
      // lost in the middle of a transaction step: whether it committed is
      // unknown, the engine's journal knows; hand the task back so that it
      // is replayed from there at once
      return this.ending(token, "WorkflowTaskError", async () => {
        await this.call(token, "task_release", "SELECT durable.task_release($1)", [token]);
        return "connection lost in a transaction step: released, to be replayed";
      }).then((d) => ({ ...d, warn: true }));
    }
    let err: ErrorObject;
    if (code === "DU003" || cause instanceof Nondeterminism) {
      err = { type: "nondeterminism", message: (cause as Error).message };
      if (code) err.sqlstate = code;
    } else if (code !== undefined) {
      err = smallError("WorkflowTaskError", cause);
    } else {
      err = { ...errorObject(cause), stack: (cause as Error)?.stack };
    }
    return this.ending(token, "WorkflowTaskError", async () => {
      await this.call(token, "task_fail", "SELECT durable.task_fail($1, $2, true)", [token, JSON.stringify(err)]);
      return `workflow task failed: ${err.message}`;
    }).then((d) => ({ ...d, warn: true }));
  }

  /** Answer a live query: replay the run from its journal (nothing is written), then run the handler. */
  private async runQuery(t: TaskRow): Promise<Done> {
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
      if (sqlstate(e) !== "DU008" && !(e instanceof TypeError)) throw e;
      // too large, or not JSON (a BigInt …): a short error instead
      await this.call(t.token, "task_answer_query", answer, [t.token, null, JSON.stringify(smallError("AnswerTooLarge", e))]);
      return { text: `query ${t.name}: answer not sent: ${reason(e)}`, warn: true };
    }
    return { text: `query ${t.name} answered${error ? " with an error" : ""}`, warn: error !== null };
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Hand in what finishes within the grace, then hand the rest back: ready
   * again at once for another worker.  Their code is stopped (workflows) or
   * aborted (activities); the engine rejects their late calls (DU004).
   */
  private async shutdown(): Promise<void> {
    // tasks claimed ahead have not started: straight back to the queue
    for (const token of this.waiting.splice(0)) {
      this.running.delete(token);
      await this.release(token);
    }
    this.log("info", `worker ${this.name} stopping: waiting for ${this.running.size} running task(s)`);
    for (;;) {
      await this.flushDone();
      if (this.running.size === 0 || this.hardStop || Date.now() >= this.graceEnd!) break;
      await sleep(50);
    }
    for (const [token, r] of [...this.running]) {
      if (r.task.kind === "query") continue;
      // released first: an aborted activity that reports itself cancelled
      // must get DU004, not fail its step for good
      await this.release(token);
      const why = "the worker is shutting down";
      r.activity?._abort(why);
      r.lost.abort(new Error(`released: ${why}`));
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
        await this.pool.query(named("SELECT durable.task_complete_many($1::bigint[], $2::jsonb[])", [done.map(([t]) => t), done.map(([, r]) => r)]));
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
