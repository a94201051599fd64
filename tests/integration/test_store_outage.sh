#!/usr/bin/env bash
# A store whose mount goes away, against a real RabbitMQ (the runner's, from
# $SW_RABBITMQ_ENV): the store's mount point is a bind mount of a temporary
# directory; the test unmounts it for about 8 s while commands for that store
# are submitted, and mounts it again.  The worker must notice (log, metric),
# stop taking commands while the store is sick, and run each command exactly
# once after the mount is back: nothing lost, nothing dead-lettered, no
# attempt spent on the outage, nothing written into the bare mount point.
# Needs root (mount --bind); without it the test says SKIP and fails.
# Prints the time to notice and to resume, then "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
# shellcheck source=tests/integration/worker_lib.sh
. "$here/tests/integration/worker_lib.sh"
tmp=$(mktemp -d /tmp/swoutage.XXXXXX)
http_pid=""
ctl_pids=()

cleanup() {
	local p
	for p in "${ctl_pids[@]}" "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
	mountpoint -q "$tmp/mnt" 2>/dev/null && umount "$tmp/mnt"
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
prefix="o$$"
mkdir -p "$tmp/share" "$tmp/mnt" "$tmp/www" "$tmp/work"
if ! out=$(mount --bind "$tmp/share" "$tmp/mnt" 2>&1); then
	echo "SKIP: cannot bind-mount a store (needs root and CAP_SYS_ADMIN): $out"
	echo "0 passed, 1 failed"
	exit 1
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
MPORT=$(free_port)
URL=nfs://10.0.0.5/export/secondary
conf=$tmp/w.conf
cat >"$conf" <<EOF2
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
$URL = $tmp/mnt
[download]
allow = 127.0.0.0/8
[retry]
delays = 2s 3s
[metrics]
listen = 127.0.0.1:$MPORT
EOF2

# A small valid template behind a loopback HTTP server.
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
start_http "$tmp/www"

register_cmd() { # id template_id
	printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"%s"},"args":{"url":"http://127.0.0.1:%s/t.ova","account_id":2,"template_id":%s}}' "$1" "$URL" "$HTTP_PORT" "$2"
}
events() { grep -c "\"status\":\"$2\"" "$1" 2>/dev/null || true; }
healthy_metric() { curl -sf "http://127.0.0.1:$MPORT/metrics" | grep -q "^snapworker_store_healthy{store=\"$URL\"} $1\$"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
Q=$prefix.commands.default

"$CTL" -c "$conf" declare >/dev/null 2>&1
start_worker "$conf" "$tmp/w.log" w1
check "worker consumes" wait_consumers "$Q" 1
check "the store is healthy at start" wait_grep 10 "store $URL ($tmp/mnt) is healthy" "$tmp/w.log"
check "the metric says healthy" healthy_metric 1
health_code() { curl -s -o "$tmp/health.json" -w '%{http_code}' "http://127.0.0.1:$MPORT/health"; }
check "GET /health: 200, healthy, the store listed" bash -c \
    "[ \"\$(curl -s -o '$tmp/h0.json' -w '%{http_code}' 'http://127.0.0.1:$MPORT/health')\" = 200 ] &&
        grep -q '\"healthy\":true,\"broker_connections\":1,\"job_slots\":1' '$tmp/h0.json'"
check "snapworker health: exit 0 while healthy" "$SW" health -c "$conf"

# --- the mount goes away ----------------------------------------------------------
t_down=$(now_ms)
umount "$tmp/mnt"
check "the worker logs the store sick, with the reason" \
    wait_grep 15 "store $URL ($tmp/mnt) is sick: .*not a mount point" "$tmp/w.log"
t_noticed=$(now_ms)
check "the metric says unhealthy during the outage" healthy_metric 0
check "GET /health: 503 during the outage, naming the sick store" bash -c \
    "[ \"\$(curl -s -o '$tmp/h1.json' -w '%{http_code}' 'http://127.0.0.1:$MPORT/health')\" = 503 ] &&
        grep -q '\"healthy\":false' '$tmp/h1.json' && grep -q '\"store\":\"$URL\",\"healthy\":false' '$tmp/h1.json'"
"$SW" health -c "$conf" >/dev/null 2>&1
check "snapworker health: exit 1 during the outage" [ $? -eq 1 ]
check "the worker cancelled its consumer" wait_consumers "$Q" 0
SNAPWORKER_STORE_REQUIRE_MOUNT=true "$SW" check -c "$conf" >"$tmp/check.out" 2>&1
rc=$?
check "snapworker check fails while the mount is missing (exit $rc)" [ $rc -ne 0 ]
check "snapworker check names the store's health" grep -q "health: SICK: .*not a mount point" "$tmp/check.out"

ids=()
for n in 1 2 3; do
	id=$(uuid)
	ids+=("$id")
	register_cmd "$id" $((40 + n)) >"$tmp/c$n.json"
	timeout 90 "$CTL" -c "$conf" submit --wait --timeout 80 "$tmp/c$n.json" >"$tmp/c$n.out" 2>"$tmp/c$n.err" &
	ctl_pids+=("$!")
done
# The outage lasts about 8 s from the unmount; the commands wait in the queue meanwhile.
while [ $(( $(now_ms) - t_down )) -lt 8000 ]; do sleep 0.2; done
check "the commands wait in the queue, untouched" [ "$(ready "$Q")" = 3 ]
check "no event while the store is sick" \
    bash -c "[ \$(cat $tmp/c1.out $tmp/c2.out $tmp/c3.out | grep -c status) = 0 ]"
check "nothing was written into the bare mount point" [ -z "$(ls -A "$tmp/mnt")" ]

# --- the mount is back --------------------------------------------------------------
mount --bind "$tmp/share" "$tmp/mnt"
t_up=$(now_ms)
check "the worker logs the store healthy again" \
    wait_grep 15 "store $URL ($tmp/mnt) is healthy again after [0-9]* s" "$tmp/w.log"
t_healthy=$(now_ms)
check "the worker consumes again" wait_consumers "$Q" 1
t_consuming=$(now_ms)
all_ok=1
for n in 1 2 3; do
	wait "${ctl_pids[$((n - 1))]}" || all_ok=0
done
t_done=$(now_ms)
ctl_pids=()
check "every command succeeded after the mount came back" [ $all_ok = 1 ]
for n in 1 2 3; do
	check "command $n: one succeeded event, no retrying, no failed" bash -c \
	    "[ $(events "$tmp/c$n.out" succeeded) = 1 ] && [ $(events "$tmp/c$n.out" retrying) = 0 ] && [ $(events "$tmp/c$n.out" failed) = 0 ]"
	check "command $n ran once, at its first attempt" bash -c \
	    "[ \$(grep '\"cmd_id\":\"${ids[$((n - 1))]}\"' '$tmp/w.log' | grep -c '\"msg\":\"started') = 1 ] &&
	     [ \$(grep '\"cmd_id\":\"${ids[$((n - 1))]}\"' '$tmp/w.log' | grep -c '\"msg\":\"started\"') = 1 ]"
	check "command $n's template is on the share" \
	    bash -c "ls '$tmp/share/template/tmpl/2/$((40 + n))/' | grep -q '.ova.meta$'"
done
check "no attempt was spent on the outage" bash -c "! grep -q 'attempt 2' '$tmp/w.log'"
check "nothing in the dead-letter queue" [ "$(ready "$prefix.dead")" = 0 ]
check "nothing left in the command queue" [ "$(ready "$Q")" = 0 ]
check "the metric says healthy again" healthy_metric 1
"$SW" check -c "$conf" >"$tmp/check2.out" 2>&1
check "snapworker check passes with the mount back" grep -q "health: ok (a mount point" "$tmp/check2.out"

echo "figures: noticed the missing mount in $((t_noticed - t_down)) ms;" \
    "healthy $((t_healthy - t_up)) ms and consuming $((t_consuming - t_up)) ms after the remount;" \
    "3 commands done $((t_done - t_up)) ms after it"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
