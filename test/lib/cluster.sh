# test/lib/cluster.sh: start and stop throw-away PostgreSQL clusters as
# the postgres user (the server refuses to run as root).  Sourced by
# test/run and the demo; every cluster lives under $DURABLE_TMP.
PGBIN=${PGBIN:-$(pg_config --bindir)}
DURABLE_TMP=${DURABLE_TMP:-/tmp/durable-test}

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# cluster_start NAME PORT [extra postgresql.conf lines...]
cluster_start() {
	local name=$1 port=$2; shift 2
	local dir=$DURABLE_TMP/$name
	# a server still running on the old directory would, once it notices
	# its files gone, remove the new server's socket: stop it first
	cluster_stop "$name"
	rm -rf "$dir"; mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$DURABLE_TMP" "$dir"
	as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
	{
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		echo "listen_addresses = ''"
		for line in "$@"; do echo "$line"; done
	} | as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
}

cluster_stop() {
	local dir=$DURABLE_TMP/$1
	# a cluster left stopped is fine too (under set -e, a failing last
	# command of an && list would end the caller)
	if [ -d "$dir/data" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
}
