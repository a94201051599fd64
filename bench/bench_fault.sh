#!/usr/bin/env bash
# Fault benchmarks: what a fault costs, against the same work without it in
# the same run.  Everything runs on a broker, a 3-node cluster and a vCenter
# simulator of this script's own (tests/rig/, via the fault suite's helpers in
# tests/integration/fault_lib.sh), stopped by PID when it ends.  Prints three
# result rows; never asserts.
#
# 1. A worker killed (SIGKILL) while its CreateSnapshot exports, two workers of
#    one slot each: the time from the kill to the final succeeded event,
#    against the same CreateSnapshot without a kill.  The simulator serves
#    every download at 8 MiB/s (-nfc-rate; a 16 MiB disk: ~2 s of export) and
#    holds a dead worker's export lease 300 s, as vCenter does
#    (-lease-timeout).  The store's locks are seen by every worker
#    (lock_scope = shared), so the survivor knows the killed attempt dead,
#    aborts the lease its journal records and undoes at once.
# 2. A CreateSnapshot on a 3-node cluster with the worker's node killed
#    (SIGKILL) mid-export, as tests/integration/test_fault_cluster.sh does: total command
#    time, against the same command without a kill.
# 3. A soak: a few hundred mixed commands (DeleteSnapshot of absent objects,
#    RegisterTemplate from a loopback HTTP server, a few CreateSnapshot)
#    published one by one with snapctl submit against 2 workers, while a
#    worker is killed -9 and restarted twice and the broker is killed -9 and
#    restarted once (tests/rig/rabbitmq.sh restart).  Figure: commands without
#    a final event, from an event log on a durable queue that outlives the
#    broker restart; plus duplicated effects (more than one committed object
#    per CreateSnapshot or template per RegisterTemplate).
set -u
# shellcheck disable=SC1091
. "$(dirname "$0")/../tests/integration/fault_lib.sh"

