#!/usr/bin/env bash
# No-op command throughput end to end through a real broker with publisher
# confirms: BENCH_WORKER_N (5000) DeleteSnapshot commands of absent objects,
# published by `snapctl submit --count`, each consumed, run, answered (event
# + reply_to, confirmed) and acked; timed until every final event has
# arrived.  One worker with `jobs = 1`, then the same worker with `jobs = 4`
# (four slots, each its own connection and consumer), BENCH_RUNS (3) runs of
# each, interleaved; medians with the spread (bench/lib.sh).  Prints
# markdown rows; never asserts.
#
# The broker's quorum queue syncs its log for every publish and ack, so more
# slots only help while the broker keeps up.  Each run therefore also records
# the broker's CPU (utime + stime of its beam process, /proc/PID/stat), the
# machine's (/proc/stat) and the flushes the broker's disk completed
# (/sys/block/DEV/stat, the whole device: other processes' syncs count too).
# A row says whether the jobs = 4 runs were bound by the broker: the machine
# busy (>= 90% of every CPU) with the broker taking the largest share, or the
# broker alone at >= 90% of one CPU (the machine figure counts every process on
# it: on a shared machine, read it with the broker and worker shares).  Broker data on disk (/tmp, as in
# production), then on tmpfs (/dev/shm) to take the disk out.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
N=${BENCH_WORKER_N:-5000}
tmp=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/swbench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	"$here/tests/rig/rabbitmq.sh" stop "$tmp/broker" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

"$here/tests/rig/rabbitmq.sh" start "$tmp/broker" >"$tmp/broker.log" 2>&1 || { cat "$tmp/broker.log"; exit 1; }
# shellcheck disable=SC1090
. "$tmp/broker/rabbitmq.env"
beam=$(cat "$tmp/broker/rabbitmq.pid")
ncpu=$(nproc)
hz=100 # USER_HZ: the unit of /proc/PID/stat times on Linux
# The block device under the broker's data (its stat file), if any.
dev=$(df -P "$tmp" | awk 'NR == 2 { print $1 }')
dev=$(basename "$dev")
statf=""
for d in "$dev" "$(echo "$dev" | sed -E 's/p?[0-9]+$//')"; do
	[ -n "$d" ] && [ -r "/sys/block/$d/stat" ] && { statf=/sys/block/$d/stat; break; }
done
flushes() { if [ -n "$statf" ]; then awk '{ print ($16 == "" ? 0 : $16) }' "$statf"; else echo 0; fi; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }

mkdir -p "$tmp/store"
conf() {
	cat >"$tmp/w.conf" <<CONF
[worker]
jobs = $1
log_level = warn
[amqp]
url = $AMQP_URL
password_file = $AMQP_PASSWORD_FILE
[store]
nfs://10.0.0.5/export/secondary = $tmp/store
CONF
}
printf '{"version":1,"id":"00000000-0000-4000-8000-000000000000","type":"DeleteSnapshot","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"path":"snapshots/1/2/absent/absent"}}' >"$tmp/cmd.json"

