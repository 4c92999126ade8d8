#!/usr/bin/env node
/**
 * durable-ui: the web UI of the durable extension.
 *
 *   node ui/server.js [--dsn postgresql://...] [--host 127.0.0.1] [--port 8233]
 *
 * One HTTP server (node:http) that serves the pages (static ES modules,
 * no build step), their JSON (each request one transaction with the
 * operator's role) and /metrics.  See ui/README.md.
 */
import http from "node:http";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makePool, pgError, isPgError, httpStatus, UIError } from "./lib/db.js";
import * as api from "./lib/api.js";
import { WorkersSeen } from "./lib/seen.js";
import { formatMetrics, CONTENT_TYPE as METRICS_TYPE } from "./lib/metrics.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAX_BODY = 1024 * 1024;          // an action's JSON; signal payloads fit (the engine caps them too)
const PAGE_SIZES = [10, 25, 50, 100, 200];

const CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
  "connect-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join("; ");

// pages are one HTML file: the module it loads reads the path
const PAGES = new Set(["/workflows", "/workflow", "/queues", "/schedules", "/namespaces"]);
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml" };

/** Every file of public/, read once: a request can only name one of these (no path from the URL touches the disk). */
function loadStatic() {
  const files = new Map();
  const walk = (dir, prefix) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full, `${prefix}${e.name}/`);
      else if (TYPES[path.extname(e.name)]) {
        const body = fs.readFileSync(full);
        files.set(`/static/${prefix}${e.name}`, {
          body, type: TYPES[path.extname(e.name)],
          etag: `"${crypto.createHash("sha1").update(body).digest("base64url")}"`,
        });
      }
    }
  };
  walk(path.join(HERE, "public"), "");
  return files;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
export const isLoopback = (host) => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

function safeEqual(a, b) {
  const ha = crypto.createHash("sha256").update(a).digest();
  const hb = crypto.createHash("sha256").update(b).digest();
  return crypto.timingSafeEqual(ha, hb);
}

