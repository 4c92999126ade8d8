/**
 * The UI's only way into PostgreSQL: a small pool of connections made with
 * the operator's connection string, so every statement runs with that
 * role's rights.  Each request is one transaction (READ ONLY for pages) in
 * the namespace the page asks for (durable.namespace, set locally), with a
 * statement timeout so a slow query cannot pile up connections.
 */
import pg from "pg";

export function makePool(dsn) {
  // no connection string: node-postgres reads PGHOST, PGPORT, PGUSER,
  // PGDATABASE, PGPASSWORD, as psql would
  const pool = new pg.Pool({
    ...(dsn ? { connectionString: dsn } : {}),
    max: 4,
    idleTimeoutMillis: 30_000,
    application_name: "durable-ui",
  });
  // an idle connection that dies (server restart) is dropped by the pool;
  // without a listener its error would end the process
  pool.on("error", (e) => console.error(`durable-ui: an idle connection failed: ${e.message}`));
  return pool;
}

/** An error of the UI itself (not the engine's): a status and a message, no SQLSTATE. */
export class UIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The parts of a server error an operator needs, as psql shows them. */
export function pgError(e) {
  return {
    message: e.message,
    detail: e.detail || null,
    hint: e.hint || null,
    code: e.code || null,
    position: e.position || null,
  };
}

/** A PostgreSQL error (has a SQLSTATE) rather than a bug or a lost connection. */
export function isPgError(e) {
  return e instanceof pg.DatabaseError;
}

/** HTTP status for a SQLSTATE: the page shows the engine's text either way. */
export function httpStatus(code) {
  if (code === "42501" || code === "DU009") return 403;
  if (code === "DU005") return 404;
  if (code === "DU006" || code === "DU007" || code === "DU014") return 409;
  if (code === "DU001" || code === "DU002" || code === "DU008" || /^22/.test(code || "")) return 400;
  return 500;
}

/**
 * Run fn(tx) in one transaction in namespace ns.  tx.query(sql, params)
 * returns rows; tx.section(sql, params) returns {rows} or {error} and
 * keeps the transaction usable (a savepoint), so one panel the role may
 * not read (an admin view) shows its permission error and the rest of the
 * page still shows.
 */
export async function withTx(pool, { ns, readOnly }, fn) {
  const c = await pool.connect();
  let ok = false;
  try {
    await c.query(readOnly ? "BEGIN READ ONLY" : "BEGIN");
    await c.query("SELECT set_config('durable.namespace', $1, true), set_config('statement_timeout', '10s', true)",
      [ns || "default"]);
    const tx = {
      query: async (sql, params) => (await c.query(sql, params)).rows,
      section: async (sql, params) => {
        await c.query("SAVEPOINT section");
        try {
          const r = await c.query(sql, params);
          await c.query("RELEASE SAVEPOINT section");
          return { rows: r.rows };
        } catch (e) {
          if (!isPgError(e)) throw e;
          await c.query("ROLLBACK TO SAVEPOINT section");
          return { error: pgError(e) };
        }
      },
    };
    const result = await fn(tx);
    await c.query("COMMIT");
    ok = true;
    return result;
  } finally {
    let broken;
    if (!ok) {
      try {
        await c.query("ROLLBACK");
      } catch (e) {
        broken = e;   // a connection whose rollback failed is not handed out again
      }
    }
    c.release(broken);
  }
}
