/**
 * test/conformance/typescript/src/worker.mts: the conformance worker of the
 * TypeScript SDK (clients/typescript, imported from its build).
 *
 * Serves the workflows and activities of test/conformance/scenarios under
 * their fixed names (conf_*).  The worker contract
 * (test/conformance/README.md):
 *
 *  - connection: the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE,
 *    PGPASSWORD), which node-postgres reads too;
 *  - CONFORMANCE_QUEUE: the queue to serve (workflows and activities);
 *  - CONFORMANCE_LEASE: the lease of its tasks, in seconds;
 *  - CONFORMANCE_VARIANT: "changed" deploys the changed code of
 *    conf_nondeterminism, anything else the original code;
 *  - CONFORMANCE_WORKER_NAME: the worker's name;
 *  - prints "MARK <workflow id> <label>" lines where the scenarios say so;
 *    SIGTERM stops it cleanly (exit status 0).
 *
 * Built by test/conformance/run.py with the SDK's own compiler:
 *   clients/typescript/node_modules/.bin/tsc -p test/conformance/typescript
 */
import {
  ActivityError,
  ApplicationError,
  CancelledError,
  DurableTimeout,
  NonRetryableError,
  Worker,
  defineActivity,
  defineWorkflow,
  type RetryPolicy,
} from "../../../../clients/typescript/dist/src/index.js";

const VARIANT = process.env.CONFORMANCE_VARIANT ?? "";

