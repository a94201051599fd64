#!/usr/bin/env bash
# Broker cluster failover, end to end, on a 3-node RabbitMQ cluster of this
# test's own (tests/rig/rabbitmq-cluster.sh, on loopback, stopped by PID when
# the test ends) and a vCenter simulator of its own (a seeded disk and slow
# tasks, so a command is still running when a node dies).  A worker is given
# all three node URLs; the node its connection is on is killed with SIGKILL
# while its CreateSnapshot exports.  The worker must fail over to another
# node, the command must complete exactly once (one committed object, the
# seeded bytes, no debris, nothing left in vCenter; events may repeat), the
# killed node must come back into the cluster and a second command succeed.
# Then a stream of DeleteSnapshot commands with a node killed in the middle:
# every one answered.  Prints "N passed, N failed" and the figures measured.
#
# A publisher whose queue's leader died with its node is refused (nacked)
# until the surviving nodes elect a new leader; snapctl submit sends the
# command again for --publish-timeout (60 s).  On a loaded 2-core machine
# that has just taken a node back, that refusal once outlasted the 17 s
# snapctl used to try.
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

CLUSTER=$here/tests/rig/rabbitmq-cluster.sh
cl=$tmp/cluster

cluster_stop() {
	local k pid
	"$CLUSTER" stop "$cl" >/dev/null 2>&1
	# Whatever is still up (a node the stop could not reach): by PID.
	for k in 0 1 2; do
		pid=$(cat "$cl/n$k/rabbitmq.pid" 2>/dev/null) || continue
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done
}
trap 'cluster_stop; e2e_cleanup' EXIT

now_ms() { date +%s%3N; }

e2e_start_vcsim -seed-mib 256 -task-delay 500ms -lease-timeout 6s
t0=$(now_ms)
if ! "$CLUSTER" start "$cl" >"$tmp/cluster.start" 2>&1; then
	cat "$tmp/cluster.start"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "# cluster of 3 started in $(( ($(now_ms) - t0) / 1000 )) s"
# shellcheck disable=SC1091
. "$cl/cluster.env"
PW_FILE=$AMQP_PASSWORD_FILE
prefix="cl$$"
ports=("$NODE0_PORT" "$NODE1_PORT" "$NODE2_PORT")
read -r -a urls <<<"$AMQP_URLS"
# The worker gets every node (comma- and space-separated at once: both are list separators).
AMQP_URL="${urls[0]}, ${urls[1]} ${urls[2]}"
conf=$tmp/w.conf
e2e_conf "$conf" 1
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[metrics]\nlisten = 127.0.0.1:%s\n' "$mport" >>"$conf"
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"

# ctl K ARGS: rabbitmqctl against node K.
ctl() { local k=$1; shift; ( . "$cl/n$k/rabbitmq.env" && $RABBITMQCTL "$@" ); }
# node_of_port PORT: the index of the node listening there.
node_of_port() { local k; for k in 0 1 2; do [ "${ports[$k]}" = "$1" ] && echo "$k" && return; done; echo -1; }
# The node of the worker's latest connection, from its log.
worker_node() {
	local p
	p=$(grep -o 'connected to the broker at [^ ]*:[0-9]*' "$1" | tail -1 | sed 's/.*://')
	node_of_port "$p"
}
connections() { grep -c 'connected to the broker at' "$1" 2>/dev/null || echo 0; }
# The URL list rotated to start at node K (snapctl connects to the first that answers).
urls_from() { echo "${urls[$1]} ${urls[$((($1 + 1) % 3))]} ${urls[$((($1 + 2) % 3))]}"; }
running_seen_from() { "$CLUSTER" running "$cl" "$1"; }
wait_running() { # K N seconds: node K sees N running nodes
	local i
	for i in $(seq $(($3 * 2))); do [ "$(running_seen_from "$1")" = "$2" ] && return 0; sleep 0.5; done
	return 1
}
# wait_members K PREFIX SECONDS: node K lists every quorum queue of PREFIX with its 3
# members online.  A node in running_nodes may not have restarted its queue members yet;
# killing another node before they are back would take the majority of each queue (two
# faults at once, which a 3-member quorum queue is not built to survive).
members_online() {
	ctl "$1" list_queues name type online --formatter json 2>/dev/null | python3 -c '
import json, sys
qs = [q for q in json.load(sys.stdin) if q["name"].startswith(sys.argv[1] + ".") and q["type"] == "quorum"]
sys.exit(0 if qs and all(len(q["online"]) == 3 for q in qs) else 1)' "$2"
}
wait_members() {
	local i
	for i in $(seq $(($3 * 2))); do members_online "$1" "$2" && return 0; sleep 0.5; done
	return 1
}

