/**
 * Workflow code and its replay (protocol section 5).
 *
 * A workflow is an async function `(ctx, input)`.  Every durable call takes
 * the next `seq` synchronously, when it is made, and returns a promise (a
 * `Handle` for remote calls).  Nothing a durable call returns settles while
 * the code runs: results are handed over only at **quiescent points**, when
 * no microtask is left and no local step (`ctx.step`, `ctx.transaction` …)
 * is running.  At each quiescent point the runner:
 *
 *  1. counts a wait (`waiting_on` of updates, protocol 5.5), and applies the
 *     updates accepted at that wait (on replay) or takes the updates sent
 *     (new ground);
 *  2. makes a cancel request visible to the code (`ctx.cancelRequested`),
 *     recording where (a local entry `$cancel_requested`) so that every
 *     replay sees it at the same point;
 *  3. resolves `ctx.condition()` waits whose predicate holds;
 *  4. hands over the results of the local steps that finished, or, when no
 *     local step finished, those of the awaited handles whose journal
 *     entries are resolved.
 *
 * After update handlers ran (1), the runner only lets the code settle on
 * what they changed, and comes to the next quiescent point: code that a
 * handler resumed runs before the task may end.
 *
 * When none of this makes progress, the code is blocked: the task suspends
 * with the commands gathered so far, and the pending promises are simply
 * abandoned.  Because every command is taken synchronously and the runner
 * only decides after the microtask queue is empty, `Promise.all` and
 * `Promise.race` over several handles send all their commands in one task.
 *
 * Order of resolution.  The journal says which entries resolved, not in
 * which order, and concurrent code (`Promise.race`, branches awaiting
 * different handles) may take another path when more results are ready at
 * once.  So when the code waits on several handles and only some of them
 * are resolved, the runner records which ones it hands over, as a local
 * entry `$resolved` (its result: their seqs), and a replay hands over
 * exactly those at that point.  Sequential code never needs such a record
 * (one handle awaited at a time), nor does a wait whose handles are all
 * resolved.
 *
 * Local results and remote results never go out at the same point: a local
 * step finishes within its task, a remote result may come in a later one, so
 * a replay could otherwise hand over together what the first run handed
 * over one after the other, and the branches would take seqs in another
 * order.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import type pg from "pg";
import {
  ActivityError,
  ApplicationError,
  CancelledError,
  Nondeterminism,
  entryError,
  errorObject,
  type ErrorObject,
} from "./errors.js";
import {
  activityCommandKeys,
  compact,
  nameOf,
  startOptionsJson,
  type ActivityOptions,
  type ActivityRef,
  type ChildOptions,
  type Duration,
  type InputArgs,
  durationJson,
  type JournalEntry,
  type Named,
  type QueryDef,
  type SignalDef,
  type UpdateDef,
  type UpdateRow,
  type WorkflowRef,
} from "./types.js";

/** A local step as `step_record` and the `steps` arguments take it. */
export interface StepRecord {
  seq: number;
  name: string;
  result: unknown;
}

export type Command = Record<string, unknown>;

/**
 * What a workflow task may write, in the worker (or a fake, in tests).
 * Every call may raise the engine's errors (DU003, DU004 …).
 */
export interface TaskIO {
  /** Record local steps now (step_record's array form). */
  recordSteps(steps: StepRecord[]): Promise<void>;
  /** Run fn in a transaction on the task's connection, with the steps of its result recorded in it. */
  transaction<T>(fn: (client: pg.ClientBase) => Promise<T>, steps: (result: T) => StepRecord[]): Promise<T>;
  /** task_upsert_search_attributes, after recording `steps`. */
  upsertSearchAttributes(seq: number, attributes: Record<string, unknown>, steps: StepRecord[]): Promise<void>;
  /** task_publish, after recording `steps`, in one transaction. */
  publish(name: string, value: unknown, steps: StepRecord[]): Promise<void>;
  /** task_updates, after recording `steps`, in one transaction. */
  sendUpdates(commands: Command[], steps: StepRecord[]): Promise<void>;
  /**
   * The code asked for another call than the journal holds at a seq: let the
   * engine judge it (without changing anything) and raise its DU003.
   */
  judge(call: { local: StepRecord } | { command: Command } | { upsert: { seq: number; attributes: unknown } }): Promise<never>;
}

/** The task a workflow runs for: the columns of its poll row it needs. */
export interface WorkflowTask {
  token: string;
  workflow_id: string;
  run_id: string;
  workflow_type: string;
  input: unknown;
  attempt: number;
  journal: JournalEntry[] | null;
  cancel_requested: boolean;
  updates: UpdateRow[] | null;
}

/**
 * `task`: a workflow task (writes through its TaskIO); `query`: a
 * read-only replay that stops where the code would write anything
 * (queries, protocol 3.7c, and `replay()`).
 */
export type RunMode = "task" | "query";

/** How a run of the workflow code ended. */
export type Outcome =
  | { type: "suspend"; commands: Command[]; steps: StepRecord[] }
  | { type: "complete"; result: unknown; steps: StepRecord[] }
  | { type: "continueAsNew"; input: unknown; steps: StepRecord[] }
  | { type: "fail"; error: ErrorObject }
  /** A workflow-task error: a bug, DU003, a lost token …; `cause` is what was thrown. */
  | { type: "taskError"; cause: unknown }
  /** query mode: the code reached the end of what the journal holds. */
  | { type: "replayEnd" };

const RESOLVED = "$resolved";
const CANCEL_REQUESTED = "$cancel_requested";
const SEED = "$seed";
const NOW = "$now";
/**
 * Set while a local step's function runs: a durable call from there would
 * wait for a quiescent point that cannot come while the step runs.
 */