function mark(workflowId: string, label: string): void {
  process.stdout.write(`MARK ${workflowId} ${label}\n`);
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Json = any;

// -- local_steps ------------------------------------------------------------

const localSteps = defineWorkflow<{ name: string }, Json>("conf_local_steps", async (ctx, inp) => {
  const step = <T,>(name: string, value: T) =>
    ctx.step(name, () => {
      mark(ctx.workflowId, "step:" + name);
      return value;
    });
  const greeting = await step("greet", "Hello, " + inp.name);
  const count = await step("count", 3);
  await ctx.sleep(100); // a number is milliseconds in the TypeScript SDK
  const items = await step("items", ["a", 1, true, null]);
  const nothing = await step("nothing", null);
  const object = await step("object", { nested: { k: "v" }, empty: {} });
  return { greeting, count, items, nothing, object };
});

// -- sql_step ---------------------------------------------------------------

const sqlStep = defineWorkflow<{ amount: number }, Json>("conf_sql_step", async (ctx, inp) => {
  const prepared = await ctx.step("prepare", () => ({ amount: inp.amount }));
  const debited = await ctx.transaction("debit", async (client) => {
    mark(ctx.workflowId, "debit:run");
    await client.query("INSERT INTO conformance_effects (workflow_id, effect, amount) VALUES ($1, 'debit', $2)", [
      ctx.workflowId,
      prepared.amount,
    ]);
    if (ctx.attempt === 1) {
      mark(ctx.workflowId, "debit:inside");
      await sleepMs(60_000); // the runner kills the worker here
    }
    return { debited: prepared.amount };
  });
  await ctx.sleep(100); // a number is milliseconds in the TypeScript SDK
  return debited;
});

// -- activities -------------------------------------------------------------

const RETRY_FAST: RetryPolicy = { initialInterval: "100ms", backoffCoefficient: 2, maximumAttempts: 5 };

const activityRetry = defineWorkflow<Json, Json>("conf_activity_retry", async (ctx, inp) => {
  return await ctx.activity("conf_flaky", inp, { retry: RETRY_FAST, startToClose: "10s" });
});

const flaky = defineActivity<{ succeed_on: number }, Json>("conf_flaky", async (ctx, inp) => {
  if (ctx.attempt < inp.succeed_on) throw new ApplicationError(`attempt ${ctx.attempt} failed`, { type: "Flaky" });
  return { attempt: ctx.attempt };
});

const activityErrors = defineWorkflow<Json, Json>("conf_activity_errors", async (ctx, inp) => {
  let caught = null;
  try {
    await ctx.activity("conf_fail", inp.first, {
      startToClose: "10s",
      retry: { ...RETRY_FAST, nonRetryableErrorTypes: ["Fatal"] },
    });
  } catch (e) {
    if (!(e instanceof ActivityError)) throw e;
    const err = { type: e.type, message: e.message };
    caught = await ctx.step("caught", () => err);
  }
  await ctx.activity("conf_fail_hard", inp.second, { startToClose: "10s", retry: RETRY_FAST });
  return { caught };
});

const fail = defineActivity<{ type: string; message: string }, never>("conf_fail", async (_ctx, inp) => {
  throw new ApplicationError(inp.message, { type: inp.type });
});

const failHard = defineActivity<{ type: string; message: string }, never>("conf_fail_hard", async (_ctx, inp) => {
  throw new NonRetryableError(inp.message, { type: inp.type });
});

// -- timers -----------------------------------------------------------------

const timers = defineWorkflow<null, string>("conf_timers", async (ctx) => {
  await ctx.sleep("200ms");
  await ctx.step("between", () => "after the first timer");
  await ctx.sleep(200); // the scenario's "number" sleep: milliseconds in TypeScript
  const h = ctx.timer("1h");
  h.cancel();
  let got: Json;
  try {
    await h;
    got = "not cancelled";
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
    got = { type: e.type, message: e.message };
  }
  await ctx.step("cancelled", () => got);
  return "done";
});

// -- signals ----------------------------------------------------------------

const signals = defineWorkflow<null, Json>("conf_signals", async (ctx) => {
  const first = await ctx.waitSignal("first");
  const second = await ctx.waitSignal("second");
  let timedOut = null;
  try {
    await ctx.waitSignal("never", { timeout: "200ms" });
  } catch (e) {
    if (!(e instanceof DurableTimeout)) throw e;
    const err = { type: e.type, message: e.message };
    timedOut = await ctx.step("timed_out", () => err);
  }
  return { first, second, timed_out: timedOut };
});

// -- children ---------------------------------------------------------------

const children = defineWorkflow<{ ok_id: string; fail_id: string }, Json>("conf_children", async (ctx, inp) => {
  const ok = await ctx.child("conf_child_ok", { x: 2 }, { workflowId: inp.ok_id });
  let error = null;
  try {
    await ctx.child("conf_child_fail", { message: "child broke" }, { workflowId: inp.fail_id });
  } catch (e) {
    if (!(e instanceof ActivityError)) throw e;
    const err = { type: e.type, message: e.message };
    error = await ctx.step("child_error", () => err);
  }
  return { ok, error };
});

const childOk = defineWorkflow<{ x: number }, Json>("conf_child_ok", async (ctx, inp) => {
  return { y: await ctx.step("double", () => inp.x * 2) };
});

const childFail = defineWorkflow<{ message: string }, never>("conf_child_fail", async (_ctx, inp) => {
  throw new ApplicationError(inp.message, { type: "ChildBroke" });
});

const parentClose = defineWorkflow<{ child_id: string; policy: "terminate" | "request_cancel" | "abandon" }, string>(
  "conf_parent_close",
  async (ctx, inp) => {
    ctx.child("conf_child_wait", { policy: inp.policy }, { workflowId: inp.child_id, parentClosePolicy: inp.policy });
    await ctx.waitSignal("close");
    return "closed";
  },
);

const childWait = defineWorkflow<Json, Json>("conf_child_wait", async (ctx) => {
  return await ctx.waitSignal("finish");
});

// -- continue-as-new --------------------------------------------------------

const continueAsNew = defineWorkflow<{ n: number; last: number }, Json>("conf_continue_as_new", async (ctx, inp) => {
  const n = await ctx.step("visit", () => inp.n);
  if (n < inp.last) return await ctx.continueAsNew({ n: n + 1, last: inp.last });
  return { runs: n + 1 };
});

// -- cancellation through heartbeats ----------------------------------------

const cancelActivity = defineWorkflow<null, Json>("conf_cancel_activity", async (ctx) => {
  try {
    return await ctx.activity("conf_wait_cancel", { max_seconds: 20 }, { startToClose: "30s", retry: { maximumAttempts: 1 } });
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
    await ctx.activity("conf_cleanup", { after: "cancel" }, { startToClose: "10s" });
    throw e;
  }
});

const waitCancel = defineActivity<{ max_seconds: number }, string>("conf_wait_cancel", async (ctx, inp) => {
  mark(ctx.workflowId, "activity:started");
  const deadline = Date.now() + inp.max_seconds * 1000;
  while (Date.now() < deadline) {
    if (await ctx.heartbeat({ alive: true })) throw new CancelledError({ type: "cancelled", message: "activity cancelled" });
    await sleepMs(100);
  }
  return "not cancelled";
});

const cleanup = defineActivity<Json, Json>("conf_cleanup", async () => ({ cleaned: true }));

// -- nondeterminism ---------------------------------------------------------

const nondeterminism = defineWorkflow<null, string>("conf_nondeterminism", async (ctx) => {
  const name = VARIANT === "changed" ? "b" : "a";
  await ctx.step(name, () => name.toUpperCase());
  await ctx.waitSignal("go");
  return "done";
});

// -- a worker killed while an activity runs ---------------------------------

const killActivity = defineWorkflow<Json, Json>("conf_kill_activity", async (ctx, inp) => {
  return await ctx.activity("conf_block_first", inp, { startToClose: "2s", retry: { initialInterval: "100ms", maximumAttempts: 3 } });
});

const blockFirst = defineActivity<Json, Json>("conf_block_first", async (ctx) => {
  if (ctx.attempt === 1) {
    mark(ctx.workflowId, "activity:attempt1");
    await sleepMs(60_000); // the runner kills the worker here
  }
  return { attempt: ctx.attempt };
});

const worker = new Worker({
  connection: {},
  queue: process.env.CONFORMANCE_QUEUE,
  lease: `${process.env.CONFORMANCE_LEASE ?? "2"}s`,
  pollInterval: "1s",
  concurrency: 4,
  name: process.env.CONFORMANCE_WORKER_NAME,
  workflows: [
    localSteps,
    sqlStep,
    activityRetry,
    activityErrors,
    timers,
    signals,
    children,
    childOk,
    childFail,
    parentClose,
    childWait,
    continueAsNew,
    cancelActivity,
    nondeterminism,
    killActivity,
  ],
  activities: [flaky, fail, failHard, waitCancel, cleanup, blockFirst],
  logger: (level, message) => console.log(`${new Date().toISOString()} ${level} ${message}`),
});
console.log(`worker ${worker.name} polling queue ${worker.queue}`);
await worker.run();
console.log(`worker ${worker.name} stopped`);