# --- topology: every queue that must outlive a node is a quorum queue -------------
"$CTL" -c "$conf" --password-file "$PW_FILE" declare >"$tmp/declare.out" 2>&1
check "snapctl declare on the cluster (url list from the config)" [ $? -eq 0 ]
ctl 0 list_queues name type --formatter json 2>/dev/null >"$tmp/queues.json"
check "command, dead-letter and delay queues are all quorum queues" python3 - "$tmp/queues.json" "$prefix" <<'PY'
import json, sys
qs = [q for q in json.load(open(sys.argv[1])) if q["name"].startswith(sys.argv[2] + ".")]
names = {q["name"] for q in qs}
need = {sys.argv[2] + ".commands.default", sys.argv[2] + ".dead"}
sys.exit(0 if need <= names and len(qs) >= 3 and all(q["type"] == "quorum" for q in qs) else 1)
PY
"$SW" check -c "$conf" >"$tmp/check.out" 2>&1
check "snapworker check logs in to each of the 3 nodes" [ "$(grep -c ': login: ok' "$tmp/check.out")" = 3 ]

# --- a worker with all three URLs -----------------------------------------------------
e2e_worker "$conf" w1
w1=$wpid
check "the worker consumes" e2e_wait_consumers "$conf" 1
K=$(worker_node "$tmp/w1.log")
check "the worker logged which node it connected to" [ "$K" -ge 0 ]
echo "# worker connected to node $K (port ${ports[$K]})"
check "rabbitmqctl lists the worker's connection on that node" bash -c \
    "$(declare -f ctl); cl='$cl'; ctl $K list_connections client_properties 2>/dev/null | grep -q 'snapworker'"

# --- kill -9 the worker's node while its CreateSnapshot exports ----------------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 7 1 >"$tmp/s1.json"
before=$(connections "$tmp/w1.log")
# snapctl waits on the same node: it must fail over too (new reply queue, bound to the final events).
t_submit=$(now_ms)
"$CTL" -c "$conf" --amqp-url "$(urls_from "$K")" --password-file "$PW_FILE" submit --wait \
    --timeout 240 "$tmp/s1.json" >"$tmp/s1.out" 2>"$tmp/s1.err" &
sctl=$!
python3 - "$VC_BASE" "$(cat "$cl/n$K/rabbitmq.pid")" >"$tmp/kill.out" <<'PY'
import json, os, ssl, sys, time, urllib.request
base, pid = sys.argv[1], int(sys.argv[2])
ctx = ssl._create_unverified_context()
end = time.time() + 90
while time.time() < end:
    d = json.load(urllib.request.urlopen(base + "/rig/state", context=ctx))
    for l in d.get("leases") or []:
        if l.get("mode") == "export" and any(f.get("bytes_transferred", 0) > 0 for f in l.get("files") or []):
            os.kill(pid, 9)
            print(int(time.time() * 1000))
            sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
PY
killed=$?
t_kill=$(cat "$tmp/kill.out" 2>/dev/null)
t_kill=${t_kill:-$(now_ms)}
"$CLUSTER" kill "$cl" "$K" >/dev/null 2>&1
check "node $K killed with SIGKILL while the export ran (open lease, bytes moving)" [ $killed = 0 ]
failover_ms=-1
for _ in $(seq 600); do
	if [ "$(connections "$tmp/w1.log")" -gt "$before" ]; then failover_ms=$(( $(now_ms) - t_kill )); break; fi
	sleep 0.1
done
check "the worker logged the loss and failed over to the next node" \
    grep -q 'connection to .* lost: .*failing over to' "$tmp/w1.log"
K2=$(worker_node "$tmp/w1.log")
check "and connected to another node ($K2, not $K) within 60 s" bash -c "[ $failover_ms -ge 0 ] && [ '$K2' != '$K' ] && [ '$K2' -ge 0 ]"
wait "$sctl"
src=$?
t_done=$(now_ms)
check "snapctl --wait survived its node and got the final event (exit 0)" [ $src = 0 ]
check "snapctl said it failed over" grep -q 'reconnected to' "$tmp/s1.err"
check "the command succeeded with the seeded disk's digest" evtrue "$tmp/s1.out" \
    "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
check "no final event other than succeeded for the id" bash -c \
    "! grep '\"id\":\"$id\"' '$tmp/s1.out' | grep -q '\"status\":\"failed\"'"
check "the first attempt's result was dropped with its connection (redelivery answers)" \
    grep -q 'result not sent' "$tmp/w1.log"
# The redelivery is answered from the committed object: one object, the seeded bytes.
metas=$(find "$STORE" -name '*.ova.meta' | wc -l)
check "exactly one committed object on the share" [ "$metas" = 1 ]
dd=$(dirname "$(find "$STORE" -name '*.ova.meta' | head -1)")
check "its disk has the seeded bytes" \
    [ "$(sha256sum <"$dd/$id-disk0.vmdk" 2>/dev/null | cut -d' ' -f1)" = "$VCSIM_SEED_SHA256_0" ]