const inLocalStep = new AsyncLocalStorage<string>();

/** The signal name `condition` waits on when only update handlers can end the wait (as the Python SDK). */
const NO_SIGNAL = "durable:wait_condition";

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

const ignore = () => {};

/**
 * The promises the SDK hands results over with.  Results come at quiescent
 * points, later than plain JS would settle them, so code may attach its
 * handler after the rejection: every promise derived from one of these
 * (`.then`, `.catch`, `await` chains) counts as handled, and the code still
 * gets the error where it awaits it.
 */
class Guarded<T> extends Promise<T> {
  override then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const p = super.then(onfulfilled, onrejected);
    Promise.prototype.then.call(p, undefined, ignore);
    return p;
  }
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Guarded<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // a result handed over to nobody must not count as an unhandled rejection
  Promise.prototype.then.call(promise, undefined, ignore);
  return { promise, resolve, reject };
}

/** A promise that never settles: what a stopped task's code waits on. */
function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}

/** JSON's view of a value, as the journal will give it back on replay. */
function asJson(v: unknown): unknown {
  const text = JSON.stringify(v);
  return text === undefined ? null : JSON.parse(text);
}

/** The name of a multi-name signal wait: the list as the engine prints jsonb (protocol 4.5). */
function signalListName(names: string[]): string {
  return "[" + names.map((n) => JSON.stringify(n)).join(", ") + "]";
}

/**
 * A durable call started without waiting.  It is a thenable: `await` it,
 * or pass it to `Promise.all` / `Promise.race`.
 */
export class Handle<T = unknown> implements PromiseLike<T> {
  readonly seq: number;
  private readonly run: WorkflowContext;
  private readonly d = deferred<T>();
  /** @internal handed over already */
  delivered = false;

  /** @internal */
  constructor(run: WorkflowContext, seq: number) {
    this.run = run;
    this.seq = seq;
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const step = inLocalStep.getStore();
    if (step !== undefined) {
      // its result comes at a quiescent point, which cannot come while the step runs
      throw new Error(`the function of step "${step}" awaits the durable call ${this.seq}: await it outside the step`);
    }
    this.run._waitOn(this);
    return this.d.promise.then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.then(undefined, onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onfinally);
  }

  /**
   * Cancel the call if it is still pending: an activity, timer or signal
   * wait resolves as cancelled (awaiting it throws CancelledError; the
   * activity's worker learns it at its next heartbeat); a child is asked to
   * cancel and resolves when it closes.  A call that finished keeps its result.
   */
  cancel(): void {
    this.run._cancelHandle(this.seq);
  }

  /** @internal the journal entry is resolved */
  _ready(): boolean {
    const e = this.run._entry(this.seq);
    return e !== undefined && e.status !== "pending";
  }

  /** @internal hand the journal's outcome to the code */
  _deliver(): void {
    this.delivered = true;
    const e = this.run._entry(this.seq)!;
    if (e.status === "completed") this.d.resolve(e.result as T);
    else this.d.reject(entryError(e.status, e.error));
  }
}

/** A local operation (step, transaction, upsert, publish, now) waiting for its quiescent point. */
interface LocalOp {
  /** the step's name, for the watchdog */
  name: string;
  done: boolean;
  ok: boolean;
  value: unknown;
  d: Deferred<unknown>;
}

interface Condition {
  pred: () => boolean;
  fire: () => void;
}

type UpdateHandler = { handler: (args: any) => unknown; validator?: (args: any) => void };

/**
 * Thrown by `ctx.continueAsNew(input)`: when it ends the workflow function,
 * the run continues as new with `input`.
 */
export class ContinueAsNew extends Error {
  constructor(readonly input: unknown) {
    super("continue as new");
    this.name = "ContinueAsNew";
  }
}

/** Raised inside the runtime to end the task at once, whatever the code catches. */
class Fatal {
  constructor(readonly cause: unknown) {}
}

function callWithArgs(fn: (args?: any) => unknown, args: unknown): unknown {
  return args === null || args === undefined ? fn() : fn(args);
}

/**
 * What workflow code sees.  Durable calls must happen in the same order, with
 * the same kinds and names, on every replay; see the package README for
 * what workflow code must not do.
 */
export class WorkflowContext<I = unknown> {
  readonly workflowId: string;
  readonly runId: string;
  readonly workflowType: string;
  /** The workflow task's attempt (1, then 2, 3 … when the same task is retried). */
  readonly attempt: number;
  readonly input: I;

  private readonly io: TaskIO | null;
  private readonly mode: RunMode;
  private readonly stepTimeoutMs: number;
  private readonly task: WorkflowTask;
  private readonly journal = new Map<number, JournalEntry>();
  private readonly replayUntil: number;
  private seq = 0;
  private commands: Command[] = [];
  /** local entries not recorded yet (markers); they ride on the next write */
  private pending: StepRecord[] = [];
  private readonly cancelSent = new Set<number>();
  private readonly waiting = new Set<Handle<any>>();
  private readonly locals: LocalOp[] = [];
  private inflight = 0;
  private kick: (() => void) | null = null;
  private conditions: Condition[] = [];
  private waits = 0;
  private requestedUpdates: UpdateRow[];
  private readonly acceptedUpdates = new Map<number, UpdateRow>();
  private readonly signalHandlers = new Map<string, (payload: any) => void>();
  /** @internal */
  readonly queryHandlers = new Map<string, (args?: any) => unknown>();
  private readonly updateHandlers = new Map<string, UpdateHandler>();
  private readonly abort = new AbortController();
  private rng: (() => number) | null = null;
  /** serializes this task's writes on its connection */
  private writes: Promise<unknown> = Promise.resolve();
  /** @internal */
  fatal: Fatal | null = null;
  /** @internal query mode reached the end of the journal */
  ended = false;

