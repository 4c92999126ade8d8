/**
 * fanout: 100 activities started at once, joined with Promise.all, their
 * sum computed in a local step (the Python fanout.py).  The first workflow
 * task hands the engine all 100 commands in one call; the activities run on
 * a queue of their own, on a worker with more slots.
 *
 *   node dist/fanout.js [N]      (with `node dist/worker.js` running)
 */
import { Client, defineActivity, defineWorkflow } from "durable-worker";
import { QUEUE, WORK_QUEUE, connection, report, tag } from "./common.js";

export const square = defineActivity<number, number>("ts_square", async (_ctx, x) => x * x);

export const fanoutSum = defineWorkflow<{ n: number; queue?: string }, { n: number; sum: number }>("ts_fanout_sum", async (ctx, job) => {
  const squares = await Promise.all(
    Array.from({ length: job.n }, (_, i) =>
      ctx.activity(square, i + 1, { queue: job.queue, startToClose: "30s", retry: { initialInterval: "200ms" } }),
    ),
  );
  const sum = await ctx.step("sum", () => squares.reduce((a, b) => a + b, 0));
  return { n: job.n, sum };
});

async function main() {
  const n = Number(process.argv[2] ?? 100);
  const client = new Client(connection);
  let ok = false;
  try {
    const started = Date.now();
    const h = await client.start(fanoutSum, { n, queue: WORK_QUEUE }, { queue: QUEUE, workflowId: `fanout-${tag}` });
    const result = await h.result({ timeout: "120s" });
    const expected = (n * (n + 1) * (2 * n + 1)) / 6;
    const activities = (await client.pool.query(
      "SELECT count(*)::int AS n FROM durable.journal WHERE workflow_id = $1 AND kind = 'activity'",
      [h.workflowId],
    )).rows[0].n;
    console.log(`${h.workflowId}: sum of squares 1..${n} = ${result.sum} (expected ${expected}); ${activities} activities; ${Date.now() - started} ms`);
    ok = result.sum === expected && activities === n;
  } finally {
    await client.close();
  }
  report("fanout", ok);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
