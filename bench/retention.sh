#!/usr/bin/env bash
# bench/retention.sh: does the retention purge keep the tables flat under
# sustained load?
#
# Starts a throw-away cluster (durable preloaded, background worker on,
# default naptime), creates namespace 'bench' with retention '1 minute',
# runs bench/retention.py (pgbench pushing one-step workflows through that
# namespace for DURATION seconds while the sizes of durable.runs, tasks,
# steps and events are sampled every 30 s), prints the results and stops
# the cluster.
#
#   bench/retention.sh                   9 minutes of load, then 90 s drain
#   DURATION=120 DRAIN=60 bench/retention.sh
# Other knobs: CLIENTS (6), BATCH (25 workflows per pgbench transaction),
# EVERY (30, seconds between samples), RETENTION ('1 minute'), PORT (5508),
# BENCH_DIR (/tmp/durable-bench-retention), KEEP=1 (leave the cluster running).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5508}
DIR=${BENCH_DIR:-/tmp/durable-bench-retention}
KEEP=${KEEP:-0}
DURATION=${DURATION:-540}
DRAIN=${DRAIN:-90}
CLIENTS=${CLIENTS:-6}
BATCH=${BATCH:-25}
EVERY=${EVERY:-30}
RETENTION=${RETENTION:-1 minute}

# a python3 that has psycopg (pyenv shims may hide the Debian package)
PY=
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import psycopg' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "bench/retention.sh: needs python3 with psycopg (apt-get install python3-psycopg)" >&2; exit 1; }

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_stop() {
	[ -f "$DIR/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1
	true
}

cleanup() {
	if [ "$KEEP" = 1 ]; then
		echo "cluster left running: psql -h $DIR -p $PORT -U postgres bench"
	else
		cluster_stop
	fi
}

cluster_start() {
	cluster_stop
	rm -rf "$DIR"; mkdir -p "$DIR"
	[ "$(id -u)" = 0 ] && chown postgres "$DIR"
	as_pg "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
	as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<-EOF
		port = $PORT
		unix_socket_directories = '$DIR'
		listen_addresses = ''
		shared_preload_libraries = 'durable'
		max_connections = 40
		shared_buffers = 256MB
		fsync = on
		synchronous_commit = on
		max_wal_size = 4GB
		checkpoint_timeout = 30min
		log_min_messages = warning
		log_checkpoints = off
	EOF
	as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
}

q() {
	local db=$1; shift
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d "$db" "$@"
}

trap cleanup EXIT
echo "durable retention bench: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), cluster $DIR port $PORT" >&2
cluster_start
q postgres -c "CREATE DATABASE bench" >/dev/null
q bench -c "CREATE EXTENSION durable" >/dev/null
q bench -c "SELECT durable.namespace_create('bench', '$RETENTION')" >/dev/null

"$PY" "$HERE/retention.py" --dsn "host=$DIR port=$PORT user=postgres dbname=bench" \
	--pgbench "$PGBIN/pgbench" --pghost "$DIR" --pgport "$PORT" --workdir "$DIR" \
	--duration "$DURATION" --drain "$DRAIN" --clients "$CLIENTS" --batch "$BATCH" --every "$EVERY"

if grep -q 'ERROR\|PANIC\|FATAL' "$DIR/server.log"; then
	echo "server log errors ($DIR/server.log):"
	grep -m10 'ERROR\|PANIC\|FATAL' "$DIR/server.log" | sed 's/^/    /'
fi