  /** @internal */
  constructor(task: WorkflowTask, io: TaskIO | null, mode: RunMode, stepTimeoutMs: number) {
    this.task = task;
    this.stepTimeoutMs = stepTimeoutMs;
    this.io = io;
    this.mode = mode;
    this.workflowId = task.workflow_id;
    this.runId = task.run_id;
    this.workflowType = task.workflow_type;
    this.attempt = task.attempt;
    this.input = task.input as I;
    for (const e of task.journal ?? []) this.journal.set(e.seq, e);
    this.replayUntil = Math.max(0, ...this.journal.keys());
    const updates = task.updates ?? [];
    this.requestedUpdates = updates.filter((u) => u.state === "requested");
    for (const u of updates) if (u.seq !== null && u.seq !== undefined) this.acceptedUpdates.set(u.seq, u);
  }

  // ------------------------------------------------------------ state

  /**
   * True while the code re-runs calls this run already made in an earlier
   * task, up to the last one the journal held when this task began.  For
   * side effects outside durable calls that must not repeat, such as logging.
   */
  get isReplaying(): boolean {
    return this.seq < this.replayUntil;
  }

  /**
   * Whether the run was asked to cancel (`Client.cancel`, `wf_cancel`).
   * Becomes true at a wait, at the same point on every replay.  Pending
   * sleeps and signal waits then throw CancelledError; activities go on
   * unless the code cancels their handles.
   */
  get cancelRequested(): boolean {
    return this.abort.signal.aborted;
  }

  /** Aborted (with a CancelledError) when `cancelRequested` becomes true. */
  get cancellation(): AbortSignal {
    return this.abort.signal;
  }

  /** @internal */
  _entry(seq: number): JournalEntry | undefined {
    return this.journal.get(seq);
  }

  private next(kind: string, name: string): { seq: number; entry: JournalEntry | undefined; same: boolean } {
    const step = inLocalStep.getStore();
    if (step !== undefined) {
      throw new Error(`durable call ${kind} "${name}" inside the function of step "${step}": make it outside the step`);
    }
    this.seq += 1;
    const entry = this.journal.get(this.seq);
    const same = entry !== undefined && entry.kind === kind && entry.name === name;
    return { seq: this.seq, entry, same };
  }

  /** @internal end the task: no new local work starts, and the runner stops at once */
  fail(cause: unknown): void {
    if (this.fatal !== null) return;
    this.fatal = new Fatal(cause);
    this.kick?.();
  }

