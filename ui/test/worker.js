// A real worker process for the UI's browser test and screenshots: the
// TypeScript SDK (clients/typescript, built to dist/) serving the queue in
// UI_TEST_QUEUE with workflows that leave something to see on every panel
// of a run page.
//
//   UI_TEST_DSN=postgresql://... UI_TEST_QUEUE=ui_test node ui/test/worker.js
import { Worker, defineActivity, defineWorkflow } from "../../clients/typescript/dist/src/index.js";

const queue = process.env.UI_TEST_QUEUE || "ui_test";

// fails every attempt: the run page shows it in backoff with its last error
const charge = defineActivity("ui_charge", async () => {
  throw new Error("card declined");
});

// holds its lease until the attempt is withdrawn: the queues page shows the
// worker holding it, the run page shows it started
const pack = defineActivity("ui_pack", (ctx) => new Promise((resolve) => {
  ctx.signal.addEventListener("abort", () => resolve({ packed: false }));
}));

const child = defineWorkflow("ui_child", async (ctx, input) => {
  const picked = await ctx.step("pick", () => ({ item: input.item, shelf: "B7" }));
  return { picked };
});

// a step, a child, an activity retrying, an activity running, a timer and
// a signal wait at once; closes when "approve" comes (or the timer fires)
const order = defineWorkflow("ui_order", async (ctx, input) => {
  const price = await ctx.step("price", () => ({ item: input.item, amount: 42.5, currency: "EUR" }));
  const picked = await ctx.child(child, { item: input.item }, { workflowId: `${ctx.workflowId}-pick` });
  ctx.startActivity(charge, price, { startToClose: "10s", retry: { initialInterval: "1h", maximumAttempts: 5 } });
  ctx.startActivity(pack, { item: input.item }, { startToClose: "10m", heartbeat: "1m" });
  const approval = await Promise.race([ctx.waitSignal("approve"), ctx.sleep("1h").then(() => null)]);
  return { approval, price, picked };
});

// continues as new until n = 2: three runs of one workflow id
const loop = defineWorkflow("ui_loop", async (ctx, input) => {
  const n = input && input.n ? input.n : 0;
  await ctx.step(`round-${n}`, () => n);
  if (n < 2) ctx.continueAsNew({ n: n + 1 });
  return { rounds: n + 1 };
});

// done at once: what a schedule starts
const tick = defineWorkflow("ui_tick", async (ctx, input) => ({ ticked: input ?? null }));

const worker = new Worker({
  connection: process.env.UI_TEST_DSN,
  queue,
  workflows: [order, child, loop, tick],
  activities: [charge, pack],
  name: "ui-test-worker",
  concurrency: 8,
  pollInterval: "1s",
  grace: "2s",
});
console.log(`worker ready on queue ${queue}`);
await worker.run();
