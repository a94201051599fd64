#!/usr/bin/env bash
# No-op command throughput end to end through a real broker with publisher
# confirms: 5000 DeleteSnapshot commands of absent objects, published by
# `snapctl submit --count`, each consumed, run, answered (event + reply_to,
# confirmed) and acked; timed until every final event has arrived.  One
# worker, then two (jobs = 1 each).  Prints markdown rows; never asserts.
#
# The broker's quorum queue syncs its log to disk for every publish and ack;
# with prefetch 1 each command waits for one such sync, which bounds a single
# worker.  So the figures are taken twice: broker data on the disk (/tmp, as
# in production) and, to isolate the worker's own cost, on tmpfs (/dev/shm).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
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
mkdir -p "$tmp/store"
cat >"$tmp/w.conf" <<CONF
[worker]
jobs = 1
log_level = warn
[amqp]
url = $AMQP_URL
password_file = $AMQP_PASSWORD_FILE
[store]
nfs://10.0.0.5/export/secondary = $tmp/store
CONF
printf '{"version":1,"id":"00000000-0000-4000-8000-000000000000","type":"DeleteSnapshot","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"path":"snapshots/1/2/absent/absent"}}' >"$tmp/cmd.json"

# run_with K: starts K workers, submits N commands, prints commands/s.
run_with() {
	local k=$1 i out rate
	for i in $(seq "$k"); do
		"$build/bin/snapworker" run -c "$tmp/w.conf" 2>>"$tmp/worker.log" &
		pids+=($!)
	done
	for i in $(seq 100); do
		"$build/bin/snapctl" -c "$tmp/w.conf" status 2>/dev/null |
		    grep -q "^snapworker.commands.default .* $k\$" && break
		sleep 0.1
	done
	out=$("$build/bin/snapctl" -c "$tmp/w.conf" submit --wait --timeout 300 --count "$N" "$tmp/cmd.json" 2>>"$tmp/snapctl.log")
	echo "$out" >&2
	rate=$(echo "$out" | sed -nE 's/.* ([0-9.]+) commands\/s$/\1/p')
	for i in "${pids[@]}"; do kill -TERM "$i" 2>/dev/null; wait "$i" 2>/dev/null; done
	pids=()
	echo "${rate:-0}"
}

where="broker data on disk"
[ "${BENCH_TMPDIR:-/tmp}" = /dev/shm ] && where="broker data on tmpfs"
r1=$(run_with 1)
r2=$(run_with 2)
ratio=$(awk -v a="$r2" -v b="$r1" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')
echo "| worker: no-op DeleteSnapshot end to end (confirms, reply_to), 1 worker, $N cmds, $where | $r1 cmd/s | | | >= 800 cmd/s |"
echo "| worker: the same, 2 workers, $where | $r2 cmd/s | $r1 cmd/s (1 worker) | $ratio | >= 1.6x (until the broker is the limit) |"
if [ -z "${BENCH_TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	cleanup
	trap - EXIT
	BENCH_TMPDIR=/dev/shm exec "$0"
fi
