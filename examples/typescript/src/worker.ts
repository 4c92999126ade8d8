/**
 * The examples' worker process: one worker for the workflows (and their
 * activities) on QUEUE, one with more slots for the fan-out's activities on
 * WORK_QUEUE.  SIGTERM or SIGINT stops both gracefully.
 *
 *   DURABLE_DSN=postgresql://... node dist/worker.js
 */
import { Worker } from "durable-worker";
import { orderApproval, shipOrder } from "./approval.js";
import { QUEUE, WORK_QUEUE, connection } from "./common.js";
import { fanoutSum, square } from "./fanout.js";
import { greet, sendEmail } from "./hello.js";
import { credit, transfer } from "./saga.js";

const main = new Worker({
  connection,
  queue: QUEUE,
  workflows: [greet, transfer, orderApproval, fanoutSum],
  activities: [sendEmail, credit, shipOrder, square],
  concurrency: 4,
  pollInterval: "1s",
});
const work = new Worker({ connection, queue: WORK_QUEUE, activities: [square], concurrency: 16, pollInterval: "1s" });
console.log(`worker: queues ${QUEUE} and ${WORK_QUEUE}`);
await Promise.all([main.run(), work.run()]);
console.log(`worker: stopped (${main.completed + work.completed} tasks, ${main.released + work.released} released)`);