# run_with JOBS: one worker of JOBS slots, N commands; prints
# "RATE BROKER_CPU% WORKER_CPU% MACHINE_BUSY% FLUSHES_PER_S".
run_with() {
	local k=$1 i out rate w t0 b0 f0 m0 wt secs
	conf "$k"
	"$build/bin/snapworker" run -c "$tmp/w.conf" 2>>"$tmp/worker.log" &
	w=$!
	pids+=("$w")
	for i in $(seq 100); do
		"$build/bin/snapctl" -c "$tmp/w.conf" status 2>/dev/null |
		    grep -q "^snapworker.commands.default .* $k\$" && break
		sleep 0.1
	done
	b0=$(ticks "$beam"); wt=$(ticks "$w"); f0=$(flushes); m0=$(busy); t0=$(now)
	out=$("$build/bin/snapctl" -c "$tmp/w.conf" submit --wait --timeout 300 --count "$N" "$tmp/cmd.json" 2>>"$tmp/snapctl.log")
	secs=$(elapsed "$t0")
	echo "jobs = $k: $out" >&2
	rate=$(echo "$out" | sed -nE 's/.* ([0-9.]+) commands\/s$/\1/p')
	awk -v b="$(($(ticks "$beam") - b0))" -v w="$(($(ticks "$w") - wt))" -v f="$(($(flushes) - f0))" \
	    -v m0="$m0" -v m1="$(busy)" -v s="$secs" -v hz="$hz" -v n="$ncpu" -v r="${rate:-0}" 'BEGIN {
		na = split(m0, a, " "); nc = split(m1, c, " ")
		tot = c[2] - a[2]; mb = tot > 0 ? 100 * (c[1] - a[1]) / tot : 0
		printf "%s %.0f %.0f %.0f %.0f\n", r, 100 * b / hz / s, 100 * w / hz / s, mb, f / s }'
	kill -TERM "$w" 2>/dev/null
	wait "$w" 2>/dev/null
	pids=()
}

where="broker data on disk"
[ "${BENCH_TMPDIR:-/tmp}" = /dev/shm ] && where="broker data on tmpfs"
r1=() r4=() c1=() c4=() wrk4=() mach4=() f1=() f4=()
for rep in $(seq "$BENCH_RUNS"); do
	read -r r c _ _ f < <(run_with 1)
	r1+=("$r"); c1+=("$c"); f1+=("$f")
	read -r r c w m f < <(run_with 4)
	r4+=("$r"); c4+=("$c"); wrk4+=("$w"); mach4+=("$m"); f4+=("$f")
	echo "run $rep: jobs=1 ${r1[-1]} cmd/s (broker ${c1[-1]}% CPU); jobs=4 ${r4[-1]} cmd/s (broker ${c4[-1]}%, worker ${wrk4[-1]}%, machine ${mach4[-1]}% busy, ${f4[-1]} flushes/s)" >&2
done
bc4=$(median "${c4[@]}")
mb4=$(median "${mach4[@]}")
wc4=$(median "${wrk4[@]}")
verdict=$(awk -v b="$bc4" -v w="$wc4" -v m="$mb4" -v n="$ncpu" 'BEGIN {
	if (b >= 90) print "yes: the broker uses " b "% of one CPU"
	else if (m >= 90 && b >= w) print "yes: the machine is " m "% busy and the broker takes the largest share (" b "% against the worker " w "%)"
	else print "no: broker " b "%, worker " w "%, machine " m "% busy" }')
# ">= 2x, or shown to be broker-bound": when the runs were, the guard has nothing to hold.
case $verdict in yes*) goal4="broker-bound (else >= 2x)" ;; *) goal4=">= 2x" ;; esac
echo "| worker: no-op DeleteSnapshot end to end (confirms, reply_to), 1 worker, jobs = 1, $N cmds, $where | $(spread %.0f "${r1[@]}") cmd/s | broker $(spread %.0f "${c1[@]}")% of a CPU, $(spread %.0f "${f1[@]}") disk flushes/s | | report (the baseline of the next row) |"
echo "| worker: the same, jobs = 4 vs jobs = 1, $where | $(spread %.0f "${r4[@]}") cmd/s; broker $(spread %.0f "${c4[@]}")% of a CPU, worker $(spread %.0f "${wrk4[@]}")%, machine $(spread %.0f "${mach4[@]}")% of $ncpu CPUs busy, $(spread %.0f "${f4[@]}") disk flushes/s | jobs = 1: $(spread %.0f "${r1[@]}") cmd/s | $(ratio_cell "${r4[*]}" "${r1[*]}") | $goal4 |"
echo "| worker: jobs = 4 bound by the broker? ($where) | $verdict | | | report |"
if [ -z "${BENCH_TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	cleanup
	trap - EXIT
	BENCH_TMPDIR=/dev/shm exec "$0"
fi
