# bench/lib.sh: what the benchmarks share.  Source it after setting PORT,
# BENCH_DIR (the benchmark's own folder) and KEEP.  The cluster is made by
# test/lib/cluster.sh, the same code the tests use, in $BENCH_DIR/server:
# DIR is that folder (data/, the socket, the server log).
DURABLE_TMP=$BENCH_DIR
# shellcheck source=../test/lib/cluster.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/test/lib/cluster.sh"
DIR=$DURABLE_TMP/server
SERVER_LOG=$DIR/log

# a python3 that has psycopg (pyenv shims may hide the Debian package)
PY=
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import psycopg' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "$0: needs python3 with psycopg (apt-get install python3-psycopg)" >&2; exit 1; }

# bench_cluster_start [postgresql.conf lines...]: a fresh cluster that
# preloads durable, sized for benchmarks, fsync on
bench_cluster_start() {
	cluster_start server "$PORT" "shared_preload_libraries = 'durable'" \
		"max_connections = 40" "shared_buffers = 256MB" "fsync = on" \
		"max_wal_size = 4GB" "checkpoint_timeout = 30min" \
		"log_min_messages = warning" "log_checkpoints = off" "$@"
}

# bench_cleanup: the EXIT trap; KEEP=1 leaves the cluster running
bench_cleanup() {
	if [ "$KEEP" = 1 ]; then
		echo "cluster left running: psql -h $DIR -p $PORT -U postgres bench"
	else
		cluster_stop server
	fi
}

q() {	# q DB psql-args...: quiet, unaligned, stop on error
	local db=$1; shift
	"$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d "$db" "$@"
}

# server_log_errors: print the first errors of the server log, if any
server_log_errors() {
	if grep -q 'ERROR\|PANIC\|FATAL' "$SERVER_LOG"; then
		echo "server log errors ($SERVER_LOG):"
		grep -m10 'ERROR\|PANIC\|FATAL' "$SERVER_LOG" | sed 's/^/    /'
	fi
}

# bench_python WHAT SCRIPT [args...]: the scenario benchmarks written in
# Python: a fresh cluster with the extension in database postgres, then
# bench/SCRIPT --dsn ... args; the cluster stops at exit (unless KEEP=1)
bench_python() {
	local what=$1 script=$2; shift 2
	trap bench_cleanup EXIT
	echo "durable $what bench: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores, cluster $DIR port $PORT" >&2
	bench_cluster_start
	q postgres -c "CREATE EXTENSION durable" >/dev/null
	"$PY" "$(dirname "${BASH_SOURCE[0]}")/$script" --dsn "host=$DIR port=$PORT user=postgres dbname=postgres" "$@"
}

# fdiv A B [FORMAT]: A / B, or "-" when B is 0
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b + 0 == 0) print "-"; else printf f, a / b }'; }

# index_inserts FROM TO: index entries written between two WAL positions:
# the B-tree leaf and posting-list insert records (pg_waldump --stats),
# which is what every index insertion of a heap row version writes.  A
# commit with an xid first flushes the WAL past TO: pg_waldump reads the
# files, and a record still in the WAL buffers would end it with an error
index_inserts() {
	local stats tries
	for tries in 1 2 3; do
		q postgres -c "SELECT pg_current_xact_id()" >/dev/null
		if stats=$(as_pg "$PGBIN/pg_waldump" -p "$DIR/data/pg_wal" -s "$1" -e "$2" --stats=record 2>/dev/null); then
			awk '$1 ~ /^Btree\/(INSERT_LEAF|INSERT_POST)$/ { n += $2 } END { print n + 0 }' <<<"$stats"
			return
		fi
		sleep 1
	done
	echo "index_inserts: pg_waldump could not read $1..$2" >&2
	echo 0
}