check "ovastore verify accepts it" "$OVASTORE" -C "$STORE" verify "${dd#"$STORE"/}/$id"
check "no .part debris" no_debris
check "no crash journal left" [ ! -e "$STORE/.snapworker/journal/$id.journal" ]
rig_settled() { local i; for i in $(seq 100); do rig_clean && return 0; sleep 0.2; done; return 1; }
check "nothing left in vCenter: no worker VM, VM snapshot or open lease" rig_settled
check "the redelivery ran and was answered from the committed object (no second export, no undo)" \
    bash -c "grep -q 'redelivery' '$tmp/w1.log' && [ \$(grep -c 'succeeded in' '$tmp/w1.log') -ge 2 ] &&
    ! grep -q 'removing what an interrupted attempt left' '$tmp/w1.log'"
check "metrics: snapworker_broker_reconnects_total counts the failover" bash -c \
    "curl -s 'http://127.0.0.1:$mport/metrics' | awk '/^snapworker_broker_reconnects_total/ {exit !(\$2 >= 1)}'"
echo "# failover: the worker reconnected $failover_ms ms after the kill; the command completed" \
    "$(( (t_done - t_kill) / 1000 )).$(( (t_done - t_kill) % 1000 / 100 )) s after the kill" \
    "($(( (t_done - t_submit) / 1000 )) s after submit)"

# --- the killed node comes back and rejoins ---------------------------------------------
t_rev=$(now_ms)
"$CLUSTER" revive "$cl" "$K" >"$tmp/revive.out" 2>&1
check "node $K revived" [ $? -eq 0 ]
check "and rejoined: 3 running nodes" wait_running "$K2" 3 90
echo "# node $K back in the cluster $(( ($(now_ms) - t_rev) / 1000 )) s after the revive"
check "and its queue members are online again (every quorum queue has 3)" wait_members "$K2" "$prefix" 90
echo "# node $K's queue members online $(( ($(now_ms) - t_rev) / 1000 )) s after the revive"
id2=$(uuid)
cmd_snapshot "$id2" "$disk1" 7 2 >"$tmp/s2.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 120 "$tmp/s2.json" \
    >"$tmp/s2.out" 2>"$tmp/s2.err"
check "a second CreateSnapshot after the rejoin succeeds" evtrue "$tmp/s2.out" \
    "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
check "and leaves nothing in vCenter" rig_settled

# --- a DeleteSnapshot stream while a node dies: all answered --------------------------
K3=$(worker_node "$tmp/w1.log")
O=$(( (K3 + 1) % 3 ))
n=20
: >"$tmp/stream.rc"
for i in $(seq $n); do
	did=$(uuid)
	cmd_path "$did" DeleteSnapshot "snapshots/9/9/$did/$did" >"$tmp/d$i.json"
done
# The publisher waits on a node that stays up; the worker's node is the one killed.
(
	for i in $(seq $n); do
		"$CTL" -c "$conf" --amqp-url "$(urls_from "$O")" --password-file "$PW_FILE" submit \
		    --wait --timeout 120 "$tmp/d$i.json" >"$tmp/d$i.out" 2>"$tmp/d$i.err"
		echo "$i $?" >>"$tmp/stream.rc"
		sleep 0.1
	done
) &
stream=$!
for _ in $(seq 300); do [ "$(wc -l <"$tmp/stream.rc" 2>/dev/null || echo 0)" -ge 5 ] && break; sleep 0.1; done
before=$(connections "$tmp/w1.log")
t_kill=$(now_ms)
"$CLUSTER" kill "$cl" "$K3" >/dev/null 2>&1
echo "# stream: node $K3 (the worker's) killed after $(wc -l <"$tmp/stream.rc") of $n answers"
wait "$stream"
t_done=$(now_ms)
answered=$(awk '$2 == 0' "$tmp/stream.rc" | wc -l)
for i in $(awk '$2 != 0 {print $1}' "$tmp/stream.rc"); do
	echo "  command $i: exit $(awk -v i="$i" '$1 == i {print $2}' "$tmp/stream.rc"): $(tr '\n' ' ' <"$tmp/d$i.err") $(tail -c 300 "$tmp/d$i.out")"
done
check "DeleteSnapshot stream: all $n answered succeeded across the kill" [ "$answered" = $n ]
check "the worker failed over during the stream" [ "$(connections "$tmp/w1.log")" -gt "$before" ]
echo "# stream: the remaining commands completed $(( (t_done - t_kill) / 1000 )) s after the kill"
"$CLUSTER" revive "$cl" "$K3" >/dev/null 2>&1
check "node $K3 rejoined: 3 running nodes" wait_running "$O" 3 90
check "no secret in the worker's log" bash -c "! grep -qF '$(cat "$PW_FILE")' '$tmp/w1.log'"

kill -TERM "$w1"; wait "$w1" 2>/dev/null
e2e_done