  /** Runs fn after this task's earlier writes (one at a time on its connection). */
  private afterWrites<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn);
    this.writes = run.catch(ignore);
    return run;
  }

  /**
   * A write of this task.  It takes the pending markers ($seed, $resolved …):
   * `fn` must record them in the same call or transaction (every TaskIO
   * write takes them), since they are gone from `pending` once it runs.  If
   * the write fails, nothing was recorded: they go back, for the next write.
   */
  private write<T>(fn: (steps: StepRecord[]) => Promise<T>): Promise<T> {
    return this.afterWrites(async () => {
      const steps = this.pending;
      this.pending = [];
      try {
        return await fn(steps);
      } catch (e) {
        this.pending = [...steps, ...this.pending];
        throw e;
      }
    });
  }

  /** Asks the engine about a call that does not match the journal: always ends the task. */
  private mismatch(call: Parameters<TaskIO["judge"]>[0], seq: number, what: string): void {
    if (this.mode === "query" || this.io === null) {
      const e = this.journal.get(seq)!;
      this.fail(new Nondeterminism(seq, `the journal holds ${e.kind} "${e.name}", the code asked for ${what}`));
      return;
    }
    const io = this.io;
    this.track(
      this.afterWrites(() => io.judge(call)).then(
        () => {},
        (e) => this.fail(e),
      ),
    );
  }

  /** Counts a promise as local work in flight: the code is not blocked while it runs. */
  private track(p: Promise<unknown>): void {
    this.inflight += 1;
    p.catch(() => {}).finally(() => {
      this.inflight -= 1;
      this.kick?.();
    });
  }

  /**
   * A local operation: `work` runs now (or nothing on replay); its outcome
   * is handed over at the next quiescent point.  Once the task is over
   * (fatal: a lost token, a release at shutdown …) no new work starts.
   */
  private local<T>(name: string, work: (() => Promise<T>) | { value: T }): Promise<T> {
    if (this.fatal !== null) return never();
    const op: LocalOp = { name, done: false, ok: true, value: undefined, d: deferred() };
    this.locals.push(op);
    if (!(work instanceof Function)) {
      op.done = true;
      op.value = work.value;
    } else {
      this.track(
        work().then(
          (v) => {
            op.done = true;
            op.value = v;
          },
          (e) => {
            op.done = true;
            op.ok = false;
            op.value = e;
          },
        ),
      );
    }
    return op.d.promise as Promise<T>;
  }

  // ------------------------------------------------------------ local steps

  /**
   * The start of a journaled write of the code's own (a step, a transaction,
   * an upsert): the seq to write now and the task's io, or what the call
   * returns instead: the recorded result on replay (an upsert's is
   * undefined), never on a mismatch (the task fails with DU003) or in a
   * query, which writes nothing.
   */
  private beginWrite<T>(
    kind: "local" | "upsert",
    name: string,
    call: (seq: number) => Parameters<TaskIO["judge"]>[0],
    what: string,
  ): { seq: number; io: TaskIO } | { done: Promise<T> } {
    const { seq, entry, same } = this.next(kind, name);
    if (same) return { done: this.local(name, { value: (kind === "local" ? entry!.result : undefined) as T }) };
    if (entry !== undefined) {
      this.mismatch(call(seq), seq, what);
      return { done: never() };
    }
    if (this.mode === "query") {
      this.ended = true;
      return { done: never() };
    }
    return { seq, io: this.io! };
  }

  /**
   * Run `fn` once and checkpoint its result (one commit); replays return the
   * recorded result.  The result is returned as its JSON form (the same value
   * the journal gives back on replay).  An error thrown by fn is not
   * recorded: fn runs again on the next replay.
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const begun = this.beginWrite<T>("local", name, (seq) => ({ local: { seq, name, result: null } }), `local "${name}"`);
    if ("done" in begun) return begun.done;
    const { seq, io } = begun;
    return this.local(name, async () => {
      // async: a handle that fn returns is awaited inside the step too (Handle.then refuses it)
      const result = asJson(await inLocalStep.run(name, async () => fn())) as T;
      await this.write((steps) => io.recordSteps([...steps, { seq, name, result }])).catch((e) => {
        this.fail(e);
        throw e;
      });
      return result;
    });
  }

  /**
   * The exactly-once SQL step (protocol 5.4): `fn(client)` runs in a
   * transaction on the worker's connection, and the step's checkpoint
   * commits in the same transaction.  Replays return the recorded result
   * without running fn.
   */
  transaction<T>(name: string, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const begun = this.beginWrite<T>("local", name, (seq) => ({ local: { seq, name, result: null } }), `local "${name}"`);
    if ("done" in begun) return begun.done;
    const { seq, io } = begun;
    return this.local(name, () =>
      this.write((steps) =>
        io.transaction(
          async (client) => asJson(await inLocalStep.run(name, async () => fn(client))) as T,
          (r) => [...steps, { seq, name, result: r }],
        ),
      ).catch((e) => {
        // fn's own error reaches the code; a lost connection or a stale token ends the task
        if (isTaskFatal(e)) this.fail(e);
        throw e;
      }),
    );
  }

  /** The worker's clock, recorded (a local step `$now`): the same on every replay. */
  now(): Promise<Date> {
    return this.step(NOW, () => Date.now()).then((ms) => new Date(ms));
  }

  /**
   * A deterministic pseudo-random number in [0, 1).  Its seed is drawn once
   * per run and recorded (a local entry `$seed`, taken at the first call).
   */
  random(): number {
    if (this.rng === null) {
      const next = this.journal.get(this.seq + 1);
      let seed: number;
      if (next !== undefined && next.kind === "local" && next.name === SEED) {
        this.seq += 1;
        seed = next.result as number;
      } else if (next !== undefined) {
        this.seq += 1;
        this.mismatch({ local: { seq: this.seq, name: SEED, result: null } }, this.seq, `local "${SEED}"`);
        seed = 0;
      } else if (this.mode === "query") {
        this.ended = true;
        seed = 0;
      } else {
        this.seq += 1;
        seed = randomBytes(4).readUInt32LE(0);
        this.pending.push({ seq: this.seq, name: SEED, result: seed });
      }
      this.rng = mulberry32(seed);
    }
    return this.rng();
  }

  /** A deterministic UUID (version 4 layout) from `random()`. */
  uuid(): string {
    const b = new Uint8Array(16);
    for (let i = 0; i < 16; i++) b[i] = Math.floor(this.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // ------------------------------------------------------------ versioning

  /**
   * True when this run takes the new path of a code change (protocol 5.3a):
   * a run that passed here under the old code gets false on every replay; a
   * run that gets here under the new code records the marker `patch:<id>`.
   */
  patched(patchId: string): boolean {
    const name = "patch:" + patchId;
    const next = this.journal.get(this.seq + 1);
    if (next !== undefined) {
      if (next.kind === "local" && next.name === name) {
        this.seq += 1;
        return true;
      }
      return false;
    }
    if (this.mode === "query") {
      this.ended = true;
      return true;
    }
    this.seq += 1;
    this.pending.push({ seq: this.seq, name, result: true });
    this.journal.set(this.seq, { seq: this.seq, kind: "local", name, status: "completed", result: true, error: null });
    return true;
  }

  /** Once no open run can take the old path: steps over the marker of runs that recorded one. */
  deprecatePatch(patchId: string): void {
    const next = this.journal.get(this.seq + 1);
    if (next !== undefined && next.kind === "local" && next.name === "patch:" + patchId) this.seq += 1;
  }

  // ------------------------------------------------------------ other writes

  /**
   * Set search attributes of this run ({name: value}; null removes one),
   * which `Client.list` filters on.  Journaled: a replay changes nothing.
   */
  upsertSearchAttributes(attributes: Record<string, unknown>): Promise<void> {
    const begun = this.beginWrite<void>("upsert", "search_attributes", (seq) => ({ upsert: { seq, attributes } }),
      `upsert "search_attributes"`);
    if ("done" in begun) return begun.done;
    const { seq, io } = begun;
    return this.local("search_attributes", () =>
      this.write((steps) => io.upsertSearchAttributes(seq, attributes, steps)).catch((e) => {
        this.fail(e);
        throw e;
      }),
    );
  }

  /**
   * Publish a named value of this run (null removes it) for clients to read
   * with `Client.published` even when no worker runs.  Skipped while
   * replaying: the earlier task published what the replayed code publishes.
   */
  publish(name: string, value: unknown): Promise<void> {
    if (this.isReplaying || this.mode === "query") return this.local(name, { value: undefined });
    const io = this.io!;
    return this.local(name, () =>
      this.write((steps) => io.publish(name, value, steps)).catch((e) => {
        if (isTaskFatal(e)) this.fail(e);
        throw e;
      }),
    );
  }

  // ------------------------------------------------------------ remote calls

  private command<T>(seq: number, entry: JournalEntry | undefined, same: boolean, cmd: Command, what: string): Handle<T> {
    const h = new Handle<T>(this, seq);
    if (same) return h;
    if (entry !== undefined) this.mismatch({ command: { ...cmd, seq } }, seq, what);
    else if (this.mode === "query") this.ended = true;
    else this.commands.push({ ...cmd, seq });
    return h;
  }

  /**
   * Schedule an activity; await the handle for its result (ActivityError
   * when it failed for good).  The input may be left out only when its type
   * allows undefined.
   */
  activity<I, O>(activity: ActivityRef<I, O> | string, ...args: InputArgs<I, ActivityOptions>): Handle<O> {
    const [input, options = {}] = args;
    const name = nameOf(activity);
    const { seq, entry, same } = this.next("activity", name);
    const cmd: Command = { type: "activity", name, ...activityCommandKeys(options) };
    if (input !== undefined) cmd.input = input;
    return this.command<O>(seq, entry, same, cmd, `activity "${name}"`);
  }

  /** The same as `activity` (a handle is returned either way). */
  startActivity<I, O>(activity: ActivityRef<I, O> | string, ...args: InputArgs<I, ActivityOptions>): Handle<O> {
    return this.activity(activity, ...args);
  }

  /** A durable timer: `duration` in milliseconds or as "30s", "5m" …; `until` a time. */
  timer(duration: Duration | { until: Date | string }, options: { name?: string } = {}): Handle<void> {
    const name = options.name ?? "sleep";
    const { seq, entry, same } = this.next("sleep", name);
    const cmd: Command =
      typeof duration === "object"
        ? { type: "sleep", until: duration.until instanceof Date ? duration.until.toISOString() : duration.until }
        : { type: "sleep", duration: durationJson(duration) };
    if (options.name !== undefined) cmd.name = name;
    return this.command<void>(seq, entry, same, cmd, `sleep "${name}"`);
  }

  /** Sleep on the database clock (a durable timer). */
  sleep(duration: Duration, options?: { name?: string }): Handle<void> {
    return this.timer(duration, options);
  }

  /** The next signal of that name's payload; DurableTimeout after `timeout`. */
  waitSignal<P = unknown>(signal: SignalDef<P> | string, options: { timeout?: Duration } = {}): Handle<P> {
    const name = nameOf(signal);
    const { seq, entry, same } = this.next("signal", name);
    return this.command<P>(seq, entry, same, compact({ type: "signal", name, timeout: durationJson(options.timeout) }), `signal "${name}"`);
  }

  /** The next signal of any of `names`, as {name, payload}. */
  waitSignals(names: Named[], options: { timeout?: Duration } = {}): Handle<{ name: string; payload: unknown }> {
    const list = names.map(nameOf);
    const name = signalListName(list);
    const { seq, entry, same } = this.next("signal", name);
    return this.command(seq, entry, same, compact({ type: "signal", names: list, timeout: durationJson(options.timeout) }), `signal ${name}`);
  }

  /** Start a child workflow; await the handle for its output.  The input as for `activity`. */
  child<I, O>(workflow: WorkflowRef<I, O> | string, ...args: InputArgs<I, ChildOptions>): Handle<O> {
    const [input, options = {}] = args;
    const name = nameOf(workflow);
    const { seq, entry, same } = this.next("child", name);
    const { workflowId, queue, parentClosePolicy, ...start } = options;
    const startJson = startOptionsJson(start);
    const cmd: Command = compact({
      type: "child",
      name,
      workflow_id: workflowId,
      queue,
      parent_close_policy: parentClosePolicy,
      options: Object.keys(startJson).length ? startJson : undefined,
    });
    if (input !== undefined) cmd.input = input;
    return this.command<O>(seq, entry, same, cmd, `child "${name}"`);
  }

  /** Signal another workflow's running run (ActivityError `workflow_not_found` if none). */
  signalExternal<P>(workflowId: string, signal: SignalDef<P> | string, payload?: P, options: { signalId?: string } = {}): Handle<void> {
    const name = nameOf(signal);
    const { seq, entry, same } = this.next("signal_external", name);
    const cmd: Command = compact({ type: "signal_external", workflow_id: workflowId, signal: name, signal_id: options.signalId });
    if (payload !== undefined) cmd.payload = payload;
    return this.command<void>(seq, entry, same, cmd, `signal_external "${name}"`);
  }

  /** Ask another workflow's running run to cancel. */
  cancelExternal(workflowId: string, reason?: string): Handle<void> {
    const { seq, entry, same } = this.next("cancel_external", workflowId);
    return this.command<void>(
      seq,
      entry,
      same,
      compact({ type: "cancel_external", workflow_id: workflowId, reason }),
      `cancel_external "${workflowId}"`,
    );
  }

  /**
   * End this run and start a new one of the same workflow id with `input`:
   * throws ContinueAsNew, which must reach the workflow function's end (do
   * not catch it).
   */
  continueAsNew(input: I): never {
    throw new ContinueAsNew(input);
  }

  // ------------------------------------------------------------ handlers

  /** Handler for signals of `name`, run by `condition()` on each such signal, oldest first. */
  onSignal<P>(signal: SignalDef<P> | string, handler: (payload: P) => void): void {
    this.signalHandlers.set(nameOf(signal), handler);
  }

  /**
   * Handler for live queries (`Client.query`): a worker replays the run and
   * calls handler(args) (handler() without args).  It reads state only.
   */
  onQuery<A, R>(query: QueryDef<A, R> | string, handler: (args: A) => R): void {
    this.queryHandlers.set(nameOf(query), handler as (args?: any) => unknown);
  }

  /**
   * Handler for updates (`Client.update`), taken while the workflow waits:
   * `validator(args)` may throw to reject the update (no trace in the
   * journal); otherwise `handler(args)` runs, synchronously, and its return
   * value (or error) is the caller's answer.  Handlers change workflow state
   * and make no durable calls.  Register them before the first wait.
   */
  onUpdate<A, R>(update: UpdateDef<A, R> | string, handler: (args: A) => R, validator?: (args: A) => void): void {
    this.updateHandlers.set(nameOf(update), { handler, validator });
  }

  /**
   * Wait until `pred()` holds, as Temporal's condition: signals of the names
   * with handlers (`onSignal`) run their handlers, updates theirs, and the
   * predicate is checked at each wait.  `timeout` bounds the wait for each
   * next signal (DurableTimeout).
   */
  async condition(pred: () => boolean, options: { timeout?: Duration } = {}): Promise<void> {
    while (!pred()) {
      if (this.signalHandlers.size === 0 && this.updateHandlers.size === 0) {
        throw new Error("condition needs a signal or update handler (ctx.onSignal, ctx.onUpdate)");
      }
      const names = [...this.signalHandlers.keys()].sort();
      const h = this.waitSignals(names.length ? names : [NO_SIGNAL], options);
      const got = await new Promise<{ name: string; payload: unknown } | null>((resolve, reject) => {
        const c: Condition = { pred, fire: () => resolve(null) };
        this.conditions.push(c);
        const drop = () => (this.conditions = this.conditions.filter((x) => x !== c));
        h.then(
          (v) => (drop(), resolve(v)),
          (e) => (drop(), reject(e)),
        );
      });
      if (got === null) {
        // the predicate holds (an update changed the state): stop waiting
        this.waiting.delete(h);
        const e = this.journal.get(h.seq);
        if (e?.status === "completed") {
          // a signal completed the wait already: it is taken, so it reaches its handler
          const r = e.result as { name: string; payload: unknown };
          this.signalHandlers.get(r.name)?.(r.payload);
        } else {
          // a signal that comes meanwhile goes back to the buffer (protocol 4.8)
          h.cancel();
        }
        return;
      }
      this.signalHandlers.get(got.name)?.(got.payload);
    }
  }

  // ------------------------------------------------------------ runner internals

  /** @internal a handle is awaited */
  _waitOn(h: Handle<any>): void {
    if (!h.delivered) this.waiting.add(h);
  }

  /** @internal */
  _cancelHandle(seq: number): void {
    if (this.mode === "query" || this.cancelSent.has(seq)) return;
    const e = this.journal.get(seq);
    if (e !== undefined && e.status !== "pending") return;
    this.cancelSent.add(seq);
    this.commands.push({ seq, type: "cancel" });
  }

  /**
   * @internal until no microtask is left and no local work runs (or the
   * task is over).  Watchdog: local work that makes no progress for
   * `stepTimeoutMs` fails the task; a step function that waits for the
   * workflow (a promise only the workflow code settles) would otherwise
   * hold the task forever.
   */
  async _quiesce(): Promise<void> {
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      if (this.inflight === 0 || this.fatal !== null) return;
      const progressed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), this.stepTimeoutMs);
        this.kick = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      this.kick = null;
      if (!progressed) {
        const running = this.locals.filter((op) => !op.done).map((op) => op.name);
        this.fail(
          new Error(
            `local step(s) ${JSON.stringify(running)} made no progress for ${this.stepTimeoutMs / 1000} s; ` +
              "a step function must not wait for the workflow code or its durable calls",
          ),
        );
      }
    }
  }

  private frontier(): boolean {
    return !this.journal.has(this.seq + 1);
  }

  /** @internal one quiescent point: true when the code was given something to go on with */
  async _advance(): Promise<boolean> {
    this.waits += 1;
    // 1. updates accepted at this wait (replay), or the ones sent since (new ground)
    let handled = this.applyAcceptedUpdates();
    if (this.mode === "task" && this.frontier() && this.requestedUpdates.length > 0) {
      if (await this.takeUpdates()) handled = true;
    }
    if (this.fatal !== null) return false;
    // code that a handler resumed runs now, before anything else (and the
    // task cannot end under it): a replay takes the same extra point
    if (handled) return true;
    // 2. a cancel request becomes visible here
    if (!this.cancelRequested) {
      const next = this.journal.get(this.seq + 1);
      if (next !== undefined && next.kind === "local" && next.name === CANCEL_REQUESTED) {
        this.seq += 1;
        this.setCancelled();
        return true;
      }
      if (next === undefined && this.task.cancel_requested) {
        if (this.mode === "query") return false;
        this.seq += 1;
        this.pending.push({ seq: this.seq, name: CANCEL_REQUESTED, result: true });
        this.setCancelled();
        return true;
      }
    }
    // 3. conditions that hold
    const fired = this.conditions.filter((c) => c.pred());
    if (fired.length > 0) {
      this.conditions = this.conditions.filter((c) => !fired.includes(c));
      for (const c of fired) c.fire();
      return true;
    }
    // 4. results: the local ones if any finished, else the remote ones (see
    // the top of this file)
    if (this.locals.length > 0) {
      // every local operation is done at a quiescent point
      for (const op of this.locals.splice(0)) op.ok ? op.d.resolve(op.value) : op.d.reject(op.value);
      return true;
    }
    const remote = this.remoteToDeliver();
    if (remote === null || remote.length === 0) return false;
    for (const h of remote) {
      this.waiting.delete(h);
      h._deliver();
    }
    return true;
  }

  /** The awaited handles to hand over now, in seq order; null: stop (fatal, or query mode at its end). */
  private remoteToDeliver(): Handle<any>[] | null {
    const ready = [...this.waiting].filter((h) => h._ready()).sort((a, b) => a.seq - b.seq);
    const next = this.journal.get(this.seq + 1);
    if (next !== undefined && next.kind === "local" && next.name === RESOLVED) {
      const seqs = next.result as number[];
      const chosen = ready.filter((h) => seqs.includes(h.seq));
      if (chosen.length !== seqs.length) {
        this.fail(new Nondeterminism(next.seq, `the journal holds ${RESOLVED} ${JSON.stringify(seqs)}, the code waits on ${JSON.stringify([...this.waiting].map((h) => h.seq))}`));
        return null;
      }
      this.seq += 1;
      return chosen;
    }
    if (ready.length === 0 || ready.length === this.waiting.size) return ready;
    if (next !== undefined) {
      this.fail(new Nondeterminism(next.seq, `the journal holds ${next.kind} "${next.name}", the code waits on several calls`));
      return null;
    }
    if (this.mode === "query") return null;
    this.seq += 1;
    this.pending.push({ seq: this.seq, name: RESOLVED, result: ready.map((h) => h.seq) });
    return ready;
  }

  private setCancelled(): void {
    this.abort.abort(new CancelledError({ type: "cancelled", message: "workflow cancel requested" }));
  }

  /** Replay: run the handlers of the updates this run accepted at this wait, in journal order; whether any. */
  private applyAcceptedUpdates(): boolean {
    for (let any = false; ; any = true) {
      const entry = this.journal.get(this.seq + 1);
      const u = this.acceptedUpdates.get(this.seq + 1);
      if (entry === undefined || entry.kind !== "update" || u === undefined || u.waiting_on !== this.waits) return any;
      this.seq += 1;
      const h = this.updateHandlers.get(entry.name);
      if (h !== undefined) {
        try {
          callWithArgs(h.handler, u.args);
        } catch {
          // it failed then too: the journal has the outcome
        }
      }
    }
  }

  /** New ground: validate and handle the updates sent, in order; send the outcomes (task_updates).  Whether a handler ran. */
  private async takeUpdates(): Promise<boolean> {
    const commands: Command[] = [];
    for (const u of this.requestedUpdates) {
      const h = this.updateHandlers.get(u.name);
      let reject: ErrorObject | null = null;
      if (h === undefined) {
        reject = { type: "UpdateNotFound", message: `workflow has no handler for update "${u.name}" (ctx.onUpdate)` };
      } else if (h.validator !== undefined) {
        try {
          callWithArgs(h.validator, u.args);
        } catch (e) {
          reject = errorObject(e);
        }
      }
      if (reject !== null) {
        commands.push({ type: "reject_update", update_id: u.update_id, error: reject });
        continue;
      }
      this.seq += 1;
      const cmd: Command = { seq: this.seq, type: "update", update_id: u.update_id, waiting_on: this.waits };
      try {
        const r = callWithArgs(h!.handler, u.args);
        if (r !== null && typeof r === "object" && typeof (r as any).then === "function") {
          throw new Error(`the handler of update "${u.name}" returned a promise: update handlers must be synchronous`);
        }
        cmd.result = asJson(r);
      } catch (e) {
        cmd.error = errorObject(e);
      }
      commands.push(cmd);
      this.journal.set(this.seq, {
        seq: this.seq,
        kind: "update",
        name: u.name,
        status: "error" in cmd ? "failed" : "completed",
        result: cmd.result ?? null,
        error: (cmd.error as ErrorObject) ?? null,
      });
      this.acceptedUpdates.set(this.seq, { ...u, state: "accepted", seq: this.seq, waiting_on: this.waits });
    }
    this.requestedUpdates = [];
    const io = this.io!;
    await this.write((steps) => sendUpdates(io, commands, steps, this.journal)).catch((e) => this.fail(e));
    return commands.some((c) => c.type === "update");
  }

  /** @internal what the task must still record */
  _takePending(): StepRecord[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }

  /** @internal the seq of the last call the code made */
  get _lastSeq(): number {
    return this.seq;
  }

  /** @internal */
  _hasCommands(types: Set<string>): boolean {
    return this.commands.some((c) => types.has(c.type as string));
  }

  /** @internal */
  _takeCommands(): Command[] {
    const c = this.commands;
    this.commands = [];
    return c;
  }

  /** @internal whether anything would wake the run if the task suspended now: a command, or a pending entry */
  _canWait(): boolean {
    return this.commands.length > 0 || [...this.journal.values()].some((e) => e.status === "pending");
  }
}