SOAK_N=${BENCH_FAULT_SOAK_N:-300}
CLUSTER=$here/tests/rig/rabbitmq-cluster.sh
cl=$tmp/cluster
http_pid=""
now_ms() { date +%s%3N; }
secs() { awk -v m="$1" 'BEGIN { printf "%.1f s", m / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
log() { echo "# $*" >&2; }

cluster_stop() {
	local k pid
	[ -d "$cl" ] || return 0
	"$CLUSTER" stop "$cl" >/dev/null 2>&1
	for k in 0 1 2; do
		pid=$(cat "$cl/n$k/rabbitmq.pid" 2>/dev/null) || continue
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done
}
bench_cleanup() {
	[ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
	cluster_stop
	fault_cleanup
}
trap bench_cleanup EXIT

# Every attempt that finds a dead attempt's lease open waits 5 s (past the 4 s lease timeout).
export SNAPWORKER_RETRY_DELAYS="5s 5s 5s"
export SNAPWORKER_STORE_LOCK_SCOPE=shared
e2e_start_vcsim -seed-mib 16 -task-delay 150ms -lease-timeout 300s -nfc-rate 8388608
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"

# kill_when_exporting PID: SIGKILL PID as soon as an export lease has moved bytes; prints the kill time (ms).
kill_when_exporting() {
	python3 - "$VC_BASE" "$1" <<'PY'
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
}
exporting() {
	local i
	for i in $(seq 600); do
		rigpy "any(f.get('bytes_transferred',0)>0 for l in d.get('leases') or [] if l['mode']=='export' for f in l.get('files') or [])" && return 0
		sleep 0.05
	done
	return 1
}
# runner_of ID LOG...: the log (of those given) of the worker that started ID.
runner_of() { local id=$1 f; shift; for f in "$@"; do grep -q "\"cmd_id\":\"$id\".*\"msg\":\"started" "$f" 2>/dev/null && { echo "$f"; return 0; }; done; return 1; }
# timed_submit CONF JSON OUT: submit --wait; prints the milliseconds it took (-1: no success).
timed_submit() {
	local t0 rc
	t0=$(now_ms)
	"$CTL" -c "$1" --password-file "$PW_FILE" submit --wait --timeout 170 "$2" >"$3" 2>"$3.err"
	rc=$?
	if [ $rc = 0 ]; then echo $(($(now_ms) - t0)); else echo -1; fi
}

# ---- 1. worker kill -9 mid-CreateSnapshot ------------------------------------------
row1() {
	local conf=$tmp/w1.conf base id t_kill t_done victim vlog fig=-1 i
	e2e_conf "$conf" 1
	"$CTL" -c "$conf" --password-file "$PW_FILE" declare >/dev/null 2>&1
	e2e_worker "$conf" a1; local pa=$wpid
	e2e_worker "$conf" a2; local pb=$wpid
	e2e_wait_consumers "$conf" 2 || log "row 1: 2 consumers not seen"
	id=$(uuid)
	cmd_snapshot "$id" "$disk1" 21 1 >"$tmp/r1b.json"
	base=$(timed_submit "$conf" "$tmp/r1b.json" "$tmp/r1b.out")
	log "row 1: baseline CreateSnapshot $base ms"
	rig_settled 50 || log "row 1: simulator not settled after the baseline"
	id=$(uuid)
	cmd_snapshot "$id" "$disk1" 21 2 >"$tmp/r1k.json"
	"$CTL" -c "$conf" --password-file "$PW_FILE" submit "$tmp/r1k.json" >/dev/null 2>"$tmp/r1k.err"
	if exporting; then
		vlog=""
		for i in $(seq 50); do vlog=$(runner_of "$id" "$tmp/a1.log" "$tmp/a2.log") && break; sleep 0.05; done
		case $vlog in */a1.log) victim=$pa ;; */a2.log) victim=$pb ;; *) victim="" ;; esac
		if [ -n "$victim" ]; then
			kill -KILL "$victim"
			t_kill=$(now_ms)
			wait "$victim" 2>/dev/null
			log "row 1: killed $(basename "$vlog" .log) (pid $victim) mid-export"
			# The final event itself, from the event log.
			wait_final "$id" 170 && finals "$id" | grep -q '"status":"succeeded"' && t_done=$(now_ms) && fig=$((t_done - t_kill))
		fi
	fi
	log "row 1: recovery $fig ms; $(nfinals "$id") final event(s)"
	for i in "$pa" "$pb"; do kill -TERM "$i" 2>/dev/null; done
	for i in "$pa" "$pb"; do wait "$i" 2>/dev/null; done
	if [ "$fig" -ge 0 ] && [ "$base" -ge 0 ]; then
		echo "| fault: worker kill -9 mid-CreateSnapshot export (16 MiB at 8 MiB/s, 2 workers x 1 slot, an open lease vCenter would hold 300 s, locks every worker sees): kill to final succeeded | $(secs "$fig") | $(secs "$base") (same CreateSnapshot, no kill) | $(ratio "$fig" "$base") | < 60 s |"
	else
		echo "| fault: worker kill -9 mid-CreateSnapshot export | n/a (kill $fig ms, baseline $base ms; see log) | | | < 60 s |"
	fi
}

