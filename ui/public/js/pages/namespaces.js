// Namespaces (the table grant_admin lets an admin read) with their
// retention, and the search attributes declared in each.
import { h, fill, href, time, table, section, errorBox } from "../dom.js";

export function mount(main, { ns }) {
  const body = h("div", { id: "namespaces" });
  fill(main, h("h1", {}, "Namespaces"), body);
  return {
    url: () => href("/api/namespaces", { ns }),
    render(d) {
      const attrs = (d.attributes.rows || []);
      fill(body,
        section("namespace-list", "Namespaces", d.namespaces, () => table([
          { label: "Namespace", cell: (n) => h("a", { href: href("/workflows", { ns: n.namespace === "default" ? null : n.namespace }) }, n.namespace) },
          { label: "Retention of closed runs", cell: (n) => n.retention },
          { label: "Search attributes", cell: (n) => attrs.filter((a) => a.namespace === n.namespace).map((a) => h("span", { class: "attr" }, `${a.name}: ${a.type}`)) },
          { label: "Created", cell: (n) => time(n.created_at) },
        ], d.namespaces.rows, { cls: "list" })),
        section("attribute-list", "Declared search attributes", d.attributes, () => table([
          { label: "Namespace", cell: (a) => a.namespace },
          { label: "Name", cell: (a) => a.name },
          { label: "Type", cell: (a) => a.type },
          { label: "Declared", cell: (a) => time(a.created_at) },
        ], attrs, { empty: "None declared (undeclared attributes are compared as JSON)." })));
    },
    renderError(err) {
      fill(body, errorBox(err, "Namespaces cannot be read:"));
    },
  };
}