/**
 * task_updates; a result over durable.max_payload_size (DU008) fails its
 * update instead, the largest first, so that an oversized answer does not
 * fail the workflow task again and again (as the Python SDK).
 */
async function sendUpdates(io: TaskIO, commands: Command[], steps: StepRecord[], journal: Map<number, JournalEntry>): Promise<void> {
  for (;;) {
    try {
      await io.sendUpdates(commands, steps);
      return;
    } catch (e) {
      const sized = commands.filter((c) => "result" in c);
      if ((e as { code?: string }).code !== "DU008" || sized.length === 0) throw e;
      const big = sized.reduce((a, b) => (JSON.stringify(a.result).length >= JSON.stringify(b.result).length ? a : b));
      const err = { type: "ResultTooLarge", message: (e as Error).message };
      delete big.result;
      big.error = err;
      Object.assign(journal.get(big.seq as number)!, { status: "failed", result: null, error: err });
    }
  }
}

/** Errors of a durable write that end the workflow task (not the code's business). */
export function isTaskFatal(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  return code === "DU003" || code === "DU004" || code === "DU011" || code.startsWith("08") || code.startsWith("57P") || code === "LOST";
}

/** mulberry32: a small, fast 32-bit PRNG (deterministic for a seed). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Code of a workflow run (and of its step functions): where an unhandled rejection comes from. */
const workflowCode = new AsyncLocalStorage<WorkflowContext<any>>();
let rejectionGuards = 0;

