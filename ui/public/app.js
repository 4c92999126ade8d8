// The UI's one script: reads the page from the URL, mounts it, and keeps it
// live by polling its JSON twice a second while the tab is visible (see
// ui/README.md for why polling rather than LISTEN).
import { h, fill, href, errorBox, setServerNow, tickTimes } from "./js/dom.js";
import { getJSON } from "./js/api.js";
import * as workflows from "./js/pages/workflows.js";
import * as run from "./js/pages/run.js";
import * as queues from "./js/pages/queues.js";
import * as schedules from "./js/pages/schedules.js";
import * as namespaces from "./js/pages/namespaces.js";

const POLL_MS = 500;
const PAGES = { "/workflows": workflows, "/workflow": run, "/queues": queues, "/schedules": schedules,
                "/namespaces": namespaces };

const params = new URLSearchParams(location.search);
const ns = params.get("ns") || "default";
const main = document.getElementById("main");
const liveDot = document.getElementById("live");

function header() {
  const input = document.getElementById("ns");
  input.value = ns;
  // keep the namespace across pages
  for (const a of document.querySelectorAll("#nav a, a.brand")) {
    a.href = href(a.getAttribute("href"), { ns: ns === "default" ? null : ns });
    if (a.dataset.page && `/${a.dataset.page}` === (location.pathname === "/workflow" ? "/workflows" : location.pathname)) {
      a.classList.add("current");
      a.setAttribute("aria-current", "page");
    }
  }
  document.getElementById("ns-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = input.value.trim() || "default";
    // a run belongs to its namespace: another namespace starts at its list
    const path = location.pathname === "/workflow" ? "/workflows" : location.pathname;
    location.href = href(path, { ns: v === "default" ? null : v });
  });
  input.addEventListener("change", () => document.getElementById("ns-form").requestSubmit());
  getJSON(href("/api/whoami", { ns })).then(({ data }) => {
    document.getElementById("whoami").textContent =
      `${data.role} @ ${data.database}${data.durable_version ? ` · durable ${data.durable_version}` : ""}`;
  }).catch(() => {});
  // the namespaces an admin may list, as suggestions
  getJSON(href("/api/namespaces", { ns })).then(({ data }) => {
    const list = document.getElementById("ns-list");
    for (const r of (data.namespaces && data.namespaces.rows) || []) list.append(h("option", { value: r.namespace }));
  }).catch(() => {});
}

/** Poll the page's JSON; draw it when it changed, or the error when it failed. */
function live(page) {
  let etag = null;
  let timer = null;
  let running = false;
  let lastError = null;
  async function tick() {
    clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      if (!document.hidden) {
        const r = await getJSON(page.url(), etag);
        liveDot.className = "live ok";
        if (r.changed) {
          etag = r.etag;
          lastError = null;
          setServerNow(r.data.now);
          page.render(r.data);
        }
      }
    } catch (e) {
      liveDot.className = "live bad";
      const text = JSON.stringify(e.err || e.message);
      if (text !== lastError) {   // the same error again: nothing to redraw
        lastError = text;
        etag = null;
        page.renderError(e.err || { message: `cannot reach the UI server: ${e.message}` }, e.status);
      }
    } finally {
      running = false;
      timer = setTimeout(tick, POLL_MS);
    }
  }
  document.addEventListener("visibilitychange", () => !document.hidden && tick());
  tick();
  return () => {   // after an action: draw its effect now
    etag = null;
    if (!running) tick();
  };
}

/** A note above the page that says what an action did. */
function flash(text) {
  let el = document.getElementById("flash");
  if (!el) {
    el = h("div", { id: "flash", class: "flash", role: "status" });
    main.prepend(el);
  }
  fill(el, text);
  el.hidden = false;
}

const page = PAGES[location.pathname];
header();
if (!page) {
  fill(main, errorBox({ message: `no page at ${location.pathname}` }));
} else {
  let refresh = () => {};
  const ctx = { ns, params, flash, refresh: () => refresh() };
  const mounted = page.mount(main, ctx);
  refresh = live(mounted);
  setInterval(tickTimes, 1000);
}