# ---- 3. soak with worker kills and a broker restart -----------------------------------
row3() {
	local conf=$tmp/s.conf i id k t0 t_soak ids=() types=() pending lost=0 dup=0 failed=0 n
	local pa pb restart_pid=""
	mkdir -p "$tmp/www" "$tmp/ova"
	head -c 70001 /dev/urandom >"$tmp/ova/t-disk0.vmdk"
	cat >"$tmp/ova/t.ovf" <<'OVF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="t-disk0.vmdk" ovf:id="file1" ovf:size="70001"/></References>
  <DiskSection><Info>Disks</Info>
    <Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="d1" ovf:fileRef="file1"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
OVF
	tar --format=ustar -cf "$tmp/www/t.ova" -C "$tmp/ova" t.ovf t-disk0.vmdk
	local hport
	hport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	(cd "$tmp/www" && exec python3 -m http.server --bind 127.0.0.1 "$hport") >"$tmp/http.log" 2>&1 &
	http_pid=$!
	for i in $(seq 50); do curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$hport/t.ova" && break; sleep 0.1; done

	prefix="soak$$"
	e2e_conf "$conf" 1
	printf '[download]\nallow = 127.0.0.0/8\n' >>"$conf"
	"$CTL" -c "$conf" --password-file "$PW_FILE" declare >/dev/null 2>&1
	# The event log: a durable queue bound to every event, so events wait there while its consumer is away.
	amqp_auth
	# amqp-consume declares a queue it binds (not durable), so the binding is made by the broker
	# itself (rabbitmqctl eval) and amqp-consume only consumes.
	amqp-declare-queue "${amqp_srv[@]}" -d -q "$prefix.evlog" >/dev/null 2>>"$tmp/evlog.err"
	( . "$own_broker/rabbitmq.env" && $RABBITMQCTL eval "rabbit_binding:add({binding,{resource,<<\"/\">>,exchange,<<\"$prefix.events\">>},<<\"#\">>,{resource,<<\"/\">>,queue,<<\"$prefix.evlog\">>},[]}, <<\"bench\">>)." ) \
	    >>"$tmp/evlog.err" 2>&1 || log "soak: binding the event log failed"
	soak_consume() {
		amqp-consume "${amqp_srv[@]}" -q "$prefix.evlog" -p 100 \
		    -- sh -c "cat >>'$EVLOG'; echo >>'$EVLOG'" 2>>"$tmp/evlog.err" &
		EVPID=$!
		evpids+=("$EVPID")
	}
	soak_consume
	e2e_worker "$conf" s1; pa=$wpid
	e2e_worker "$conf" s2; pb=$wpid
	e2e_wait_consumers "$conf" 2 || log "soak: 2 consumers not seen"

	# submit_retry FILE: publish (confirmed), retrying while the broker is away (at most ~60 s).
	submit_retry() {
		for _ in $(seq 120); do
			"$CTL" -c "$conf" --password-file "$PW_FILE" submit "$1" >/dev/null 2>>"$tmp/soak.submit.err" && return 0
			sleep 0.5
		done
		return 1
	}
	local unpublished=0 ncreate=0 nreg=0 ndel=0
	t0=$(now_ms)
	for i in $(seq "$SOAK_N"); do
		id=$(uuid)
		if [ $((i % 50)) = 25 ]; then
			cmd_snapshot "$id" "$disk1" 31 "$i" >"$tmp/c.json"; types+=(C); ncreate=$((ncreate + 1))
		elif [ $((i % 3)) = 0 ]; then
			printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"%s"},"args":{"url":"http://127.0.0.1:%s/t.ova","account_id":31,"template_id":%s}}' \
			    "$id" "$STORE_URL" "$hport" "$i" >"$tmp/c.json"; types+=(R); nreg=$((nreg + 1))
		else
			cmd_path "$id" DeleteSnapshot "snapshots/1/2/$id/$id" >"$tmp/c.json"; types+=(D); ndel=$((ndel + 1))
		fi
		ids+=("$id")
		submit_retry "$tmp/c.json" || { unpublished=$((unpublished + 1)); log "soak: $id never confirmed"; }
		# The faults, spread over the stream.
		case $i in
		$((SOAK_N * 2 / 10)) | $((SOAK_N * 7 / 10)))
			k=$pa
			kill -KILL "$k"; wait "$k" 2>/dev/null
			log "soak: worker s1 (pid $k) killed after $i submits"
			sleep 1
			e2e_worker "$conf" "s1.$i"; pa=$wpid ;;
		$((SOAK_N * 45 / 100)))
			log "soak: broker restart after $i submits"
			"$here/tests/rig/rabbitmq.sh" restart "$own_broker" >"$tmp/restart.log" 2>&1 &
			restart_pid=$! ;;
		esac
		if [ -n "$restart_pid" ] && ! kill -0 "$restart_pid" 2>/dev/null; then
			wait "$restart_pid"; log "soak: broker back (rc $?) after $i submits"
			restart_pid=""
			# shellcheck disable=SC1091
			. "$own_broker/rabbitmq.env"
			kill -TERM "$EVPID" 2>/dev/null
			soak_consume
		fi
		sleep 0.05
	done
	[ -n "$restart_pid" ] && { wait "$restart_pid"; . "$own_broker/rabbitmq.env"; kill -TERM "$EVPID" 2>/dev/null; soak_consume; }
	t_soak=$(now_ms)
	log "soak: $SOAK_N submitted ($ndel DeleteSnapshot, $nreg RegisterTemplate, $ncreate CreateSnapshot) in $(secs $((t_soak - t0))); $unpublished never confirmed"
	# Wait (bounded, ~150 s) for a final event of every command.
	printf '%s\n' "${ids[@]}" >"$tmp/soak.ids"
	count_pending() {
		python3 - "$tmp/soak.ids" "$EVLOG" <<'PY'
import json, sys
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
done = set()
for l in open(sys.argv[2], errors="replace"):
    l = l.strip()
    if not l: continue
    try: e = json.loads(l)
    except ValueError: continue
    if e.get("status") in ("succeeded", "failed"): done.add(e.get("id"))
print(sum(1 for i in ids if i not in done))
PY
	}
	for i in $(seq 120); do
		pending=$(count_pending)
		[ "$pending" = 0 ] && break
		# amqp-consume gone (its connection lost): start it again.
		kill -0 "$EVPID" 2>/dev/null || soak_consume
		sleep 1
	done
	lost=$(count_pending)
	log "soak: every final event in $(secs $(($(now_ms) - t0))) after the first submit; $lost without one"
	failed=$(python3 - "$tmp/soak.ids" "$EVLOG" <<'PY'
import json, sys
ids = set(l.strip() for l in open(sys.argv[1]) if l.strip())
st = {}
for l in open(sys.argv[2], errors="replace"):
    try: e = json.loads(l)
    except ValueError: continue
    if e.get("id") in ids and e.get("status") in ("succeeded", "failed"): st.setdefault(e["id"], set()).add(e["status"])
print(sum(1 for s in st.values() if "failed" in s))
PY
)
	# Duplicated effects: a CreateSnapshot with more than one committed object, a template
	# registered more than once.
	for i in "${!ids[@]}"; do
		id=${ids[$i]}
		case ${types[$i]} in
		C) n=$(find "$STORE/snapshots/31/$((i + 1))" -name '*.ova.meta' 2>/dev/null | wc -l)
		   [ "$n" -gt 1 ] && dup=$((dup + 1)) ;;
		R) n=$(find "$STORE" -path "*/31/$((i + 1))/*" -name '*.ova.meta' -not -path "$STORE/snapshots/*" 2>/dev/null | wc -l)
		   [ "$n" -gt 1 ] && dup=$((dup + 1)) ;;
		esac
	done
	local metas
	metas=$(find "$STORE" -path "*/31/*" -name '*.ova.meta' -not -path "$STORE/snapshots/*" | wc -l)
	local cmetas
	cmetas=$(find "$STORE/snapshots/31" -name '*.ova.meta' 2>/dev/null | wc -l)
	log "soak: $failed commands failed; $cmetas snapshot objects for $ncreate CreateSnapshot, $metas template objects for $nreg RegisterTemplate; $dup duplicated"
	log "soak: restarts seen: $(cat "$tmp"/s1*.log "$tmp"/s2.log | grep -c 'connected to the broker') connections in the workers' logs"
	for k in "$pa" "$pb"; do kill -TERM "$k" 2>/dev/null; done
	for k in "$pa" "$pb"; do wait "$k" 2>/dev/null; done
	echo "| fault: soak, $SOAK_N mixed commands ($ndel DeleteSnapshot, $nreg RegisterTemplate, $ncreate CreateSnapshot), 2 workers x 1 slot, 2 worker kill -9 + restarts, 1 broker kill -9 + restart: commands without a final event | $lost lost, $dup duplicated effects ($failed failed, $unpublished unconfirmed submits) | $SOAK_N commands | $lost/$SOAK_N | 0 lost |"
}

