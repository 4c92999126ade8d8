// Building the page from data without ever parsing data as HTML: every
// value becomes a text node or an attribute set through the DOM, never
// innerHTML.  Links are made here from a path and URLSearchParams only.

/** h("a", {href, class, onclick}, ...children): an element; strings become text nodes. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** Replace el's children (null and false are left out, unlike el.replaceChildren). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A same-site link: path plus query parameters (empty ones left out). */
export function href(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export const STATUS_LABELS = {
  running: "Running", completed: "Completed", failed: "Failed", cancelled: "Cancelled",
  terminated: "Terminated", timed_out: "Timed out", continued_as_new: "Continued as new",
  pending: "Pending",
};

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, STATUS_LABELS[status] || status);
}

export function badge(text, cls = "") {
  return h("span", { class: `badge ${cls}` }, text);
}

// --- times -----------------------------------------------------------------

// the server's clock minus the browser's, from each response's "now", so
// "5 s ago" is measured on the database's clock
let skew = 0;
export function setServerNow(iso) {
  if (iso) skew = new Date(iso).getTime() - Date.now();
}
const serverNow = () => Date.now() + skew;

const pad = (n, w = 2) => String(n).padStart(w, "0");
export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  const neg = ms < 0;
  let s = Math.abs(ms) / 1000;
  let out;
  if (s < 1) out = `${Math.round(s * 1000)} ms`;
  else if (s < 60) out = `${s.toFixed(s < 10 ? 1 : 0)} s`;
  else if (s < 3600) out = `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  else if (s < 86400) out = `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  else out = `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  return neg ? `-${out}` : out;
}

function relative(iso) {
  const ms = new Date(iso).getTime() - serverNow();
  if (Math.abs(ms) < 1000) return "now";
  return ms > 0 ? `in ${fmtDuration(ms)}` : `${fmtDuration(-ms)} ago`;
}

/** An absolute time (local) with its distance from now, kept current by tickTimes(). */
export function time(iso, { rel = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "–");
  const el = h("time", { datetime: iso, title: new Date(iso).toISOString() }, fmtTime(iso));
  if (!rel) return el;
  return h("span", { class: "when" }, el, " ", h("span", { class: "rel", "data-rel": iso }, `(${relative(iso)})`));
}

/** Only an age ("12 s ago", "in 5 min"), kept current. */
export function age(iso) {
  if (!iso) return h("span", { class: "muted" }, "–");
  return h("span", { class: "rel", "data-rel": iso, "data-bare": "1", title: new Date(iso).toISOString() }, relative(iso));
}

export function tickTimes() {
  for (const el of document.querySelectorAll("[data-rel]")) {
    const r = relative(el.dataset.rel);
    el.textContent = el.dataset.bare ? r : `(${r})`;
  }
}

// --- JSON ------------------------------------------------------------------

// which folded values the reader opened, so a live redraw keeps them open
const opened = new Set();

/** A JSON value: short ones inline, longer ones folded to one line, pretty-printed when opened. */
export function json(value, key) {
  if (value === undefined) return h("span", { class: "muted" }, "–");
  const flat = JSON.stringify(value);
  if (flat.length <= 60) return h("code", { class: "json-inline" }, flat);
  const d = h("details", { class: "json", "data-key": key || null },
    h("summary", {}, h("code", {}, flat.length > 100 ? `${flat.slice(0, 100)}…` : flat)),
    h("pre", {}, JSON.stringify(value, null, 2)));
  if (key && opened.has(key)) d.open = true;
  if (key) d.addEventListener("toggle", () => (d.open ? opened.add(key) : opened.delete(key)));
  return d;
}

// --- errors ----------------------------------------------------------------

/** The engine's error as psql shows it: message, detail, hint, SQLSTATE. */
export function errorBox(err, title) {
  const e = err || { message: "unknown error" };
  return h("div", { class: "error", role: "alert" },
    title ? h("div", { class: "error-title" }, title) : null,
    h("div", { class: "error-message" }, e.message),
    e.detail ? h("div", { class: "error-detail" }, h("b", {}, "Detail: "), e.detail) : null,
    e.hint ? h("div", { class: "error-hint" }, h("b", {}, "Hint: "), e.hint) : null,
    e.code ? h("div", { class: "error-code" }, h("b", {}, "SQLSTATE "), h("code", {}, e.code)) : null);
}

/** A table from column specs [{label, cell: row => node}] */
export function table(cols, rows, { empty = "none", cls = "" } = {}) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h("table", { class: cls },
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: c.cls || null }, c.label)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, cols.map((c) => h("td", { class: c.cls || null }, c.cell(r)))))));
}

/** A panel: its title, then its rows, or the error the engine gave for it. */
export function section(id, title, part, body) {
  return h("section", { id, class: "panel" }, h("h2", {}, title),
    part && part.error ? errorBox(part.error) : body());
}
