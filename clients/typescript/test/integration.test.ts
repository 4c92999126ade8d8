/**
 * Integration tests against a real server with the durable extension
 * (preloaded, so that timers fire).  DURABLE_TEST_DSN names the database,
 * e.g. postgresql://postgres@/tsdev?host=/tmp/me/dev&port=57900; without it
 * the tests are skipped.  Each test works on queues of its own.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import {
  ActivityError,
  ApplicationError,
  CancelledError,
  Client,
  NonRetryableError,
  UpdateFailedError,
  Worker,
  WorkflowFailedError,
  defineActivity,
  defineQuery,
  defineSignal,
  defineUpdate,
  defineWorkflow,
  replay,
  type WorkerOptions,
} from "../src/index.js";

const DSN = process.env.DURABLE_TEST_DSN;
const skip = DSN ? false : "DURABLE_TEST_DSN is not set";

const uid = () => randomBytes(4).toString("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let client: Client;

/** Runs fn with a worker of its own queue (started, then stopped). */
async function withWorker<T>(options: Partial<WorkerOptions>, fn: (queue: string, worker: Worker) => Promise<T>): Promise<T> {
  const queue = options.queue ?? `ts_${uid()}`;
  const worker = new Worker({ connection: DSN!, queue, handleSignals: false, lease: "5s", pollInterval: "1s", ...options });
  const running = worker.run();
  try {
    return await fn(queue, worker);
  } finally {
    worker.stop();
    await running;
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, seconds = 20): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const pendingKinds = async (id: string) => ((await client.describe(id)).pending_steps as { kind: string }[]).map((s) => s.kind);

// ------------------------------------------------------------ workflows and activities

const hello = defineWorkflow<{ name: string }, string>("ts_hello", async (ctx, input) => ctx.step("greet", () => `Hello, ${input.name}!`));

let flakyCalls = 0;
const flaky = defineActivity<{ failures: number }, string>("ts_flaky", async (ctx, input) => {
  flakyCalls += 1;
  if (ctx.attempt <= input.failures) throw new Error(`attempt ${ctx.attempt} failed`);
  return `ok after ${ctx.attempt}`;
});
const fatal = defineActivity<null, string>("ts_fatal", async () => {
  throw new NonRetryableError("card declined", { type: "CardDeclined" });
});
const retries = defineWorkflow("ts_retries", async (ctx) => {
  const ok = await ctx.activity(flaky, { failures: 2 }, { retry: { initialInterval: "100ms", maximumAttempts: 5 } });
  try {
    await ctx.activity(fatal, null, { retry: { initialInterval: "100ms", maximumAttempts: 5 } });
    return { ok, fatal: "no error" };
  } catch (e) {
    assert.ok(e instanceof ActivityError);
    return { ok, fatal: e.type };
  }
});

const timer = defineWorkflow("ts_timer", async (ctx) => {
  await ctx.sleep("1s");
  return "woke";
});

const go = defineSignal<{ by: string }>("go");
const waiter = defineWorkflow("ts_waiter", async (ctx) => {
  await ctx.step("before", () => 1);
  const p = await ctx.waitSignal(go, { timeout: "1m" });
  return `go by ${p.by}`;
});

const childWf = defineWorkflow<number, number>("ts_child", async (ctx, n) => ctx.step("double", () => n * 2));
const parentWf = defineWorkflow<number, number[]>("ts_parent", async (ctx, n) =>
  Promise.all([ctx.child(childWf, n), ctx.child(childWf, n + 1, { workflowId: `${ctx.workflowId}-second` })]),
);

const counter = defineWorkflow<number, string>("ts_counter", async (ctx, n) => {
  await ctx.step("tick", () => n);
  if (n < 3) return ctx.continueAsNew(n + 1);
  return `counted to ${n}`;
});

let sawCancel = false;
const patient = defineActivity("ts_patient", async (ctx) => {
  for (let i = 0; i < 300; i++) {
    if (ctx.cancelRequested) {
      sawCancel = true;
      throw new CancelledError();
    }
    await sleep(100);
  }
  return "finished";
});
const cancellable = defineWorkflow("ts_cancellable", async (ctx) => {
  try {
    return await ctx.activity(patient, null, { heartbeat: "10s", retry: { maximumAttempts: 1 } });
  } catch (e) {
    if (e instanceof CancelledError || e instanceof ActivityError) throw new ApplicationError(`stopped: ${e.message}`, { type: "cancelled" });
    throw e;
  }
});

const v1 = defineWorkflow("ts_versioned", async (ctx) => {
  await ctx.step("one", () => 1);
  return ctx.waitSignal(go);
});
const v2 = defineWorkflow("ts_versioned", async (ctx) => {
  await ctx.step("two", () => 2);
  return ctx.waitSignal(go);
});

const stage = defineQuery<null, string>("stage");
const addItem = defineUpdate<string, number>("add");
const checkout = defineUpdate<null, string[]>("checkout");
const cart = defineWorkflow("ts_cart", async (ctx) => {
  const items: string[] = [];
  let done = false;
  let where = "open";
  ctx.onQuery(stage, () => `${where} with ${items.length} item(s)`);
  ctx.onUpdate(
    addItem,
    (item) => items.push(item),
    (item) => {
      if (!item) throw new Error("an item needs a name");
    },
  );
  ctx.onUpdate(checkout, () => {
    done = true;
    return items;
  });
  await ctx.condition(() => done);
  where = "checked out";
  await ctx.upsertSearchAttributes({ CartSize: items.length });
  await ctx.publish("items", items);
  return items;
});

const square = defineActivity<number, number>("ts_square", async (_ctx, x) => x * x);
const fanout = defineWorkflow<number, number>("ts_fanout", async (ctx, n) => {
  const all = await Promise.all(Array.from({ length: n }, (_, i) => ctx.activity(square, i + 1)));
  const first = await Promise.race([ctx.activity(square, 100), ctx.sleep("1h").then(() => -1)]);
  return all.reduce((a, b) => a + b, 0) + first;
});

let slowStarted = false;
const slow = defineActivity("ts_slow", async (ctx) => {
  slowStarted = true;
  await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
  return "stopped";
});
const slowWf = defineWorkflow("ts_slow_wf", async (ctx) => ctx.activity(slow, null, { startToClose: "1m" }));

const audit = defineWorkflow<string, number>("ts_exactly_once", async (ctx, tag) => {
  const n = await ctx.transaction("insert", async (c) => {
    await c.query("INSERT INTO ts_audit (tag) VALUES ($1)", [tag]);
    return (await c.query("SELECT count(*)::int AS n FROM ts_audit WHERE tag = $1", [tag])).rows[0].n;
  });
  await ctx.sleep("200ms");
  return n;
});

const echo = defineActivity<number, number>("ts_echo", async (_ctx, n) => n);
const fairWf = defineWorkflow<{ activityQueue: string; n: number }, number>("ts_fair", async (ctx, input) =>
  ctx.activity(echo, input.n, { queue: input.activityQueue, fairnessKey: "bulk", fairnessWeight: 0.5 }),
);

// ---- the review's fixes
let cleanupSaw: { cancelRequested: boolean; aborted: boolean } | null = null;
const cleanup = defineActivity("ts_cleanup", async (ctx) => {
  await sleep(300);
  cleanupSaw = { cancelRequested: ctx.cancelRequested, aborted: ctx.signal.aborted };
  return "cleaned";
});
const cleansUp = defineWorkflow("ts_cleans_up", async (ctx) => {
  try {
    await ctx.sleep("1h");
    return "slept";
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
    return ctx.activity(cleanup);
  }
});

const badCommand = defineWorkflow("ts_bad_command", async (ctx) => ctx.activity(echo, 1, { queue: "no such queue!" }));

const huge = defineActivity("ts_huge", async () => "x".repeat(3 * 1024 * 1024));
const hugeWf = defineWorkflow("ts_huge_wf", async (ctx) => {
  try {
    return await ctx.activity(huge, undefined, { retry: { maximumAttempts: 1 } });
  } catch (e) {
    return e instanceof ActivityError ? e.type : "?";
  }
});

let inTx = false;
const slowTx = defineWorkflow("ts_slow_tx", async (ctx) =>
  ctx.transaction("slow", async (c) => {
    await c.query("SELECT 1");
    inTx = true;
    await sleep(1500);
    return (await c.query("SELECT 2 AS v")).rows[0].v;
  }),
);

let sqlStarted = false;
const holdsSql = defineActivity("ts_holds_sql", async (ctx) => {
  sqlStarted = true;
  await ctx.db.query("SELECT pg_sleep(8)");
  return 1;
});
const holdsSqlWf = defineWorkflow("ts_holds_sql_wf", async (ctx) => ctx.activity(holdsSql, undefined, { startToClose: "1m" }));

const hogsPool = defineActivity("ts_hogs_pool", async (ctx) => {
  // every connection of ctx.db, then a heartbeat: it must not wait for one of them
  const held = [];
  const max = (ctx.db as unknown as { options: { max: number } }).options.max;
  for (let i = 0; i < max; i++) held.push(await ctx.db.connect());
  try {
    return await Promise.race([ctx.heartbeat("working").then(() => "beat"), sleep(3000).then(() => "heartbeat stuck")]);
  } finally {
    for (const c of held) c.release();
  }
});
const hogsPoolWf = defineWorkflow("ts_hogs_pool_wf", async (ctx) => ctx.activity(hogsPool));

const all = { workflows: [hello, retries, timer, waiter, childWf, parentWf, counter, cancellable, cart, fanout, slowWf, audit, fairWf, cleansUp, badCommand, hugeWf, slowTx, holdsSqlWf, hogsPoolWf], activities: [flaky, fatal, patient, square, slow, echo, cleanup, huge, holdsSql, hogsPool] };

// ------------------------------------------------------------ tests

describe("integration", { skip }, () => {
  before(async () => {
    client = new Client(DSN!);
    await client.pool.query("CREATE EXTENSION IF NOT EXISTS durable");
    await client.pool.query("CREATE TABLE IF NOT EXISTS ts_audit (tag text NOT NULL)");
  });
  after(async () => {
    await client?.close();
  });

  it("runs a one-step workflow", async () => {
    await withWorker(all, async (queue) => {
      const h = await client.start(hello, { name: "Ada" }, { queue });
      assert.equal(await h.result({ timeout: "20s" }), "Hello, Ada!");
    });
  });

  it("passes the flow-control options: fairness keys and weights, debounce", async () => {
    const activityQueue = `ts_${uid()}_act`;
    await withWorker(all, async (queue) => {
      const h = await client.start(fairWf, { activityQueue, n: 7 }, { queue, fairnessKey: "t-1", fairnessWeight: 2 });
      const run = await client.pool.query("SELECT fairness_key, fairness_weight FROM durable.runs WHERE workflow_id = $1", [h.workflowId]);
      assert.deepEqual(run.rows[0], { fairness_key: "t-1", fairness_weight: 2 });
      let task: unknown;
      await waitFor("the activity's task", async () => {
        const r = await client.pool.query(
          "SELECT t.fairness_key, t.fairness_weight FROM durable.tasks t JOIN durable.runs r USING (run_id) " +
            "WHERE r.workflow_id = $1 AND t.seq > 0", [h.workflowId]);
        task = r.rows[0];
        return r.rowCount === 1;
      });
      assert.deepEqual(task, { fairness_key: "bulk", fairness_weight: 0.5 });
      await withWorker({ ...all, queue: activityQueue }, async () => assert.equal(await h.result({ timeout: "20s" }), 7));
      // two debounced starts of one id make one run, with the later input
      const id = `ts_debounce_${uid()}`;
      await client.start(hello, { name: "first" }, { queue, workflowId: id, debounce: "300ms" });
      const second = await client.start(hello, { name: "second" }, { queue, workflowId: id, debounce: "300ms" });
      assert.equal(await second.result({ timeout: "20s" }), "Hello, second!");
      const runs = await client.pool.query("SELECT count(*)::int AS n FROM durable.workflows WHERE workflow_id = $1", [id]);
      assert.equal(runs.rows[0].n, 1);
    });
  });

  it("retries a failing activity and stops at a non-retryable error", async () => {
    flakyCalls = 0;
    await withWorker(all, async (queue) => {
      const r = await client.execute(retries, undefined, { queue, timeout: "30s" });
      assert.deepEqual(r, { ok: "ok after 3", fatal: "CardDeclined" });
      assert.equal(flakyCalls, 3);
    });
  });

  it("sleeps on a durable timer", async () => {
    await withWorker(all, async (queue) => {
      const t0 = Date.now();
      assert.equal(await client.execute(timer, undefined, { queue, timeout: "20s" }), "woke");
      assert.ok(Date.now() - t0 >= 900);
    });
  });

  it("takes a signal sent before the wait, and one sent after", async () => {
    const early = `early-${uid()}`;
    const queue = `ts_${uid()}`;
    await client.start(waiter, undefined, { queue, workflowId: early });
    await client.signal(early, go, { by: "ada" }); // buffered: no worker yet
    await withWorker({ ...all, queue }, async () => {
      assert.equal(await client.result(early, { timeout: "20s" }), "go by ada");
      const late = await client.start(waiter, undefined, { queue });
      await waitFor("the signal wait", async () => (await pendingKinds(late.workflowId)).includes("signal"));
      await late.signal(go, { by: "bob" });
      assert.equal(await late.result({ timeout: "20s" }), "go by bob");
    });
  });

  it("runs child workflows", async () => {
    await withWorker(all, async (queue) => {
      assert.deepEqual(await client.execute(parentWf, 5, { queue, timeout: "30s" }), [10, 12]);
    });
  });

  it("continues as new", async () => {
    await withWorker(all, async (queue) => {
      const h = await client.start(counter, 1, { queue });
      assert.equal(await h.result({ timeout: "30s" }), "counted to 3");
      const events = (await client.history(h.workflowId)).map((e) => e.event_type);
      assert.equal(events.filter((e) => e === "workflow_continued_as_new").length, 2);
    });
  });

  it("cancels: the request reaches the activity through its heartbeats", async () => {
    sawCancel = false;
    await withWorker({ ...all, lease: "3s" }, async (queue) => {
      const h = await client.start(cancellable, undefined, { queue });
      await waitFor("the activity to start", async () => ((await h.describe()).pending_steps[0]?.state ?? "") === "started");
      await h.cancel("user asked");
      await assert.rejects(h.result({ timeout: "30s" }), (e: unknown) => e instanceof WorkflowFailedError && e.error.cancel_reason === "user asked");
      assert.equal(await client.status(h.workflowId), "cancelled");
      assert.ok(sawCancel, "the activity saw the cancel request");
    });
  });

  it("detects nondeterminism (DU003) and retries the workflow task", async () => {
    const queue = `ts_${uid()}`;
    const id = `nd-${uid()}`;
    await withWorker({ workflows: [v1], queue }, async () => {
      await client.start(v1, undefined, { queue, workflowId: id });
      await waitFor("the signal wait", async () => (await pendingKinds(id)).includes("signal"));
    });
    await withWorker({ workflows: [v2], queue }, async () => {
      await client.signal(id, go, { by: "x" });
      await waitFor("a failed workflow task", async () =>
        (await client.history(id)).some((e) => e.event_type === "workflow_task_failed" && /nondeterminism in step 1/.test(e.details?.error?.message)),
      );
      const failed = (await client.history(id)).find((e) => e.event_type === "workflow_task_failed")!;
      assert.equal(failed.details.error.type, "nondeterminism");
      assert.equal(failed.details.error.sqlstate, "DU003");
      assert.equal(await client.status(id), "running");
    });
    // the replayer finds the same problem without a worker
    const [old] = await replay(client, v1, { status: "running", limit: 1 });
    const [changed] = await replay(client, v2, { status: "running", limit: 1 });
    assert.equal(old.workflowId, id);
    assert.equal(old.problem, null);
    assert.match(String(changed.problem?.message), /nondeterminism in step 1/);
    await client.terminate(id);
  });

  it("answers queries and updates; rejects an invalid update", async () => {
    await withWorker(all, async (queue) => {
      const h = await client.start(cart, undefined, { queue });
      await waitFor("the cart to wait", async () => (await pendingKinds(h.workflowId)).includes("signal"));
      assert.equal(await h.query(stage), "open with 0 item(s)");
      assert.equal(await h.update(addItem, "tea"), 1);
      assert.equal(await h.update(addItem, "milk"), 2);
      await assert.rejects(h.update(addItem, ""), (e: unknown) => e instanceof UpdateFailedError && /an item needs a name/.test(e.message));
      assert.equal(await h.query(stage), "open with 2 item(s)");
      assert.deepEqual(await h.update(checkout), ["tea", "milk"]);
      assert.deepEqual(await h.result({ timeout: "20s" }), ["tea", "milk"]);
      assert.deepEqual(await client.published(h.workflowId), { items: ["tea", "milk"] });
      const found = [];
      for await (const r of client.list(`WorkflowId = '${h.workflowId}' AND CartSize = 2`)) found.push(r.workflow_id);
      assert.deepEqual(found, [h.workflowId]);
    });
  });

  it("fans out with Promise.all and races with Promise.race", async () => {
    await withWorker({ ...all, concurrency: 8 }, async (queue) => {
      assert.equal(await client.execute(fanout, 20, { queue, timeout: "60s" }), 2870 + 10000);
    });
  });

  it("runs an exactly-once SQL step (ctx.transaction)", async () => {
    const tag = uid();
    await withWorker(all, async (queue) => {
      assert.equal(await client.execute(audit, tag, { queue, timeout: "20s" }), 1);
    });
    const n = (await client.pool.query("SELECT count(*)::int AS n FROM ts_audit WHERE tag = $1", [tag])).rows[0].n;
    assert.equal(n, 1);
  });

  it("keeps working after its connections are killed", async () => {
    const name = `killme-${uid()}`;
    await withWorker({ ...all, name }, async (queue) => {
      assert.equal(await client.execute(hello, { name: "one" }, { queue, timeout: "20s" }), "Hello, one!");
      const killed = await client.pool.query(
        "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1",
        [`durable-worker ${name}`],
      );
      assert.ok(killed.rows[0].n >= 2, "poll and LISTEN connections killed");
      assert.equal(await client.execute(hello, { name: "two" }, { queue, timeout: "30s" }), "Hello, two!");
    });
  });

  it("hands a running task back at shutdown", async () => {
    slowStarted = false;
    const queue = `ts_${uid()}`;
    const h = await client.start(slowWf, undefined, { queue });
    const worker = new Worker({ connection: DSN!, queue, ...all, handleSignals: false, lease: "5s", pollInterval: "1s", grace: "0.5s" });
    const running = worker.run();
    await waitFor("the slow activity", async () => slowStarted);
    worker.stop();
    await running;
    assert.equal(worker.released, 1);
    const events = (await client.history(h.workflowId)).map((e) => e.event_type);
    assert.ok(events.includes("task_released"));
    await client.terminate(h.workflowId);
  });

  it("claims ahead: runs at most concurrency tasks, releases the waiting ones at shutdown", async () => {
    slowStarted = false;
    const queue = `ts_${uid()}`;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await client.start(slowWf, undefined, { queue })).workflowId);
    const worker = new Worker({ connection: DSN!, queue, ...all, handleSignals: false, concurrency: 1, prefetch: 2,
      lease: "5s", pollInterval: "1s", grace: "0.5s" });
    const running = worker.run();
    await waitFor("the first slow activity", async () => slowStarted);
    await sleep(300);
    // one slot: one activity runs (it never ends by itself); one or two
    // more tasks wait claimed, leased to this worker (it polls again once
    // `prefetch` slots are free)
    const leased = (await client.pool.query(
      "SELECT count(*)::int AS n FROM durable.tasks WHERE queue = $1 AND state = 'leased'", [queue])).rows[0].n;
    assert.ok(leased >= 2 && leased <= 3, `leased: ${leased}`);
    worker.stop();
    await running;
    // the running one and the waiting ones go back to the queue
    assert.equal(worker.released, leased);
    const ready = await client.pool.query(
      "SELECT count(*)::int AS n FROM durable.tasks WHERE queue = $1 AND state = 'ready'", [queue]);
    assert.equal(ready.rows[0].n, 4);
    for (const id of ids) await client.terminate(id);
  });

  it("keeps 64-bit tokens and run ids exact, whatever the global type parsers say (16)", async () => {
    // past 2^53 a JS number would name another token: push the sequences there
    for (const seq of ["durable.token_seq", "durable.run_id_seq"]) {
      await client.pool.query("SELECT setval($1::regclass, GREATEST(nextval($1::regclass), 9007199254740993))", [seq]);
    }
    // an application's global parser must not reach the SDK's connections
    const int8 = pg.types.getTypeParser(20);
    pg.types.setTypeParser(20, (v: string) => Number(v));
    after(() => pg.types.setTypeParser(20, int8));
    await withWorker(all, async (queue) => {
      const h = await client.start(hello, { name: "big" }, { queue });
      assert.equal(await h.result({ timeout: "20s" }), "Hello, big!");
      // bigint columns arrive as strings (wf_describe's JSON run_id would lose digits)
      const row = (await client.pool.query("SELECT run_id FROM durable.workflows WHERE workflow_id = $1", [h.workflowId])).rows[0];
      assert.equal(typeof row.run_id, "string");
      assert.ok(BigInt(row.run_id) > 9007199254740993n);
    });
  });

  it("lets an activity scheduled after a cancel request run, telling it of the request (10)", async () => {
    cleanupSaw = null;
    await withWorker({ ...all, lease: "3s" }, async (queue) => {
      const h = await client.start(cleansUp, undefined, { queue });
      await waitFor("the sleep", async () => (await pendingKinds(h.workflowId)).includes("sleep"));
      await h.cancel();
      assert.equal(await h.result({ timeout: "20s" }), "cleaned");
      assert.deepEqual(cleanupSaw, { cancelRequested: true, aborted: false });
    });
  });

  it("fails a workflow task whose task_suspend the engine refuses, and says so at warn (5)", async () => {
    const warnings: string[] = [];
    const logger = (level: string, m: string) => void (level === "warn" && warnings.push(m));
    await withWorker({ ...all, logger }, async (queue) => {
      const h = await client.start(badCommand, undefined, { queue });
      await waitFor("a failed workflow task", async () =>
        (await client.history(h.workflowId)).some((e) => e.event_type === "workflow_task_failed" && e.details?.error?.sqlstate === "DU002"),
      );
      await client.terminate(h.workflowId);
    });
    assert.ok(warnings.some((w) => /ts_bad_command/.test(w) && /DU002/.test(w)), warnings.join("\n"));
  });

  it("fails an activity whose result is over the payload limit (6)", async () => {
    await withWorker(all, async (queue) => {
      assert.equal(await client.execute(hugeWf, undefined, { queue, timeout: "30s" }), "ResultTooLarge");
    });
  });

  it("survives a connection lost inside ctx.transaction (3)", async () => {
    inTx = false;
    const name = `tx-${uid()}`;
    await withWorker({ ...all, name }, async (queue) => {
      const h = await client.start(slowTx, undefined, { queue });
      await waitFor("the transaction", async () => inTx);
      const killed = await client.pool.query(
        "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
        [`durable-worker ${name}`],
      );
      assert.equal(killed.rows[0].n, 1);
      // released and replayed: the step runs again, and commits this time
      assert.equal(await h.result({ timeout: "30s" }), 2);
    });
  });

  it("retries the LISTEN connection with a backoff (4)", async () => {
    const lines: string[] = [];
    const bad = DSN!.replace(/port=\d+/, "port=1").replace(/:\d+\//, ":1/");
    const worker = new Worker({ connection: bad, queue: `ts_${uid()}`, handleSignals: false, pollInterval: "1s", logger: (_l, m) => lines.push(m) });
    const running = worker.run();
    await sleep(1500);
    worker.stop();
    await running;
    const attempts = lines.filter((l) => l.includes("LISTEN connection: cannot connect")).length;
    assert.ok(attempts >= 1 && attempts <= 6, `${attempts} LISTEN attempts in 1.5 s`);
  });

  it("stops within the grace although an activity holds a connection (13)", async () => {
    sqlStarted = false;
    const queue = `ts_${uid()}`;
    const h = await client.start(holdsSqlWf, undefined, { queue });
    const worker = new Worker({ connection: DSN!, queue, ...all, handleSignals: false, lease: "5s", pollInterval: "1s", grace: "0.5s" });
    const running = worker.run();
    await waitFor("the activity", async () => sqlStarted);
    const t0 = Date.now();
    worker.stop();
    await running;
    assert.ok(Date.now() - t0 < 4000, `run() took ${Date.now() - t0} ms`);
    assert.equal(worker.released, 1);
    await client.terminate(h.workflowId);
  });

  it("heartbeats on connections of their own, whatever activities hold (15)", async () => {
    await withWorker({ ...all, concurrency: 1 }, async (queue) => {
      assert.equal(await client.execute(hogsPoolWf, undefined, { queue, timeout: "20s" }), "beat");
    });
  });

  it("keeps the namespace when the connection string has options (9)", async () => {
    const dsn = `${DSN}${DSN!.includes("?") ? "&" : "?"}options=${encodeURIComponent("-c statement_timeout=60000")}`;
    const c = new Client(dsn, { namespace: "tenant_a" });
    try {
      const r = await c.pool.query("SELECT current_setting('durable.namespace') AS ns, current_setting('statement_timeout') AS st");
      assert.deepEqual(r.rows[0], { ns: "tenant_a", st: "1min" });
    } finally {
      await c.close();
    }
  });
});
