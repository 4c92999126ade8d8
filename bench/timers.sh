#!/usr/bin/env bash
# bench/timers.sh: how late durable timers fire when many are due at once.
#
# Starts a throw-away cluster (durable preloaded, background worker on,
# default naptime), runs bench/timers.py against it, prints the results and
# stops the cluster.  See bench/timers.py for what is measured.
#
#   bench/timers.sh                 10,000 timers spread over 60 s, then
#                                   10,000 due at the same instant
#   N=2000 bench/timers.sh          fewer timers
#   SCENARIOS=spread bench/timers.sh
# Other knobs: SPREAD (60, seconds), PORT (5507), BENCH_DIR
# (/tmp/durable-bench-timers), KEEP=1 (leave the cluster running).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
PORT=${PORT:-5507}
DIR=${BENCH_DIR:-/tmp/durable-bench-timers}
KEEP=${KEEP:-0}
N=${N:-10000}
SPREAD=${SPREAD:-60}
SCENARIOS=${SCENARIOS:-spread,instant}

# a python3 that has psycopg (pyenv shims may hide the Debian package)
PY=
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import psycopg' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "bench/timers.sh: needs python3 with psycopg (apt-get install python3-psycopg)" >&2; exit 1; }

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
	# track_commit_timestamp: the commit time of the round that fired a
	# timer is when its workflow task became claimable
	as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<-EOF
		port = $PORT
		unix_socket_directories = '$DIR'
		listen_addresses = ''
		shared_preload_libraries = 'durable'
		track_commit_timestamp = on
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
echo "durable timers bench: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), cluster $DIR port $PORT" >&2
cluster_start
q postgres -c "CREATE DATABASE bench" >/dev/null
q bench -c "CREATE EXTENSION durable" >/dev/null

"$PY" "$HERE/timers.py" --dsn "host=$DIR port=$PORT user=postgres dbname=bench" \
	--n "$N" --spread "$SPREAD" --scenarios "$SCENARIOS"

if grep -q 'ERROR\|PANIC\|FATAL' "$DIR/server.log"; then
	echo "server log errors ($DIR/server.log):"
	grep -m10 'ERROR\|PANIC\|FATAL' "$DIR/server.log" | sed 's/^/    /'
fi