/**
 * Workflow code gets results at quiescent points, later than plain JS would
 * settle them, so a promise of its own (an async function it awaits later)
 * may reject before the code attaches its handler.  Node would end the
 * process for that: a rejection from workflow code is left to the code
 * (awaiting it still throws); any other is raised as Node does when nobody
 * else listens.
 */
function onUnhandledRejection(reason: unknown): void {
  if (workflowCode.getStore() !== undefined) return;
  if (process.listenerCount("unhandledRejection") === 1) throw reason;
}

function guardRejections(): () => void {
  if (rejectionGuards++ === 0) process.on("unhandledRejection", onUnhandledRejection);
  return () => {
    if (--rejectionGuards === 0) process.off("unhandledRejection", onUnhandledRejection);
  };
}

export interface RunOptions {
  /** The watchdog of local steps: how long local work may make no progress (ms; default 5 minutes). */
  stepTimeoutMs?: number;
  /** Aborted when the task is no longer ours (withdrawn, released): the code stops, no new local step starts. */
  signal?: AbortSignal;
}

/**
 * Run (replay) a workflow function for one task: until it returns, fails,
 * continues as new, or is blocked.  In "task" mode writes go through `io`;
 * the caller turns the outcome into task_suspend / task_complete /
 * task_fail.  In "query" mode nothing is written and the run stops where
 * the journal ends; `ctx` is returned for the query handlers.
 */
