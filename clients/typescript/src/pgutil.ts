/** node-postgres plumbing shared by the worker and the client. */
import pg from "pg";

/** A connection string, or node-postgres client settings. */
export type Connection = string | pg.ClientConfig;

/**
 * bigint (OID 20) columns as text whatever the process's global type parsers
 * say: tokens and run ids must come back exactly as the server sent them
 * (protocol 2); the other types keep the global parsers.
 */
const types = {
  getTypeParser(oid: number, format?: "text" | "binary"): any {
    return oid === 20 ? (v: unknown) => (Buffer.isBuffer(v) ? v.toString() : v) : pg.types.getTypeParser(oid, format);
  },
};

/**
 * A connection string's `options` parameter, taken out of it: node-postgres
 * lets the string's parameters replace the settings given beside it, so
 * `options` is merged by hand.
 */
function splitOptions(dsn: string): { dsn: string; options?: string } {
  const q = dsn.indexOf("?");
  if (q < 0) return { dsn };
  const params = new URLSearchParams(dsn.slice(q + 1));
  const options = params.get("options");
  if (options === null) return { dsn };
  params.delete("options");
  const rest = params.toString();
  return { dsn: dsn.slice(0, q) + (rest ? "?" + rest : ""), options };
}

/**
 * Client settings for `conn`, with the session's `durable.namespace` set at
 * connect time (a startup option, so that every pooled connection has it,
 * added to the `options` of the connection string or settings).
 */
export function clientConfig(conn: Connection, namespace?: string, applicationName?: string): pg.ClientConfig {
  let cfg: pg.ClientConfig;
  if (typeof conn === "string") {
    const { dsn, options } = splitOptions(conn);
    cfg = { connectionString: dsn, options };
  } else {
    cfg = { ...conn };
    if (cfg.connectionString !== undefined) {
      const { dsn, options } = splitOptions(cfg.connectionString);
      cfg.connectionString = dsn;
      cfg.options = [options, cfg.options].filter((o) => o).join(" ") || undefined;
    }
  }
  if (namespace !== undefined) {
    if (!/^[A-Za-z0-9_.-]+$/.test(namespace)) throw new Error(`namespace ${JSON.stringify(namespace)}: use letters, digits, _ . -`);
    cfg.options = `${cfg.options ?? ""} -c durable.namespace=${namespace}`.trim();
  }
  if (cfg.options === undefined) delete cfg.options;
  cfg.types = types;
  if (applicationName !== undefined && cfg.application_name === undefined) cfg.application_name = applicationName;
  // an unreachable host must not hang the worker
  if (cfg.connectionTimeoutMillis === undefined) cfg.connectionTimeoutMillis = 10_000;
  return cfg;
}

/**
 * A pool whose connections never end the process: a connection that breaks
 * while checked out emits 'error' on its client (the query in progress fails
 * too), idle ones on the pool; both go to `onError`.
 */
export function newPool(cfg: pg.ClientConfig, max: number, onError: (e: Error) => void): pg.Pool {
  const pool = new pg.Pool({ ...cfg, max });
  pool.on("error", onError);
  pool.on("connect", (c) => c.on("error", onError));
  return pool;
}

/** Queue names become NOTIFY channels (protocol 2). */
export function checkQueue(queue: string): string {
  if (!/^[A-Za-z0-9_.-]{1,54}$/.test(queue)) throw new Error(`queue ${JSON.stringify(queue)}: 1 to 54 letters, digits, _ . -`);
  return queue;
}

/** The SQLSTATE of an error, if it has one. */
export function sqlstate(e: unknown): string | undefined {
  return e instanceof pg.DatabaseError ? e.code : undefined;
}

/**
 * Whether an error means the connection is gone (or none could be made):
 * reconnect and try again.  Errors the server answered with are not, except
 * connection failures (08xxx), shutdowns (57Pxx) and DU013 (the server runs
 * a newer library than the extension: retry later, protocol 11).  Of the
 * others, only the driver's and the socket's: a bug (a TypeError …) is not.
 */
export function isLost(e: unknown): boolean {
  if (e instanceof pg.DatabaseError) {
    const c = e.code ?? "";
    return c.startsWith("08") || c.startsWith("57P") || c === "DU013";
  }
  if (e instanceof LostConnection) return true;
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  // system errors of the socket: ECONNREFUSED, ECONNRESET, EPIPE, ENOENT (no unix socket), ETIMEDOUT …
  if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return true;
  return /^Connection terminated|connection error|is not queryable|timeout exceeded when trying to connect|^Query read timeout/.test(e.message);
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
