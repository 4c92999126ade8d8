/**
 * Workers seen per queue.  durable keeps no registry of workers: a worker
 * shows only in the tasks it holds (durable.task_list.worker while
 * leased).  So the queues page lists the workers holding leases now and,
 * from this server's earlier reads, those seen holding one within the last
 * WINDOW_MS, with when; the memory is this process's, lost on restart.
 */
const WINDOW_MS = 15 * 60 * 1000;

export class WorkersSeen {
  constructor() {
    this.last = new Map();   // "namespace\0queue" -> Map(worker -> {at: Date, tasks: int})
  }

  /** Record the lease holders of one read (rows: namespace, queue, worker, tasks) at time now. */
  note(rows, now) {
    const current = new Set();
    for (const r of rows) {
      const key = `${r.namespace}\0${r.queue}`;
      if (!this.last.has(key)) this.last.set(key, new Map());
      this.last.get(key).set(r.worker, { at: now, tasks: Number(r.tasks) });
      current.add(`${key}\0${r.worker}`);
    }
    // a worker not holding a lease any more holds none now
    for (const [key, workers] of this.last) {
      for (const [w, info] of workers) {
        if (!current.has(`${key}\0${w}`)) info.tasks = 0;
        if (now - info.at > WINDOW_MS) workers.delete(w);
      }
      if (workers.size === 0) this.last.delete(key);
    }
  }

  /** [{worker, leased, last_seen}] of a queue, lease holders first. */
  get(namespace, queue) {
    const workers = this.last.get(`${namespace}\0${queue}`);
    if (!workers) return [];
    return [...workers].map(([worker, i]) => ({ worker, leased: i.tasks, last_seen: i.at }))
      .sort((a, b) => b.leased - a.leased || b.last_seen - a.last_seen || a.worker.localeCompare(b.worker));
  }
}