export async function runWorkflow(
  fn: (ctx: WorkflowContext<any>, input: any) => Promise<unknown>,
  task: WorkflowTask,
  io: TaskIO | null,
  mode: RunMode = "task",
  options: RunOptions = {},
): Promise<{ outcome: Outcome; ctx: WorkflowContext }> {
  const ctx = new WorkflowContext(task, io, mode, options.stepTimeoutMs ?? 300_000);
  const { signal } = options;
  const stop = () => ctx.fail(signal!.reason);
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop);
  const release = guardRejections();
  let settled: { ok: boolean; value: unknown } | null = null;
  workflowCode
    .run(ctx, () => Promise.resolve().then(() => fn(ctx, task.input)))
    .then(
      (value) => (settled = { ok: true, value }),
      (value) => (settled = { ok: false, value }),
    );
  try {
    return { outcome: await drive(ctx, () => settled), ctx };
  } finally {
    signal?.removeEventListener("abort", stop);
    // Node looks for unhandled rejections after the microtasks of this turn
    setImmediate(release);
  }
}

/** Commands whose effect reaches outside the run: sent even when the code ends without awaiting them. */
const OUTSIDE = new Set(["activity", "child", "signal_external", "cancel_external"]);

async function drive(ctx: WorkflowContext, settled: () => { ok: boolean; value: unknown } | null): Promise<Outcome> {
  for (;;) {
    await ctx._quiesce();
    if (ctx.fatal !== null) return { type: "taskError", cause: ctx.fatal.cause };
    const s = settled();
    const failed = s !== null && !s.ok;
    const continued = failed && s.value instanceof ContinueAsNew;
    const runFailed = failed && (s.value instanceof ApplicationError || s.value instanceof ActivityError);
    if ((s?.ok || continued || runFailed) && ctx._hasCommands(OUTSIDE)) {
      // task_complete and task_fail take no commands: send the ones the code
      // issued without awaiting them (a signal to another workflow …) first;
      // the next task replays to the same end (the engine wakes the run:
      // such entries resolve, protocol 4.7)
      return { type: "suspend", commands: ctx._takeCommands(), steps: ctx._takePending() };
    }
    if (s !== null) {
      try {
        if (s.ok) return { type: "complete", result: asJson(s.value), steps: ctx._takePending() };
        if (continued) return { type: "continueAsNew", input: asJson((s.value as ContinueAsNew).input), steps: ctx._takePending() };
      } catch (e) {
        return { type: "taskError", cause: e }; // not JSON (a BigInt …)
      }
      if (runFailed) return { type: "fail", error: errorObject(s.value) };
      return { type: "taskError", cause: s.value };
    }
    if (ctx.ended) return { type: "replayEnd" };
    if (!(await ctx._advance())) {
      if (ctx.fatal !== null) continue;
      if (ctx.ended) return { type: "replayEnd" };
      if (!ctx._canWait()) {
        // protocol 3.3: nothing would wake the run; failing the task retries it (with backoff)
        return { type: "taskError", cause: new Error("the workflow code waits for a promise that no durable call settles: nothing would wake the run") };
      }
      return { type: "suspend", commands: ctx._takeCommands(), steps: ctx._takePending() };
    }
  }
}
