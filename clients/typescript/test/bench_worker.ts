/**
 * test/bench_worker.ts: the TypeScript worker process of bench/sdk_bench_ts.py
 * (the TypeScript counterpart of sdk_bench.py's --sdk-worker).
 *
 * Workflow type `bench_<steps>`: ctx.step("s<i>", () => i) per step (one
 * step_record, one commit each), then returns {steps, total} (the result
 * rides on the worker's next task_poll).
 *
 *   node dist/test/bench_worker.js --queue Q --steps N [--concurrency 4] [--name NAME]
 *
 * Connects with the PG* environment (DURABLE_DSN if set); prints "ready"
 * and works until SIGTERM.
 */
import { Worker, defineWorkflow, type Connection } from "../src/index.js";

const connection: Connection = process.env.DURABLE_DSN ?? {};

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export function benchWorkflow(steps: number) {
  return defineWorkflow<unknown, { steps: number; total: number }>(`bench_${steps}`, async (ctx) => {
    let total = 0;
    for (let i = 0; i < steps; i++) total += await ctx.step(`s${i}`, () => i);
    return { steps, total };
  });
}

async function main(args: string[]): Promise<void> {
  const queue = option(args, "--queue");
  const steps = Number(option(args, "--steps") ?? 1);
  if (queue === undefined || !(steps >= 0)) throw new Error("usage: bench_worker.js --queue Q --steps N [--concurrency C] [--prefetch P] [--name NAME]");
  const worker = new Worker({
    connection,
    queue,
    name: option(args, "--name"),
    concurrency: Number(option(args, "--concurrency") ?? 4),
    prefetch: option(args, "--prefetch") === undefined ? undefined : Number(option(args, "--prefetch")),
    lease: "30s",
    pollInterval: "1s",
    grace: "5s",
    workflows: [benchWorkflow(steps)],
  });
  console.log("ready");
  await worker.run();
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv.slice(2));
