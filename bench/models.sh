#!/bin/bash
# bench/models.sh: the ceiling experiment of issue 10.  Plain-SQL models of
# the rows a one-step workflow writes (start, claim, complete: 3 commits),
# run side by side with the bare SKIP LOCKED queue and with durable itself,
# interleaved in the same rounds, on one throw-away cluster (fsync on):
#   today   durable's run row + task row with today's indexes
#   lean    the same two rows with the fewest indexes (HOT close)
#   onerow  the run row is its own workflow task (5 index entries)
# A model runs no engine code, so it bounds what a data model can reach:
# if even a model falls short of a target, the target needs more than
# that data model.  Prints jobs/s, the median ratio to the bare queue of
# the same round, WAL bytes and B-tree insertions per job.
#
# BATCH=1 runs the same models batched by 100 instead (start, claim and
# complete 100 per statement; bare100 is (a100) and durable100 is (c100)
# of bench/run).
#
# IFACE=1 measures the ceiling of a function interface instead: the bare
# queue and the one-row model, each as plain statements and behind
# PL/pgSQL functions with kept plans (one call per commit, as durable's
# API is), beside durable's (b) and (d):
#   baref     the bare queue behind functions ((f) of bench/run)
#   onerowf   the one-row model behind functions, 3 calls and 3 commits
#   onerowlf  the same with an index of lease ends (m_onerowl), which the
#             one-row model leaves out and lease expiry needs
#   onerowfd, onerowlfd  the same two, finish-and-claim: 2 calls, 2 commits
#   durabled  durable's finish-and-claim ((d) of bench/run)
#
# FEATURES=1 measures the one-row design carrying durable's own work
# (m_onerowx: durable.runs with its indexes plus the workflow task's
# columns, a claim index and a lease index; functions whose statements do
# what durable's do, see schema.sql) beside durable, for (b), (d) and (s3):
#   onerowf   the minimal one-row model behind functions (as in IFACE=1)
#   onerowxmf m_onerowx's table and indexes with onerowf's statements
#   onerowxf, onerowxfd, onerowxs3  the model's one-step, finish-and-claim
#             and three-local-step workflows
#   durable, durabled, durables3    durable's (b), (d) and (s3)
#
# Settings: ROUNDS (5), SECS (5), CLIENTS (8), BATCH (0), IFACE (0), FEATURES (0), PORT (5506),
# BENCH_DIR (/tmp/durable-models), KEEP=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-5}; SECS=${SECS:-5}; CLIENTS=${CLIENTS:-8}; BATCH=${BATCH:-0}; IFACE=${IFACE:-0}; FEATURES=${FEATURES:-0}
PORT=${PORT:-5506}; BENCH_DIR=${BENCH_DIR:-/tmp/durable-models}; KEEP=${KEEP:-0}
PGBIN=${PGBIN:-$(pg_config --bindir)}
. "$HERE/lib.sh"
trap bench_cleanup EXIT

echo "durable models bench: $(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) cores, $CLIENTS clients, $ROUNDS rounds x ${SECS}s" >&2
bench_cluster_start "durable.databases = 'bench'"
q postgres -c "CREATE DATABASE bench" >/dev/null
q bench -f "$HERE/sql/setup.sql" >/dev/null
q bench -f "$HERE/sql/models/schema.sql" >/dev/null 2>&1

# done_jobs POINT: workflows (jobs) completed by the point just run
done_jobs() {
	case $1 in
	bare*) q bench -c "SELECT (SELECT last_value FROM jobs_id_seq) - (SELECT count(*) FROM jobs)" ;;
	durable*) q bench -c "SELECT count(*) FROM durable.runs WHERE status = 'completed'" ;;
	today*) q bench -c "SELECT count(*) FROM m_today_runs WHERE status = 'completed'" ;;
	lean*) q bench -c "SELECT count(*) FROM m_lean_runs WHERE status = 'completed'" ;;
	onerowl*) q bench -c "SELECT count(*) FROM m_onerowl WHERE status = 'completed'" ;;
	onerowx*) q bench -c "SELECT count(*) FROM m_onerowx WHERE status = 'completed'" ;;
	onerow*) q bench -c "SELECT count(*) FROM m_onerow WHERE status = 'completed'" ;;
	esac
}

