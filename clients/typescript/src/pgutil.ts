/** node-postgres plumbing shared by the worker and the client. */
import pg from "pg";

/** A connection string, or node-postgres client settings. */
export type Connection = string | pg.ClientConfig;

/**
 * Client settings for `conn`, with the session's `durable.namespace` set at
 * connect time (a startup option, so that every pooled connection has it).
 */
export function clientConfig(conn: Connection, namespace?: string, applicationName?: string): pg.ClientConfig {
  const cfg: pg.ClientConfig = typeof conn === "string" ? { connectionString: conn } : { ...conn };
  if (namespace !== undefined) {
    if (!/^[A-Za-z0-9_.-]+$/.test(namespace)) throw new Error(`namespace ${JSON.stringify(namespace)}: use letters, digits, _ . -`);
    cfg.options = `${cfg.options ?? ""} -c durable.namespace=${namespace}`.trim();
  }
  if (applicationName !== undefined && cfg.application_name === undefined) cfg.application_name = applicationName;
  // an unreachable host must not hang the worker
  if (cfg.connectionTimeoutMillis === undefined) cfg.connectionTimeoutMillis = 10_000;
  return cfg;
}

/** The SQLSTATE of an error, if it has one. */
export function sqlstate(e: unknown): string | undefined {
  return e instanceof pg.DatabaseError ? e.code : undefined;
}

/**
 * Whether an error means the connection is gone (or none could be made):
 * reconnect and try again.  Errors the server answered with are not, except
 * connection failures (08xxx), shutdowns (57Pxx) and DU013 (the server runs
 * a newer library than the extension: retry later, protocol 11).
 */
export function isLost(e: unknown): boolean {
  if (e instanceof pg.DatabaseError) {
    const c = e.code ?? "";
    return c.startsWith("08") || c.startsWith("57P") || c === "DU013";
  }
  return e instanceof Error;
}

/** A lost connection in the middle of a transaction: its outcome is unknown. */
export class LostConnection extends Error {
  readonly code = "LOST";

  constructor(cause: unknown) {
    super(`connection lost: ${reason(cause)}`);
    this.name = "LostConnection";
  }
}

/** An error in one line, for the log. */
export function reason(e: unknown): string {
  if (e instanceof Error) {
    const code = sqlstate(e);
    const msg = (e.message || e.name).split("\n")[0];
    return code ? `${msg} (${code})` : msg;
  }
  return String(e);
}

/** A jsonb parameter: JSON text (protocol 2), SQL NULL for undefined. */
export function jsonParam(v: unknown): string | null {
  return v === undefined ? null : JSON.stringify(v);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The first reconnect is at once, then after 0.1 s, doubling up to 5 s (as the Python SDK). */
export const RETRY_FIRST_MS = 100;
export const RETRY_MAX_MS = 5000;

export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, message: string) => void;

const LEVELS: LogLevel[] = ["debug", "info", "warn", "error"];

/** Logs to stderr from `DURABLE_LOG` (default warn) up. */
export function defaultLogger(): Logger {
  const min = LEVELS.indexOf((process.env.DURABLE_LOG as LogLevel) ?? "warn");
  return (level, message) => {
    if (LEVELS.indexOf(level) >= (min < 0 ? 2 : min)) console.error(`durable ${level}: ${message}`);
  };
}