# ---- 2. broker node kill -9 on a 3-node cluster ---------------------------------------
row2() {
	local conf=$tmp/c.conf t0 base fig=-1 id K p pid t_sub w rc
	t0=$(now_ms)
	if ! "$CLUSTER" start "$cl" >"$tmp/cluster.start" 2>&1; then
		cat "$tmp/cluster.start" >&2
		echo "| fault: CreateSnapshot across a broker node kill -9 (3-node cluster) | n/a (the cluster did not start) | | | completes once |"
		return
	fi
	log "cluster of 3 started in $(secs $(($(now_ms) - t0)))"
	# shellcheck disable=SC1091
	. "$cl/cluster.env"
	PW_FILE=$AMQP_PASSWORD_FILE
	prefix="cl$$"
	local urls
	read -r -a urls <<<"$AMQP_URLS"
	local ports=("$NODE0_PORT" "$NODE1_PORT" "$NODE2_PORT")
	AMQP_URL="${urls[0]}, ${urls[1]} ${urls[2]}"
	e2e_conf "$conf" 1
	"$CTL" -c "$conf" --password-file "$PW_FILE" declare >/dev/null 2>&1
	e2e_worker "$conf" c1; w=$wpid
	e2e_wait_consumers "$conf" 1 || log "cluster: no consumer seen"
	id=$(uuid)
	cmd_snapshot "$id" "$disk1" 41 1 >"$tmp/c1.json"
	base=$(timed_submit "$conf" "$tmp/c1.json" "$tmp/c1.out")
	log "cluster: baseline CreateSnapshot $base ms"
	rig_settled 50 || log "cluster: simulator not settled after the baseline"
	p=$(grep -o 'connected to the broker at [^ ]*:[0-9]*' "$tmp/c1.log" | tail -1 | sed 's/.*://')
	K=-1
	for k in 0 1 2; do [ "${ports[$k]}" = "$p" ] && K=$k; done
	id=$(uuid)
	cmd_snapshot "$id" "$disk1" 41 2 >"$tmp/c2.json"
	if [ "$K" -ge 0 ]; then
		pid=$(cat "$cl/n$K/rabbitmq.pid")
		# snapctl waits on a node that stays up (the URL list starting after K).
		t_sub=$(now_ms)
		"$CTL" -c "$conf" --amqp-url "${urls[$(((K + 1) % 3))]} ${urls[$(((K + 2) % 3))]} ${urls[$K]}" \
		    --password-file "$PW_FILE" submit --wait --timeout 170 "$tmp/c2.json" >"$tmp/c2.out" 2>"$tmp/c2.err" &
		local sctl=$!
		kill_when_exporting "$pid" >"$tmp/c2.kill" || log "cluster: no export seen to kill during"
		"$CLUSTER" kill "$cl" "$K" >/dev/null 2>&1
		log "cluster: node $K (the worker's) killed mid-export"
		wait "$sctl"
		rc=$?
		[ $rc = 0 ] && fig=$(($(now_ms) - t_sub))
		sleep 2 # a duplicate attempt would show by now
	else
		log "cluster: the worker's node not found in its log"
	fi
	local metas finals_ok
	metas=$(find "$STORE/snapshots/41/2" -name '*.ova.meta' 2>/dev/null | wc -l)
	finals_ok=$(grep -c '"status":"succeeded"' "$tmp/c2.out" 2>/dev/null)
	log "cluster: kill run $fig ms, $metas committed object(s), $finals_ok succeeded event(s) seen by snapctl;" \
	    "worker failovers logged: $(grep -c 'failing over to' "$tmp/c1.log"), results not sent: $(grep -c 'result not sent' "$tmp/c1.log")"
	kill -TERM "$w" 2>/dev/null; wait "$w" 2>/dev/null
	if [ "$fig" -ge 0 ] && [ "$base" -ge 0 ]; then
		echo "| fault: CreateSnapshot across a kill -9 of the worker's broker node (3-node cluster, 16 MiB at 8 MiB/s): total command time | $(secs "$fig") ($metas committed object) | $(secs "$base") (same CreateSnapshot, no kill) | $(ratio "$fig" "$base") | completes once |"
	else
		echo "| fault: CreateSnapshot across a kill -9 of the worker's broker node (3-node cluster) | n/a (kill run $fig ms, baseline $base ms, $metas objects; see log) | | | completes once |"
	fi
}

SW_RABBITMQ_ENV="" e2e_broker # own_broker=$tmp/mq, stopped by e2e_cleanup
e2e_conf "$tmp/w1.conf" 1
evlog_start "$tmp/w1.conf" || log "row 1: the event log did not start"
# Rows are printed in the order 1, 2, 3 at the end; the cluster (row 2) runs last,
# after the single broker is stopped, so the two never share the machine.
ROWS=${BENCH_FAULT_ROWS:-1 2 3} # a subset, to try one row alone
: >"$tmp/row1"; : >"$tmp/row2"; : >"$tmp/row3"
case " $ROWS " in *" 1 "*) row1 >"$tmp/row1" ;; esac
case " $ROWS " in *" 3 "*) row3 >"$tmp/row3" ;; esac
evlog_stop
"$here/tests/rig/rabbitmq.sh" stop "$own_broker" >/dev/null 2>&1
case " $ROWS " in *" 2 "*) row2 >"$tmp/row2" ;; esac
cat "$tmp/row1" "$tmp/row2" "$tmp/row3"
