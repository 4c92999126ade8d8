// Workflows: runs of the namespace that match a visibility query (wf_list),
// a keyset page at a time.  Paging follows each page's next_page_token;
// there is no total (that would count every run).
import { h, fill, href, statusBadge, time, json, table, errorBox, fmtDuration } from "../dom.js";

const SIZES = [10, 25, 50, 100, 200];
const EXAMPLES = [
  "ExecutionStatus = 'Running'",
  "ExecutionStatus = 'Failed'",
  "StartTime > '2026-01-01T00:00:00Z' ORDER BY StartTime ASC",
];

export function mount(main, { ns, params }) {
  const q = params.get("q") || "";
  const size = SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : 50;
  const page = params.get("page");

  const input = h("input", { id: "query", name: "q", type: "search", value: q, spellcheck: "false",
                             placeholder: "WorkflowType = 'order' AND ExecutionStatus = 'Running'",
                             "aria-label": "visibility query" });
  const sizeSel = h("select", { name: "size", "aria-label": "page size" },
    SIZES.map((s) => h("option", { value: s, selected: s === size || null }, `${s} per page`)));
  const form = h("form", { class: "query", method: "get", action: "/workflows" },
    ns !== "default" ? h("input", { type: "hidden", name: "ns", value: ns }) : null,
    input, sizeSel, h("button", { type: "submit", class: "primary" }, "Filter"),
    q ? h("a", { href: href("/workflows", { ns: ns === "default" ? null : ns }), class: "clear" }, "clear") : null);
  const examples = h("div", { class: "examples muted" }, "Visibility query, as wf_list: ",
    EXAMPLES.map((e) => h("a", { href: href("/workflows", { ns: ns === "default" ? null : ns, q: e, size }) }, h("code", {}, e))));
  const body = h("div", { id: "workflows" });
  fill(main, h("h1", {}, "Workflows"), form, examples, body);

  const nsParam = ns === "default" ? null : ns;
  return {
    url: () => href("/api/workflows", { ns, q, size, page }),
    render(data) {
      const cols = [
        { label: "Workflow ID", cell: (r) => h("a", { href: href("/workflow", { ns: nsParam, id: r.workflow_id, run: r.run_id }),
                                                       class: "wfid" }, r.workflow_id) },
        { label: "Status", cell: (r) => statusBadge(r.status) },
        { label: "Type", cell: (r) => r.workflow_type },
        { label: "Queue", cell: (r) => r.queue },
        { label: "Run", cls: "num", cell: (r) => r.run_id },
        { label: "Started", cell: (r) => time(r.created_at) },
        { label: "Closed", cell: (r) => time(r.closed_at) },
        { label: "Took", cls: "num", cell: (r) => (r.closed_at ? fmtDuration(new Date(r.closed_at) - new Date(r.created_at)) : "") },
        { label: "Search attributes", cell: (r) => attributes(r.search_attributes) },
      ];
      const pager = h("nav", { class: "pager", "aria-label": "pages" },
        page ? h("a", { href: href("/workflows", { ns: nsParam, q, size }), rel: "first" }, "« First page") : null,
        data.next ? h("a", { href: href("/workflows", { ns: nsParam, q, size, page: data.next }), rel: "next" }, "Next page »") : null,
        h("span", { class: "muted" }, `${data.rows.length} run${data.rows.length === 1 ? "" : "s"} on this page`));
      fill(body, table(cols, data.rows, { empty: "No runs match.", cls: "list" }), pager);
    },
    renderError(err) {
      fill(body, errorBox(err, "The list cannot be read:"));
    },
  };
}

function attributes(sa) {
  if (!sa || typeof sa !== "object" || Object.keys(sa).length === 0) return "";
  return h("span", { class: "attrs" }, Object.entries(sa).map(([k, v]) =>
    h("span", { class: "attr" }, h("span", { class: "attr-k" }, k), "=",
      typeof v === "string" ? v : JSON.stringify(v))));
}

export { attributes };
