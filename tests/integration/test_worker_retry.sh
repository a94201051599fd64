#!/usr/bin/env bash
# Delayed retries held by the broker, against a real RabbitMQ (the runner's,
# from $SW_RABBITMQ_ENV): a retryable failure is not retried at once but
# republished to a delay queue of its zone, announced with a `retrying` event;
# after the last attempt it fails and goes to the dead-letter queue; the wait
# is the broker's, so it survives the worker's death; a source that comes back
# between attempts makes the command succeed.  Every broker object gets a
# per-run prefix.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
# shellcheck source=tests/integration/worker_lib.sh
. "$here/tests/integration/worker_lib.sh"
tmp=$(mktemp -d /tmp/swretry.XXXXXX)
late_pid=""

cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$late_pid" ] && kill "$late_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${SW_RABBITMQ_ENV:-}" ] || [ ! -f "$SW_RABBITMQ_ENV" ]; then
	echo "no broker (SW_RABBITMQ_ENV unset): run through tests/run.sh"
	echo "0 passed, 1 failed"
	exit 1
fi
# shellcheck disable=SC1090
. "$SW_RABBITMQ_ENV"
PW_FILE=$AMQP_PASSWORD_FILE
prefix="r$$"
mkdir -p "$tmp/store" "$tmp/www"

conf=$tmp/w.conf
cat >"$conf" <<EOF
[worker]
queues = default
[amqp]
url = $AMQP_URL
password_file = $PW_FILE
heartbeat = 5
exchange = $prefix.commands
events_exchange = $prefix.events
dead_letter_exchange = $prefix.dlx
dead_letter_queue = $prefix.dead

[store]
nfs://10.0.0.5/export/secondary = $tmp/store
[download]
allow = 127.0.0.0/8
[retry]
delays = 2s 3s
EOF

# A loopback port nobody listens on (yet).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
register_cmd() { # id port
	printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"url":"http://127.0.0.1:%s/t.ova","account_id":2,"template_id":%s}}' "$1" "$2" "$3"
}
# events FILE STATUS: how many events of that status the file holds.
events() { grep -c "\"status\":\"$2\"" "$1" 2>/dev/null || true; }
evtrue() { # file python-expression over e (the last event of the file)
	python3 - "$1" "$2" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip().startswith('{')]
evs = [json.loads(l) for l in lines]
sys.exit(0 if evs and eval(sys.argv[2], {'evs': evs, 'e': evs[-1]}) else 1)
PY
}

"$CTL" -c "$conf" declare >"$tmp/declare.out" 2>&1
check "declare creates the retry queues" grep -q "retry queues: $prefix.retry.<zone>.3s" "$tmp/declare.out"
start_worker "$conf" "$tmp/w1.log" w1
w1=$wpid
check "worker consumes" wait_consumers "$prefix.commands.default" 1

# --- a source that refuses connections: 3 attempts, 2 s and 3 s apart, then dead ----
port=$(free_port)
id=$(uuid)
register_cmd "$id" "$port" 7 >"$tmp/a.json"
t0=$(date +%s%N)
timeout 60 "$CTL" -c "$conf" submit --wait --timeout 50 "$tmp/a.json" >"$tmp/a.out" 2>"$tmp/a.err"
rc=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
check "refused source: the command fails in the end (exit 1)" [ $rc = 1 ]
check "two retrying events, then one failed event" \
    bash -c "[ $(events "$tmp/a.out" retrying) = 2 ] && [ $(events "$tmp/a.out" failed) = 1 ]"
check "retrying events carry the error, the attempt and the delay" evtrue "$tmp/a.out" \
    "[(x['retry']['attempt'], x['retry']['max_attempts'], x['retry']['delay_s'], x['error']['code']) for x in evs if x['status']=='retrying'] == [(1,3,2,'DOWNLOAD_UNREACHABLE'),(2,3,3,'DOWNLOAD_UNREACHABLE')]"
check "the final event says retryable" evtrue "$tmp/a.out" \
    "e['status']=='failed' and e['error']['retryable'] is True"
check "the attempts were spread over the delays (${ms} ms >= 5000)" [ "$ms" -ge 5000 ]
check "the worker logged each attempt" \
    bash -c "grep -q 'attempt 1 of 3 failed; attempt 2 in 2 s' '$tmp/w1.log' && grep -q 'started (attempt 3)' '$tmp/w1.log'"
dead_one() { [ "$(ready "$prefix.dead")" = 1 ]; }
waitfor() { local i; for i in $(seq "$1"); do "${@:2}" && return 0; sleep 0.5; done; return 1; }
check "the command is in the dead-letter queue" waitfor 30 dead_one

# --- the wait is the broker's: the worker dies during it, another one finishes ------
port=$(free_port)
id=$(uuid)
register_cmd "$id" "$port" 8 >"$tmp/b.json"
timeout 60 "$CTL" -c "$conf" submit --wait --timeout 50 "$tmp/b.json" >"$tmp/b.out" 2>"$tmp/b.err" &
ctl_pid=$!
check "first attempt failed: retrying" wait_grep 20 '"status":"retrying"' "$tmp/b.out"
kill -KILL "$w1"
wait_exit 30 "$w1" 2>/dev/null
# Nobody consumes while the command waits in its delay queue; then the source appears.
mkdir -p "$tmp/www" "$tmp/work"
head -c 70001 /dev/urandom >"$tmp/work/t-disk0.vmdk"
cat >"$tmp/work/t.ovf" <<'OVF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="t-disk0.vmdk" ovf:id="file1" ovf:size="70001"/></References>
  <DiskSection><Info>Disks</Info>
    <Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="d1" ovf:fileRef="file1"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
OVF
tar --format=ustar -cf "$tmp/www/t.ova" -C "$tmp/work" t.ovf t-disk0.vmdk
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$tmp/www" >/dev/null 2>&1 &
late_pid=$!
sleep 3
start_worker "$conf" "$tmp/w2.log" w2
wait_exit 90 "$ctl_pid"
rc=$?
check "after the worker's death the command still ran again, and succeeded" [ $rc = 0 ]
check "one retrying, then one succeeded event" \
    bash -c "[ $(events "$tmp/b.out" retrying) = 1 ] && [ $(events "$tmp/b.out" succeeded) = 1 ]"
check "the second worker ran attempt 2" grep -q "started (attempt 2)" "$tmp/w2.log"
check "the template is on the share" \
    bash -c "ls '$tmp/store/template/tmpl/2/8/' | grep -q '.ova.meta$'"
check "no command left in the queues" \
    bash -c "[ '$(ready "$prefix.commands.default")' = 0 ]"

# --- not retryable: final at once, no retrying event ---------------------------------
id=$(uuid)
printf '{"version":1,"id":"%s","type":"DeleteSnapshot","store":{"url":"nfs://nowhere/x"},"args":{"path":"snapshots/1/2/a/a"}}' "$id" >"$tmp/c.json"
timeout 30 "$CTL" -c "$conf" submit --wait --timeout 20 "$tmp/c.json" >"$tmp/c.out" 2>&1
check "unknown store: failed UNKNOWN_STORE at once, never retrying" \
    bash -c "[ $(events "$tmp/c.out" retrying) = 0 ] && grep -q UNKNOWN_STORE '$tmp/c.out'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
