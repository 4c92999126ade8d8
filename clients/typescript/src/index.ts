export * from "./errors.js";
export * from "./types.js";
export { ActivityContext, ASYNC_COMPLETION } from "./activity.js";
export { WorkflowContext, Handle, ContinueAsNew, runWorkflow } from "./workflow.js";
export type { Outcome, TaskIO, WorkflowTask, StepRecord, Command, RunOptions } from "./workflow.js";
export { Worker, type WorkerOptions } from "./worker.js";
export { Client, WorkflowHandle, type ClientOptions } from "./client.js";
export type { Connection, Logger, LogLevel } from "./pgutil.js";
export { replay, type ReplayResult } from "./replay.js";
