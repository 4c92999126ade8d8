/** Unit tests of replay (no server): the fake engine of fake.ts applies what each task ends with. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { Client } from "../src/client.js";
import { ApplicationError, CancelledError, DurableTimeout } from "../src/errors.js";
import { clientConfig, isLost } from "../src/pgutil.js";
import { defineActivity, defineWorkflow, durationSeconds } from "../src/types.js";
import { Worker } from "../src/worker.js";
import type { WorkflowContext } from "../src/workflow.js";
import { FakeRun } from "./fake.js";

type Ctx = WorkflowContext;

describe("sequential replay", () => {
  it("runs a step, an activity and a timer across tasks", async () => {
    let stepRuns = 0;
    const run = new FakeRun(async (ctx: Ctx, input: { name: string }) => {
      const text = await ctx.step("compose", () => {
        stepRuns += 1;
        return `Hello, ${input.name}`;
      });
      const receipt = await ctx.activity("send", { text }, { queue: "mail", startToClose: "10s", retry: { maximumAttempts: 3 } });
      await ctx.sleep(1);
      return { text, receipt };
    }, { name: "Ada" });

    let { outcome } = await run.task();
    assert.equal(outcome.type, "suspend");
    assert.deepEqual(run.log, ["step_record 1:compose", "suspend 2:activity"]);
    assert.deepEqual(outcome.type === "suspend" && outcome.commands[0], {
      type: "activity", name: "send", queue: "mail", start_to_close: "10s", retry: { maximum_attempts: 3 }, input: { text: "Hello, Ada" }, seq: 2,
    });
    run.resolve(2, { sent: true });
    ({ outcome } = await run.task());
    assert.equal(outcome.type, "suspend");
    assert.deepEqual(run.pending(), [3]);
    run.resolve(3);
    ({ outcome } = await run.task());
    assert.deepEqual(outcome, { type: "complete", result: { text: "Hello, Ada", receipt: { sent: true } }, steps: [] });
    assert.equal(stepRuns, 1, "a recorded step does not run again");
    assert.deepEqual(run.entries(), ["1:local:compose:completed", "2:activity:send:completed", "3:sleep:sleep:completed"]);
  });

  it("raises a failed activity's error, and fails the run when not caught", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      try {
        await ctx.activity("a");
      } catch (e) {
        assert.ok(e instanceof DurableTimeout);
        await ctx.activity("b");
      }
      return "unreachable";
    });
    await run.task();
    run.failEntry(1, { type: "timeout", timeout_type: "start_to_close", message: "timed out" });
    await run.task();
    run.failEntry(2, { type: "Boom", message: "boom" });
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "fail", error: { type: "Boom", message: "boom" } });
  });

  it("fails the run with an ApplicationError, and retries the task on a bug", async () => {
    const failing = new FakeRun(async () => {
      throw new ApplicationError("no stock", { type: "OutOfStock" });
    });
    assert.deepEqual((await failing.task()).outcome, { type: "fail", error: { type: "OutOfStock", message: "no stock" } });
    const buggy = new FakeRun(async () => {
      throw new TypeError("x is not a function");
    });
    const { outcome } = await buggy.task();
    assert.equal(outcome.type, "taskError");
  });

  it("does not record a step whose function threw; the code may catch it", async () => {
    let tries = 0;
    const run = new FakeRun(async (ctx: Ctx) => {
      try {
        await ctx.step("flaky", () => {
          tries += 1;
          throw new Error("nope");
        });
      } catch {
        return "caught";
      }
    });
    assert.deepEqual((await run.task()).outcome, { type: "complete", result: "caught", steps: [] });
    assert.equal(tries, 1);
    assert.deepEqual(run.entries(), []);
  });

  it("sends the commands of calls not awaited before the run ends", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      void ctx.signalExternal("other", "ping", 1);
      return "sent";
    });
    const first = await run.task();
    assert.equal(first.outcome.type === "suspend" && first.outcome.commands[0].type, "signal_external");
    assert.deepEqual((await run.task()).outcome, { type: "complete", result: "sent", steps: [] });
  });

  it("refuses a durable call inside a step's function instead of hanging", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      try {
        return await ctx.step("outer", async () => ctx.activity("inner"));
      } catch (e) {
        return (e as Error).message;
      }
    });
    const { outcome } = await run.task();
    assert.equal(outcome.type, "complete");
    assert.match(String(outcome.type === "complete" && outcome.result), /inside the function of step "outer"/);
  });

  it("continues as new", async () => {
    const run = new FakeRun(async (ctx: Ctx, n: number) => {
      await ctx.step("s", () => n);
      if (n < 3) return ctx.continueAsNew(n + 1);
      return n;
    }, 1);
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "continueAsNew", input: 2, steps: [] });
  });
});

describe("Promise.all and Promise.race", () => {
  it("sends every command of a Promise.all in the first task, also ones issued after microtasks", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      const later = (async () => {
        await null;
        await Promise.resolve();
        return ctx.activity("late", 0);
      })();
      return Promise.all([ctx.activity("a", 1), ctx.activity("b", 2), later, ctx.sleep("1m")]);
    });
    const { outcome } = await run.task();
    assert.equal(outcome.type, "suspend");
    assert.deepEqual(outcome.type === "suspend" && outcome.commands.map((c) => `${c.seq}:${c.type}:${c.name ?? ""}`), [
      "1:activity:a",
      "2:activity:b",
      "3:sleep:",
      "4:activity:late",
    ]);
  });

  it("fans out 100 activities, resolved in any order, without re-sending commands", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      const squares = await Promise.all(Array.from({ length: 100 }, (_, i) => ctx.activity<number, number>("square", i + 1)));
      return ctx.step("sum", () => squares.reduce((a, b) => a + b, 0));
    });
    await run.task();
    assert.equal(run.pending().length, 100);
    // resolve in a scrambled order, a few at a time, a task after each batch
    const order = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);
    for (let i = 0; i < order.length; i += 7) {
      for (const seq of order.slice(i, i + 7)) run.resolve(seq, seq * seq);
      const { outcome } = await run.task();
      if (outcome.type === "suspend") assert.deepEqual(outcome.commands, []);
    }
    assert.equal(run.closed?.type, "complete");
    assert.equal(run.closed?.type === "complete" && run.closed.result, 338350);
  });

  it("Promise.race keeps the winner it saw first, even when the loser resolved too by the next replay", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      const work = ctx.activity("work");
      const timeout = ctx.sleep("1h");
      const winner = await Promise.race([work.then(() => "work"), timeout.then(() => "timeout")]);
      if (winner === "work") timeout.cancel();
      else work.cancel();
      const after = await ctx.step("after", () => winner);
      return after;
    });
    await run.task(); // work (1) and timeout (2) scheduled
    run.resolve(2); // the timer fires first
    let { outcome } = await run.task();
    // the task saw only the timer: it records that, cancels the activity, runs "after"
    assert.equal(outcome.type, "complete");
    assert.deepEqual(run.entries(), [
      "1:activity:work:cancelled",
      "2:sleep:sleep:completed",
      "3:local:$resolved:completed",
      "4:local:after:completed",
    ]);
    // a replay of the final journal (query mode) takes the same path
    const q = await run.task("query");
    assert.deepEqual(q.outcome, { type: "complete", result: "timeout", steps: [] });
  });

  it("replays interleaved branches in the order their results were first seen", async () => {
    const branch = async (ctx: Ctx, name: string) => {
      const r = await ctx.activity<string, string>(name, name);
      if (name === "b") await ctx.sleep(1);
      else await ctx.step(`${name}-done`, () => r);
      return r;
    };
    const run = new FakeRun(async (ctx: Ctx) => Promise.all([branch(ctx, "a"), branch(ctx, "b")]));
    await run.task(); // 1: a, 2: b
    run.resolve(2, "B"); // b first: its branch takes seq 4 for its sleep (3 records the choice)
    await run.task();
    assert.deepEqual(run.entries(), ["1:activity:a:pending", "2:activity:b:completed", "3:local:$resolved:completed", "4:sleep:sleep:pending"]);
    run.resolve(1, "A");
    run.resolve(4);
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "complete", result: ["A", "B"], steps: [] });
    assert.deepEqual(run.entries().slice(4), ["5:local:a-done:completed"]);
  });

  it("needs no record when every awaited result is ready", async () => {
    const run = new FakeRun(async (ctx: Ctx) => Promise.race([ctx.activity("x"), ctx.activity("y")]));
    await run.task();
    run.resolve(1, "x");
    run.resolve(2, "y");
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "complete", result: "x", steps: [] });
    assert.equal(run.entries().length, 2);
  });
});

describe("nondeterminism", () => {
  it("reports the engine's DU003 when the code asks for another call", async () => {
    const first = new FakeRun(async (ctx: Ctx) => ctx.activity("charge"));
    await first.task();
    const changed = new FakeRun(async (ctx: Ctx) => {
      try {
        return await ctx.activity("refund");
      } catch {
        return "caught"; // a mismatch cannot be caught: it ends the task
      }
    });
    changed.journal = first.journal;
    const { outcome } = await changed.task();
    assert.equal(outcome.type, "taskError");
    assert.equal(outcome.type === "taskError" && (outcome.cause as { code: string }).code, "DU003");
    assert.match(String(outcome.type === "taskError" && (outcome.cause as Error).message), /activity "charge", the code asked for activity "refund"/);
  });

  it("reports a local step renamed under a running run", async () => {
    const first = new FakeRun(async (ctx: Ctx) => {
      await ctx.step("compose", () => 1);
      return ctx.sleep(5);
    });
    await first.task();
    const changed = new FakeRun(async (ctx: Ctx) => {
      await ctx.step("write", () => 1);
      return ctx.sleep(5);
    });
    changed.journal = first.journal;
    const { outcome } = await changed.task();
    assert.equal(outcome.type === "taskError" && (outcome.cause as { code: string }).code, "DU003");
  });
});

describe("signals, patches, cancellation, determinism helpers", () => {
  it("takes a signal's payload, and a timeout as DurableTimeout", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      const a = await ctx.waitSignal<{ by: string }>("approve", { timeout: "1d" });
      try {
        await ctx.waitSignal("second", { timeout: 2 });
      } catch (e) {
        if (e instanceof DurableTimeout) return `approved by ${a.by}, then timed out`;
      }
      return "no";
    });
    const first = await run.task();
    assert.deepEqual(first.outcome.type === "suspend" && first.outcome.commands, [{ type: "signal", name: "approve", timeout: "1d", seq: 1 }]);
    run.signal("approve", { by: "ada" });
    await run.task();
    run.failEntry(2, { type: "timeout", timeout_type: "signal", message: "signal timed out (signal)" });
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "complete", result: "approved by ada, then timed out", steps: [] });
  });

  it("patched: true and recorded on new runs, false on runs that passed under the old code", async () => {
    const code = (withPatch: boolean) => async (ctx: Ctx) => {
      await ctx.step("a", () => 1);
      if (withPatch && ctx.patched("add-b")) await ctx.step("b", () => 2);
      await ctx.sleep(1);
      return "done";
    };
    const old = new FakeRun(code(false));
    await old.task(); // old code: a, sleep
    const upgraded = new FakeRun(code(true));
    upgraded.journal = old.journal;
    upgraded.resolve(2);
    assert.deepEqual((await upgraded.task()).outcome, { type: "complete", result: "done", steps: [] });
    const fresh = new FakeRun(code(true));
    await fresh.task();
    assert.deepEqual(fresh.entries(), ["1:local:a:completed", "2:local:patch:add-b:completed", "3:local:b:completed", "4:sleep:sleep:pending"]);
  });

  it("makes a cancel request visible at a wait, the same point on every replay", async () => {
    const seen: boolean[] = [];
    const run = new FakeRun(async (ctx: Ctx) => {
      let aborted = false;
      ctx.cancellation.addEventListener("abort", () => (aborted = true));
      try {
        await ctx.sleep("1h");
      } catch (e) {
        seen.push(ctx.cancelRequested, aborted);
        assert.ok(e instanceof CancelledError);
        await ctx.step("cleanup", () => "cleaned");
        throw e;
      }
    });
    await run.task();
    run.cancelRequested = true;
    run.journal.get(1)!.status = "cancelled";
    run.journal.get(1)!.error = { type: "cancelled", message: "workflow cancel requested" };
    const { outcome } = await run.task();
    assert.equal(outcome.type, "fail");
    assert.deepEqual(seen, [true, true]);
    assert.deepEqual(run.entries(), ["1:sleep:sleep:cancelled", "2:local:$cancel_requested:completed", "3:local:cleanup:completed"]);
  });

  it("random() and uuid() repeat on replay", async () => {
    const values: string[][] = [];
    const run = new FakeRun(async (ctx: Ctx) => {
      const v = [String(ctx.random()), ctx.uuid()];
      values.push(v);
      await ctx.sleep(1);
      return v;
    });
    await run.task();
    run.resolve(2);
    await run.task();
    assert.equal(values.length, 2);
    assert.deepEqual(values[0], values[1]);
    assert.match(values[0][1], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("updates, conditions and queries", () => {
  const cart = async (ctx: Ctx) => {
    const items: string[] = [];
    let checkedOut = false;
    ctx.onUpdate("add", (item: string) => {
      items.push(item);
      return items.length;
    }, (item: string) => {
      if (!item) throw new Error("an item needs a name");
    });
    ctx.onUpdate("checkout", () => {
      checkedOut = true;
      return items.length;
    });
    ctx.onQuery("items", () => items);
    await ctx.condition(() => checkedOut);
    return ctx.step("receipt", () => ({ items }));
  };

  it("handles updates while waiting, rejects invalid ones, and replays them at the same wait", async () => {
    const run = new FakeRun(cart);
    let r = await run.task();
    assert.deepEqual(r.outcome.type === "suspend" && r.outcome.commands, [{ type: "signal", names: ["durable:wait_condition"], seq: 1 }]);
    run.requestUpdate("u1", "add", "tea");
    run.requestUpdate("u2", "add", "");
    r = await run.task();
    assert.equal(r.outcome.type, "suspend");
    assert.deepEqual(run.updates.map((u) => [u.update_id, u.state, u.seq]), [["u1", "completed", 2]]);
    const q = await run.task("query");
    assert.deepEqual(q.ctx.queryHandlers.get("items")!(), ["tea"]);
    run.requestUpdate("u3", "checkout", null);
    r = await run.task();
    assert.equal(r.outcome.type, "complete");
    assert.deepEqual(r.outcome.type === "complete" && r.outcome.result, { items: ["tea"] });
    assert.deepEqual(run.entries(), [
      "1:signal:[\"durable:wait_condition\"]:cancelled",
      "2:update:add:completed",
      "3:update:checkout:completed",
      "4:local:receipt:completed",
    ]);
    // the final journal replays to the same end
    const again = await run.task("query");
    assert.deepEqual(again.outcome, { type: "complete", result: { items: ["tea"] }, steps: [] });
  });

  it("runs signal handlers inside condition()", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      let total = 0;
      ctx.onSignal("add", (n: number) => (total += n));
      await ctx.condition(() => total >= 5);
      return total;
    });
    await run.task();
    run.signal("add", 2);
    await run.task();
    run.signal("add", 4);
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "complete", result: 6, steps: [] });
  });

  it("answers a query from a replay that stops at the end of the journal, writing nothing", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      let stage = "start";
      ctx.onQuery("stage", () => stage);
      await ctx.step("one", () => 1);
      stage = "after one";
      await ctx.activity("slow");
      stage = "done";
      return stage;
    });
    await run.task();
    const before = run.entries();
    const q = await run.task("query");
    assert.equal(q.ctx.queryHandlers.get("stage")!(), "after one");
    assert.deepEqual(run.entries(), before);
  });
});

describe("review fixes", () => {
  it("replays a fan-out whose branches run local steps after results that came in different tasks (1)", async () => {
    const run = new FakeRun(async (ctx: Ctx) =>
      Promise.all(
        ["x", "y"].map(async (item) => {
          const r = await ctx.activity<string, string>("process", item);
          await ctx.step(`a-${item}`, () => r);
          await ctx.step(`b-${item}`, () => r);
          await ctx.step(`c-${item}`, () => r);
          return r;
        }),
      ),
    );
    await run.task();
    run.resolve(1, "X"); // x first, in a task of its own
    await run.task();
    run.resolve(2, "Y");
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "complete", result: ["X", "Y"], steps: [] });
    const q = await run.task("query");
    assert.deepEqual(q.outcome, { type: "complete", result: ["X", "Y"], steps: [] });
  });

  it("keeps the pending markers when ctx.publish() writes first (2)", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      const heads = ctx.random() < 2; // $seed pending
      await ctx.publish("coin", heads);
      const a = ctx.activity("a");
      const b = ctx.activity("b");
      const first = await Promise.race([a.then(() => "a"), b.then(() => "b")]);
      await ctx.publish("winner", first); // takes the $resolved marker
      await ctx.sleep(1);
      return first;
    });
    await run.task();
    assert.deepEqual(run.entries().slice(0, 1), ["1:local:$seed:completed"]);
    run.resolve(3, "B");
    await run.task();
    assert.deepEqual(run.entries().slice(3), ["4:local:$resolved:completed", "5:sleep:sleep:pending"]);
    run.resolve(2, "A");
    run.resolve(5);
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "complete", result: "b", steps: [] });
  });

  it("lets code that an update handler resumed run before the task ends, the same on replay (7)", async () => {
    let charges = 0;
    const run = new FakeRun(async (ctx: Ctx) => {
      let approve!: () => void;
      const approved = new Promise<void>((r) => (approve = r));
      ctx.onUpdate("approve", () => {
        approve();
        return "ok";
      });
      await Promise.race([approved, ctx.sleep("1h")]);
      await ctx.step("charge", () => ++charges);
      return ctx.activity("ship");
    });
    await run.task();
    run.requestUpdate("u1", "approve", null);
    const r = await run.task();
    assert.equal(r.outcome.type, "suspend");
    assert.deepEqual(r.outcome.type === "suspend" && r.outcome.commands.map((c) => `${c.seq}:${c.type}`), ["4:activity"]);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(run.log.filter((l) => l.startsWith("DU004")).length, 0, "nothing ran after the task ended");
    run.resolve(4, "shipped");
    const { outcome } = await run.task();
    assert.equal(outcome.type === "complete" && outcome.result, "shipped");
    assert.equal(charges, 1);
  });

  it("fails the task instead of suspending when nothing would wake the run (7)", async () => {
    const run = new FakeRun(async () => new Promise(() => {}));
    const { outcome } = await run.task();
    assert.equal(outcome.type, "taskError");
    assert.match(String(outcome.type === "taskError" && (outcome.cause as Error).message), /nothing would wake the run/);
  });

  it("runs the handler of a signal that completed the wait when an update satisfies condition() (8)", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      const notes: string[] = [];
      let done = false;
      ctx.onSignal("note", (p: string) => notes.push(p));
      ctx.onUpdate("checkout", () => (done = true));
      await ctx.condition(() => done);
      return notes;
    });
    await run.task();
    run.signal("note", "gift wrap");
    run.requestUpdate("u1", "checkout", null);
    const { outcome } = await run.task();
    assert.deepEqual(outcome, { type: "complete", result: ["gift wrap"], steps: [] });
    assert.deepEqual((await run.task("query")).outcome, outcome);
  });

  it("does not crash the process on a derived promise that rejects before the code awaits it (11)", () => {
    // in a process of its own: the test runner would report the rejection itself
    const script = `
      import { FakeRun } from ${JSON.stringify(new URL("./fake.js", import.meta.url).href)};
      const run = new FakeRun(async (ctx) => {
        const id = ctx.activity("charge").then((r) => r.id);
        const viaAsync = (async () => (await ctx.activity("charge2")).id)();
        await ctx.sleep("1m");
        const out = [];
        for (const p of [id, viaAsync]) {
          try { out.push(await p); } catch (e) { out.push("caught " + e.message); }
        }
        return out;
      });
      await run.task();
      run.failEntry(1, { type: "CardDeclined", message: "declined" });
      run.failEntry(2, { type: "CardDeclined", message: "declined 2" });
      await run.task();
      await new Promise((res) => setTimeout(res, 20));
      run.resolve(3);
      console.log(JSON.stringify((await run.task()).outcome));`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { type: "complete", result: ["caught declined", "caught declined 2"], steps: [] });
  });

  it("refuses a handle awaited inside a step's function, and fails a step that makes no progress (12)", async () => {
    for (const wrap of [(h: PromiseLike<unknown>) => async () => await h, (h: PromiseLike<unknown>) => () => h]) {
      const run = new FakeRun(async (ctx: Ctx) => {
        const h = ctx.sleep(1);
        try {
          return await ctx.step("wrap", wrap(h));
        } catch (e) {
          return (e as Error).message;
        }
      });
      const { outcome } = await run.task();
      assert.match(String(outcome.type === "complete" && outcome.result), /the function of step "wrap" awaits the durable call 1/);
    }
    const stuck = new FakeRun(async (ctx: Ctx) => ctx.step("stuck", () => new Promise(() => {})));
    const { outcome } = await stuck.task("task", { stepTimeoutMs: 50 });
    assert.equal(outcome.type, "taskError");
    assert.match(String(outcome.type === "taskError" && (outcome.cause as Error).message), /"stuck"\] made no progress/);
  });

  it("starts no local step once the task is no longer ours (14)", async () => {
    const lost = new AbortController();
    const ran: string[] = [];
    const run = new FakeRun(async (ctx: Ctx) => {
      await ctx.step("one", () => {
        ran.push("one");
        lost.abort(new Error("released"));
      });
      await ctx.step("two", () => ran.push("two"));
    });
    const { outcome } = await run.task("task", { signal: lost.signal });
    assert.equal(outcome.type, "taskError");
    assert.deepEqual(ran, ["one"]);
  });

  it("takes plain numbers as milliseconds, strings as they are (API a)", async () => {
    const run = new FakeRun(async (ctx: Ctx) => {
      await ctx.activity("a", 1, { startToClose: 10_000, heartbeat: "5s", retry: { initialInterval: 250 } });
      await ctx.sleep(1500);
      return ctx.waitSignal("s", { timeout: 60_000 });
    });
    let { outcome } = await run.task();
    assert.deepEqual(outcome.type === "suspend" && outcome.commands[0], {
      type: "activity", name: "a", input: 1, start_to_close: "10000ms", heartbeat: "5s", retry: { initial_interval: "250ms" }, seq: 1,
    });
    run.resolve(1);
    ({ outcome } = await run.task());
    assert.deepEqual(outcome.type === "suspend" && outcome.commands, [{ type: "sleep", duration: "1500ms", seq: 2 }]);
    run.resolve(2);
    ({ outcome } = await run.task());
    assert.deepEqual(outcome.type === "suspend" && outcome.commands, [{ type: "signal", name: "s", timeout: "60000ms", seq: 3 }]);
  });

  it("continueAsNew throws: nothing after it runs (API b)", async () => {
    let after = false;
    const run = new FakeRun(async (ctx: WorkflowContext<number>, n: number) => {
      ctx.continueAsNew(n + 1);
      after = true;
    }, 1);
    assert.deepEqual((await run.task()).outcome, { type: "continueAsNew", input: 2, steps: [] });
    assert.equal(after, false);
  });
});

describe("connection helpers", () => {
  it("tells lost connections from bugs", () => {
    assert.equal(isLost(new TypeError("x is not a function")), false);
    assert.equal(isLost(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })), true);
    assert.equal(isLost(new Error("Connection terminated unexpectedly")), true);
  });

  it("keeps a connection string's options beside the namespace, and bigint columns as text (9, 16)", () => {
    const cfg = clientConfig("postgresql://u@/db?host=/tmp/s&port=5&options=-c%20statement_timeout%3D60000", "tenant_a");
    assert.equal(cfg.options, "-c statement_timeout=60000 -c durable.namespace=tenant_a");
    assert.doesNotMatch(String(cfg.connectionString), /options/);
    assert.equal((cfg.types as { getTypeParser: (oid: number) => (v: string) => unknown }).getTypeParser(20)("9007199254740993"), "9007199254740993");
  });

  it("reads durations as the engine does: numbers are milliseconds, strings have units", () => {
    assert.equal(durationSeconds(1500, "t"), 1.5);
    assert.equal(durationSeconds("250ms", "t"), 0.25);
    assert.equal(durationSeconds("30", "t"), 30);
    assert.equal(durationSeconds("2 Minutes", "t"), 120);
    assert.equal(durationSeconds("1.5h", "t"), 5400);
    assert.equal(durationSeconds(0, "grace", true), 0);
    for (const bad of [0, -5, "1h30m", "PT5S", "soon", "", "-1s", Infinity])
      assert.throws(() => durationSeconds(bad, "t"), TypeError, String(bad));
    assert.throws(() => new Worker({ connection: "postgresql://u@/db", lease: "forever" }), /lease/);
  });

  it("validates the queue name before anything", () => {
    assert.throws(() => new Worker({ connection: "postgresql://u@/db", queue: "no such queue!" }), /queue/);
  });
});

// API c: a typed input is required unless its type allows undefined (compiled, never run)
export function typeChecks(ctx: Ctx, client: Client) {
  const send = defineActivity<{ to: string }, { sent: boolean }>("send", async () => ({ sent: true }));
  const wf = defineWorkflow<{ n: number }, string>("wf", async () => "x");
  const optional = defineWorkflow<{ n: number } | undefined, string>("opt", async () => "x");
  // @ts-expect-error the input is required
  void ctx.activity(send);
  // @ts-expect-error the input is required
  void ctx.child(wf);
  // @ts-expect-error the input is required
  void client.start(wf);
  void ctx.activity(send, { to: "ada" });
  void ctx.activity("untyped");
  void client.start(optional);
  void client.start(wf, { n: 1 }, { queue: "q" });
}
