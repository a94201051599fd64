#!/usr/bin/env bash
# The broker's less common paths, against a private RabbitMQ node with a TLS
# listener (tests/rig/rabbitmq.sh with RIG_TLS=1):
#   - amqps://: certificate verified against the configured CA, host name
#     checked; a worker and snapctl run a command over it;
#   - connection.blocked (memory alarm): the final event waits, the worker
#     keeps its connection (heartbeats) and answers once the alarm clears;
#   - missed heartbeats: a worker frozen (SIGSTOP) mid-command loses its
#     connection, the broker redelivers to the other worker, which waits for
#     the frozen attempt (the per-command lock on the store) and answers from
#     its committed output; one final event, one intact object.
# Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
OVS=$build/bin/ovastore
# shellcheck source=tests/integration/worker_lib.sh
. "$here/tests/integration/worker_lib.sh"
tmp=$(mktemp -d /tmp/swedge.XXXXXX)
rmq=$tmp/rmq
http_pid=""


cleanup() {
	local p
	for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
	"$here/tests/rig/rabbitmq.sh" stop "$rmq" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

if ! RIG_TLS=1 "$here/tests/rig/rabbitmq.sh" start "$rmq" >"$tmp/rmq.out" 2>&1; then
	cat "$tmp/rmq.out"
	echo "0 passed, 1 failed"
	exit 1
fi
# shellcheck disable=SC1090
. "$rmq/rabbitmq.env"
PW_FILE=$AMQP_PASSWORD_FILE
PW=$(cat "$PW_FILE")
mkdir -p "$tmp/store" "$tmp/www"

# A template OVA, served at once (/NAME) or after N seconds (/slow/N/NAME).
mk_ovf() {
	cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="$2-disk0.vmdk" ovf:id="file1" ovf:size="$3"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
EOF
}
mkdir -p "$tmp/src/t/t"
head -c 3000017 /dev/urandom >"$tmp/src/t/t/t-disk0.vmdk"
mk_ovf "$tmp/src/t/t/t.ovf" t 3000017
"$OVS" -C "$tmp/src" commit t/t/t && "$OVS" -C "$tmp/src" pack t/t/t "$tmp/www/t.ova" ||
	nok "template OVA built"
start_http "$tmp/www"

prefix="e$$"
# write_conf FILE URL [CACERT]
write_conf() {
	cat >"$1" <<EOF
[worker]
jobs = 1
grace = 10
queues = default
[amqp]
url = $2
password_file = $PW_FILE
heartbeat = 2
exchange = $prefix.commands
events_exchange = $prefix.events
dead_letter_exchange = $prefix.dlx
dead_letter_queue = $prefix.dead
${3:+cacert = $3}
[store]
nfs://10.0.0.5/export/secondary = $tmp/store
[download]
allow = 127.0.0.0/8
EOF
}
register_cmd() { # id url-path template-id
	printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"url":"http://127.0.0.1:%s/%s","account_id":2,"template_id":%s}}' "$1" "$HTTP_PORT" "$2" "$3"
}
conf=$tmp/w.conf
write_conf "$conf" "$AMQPS_URL" "$AMQP_CACERT"
Q=$prefix.commands.default

# --- amqps ------------------------------------------------------------------------
"$SW" check -c "$conf" >"$tmp/check.out" 2>&1
check "check over amqps with the right CA: ok" grep -q "login: ok" "$tmp/check.out"
write_conf "$tmp/wrongca.conf" "$AMQPS_URL" /etc/ssl/certs/ca-certificates.crt
"$SW" check -c "$tmp/wrongca.conf" >"$tmp/check2.out" 2>&1
rc=$?
check "check with another CA: refused (exit 1, certificate verification)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'login: FAILED.*verif' '$tmp/check2.out'"
write_conf "$tmp/ip.conf" "amqps://snapworker@127.0.0.1:$AMQPS_PORT/%2f" "$AMQP_CACERT"
"$SW" check -c "$tmp/ip.conf" >"$tmp/check3.out" 2>&1
rc=$?
check "check with a name the certificate lacks: refused (host name)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'login: FAILED.*hostname' '$tmp/check3.out'"

start_worker "$conf" "$tmp/w1.log" w1
w1=$wpid
check "worker consumes over amqps" wait_consumers "$Q" 1
id=$(uuid)
delete_cmd "$id" >"$tmp/c1.json"
"$CTL" -c "$conf" submit --wait --timeout 20 "$tmp/c1.json" >"$tmp/c1.out" 2>"$tmp/c1.err"
rc=$?
check "snapctl over amqps: command answered (exit 0)" \
	bash -c "[ $rc -eq 0 ] && grep -q '\"id\":\"$id\".*\"status\":\"succeeded\"' '$tmp/c1.out'"
check "the worker's job lines carry the command id" grep -q "\"cmd_id\":\"$id\".*started" "$tmp/w1.log"

