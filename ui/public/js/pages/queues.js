// Queues (admin views queue_stats and task_list): ready and leased tasks,
// the oldest ready task's age, the workers seen holding leases, pause and
// limits; pause and unpause.
import { h, fill, href, badge, age, json, table, errorBox } from "../dom.js";
import { act } from "../api.js";
import { confirmAction } from "../dialog.js";

export function mount(main, { ns, flash, refresh }) {
  const body = h("div", { id: "queues" });
  fill(main, h("h1", {}, "Queues"),
    h("p", { class: "muted" }, "Every namespace's queues that have tasks or settings. Workers are those seen holding a lease (durable keeps no list of idle workers)."),
    body);

  const toggle = (q, op) => confirmAction({
    title: `${op === "queue_pause" ? "Pause" : "Unpause"} queue ${q.queue}`,
    text: op === "queue_pause"
      ? `Stop handing out the tasks of queue ${q.queue} in namespace ${q.namespace}; work still queues up.`
      : `Resume handing out the tasks of queue ${q.queue} in namespace ${q.namespace} and wake its workers.`,
    fields: [{ name: "note", label: "Note (optional)" }],
    confirm: op === "queue_pause" ? "Pause queue" : "Unpause queue",
    danger: op === "queue_pause",
    submit: (v) => act(q.namespace, op, { queue: q.queue, ...v }),
  }).then((out) => {
    if (out) {
      flash(`Queue ${q.queue} ${op === "queue_pause" ? "paused" : "unpaused"}.`);
      refresh();
    }
  });

  return {
    url: () => href("/api/queues", { ns }),
    render(d) {
      fill(body, table([
        { label: "Namespace", cell: (q) => q.namespace },
        { label: "Queue", cell: (q) => h("span", { class: "qname" }, q.queue) },
        { label: "State", cell: (q) => (q.paused ? [badge("Paused", "paused"), q.note ? h("div", { class: "muted note" }, q.note) : null] : badge("Active", "ok")) },
        { label: "Ready", cls: "num", cell: (q) => q.ready },
        { label: "Leased", cls: "num", cell: (q) => q.leased },
        // ready counts tasks waiting for a retry or a start delay too: their
        // time is still to come
        { label: "Oldest ready", cell: (q) => (!q.oldest_ready ? ""
          : new Date(q.oldest_ready) > new Date(d.now) ? h("span", { class: "muted" }, "next due ", age(q.oldest_ready))
            : age(q.oldest_ready)) },
        { label: "Workers seen", cell: (q) => workers(q.workers) },
        { label: "Limits", cell: (q) => limits(q) },
        { label: "", cell: (q) => q.paused
          ? h("button", { type: "button", class: "secondary", onclick: () => toggle(q, "queue_unpause") }, "Unpause")
          : h("button", { type: "button", class: "danger", onclick: () => toggle(q, "queue_pause") }, "Pause") },
      ], d.rows, { empty: "No queue has tasks or settings yet.", cls: "list" }));
    },
    renderError(err) {
      fill(body, errorBox(err, "Queues cannot be read:"));
    },
  };
}

function workers(list) {
  if (!list.length) return h("span", { class: "muted" }, "none seen");
  return h("ul", { class: "workers" }, list.map((w) => h("li", {},
    h("span", { class: "worker" }, w.worker), " ",
    w.leased ? h("span", { class: "muted" }, `${w.leased} leased`) : h("span", { class: "muted" }, ["last seen ", age(w.last_seen)]))));
}

function limits(q) {
  const parts = [];
  if (q.max_concurrency !== null) parts.push(`at most ${q.max_concurrency} leased`);
  if (q.max_rate !== null) parts.push(`${q.max_rate}/s (burst ${q.rate_burst})`);
  if (q.key_concurrency !== null) parts.push(`${q.key_concurrency} per key, ${q.key_on_limit} at the limit`);
  if (q.key_concurrency_overrides) parts.push(["key overrides ", json(q.key_concurrency_overrides)]);
  if (q.key_rate !== null) parts.push(`${q.key_rate}/s per key (burst ${q.key_rate_burst})`);
  if (q.aging_every !== null) parts.push(`priority +1 every ${q.aging_every} up to ${q.aging_up_to}`);
  if (!parts.length) return h("span", { class: "muted" }, "none");
  return h("ul", { class: "limits" }, parts.map((p) => h("li", {}, p)));
}

