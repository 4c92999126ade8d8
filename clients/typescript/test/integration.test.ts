/**
 * Integration tests against a real server with the durable extension
 * (preloaded, so that timers fire).  DURABLE_TEST_DSN names the database,
 * e.g. postgresql://postgres@/tsdev?host=/tmp/me/dev&port=57900; without it
 * the tests are skipped.  Each test works on queues of its own.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
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
  const worker = new Worker({ connection: DSN!, queue, handleSignals: false, lease: 5, pollInterval: 1, ...options });
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

let sawAbort = false;
const patient = defineActivity("ts_patient", async (ctx) => {
  for (let i = 0; i < 300; i++) {
    if (ctx.signal.aborted) {
      sawAbort = true;
      ctx.throwIfCancelled();
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

const all = { workflows: [hello, retries, timer, waiter, childWf, parentWf, counter, cancellable, cart, fanout, slowWf, audit], activities: [flaky, fatal, patient, square, slow] };

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
      assert.equal(await h.result({ timeout: 20 }), "Hello, Ada!");
    });
  });

  it("retries a failing activity and stops at a non-retryable error", async () => {
    flakyCalls = 0;
    await withWorker(all, async (queue) => {
      const r = await client.execute(retries, undefined, { queue, timeout: 30 });
      assert.deepEqual(r, { ok: "ok after 3", fatal: "CardDeclined" });
      assert.equal(flakyCalls, 3);
    });
  });

  it("sleeps on a durable timer", async () => {
    await withWorker(all, async (queue) => {
      const t0 = Date.now();
      assert.equal(await client.execute(timer, undefined, { queue, timeout: 20 }), "woke");
      assert.ok(Date.now() - t0 >= 900);
    });
  });

  it("takes a signal sent before the wait, and one sent after", async () => {
    const early = `early-${uid()}`;
    const queue = `ts_${uid()}`;
    await client.start(waiter, undefined, { queue, workflowId: early });
    await client.signal(early, go, { by: "ada" }); // buffered: no worker yet
    await withWorker({ ...all, queue }, async () => {
      assert.equal(await client.result(early, { timeout: 20 }), "go by ada");
      const late = await client.start(waiter, undefined, { queue });
      await waitFor("the signal wait", async () => (await pendingKinds(late.workflowId)).includes("signal"));
      await late.signal(go, { by: "bob" });
      assert.equal(await late.result({ timeout: 20 }), "go by bob");
    });
  });

  it("runs child workflows", async () => {
    await withWorker(all, async (queue) => {
      assert.deepEqual(await client.execute(parentWf, 5, { queue, timeout: 30 }), [10, 12]);
    });
  });

  it("continues as new", async () => {
    await withWorker(all, async (queue) => {
      const h = await client.start(counter, 1, { queue });
      assert.equal(await h.result({ timeout: 30 }), "counted to 3");
      const events = (await client.history(h.workflowId)).map((e) => e.event_type);
      assert.equal(events.filter((e) => e === "workflow_continued_as_new").length, 2);
    });
  });

  it("cancels: the request reaches the activity through its heartbeats", async () => {
    sawAbort = false;
    await withWorker({ ...all, lease: 3 }, async (queue) => {
      const h = await client.start(cancellable, undefined, { queue });
      await waitFor("the activity to start", async () => ((await h.describe()).pending_steps[0]?.state ?? "") === "started");
      await h.cancel("user asked");
      await assert.rejects(h.result({ timeout: 30 }), (e: unknown) => e instanceof WorkflowFailedError && e.error.cancel_reason === "user asked");
      assert.equal(await client.status(h.workflowId), "cancelled");
      assert.ok(sawAbort, "the activity saw the abort");
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
      assert.deepEqual(await h.result({ timeout: 20 }), ["tea", "milk"]);
      assert.deepEqual(await client.published(h.workflowId), { items: ["tea", "milk"] });
      const found = [];
      for await (const r of client.list(`WorkflowId = '${h.workflowId}' AND CartSize = 2`)) found.push(r.workflow_id);
      assert.deepEqual(found, [h.workflowId]);
    });
  });

  it("fans out with Promise.all and races with Promise.race", async () => {
    await withWorker({ ...all, concurrency: 8 }, async (queue) => {
      assert.equal(await client.execute(fanout, 20, { queue, timeout: 60 }), 2870 + 10000);
    });
  });

  it("runs an exactly-once SQL step (ctx.transaction)", async () => {
    const tag = uid();
    await withWorker(all, async (queue) => {
      assert.equal(await client.execute(audit, tag, { queue, timeout: 20 }), 1);
    });
    const n = (await client.pool.query("SELECT count(*)::int AS n FROM ts_audit WHERE tag = $1", [tag])).rows[0].n;
    assert.equal(n, 1);
  });

  it("keeps working after its connections are killed", async () => {
    const name = `killme-${uid()}`;
    await withWorker({ ...all, name }, async (queue) => {
      assert.equal(await client.execute(hello, { name: "one" }, { queue, timeout: 20 }), "Hello, one!");
      const killed = await client.pool.query(
        "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1",
        [`durable-worker ${name}`],
      );
      assert.ok(killed.rows[0].n >= 2, "poll and LISTEN connections killed");
      assert.equal(await client.execute(hello, { name: "two" }, { queue, timeout: 30 }), "Hello, two!");
    });
  });

  it("hands a running task back at shutdown", async () => {
    slowStarted = false;
    const queue = `ts_${uid()}`;
    const h = await client.start(slowWf, undefined, { queue });
    const worker = new Worker({ connection: DSN!, queue, ...all, handleSignals: false, lease: 5, pollInterval: 1, grace: 0.5 });
    const running = worker.run();
    await waitFor("the slow activity", async () => slowStarted);
    worker.stop();
    await running;
    assert.equal(worker.released, 1);
    const events = (await client.history(h.workflowId)).map((e) => e.event_type);
    assert.ok(events.includes("task_released"));
    await client.terminate(h.workflowId);
  });

  it("keeps 64-bit tokens and run ids exact", async () => {
    // past 2^53 a JS number would name another token: push the sequences there
    for (const seq of ["durable.token_seq", "durable.run_id_seq"]) {
      await client.pool.query("SELECT setval($1::regclass, GREATEST(nextval($1::regclass), 9007199254740993))", [seq]);
    }
    await withWorker(all, async (queue) => {
      const h = await client.start(hello, { name: "big" }, { queue });
      assert.equal(await h.result({ timeout: 20 }), "Hello, big!");
      // bigint columns arrive as strings (wf_describe's JSON run_id would lose digits)
      const row = (await client.pool.query("SELECT run_id FROM durable.workflows WHERE workflow_id = $1", [h.workflowId])).rows[0];
      assert.equal(typeof row.run_id, "string");
      assert.ok(BigInt(row.run_id) > 9007199254740993n);
    });
  });
});
