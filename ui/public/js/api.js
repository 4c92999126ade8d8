// The page's two ways to the server: GET of its JSON (with the ETag of the
// last answer, so an unchanged page costs a 304 and no redraw) and POST of
// an action.

export class ApiError extends Error {
  constructor(status, err) {
    super(err && err.message ? err.message : `HTTP ${status}`);
    this.status = status;
    this.err = err || { message: this.message };
  }
}

/** GET url; returns {changed: false} on 304, else {changed: true, data} or throws ApiError. */
export async function getJSON(url, etag) {
  const r = await fetch(url, { headers: etag ? { "If-None-Match": etag } : {}, cache: "no-store" });
  if (r.status === 304) return { changed: false, etag };
  let body;
  try {
    body = await r.json();
  } catch {
    throw new ApiError(r.status, { message: `HTTP ${r.status} ${r.statusText}` });
  }
  if (!r.ok) throw Object.assign(new ApiError(r.status, body.error), { etag: r.headers.get("ETag") });
  return { changed: true, data: body, etag: r.headers.get("ETag") };
}

/** POST an action ({op, args}) in namespace ns; returns its result or throws ApiError with the engine's error. */
export async function act(ns, op, args) {
  const r = await fetch("/api/action", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ns, op, args }),
    cache: "no-store",
  });
  let body;
  try {
    body = await r.json();
  } catch {
    throw new ApiError(r.status, { message: `HTTP ${r.status} ${r.statusText}` });
  }
  if (!r.ok) throw new ApiError(r.status, body.error);
  return body.result;
}