export function createServer({ dsn, host, port, auth }) {
  const pool = makePool(dsn);
  const files = loadStatic();
  const seen = new WorkersSeen();
  const expected = auth ? `Basic ${Buffer.from(auth).toString("base64")}` : null;
  const loopbackOnly = isLoopback(host);

  function headers(res, extra = {}) {
    res.setHeader("Content-Security-Policy", CSP);
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  }

  function send(res, status, body, type, extra) {
    headers(res, { "Content-Type": type, "Cache-Control": "no-store", ...extra });
    res.writeHead(status);
    res.end(body);
  }

  /** JSON with an ETag: the page's poll gets 304 while nothing changed, and redraws nothing. */
  function sendJSON(req, res, status, obj) {
    const body = JSON.stringify(obj);
    const etag = `"${crypto.createHash("sha1").update(body).digest("base64url")}"`;
    if (status === 200 && req.headers["if-none-match"] === etag) return send(res, 304, "", "application/json", { ETag: etag });
    send(res, status, body, "application/json; charset=utf-8", { ETag: etag });
  }

  function sendError(req, res, e) {
    if (isPgError(e)) return sendJSON(req, res, httpStatus(e.code), { error: pgError(e) });
    if (e instanceof UIError) return sendJSON(req, res, e.status, { error: { message: e.message } });
    // no server: say so (the operator's connection string is theirs to fix)
    if (e && (e.code === "ECONNREFUSED" || e.code === "ENOENT" || e.code === "ETIMEDOUT")) {
      return sendJSON(req, res, 503, { error: { message: `cannot connect to PostgreSQL: ${e.message}` } });
    }
    console.error(e);
    sendJSON(req, res, 500, { error: { message: `internal error: ${e && e.message}` } });
  }

  /** Basic auth when configured (required beyond localhost): the pages, the API and /metrics alike. */
  function authorized(req) {
    if (!expected) return true;
    return safeEqual(req.headers.authorization || "", expected);
  }

  /**
   * Without auth the server listens on loopback only; a page of another
   * site could still reach it through DNS rebinding (its own name resolving
   * to 127.0.0.1), so the Host must be a loopback name too.
   */
  function hostAllowed(req) {
    if (!loopbackOnly || expected) return true;
    let h;
    try {
      h = new URL(`http://${req.headers.host}`).hostname.replace(/^\[|\]$/g, "");
    } catch {
      return false;
    }
    return isLoopback(h);
  }

  /** A POST comes from this UI's own pages: same origin, JSON, not a form another site could submit. */
  function sameOrigin(req) {
    const origin = req.headers.origin;
    if (!origin) return false;
    let o;
    try {
      o = new URL(origin);
    } catch {
      return false;
    }
    if (o.host !== req.headers.host) return false;
    const site = req.headers["sec-fetch-site"];
    if (site && site !== "same-origin") return false;
    return /^application\/json\b/.test(req.headers["content-type"] || "");
  }

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers["content-length"] || 0);
      if (declared > MAX_BODY) return reject(new UIError(413, `request body over ${MAX_BODY} bytes`));
      const chunks = [];
      let size = 0;
      req.on("data", (c) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new UIError(413, `request body over ${MAX_BODY} bytes`));
          req.destroy();
        } else chunks.push(c);
      });
      req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      req.on("error", reject);
    });
  }

  const nsOf = (url) => url.searchParams.get("ns") || "default";

  async function route(req, res) {
    const url = new URL(req.url, "http://ui.invalid");
    const p = url.pathname;
    if (!hostAllowed(req)) return send(res, 421, "unexpected Host header\n", "text/plain; charset=utf-8");
    if (!authorized(req)) {
      return send(res, 401, "authentication required\n", "text/plain; charset=utf-8",
        { "WWW-Authenticate": 'Basic realm="durable", charset="UTF-8"' });
    }
    if (req.method === "POST") {
      if (p !== "/api/action") return send(res, 404, "not found\n", "text/plain; charset=utf-8");
      if (!sameOrigin(req)) return sendJSON(req, res, 403, { error: { message: "cross-site request refused" } });
      const body = await readBody(req);
      let msg;
      try {
        msg = JSON.parse(body);
      } catch {
        throw new UIError(400, "the request body is not JSON");
      }
      if (!msg || typeof msg !== "object") throw new UIError(400, "the request body is not a JSON object");
      return sendJSON(req, res, 200, await api.action(pool, { ns: msg.ns || "default", op: msg.op, args: msg.args }));
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(res, 405, "method not allowed\n", "text/plain; charset=utf-8", { Allow: "GET, HEAD, POST" });
    }
    if (p === "/") return send(res, 302, "", "text/plain", { Location: "/workflows" });
    if (PAGES.has(p)) {
      const f = files.get("/static/index.html");
      return send(res, 200, f.body, f.type);
    }
    if (files.has(p)) {
      const f = files.get(p);
      if (req.headers["if-none-match"] === f.etag) return send(res, 304, "", f.type, { ETag: f.etag });
      headers(res, { "Content-Type": f.type, ETag: f.etag, "Cache-Control": "no-cache" });
      res.writeHead(200);
      return res.end(f.body);
    }
    if (p === "/metrics") {
      const rows = await api.metricRows(pool);
      return send(res, 200, formatMetrics(rows), METRICS_TYPE);
    }
    const ns = nsOf(url);
    switch (p) {
      case "/api/whoami":
        return sendJSON(req, res, 200, await api.whoami(pool, { ns }));
      case "/api/workflows": {
        const size = Number(url.searchParams.get("size")) || 50;
        if (!PAGE_SIZES.includes(size)) throw new UIError(400, `page size must be one of ${PAGE_SIZES.join(", ")}`);
        return sendJSON(req, res, 200, await api.workflows(pool,
          { ns, q: url.searchParams.get("q") || "", page: url.searchParams.get("page"), size }));
      }
      case "/api/run": {
        const runId = url.searchParams.get("run");
        if (runId && !/^\d{1,19}$/.test(runId)) throw new UIError(400, "run must be a run id (a whole number)");
        return sendJSON(req, res, 200, await api.run(pool, { ns, id: url.searchParams.get("id"), runId }));
      }
      case "/api/queues":
        return sendJSON(req, res, 200, await api.queues(pool, { ns }, seen));
      case "/api/schedules":
        return sendJSON(req, res, 200, await api.schedules(pool, { ns }));
      case "/api/namespaces":
        return sendJSON(req, res, 200, await api.namespaces(pool, { ns }));
      default:
        return send(res, 404, "not found\n", "text/plain; charset=utf-8");
    }
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch((e) => {
      if (res.headersSent) return res.destroy();
      sendError(req, res, e);
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.on("close", () => pool.end().catch(() => {}));
  return server;
}

function usage(msg) {
  if (msg) console.error(`durable-ui: ${msg}`);
  console.error(`usage: node ui/server.js [--dsn CONNINFO] [--host ADDR] [--port N]

  --dsn   PostgreSQL connection string of the operator's role (env DURABLE_UI_DSN;
          default: the PG* environment variables, as psql)
  --host  address to listen on (env DURABLE_UI_HOST; default 127.0.0.1)
  --port  port (env DURABLE_UI_PORT; default 8233; 0 picks a free one)

  DURABLE_UI_AUTH=user:password turns on basic auth (pages, API and /metrics);
  it is required when --host is not a loopback address.`);
  process.exit(2);
}

function main() {
  let opts;
  try {
    opts = parseArgs({ options: { dsn: { type: "string" }, host: { type: "string" }, port: { type: "string" },
                                  help: { type: "boolean", short: "h" } } }).values;
  } catch (e) {
    usage(e.message);
  }
  if (opts.help) usage();
  const env = process.env;
  const host = opts.host || env.DURABLE_UI_HOST || "127.0.0.1";
  const port = Number(opts.port ?? env.DURABLE_UI_PORT ?? 8233);
  const auth = env.DURABLE_UI_AUTH || null;
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`invalid port ${opts.port ?? env.DURABLE_UI_PORT}`);
  if (auth !== null && !/^[^:]+:.+$/.test(auth)) usage("DURABLE_UI_AUTH must be user:password");
  if (!isLoopback(host) && !auth) {
    console.error(`durable-ui: refusing to listen on ${host} without authentication: ` +
      "set DURABLE_UI_AUTH=user:password (or listen on 127.0.0.1)");
    process.exit(2);
  }
  const server = createServer({ dsn: opts.dsn || env.DURABLE_UI_DSN || null, host, port, auth });
  server.on("error", (e) => {
    console.error(`durable-ui: cannot listen on ${host}:${port}: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => {
    const a = server.address();
    const shown = a.family === "IPv6" ? `[${a.address}]` : a.address;
    console.log(`durable-ui listening on http://${shown}:${a.port}/${auth ? " (basic auth)" : ""}`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();   // pages keep connections open between polls
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) main();