script_of() {
	case $1 in
	bare) echo "$HERE/sql/a_bare_queue.sql" ;;
	durable) echo "$HERE/sql/b_durable_one.sql" ;;
	bare100) echo "$HERE/sql/a100_bare_batch.sql" ;;
	baref) echo "$HERE/sql/f_bare_functions.sql" ;;
	durabled) echo "$HERE/sql/d_durable_chain.sql" ;;
	durables3) echo "$HERE/sql/s3_durable_three_steps.sql" ;;
	durable100) echo "$HERE/sql/c100_durable_batch.sql" ;;
	*) echo "$HERE/sql/models/m_$1.sql" ;;
	esac
}

POINTS="bare durable today lean onerow"
WHAT="one-step workflow (3 commits)"
if [ "$BATCH" = 1 ]; then
	POINTS="bare100 durable100 today100 onerow100"
	WHAT="one-step workflows batched by 100 (3 commits per 100)"
elif [ "$IFACE" = 1 ]; then
	POINTS="bare baref durable onerowf onerowlf durabled onerowfd onerowlfd"
	WHAT="one-step workflow, plain statements and function calls (3 commits; d: 2)"
elif [ "$FEATURES" = 1 ]; then
	POINTS="bare durable onerowf onerowxmf onerowxf durabled onerowxfd durables3 onerowxs3"
	WHAT="one row with durable's work beside durable: (b), (d) and (s3) (3 commits; d: 2)"
fi
declare -A RATE RATIO WAL IDX
for r in $(seq 1 "$ROUNDS"); do
	for p in $POINTS; do
		q bench -c "TRUNCATE jobs RESTART IDENTITY" \
			-c "TRUNCATE durable.runs, durable.tasks, durable.steps, durable.events" \
			-c "TRUNCATE m_today_runs, m_today_tasks, m_lean_runs, m_lean_tasks, m_onerow, m_onerowl, m_onerowx, m_onerowx_steps" \
			-c "CHECKPOINT" >/dev/null
		w0=$(q bench -c "SELECT pg_current_wal_insert_lsn()")
		"$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -n -M prepared -j 2 -D prev=0 \
			-c "$CLIENTS" -T "$SECS" -f "$(script_of "$p")" bench >"$BENCH_DIR/$p.log" 2>&1 ||
			{ echo "pgbench failed for $p, see $BENCH_DIR/$p.log" >&2; exit 1; }
		w1=$(q bench -c "SELECT pg_current_wal_insert_lsn()")
		n=$(done_jobs "$p")
		[ "$n" -gt 0 ] || { echo "$p completed nothing, see $BENCH_DIR/$p.log" >&2; exit 1; }
		wal=$(q bench -c "SELECT pg_wal_lsn_diff('$w1', '$w0')")
		idx=$(index_inserts "$w0" "$w1")
		RATE[$p]="${RATE[$p]:-} $(fdiv "$n" "$SECS" %.0f)"
		WAL[$p]="${WAL[$p]:-} $(fdiv "$wal" "$n" %.0f)"
		IDX[$p]="${IDX[$p]:-} $(fdiv "$idx" "$n" %.1f)"
		[ "${p%100}" = bare ] && bare_rate=$(fdiv "$n" "$SECS" %.0f)
		[ "${p%100}" != bare ] && RATIO[$p]="${RATIO[$p]:-} $(fdiv "$(fdiv "$n" "$SECS" %.2f)" "$bare_rate")"
		echo "  round $r $p: $(fdiv "$n" "$SECS" %.0f) jobs/s" >&2
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo
echo "$WHAT, $CLIENTS clients, median of $ROUNDS rounds; ratio = jobs/s / bare queue's jobs/s of the same round"
printf "%-9s %9s %16s %22s %9s %11s\n" point "jobs/s" "ratio (median)" "ratios per round" "WAL B/job" "idx/job"
for p in $POINTS; do
	if [ "${p%100}" = bare ]; then rat="1.00 (baseline)"; per="-"; else rat=$(median <<<"${RATIO[$p]}"); per=$(echo ${RATIO[$p]} | tr ' ' ','); fi
	printf "%-9s %9s %16s %22s %9s %11s\n" "$p" "$(median <<<"${RATE[$p]}")" "$rat" "$per" \
		"$(median <<<"${WAL[$p]}")" "$(median <<<"${IDX[$p]}")"
done
server_log_errors