# --- connection.blocked -------------------------------------------------------------
# A 4 s RegisterTemplate; the memory alarm goes off while it runs, so its final
# event meets a blocked connection.
idb=$(uuid)
register_cmd "$idb" slow/4/t.ova 301 >"$tmp/b.json"
"$CTL" -c "$conf" submit --wait --timeout 60 "$tmp/b.json" >"$tmp/b.out" 2>/dev/null &
bctl=$!
check "blocked: the command started" wait_grep 10 "\"cmd_id\":\"$idb\".*started" "$tmp/w1.log"
$RABBITMQCTL set_vm_memory_high_watermark absolute 1 >/dev/null 2>&1
check "blocked: the worker saw connection.blocked" wait_grep 10 "blocked publishing" "$tmp/w1.log"
# The download ends after 4 s; give the job time to finish and try to publish.
sleep 7
check "blocked: no final event while the alarm lasts" bash -c "! grep -q '\"status\":\"succeeded\"' '$tmp/b.out'"
check "blocked: worker alive and still connected (no reconnect)" \
	bash -c "kill -0 $w1 && ! grep -q 'connection lost\|reconnect' '$tmp/w1.log'"
$RABBITMQCTL set_vm_memory_high_watermark absolute 1GB >/dev/null 2>&1
wait_exit 120 "$bctl"
rc=$?
check "blocked: after the alarm the final event arrives (exit 0)" \
	bash -c "[ $rc -eq 0 ] && [ \$(grep -c '\"status\":\"succeeded\"' '$tmp/b.out') = 1 ]"
check "blocked: the worker logged the unblock" grep -q "unblocked publishing" "$tmp/w1.log"
check "blocked: template committed" "$OVS" -C "$tmp/store" verify "template/tmpl/2/301/$idb"

# --- missed heartbeats --------------------------------------------------------------
start_worker "$conf" "$tmp/w2.log" w2
w2=$wpid
check "second worker consumes" wait_consumers "$Q" 2
idh=$(uuid)
register_cmd "$idh" slow/5/t.ova 302 >"$tmp/h.json"
"$CTL" -c "$conf" submit --wait --timeout 90 "$tmp/h.json" >"$tmp/h.out" 2>/dev/null &
hctl=$!
victim=""
for _ in $(seq 100); do
	if grep -q "\"cmd_id\":\"$idh\".*started" "$tmp/w1.log"; then victim=$w1; vlog=$tmp/w1.log; other=$tmp/w2.log; break; fi
	if grep -q "\"cmd_id\":\"$idh\".*started" "$tmp/w2.log"; then victim=$w2; vlog=$tmp/w2.log; other=$tmp/w1.log; break; fi
	sleep 0.1
done
check "heartbeat: a worker started the command" [ -n "$victim" ]
if [ -n "$victim" ]; then
	kill -STOP "$victim"
	# heartbeat = 2 s: the broker drops the frozen connection after ~4-6 s and
	# hands the command to the other worker, which finds the frozen attempt's lock.
	check "heartbeat: redelivered to the other worker, which waits for the first attempt" \
		wait_grep 30 "\"cmd_id\":\"$idh\".*another attempt of this command still runs" "$other"
	check "heartbeat: no final event while the first attempt is frozen" \
		bash -c "! grep -q '\"status\"' '$tmp/h.out'"
	kill -CONT "$victim"
	wait_exit 120 "$hctl"
	rc=$?
	check "heartbeat: the command is answered (exit 0)" \
		bash -c "[ $rc -eq 0 ] && grep -q '\"id\":\"$idh\".*\"status\":\"succeeded\"' '$tmp/h.out'"
	check "heartbeat: the frozen worker noticed its connection was gone" \
		wait_grep 20 "connection lost while the command ran" "$vlog"
	check "heartbeat: the answer came from the other worker, after the first attempt" \
		grep -q "\"cmd_id\":\"$idh\".*the other attempt finished" "$other"
	check "heartbeat: the frozen worker reconnects and consumes again" wait_consumers "$Q" 2
	check "heartbeat: one intact object" bash -c "'$OVS' -C '$tmp/store' verify 'template/tmpl/2/302/$idh' &&
		[ \$(ls '$tmp/store/template/tmpl/2/302' | grep -c '\.ova\.meta$') = 1 ] &&
		! ls '$tmp/store/template/tmpl/2/302' | grep -q '\.part$' &&
		cmp '$tmp/store/template/tmpl/2/302/$idh-disk0.vmdk' '$tmp/src/t/t/t-disk0.vmdk'"
	check "heartbeat: no lock file left" bash -c "[ -z \"\$(ls -A '$tmp/store/.snapworker/running')\" ]"
	id2=$(uuid)
	delete_cmd "$id2" >"$tmp/c2.json"
	check "heartbeat: both workers still serve commands" \
		"$CTL" -c "$conf" submit --wait --timeout 20 "$tmp/c2.json"
fi
check "no password in any log" bash -c "! grep -qF '$PW' '$tmp/w1.log' '$tmp/w2.log'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
