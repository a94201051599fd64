#!/usr/bin/env bash
# Fleet-wide concurrency limits (docs/architecture.md, "Concurrency limits")
# against the real broker and the simulator:
#   1. 3 workers with 2 job slots each, [limits] datastore = 2, and 6
#      CreateSnapshots of volumes on one datastore: the simulator, sampled
#      every 50 ms, never has more than 2 exports (open export leases) at
#      once, and has 2 at some point (so the check can fail); every command
#      succeeds once with a verified object; the commands that found the
#      datastore full announced it with a waiting event naming the limit
#      (attempt unspent: no retrying event), the log says so at info and
#      /metrics counts the waits and the tokens held;
#   2. kill -9 of a worker holding a token mid-export: the broker drops its
#      exclusive token queue with its connection (the delay is printed), a
#      command waiting for that datastore starts, and every command, the
#      killed one included, succeeds;
#   3. a command waiting for a token is cancelled: it is answered once
#      CANCELLED when it comes back, without ever exporting;
#   4. exports of one VM overlap (the limit lets 2 run): another command's
#      snapshot removal consolidates the delta a worker VM was about to attach
#      (CreateVM_Task fails FileNotFound, injected): the chain is read again
#      and the command succeeds.
# Prints "N passed, N failed".
# test-timeout: 600
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

export SNAPWORKER_STORE_LOCK_SCOPE=shared
export SNAPWORKER_RETRY_DELAYS="4s"
export SNAPWORKER_LIMITS_DATASTORE=2
export SNAPWORKER_LIMITS_WAIT=1s
e2e_start_vcsim -seed-mib 16 -task-delay 100ms -lease-timeout 20s -nfc-rate 4194304
e2e_broker
conf=$tmp/w.conf
e2e_conf "$conf" 2
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
check "event log bound to the event exchange" evlog_start "$conf"
publish() { "$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate "$1" >/dev/null 2>"$1.err"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
succeeded_once() { wait_final "$1" "${2:-120}" && [ "$(nfinals "$1")" = 1 ] && finals "$1" | grep -q '"status":"succeeded"'; }
tokens() { $RABBITMQCTL list_queues name 2>/dev/null | grep -c "^$prefix\.limit\.datastore\." ; }

# The simulator's side: open export leases, sampled until $tmp/stop exists.
cat >"$tmp/sample.py" <<'PY'
import json, os, ssl, sys, time, urllib.request
base, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
peak, samples = 0, 0
with open(out + ".log", "w") as log:
    while not os.path.exists(stop):
        try:
            d = json.load(urllib.request.urlopen(base + "/rig/state", context=ctx, timeout=5))
        except Exception:
            time.sleep(0.05)
            continue
        n = len([l for l in d.get("leases") or [] if l.get("mode") == "export" and l.get("state") in ("initializing", "ready")])
        samples += 1
        if n != peak and n > peak:
            log.write("%.3f %d\n" % (time.time(), n))
            log.flush()
        peak = max(peak, n)
        time.sleep(0.05)
with open(out, "w") as f:
    f.write("%d %d\n" % (peak, samples))
PY

# --- 1. 3 workers x 2 slots, 6 exports, datastore limit 2 -------------------------------
MPORT=$(free_port)
printf '[metrics]\nlisten = 127.0.0.1:%s\n' "$MPORT" >"$tmp/metrics.conf"
cat "$conf" "$tmp/metrics.conf" >"$tmp/w1.conf"
e2e_worker "$tmp/w1.conf" w1
w1=$wpid
e2e_worker "$conf" w2
w2=$wpid
e2e_worker "$conf" w3
w3=$wpid
check "3 workers x 2 slots consume" e2e_wait_consumers "$conf" 6
check "the log states the limits at start" grep -q "concurrency limits: vcenter 0, host 0, datastore 2" "$tmp/w1.log"
inject "clear=1" # every export at 4 MiB/s (-nfc-rate): 16 MiB last ~4 s
rm -f "$tmp/stop"
python3 "$tmp/sample.py" "$VC_BASE" "$tmp/peak" "$tmp/stop" &
spid=$!
ids=()
for v in 1 2 3 4 5 6; do
	id=$(uuid)
	ids+=("$id")
	cmd_snapshot "$id" "$disk1" 7 "$v" >"$tmp/c$v.json"
	publish "$tmp/c$v.json"
done
all_ok=1
for id in "${ids[@]}"; do succeeded_once "$id" 180 || { all_ok=0; echo "  not succeeded once: $id"; }; done
touch "$tmp/stop"
wait "$spid"
read -r peak nsamples <"$tmp/peak"
echo "# simulator sampled $nsamples times: at most $peak export(s) at once (limit 2)"
check "all 6 CreateSnapshots succeed, each answered once" [ $all_ok = 1 ]
check "never more than 2 exports at once on the datastore (peak $peak)" [ "$peak" -le 2 ]
check "the limit was reached: 2 exports at once at some point" [ "$peak" = 2 ]
verified() { local v=1 id; for id in "${ids[@]}"; do "$OVASTORE" -C "$STORE" verify "snapshots/7/$v/$id/$id" >/dev/null 2>&1 || return 1; v=$((v + 1)); done; }
check "every object verifies on the share" verified
same_bytes() {
	local id
	for id in "${ids[@]}"; do finals "$id" | python3 -c '
import json, sys
e = json.loads(sys.stdin.readline())
print(e["result"]["physical_size"], e["result"]["virtual_size"])'; done | sort -u | wc -l
}
check "every object has the same sizes (same disk, same bytes)" [ "$(same_bytes)" = 1 ]
nwait=$(grep -F '"status":"waiting"' "$EVLOG" | wc -l)
echo "# $nwait waiting event(s)"
check "commands that found the datastore full were told: waiting events" [ "$nwait" -ge 1 ]
waiting_ok() {
	grep -F '"status":"waiting"' "$EVLOG" | python3 -c "
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    assert e['wait']['limit'] == 'datastore:$VCSIM_DATASTORE', e
    assert e['wait']['delay_s'] == 1, e
    assert 'error' not in e and 'retry' not in e, e
"
}
check "each waiting event names the limit (datastore:$VCSIM_DATASTORE) and the delay" waiting_ok
check "waiting spends no attempt: no retrying event" bash -c "! grep -qF '\"status\":\"retrying\"' '$EVLOG'"
check "waiting spends no attempt: every start is attempt 1 (the log says 'started (attempt N)' for N > 1)" \
    bash -c "! cat '$tmp'/w[123].log | grep -q 'started (attempt'"
check "the log says which limit at info" bash -c "cat '$tmp'/w[123].log | grep -q 'waiting for a token of datastore:$VCSIM_DATASTORE'"
check "every token was given back" bash -c "[ \"\$($RABBITMQCTL list_queues name 2>/dev/null | grep -c '^$prefix\.limit\.')\" = 0 ]"
scrape() { curl -sf -m 20 "http://127.0.0.1:$MPORT/metrics"; }
check "/metrics: snapworker_limit_tokens_held{kind=\"datastore\"} back to 0" bash -c \
    "curl -sf -m 20 'http://127.0.0.1:$MPORT/metrics' | grep -qx 'snapworker_limit_tokens_held{kind=\"datastore\"} 0'"
echo "# w1 /metrics: $(scrape | grep '^snapworker_limit_waits_total{kind="datastore"}')"
waits_total() { local n=0 l; for l in $(scrape | sed -n 's/^snapworker_limit_waits_total{kind="datastore"} //p'); do n=$((n + l)); done; echo "$n"; }
check "/metrics counts the waits of w1's commands" bash -c "[ \"\$(grep -c 'waiting for a token' '$tmp/w1.log')\" = '$(waits_total)' ]"
check "vCenter clean after the run" rig_settled

# --- 2. kill -9 of a worker holding a token -----------------------------------------------
inject "clear=1"
for v in 11 12 13; do inject "nfc_rate=1048576"; done # the next 3 exports: ~16 s each
k=()
for v in 11 12 13; do
	id=$(uuid)
	k+=("$id")
	cmd_snapshot "$id" "$disk1" 7 "$v" >"$tmp/k$v.json"
	publish "$tmp/k$v.json"
done
two_exports() {
	local i
	for i in $(seq 150); do
		rigpy "len([l for l in d.get('leases') or [] if l['mode']=='export' and l.get('state')=='ready' and any(f.get('bytes_transferred',0)>0 for f in l.get('files') or [])])==2" && return 0
		sleep 0.2
	done
	return 1
}
check "two exports under way, the third command waits" two_exports
check "two tokens held" [ "$(tokens)" = 2 ]
# A command exporting now (its worker VM, named by its id, is a lease's entity), and the
# worker running it: the one whose last line about it is not a wait.
exporting_id() {
	state | python3 -c '
import json, sys
d = json.load(sys.stdin)
ls = {l["entity"]: l["moref"] for l in d.get("leases") or [] if l["mode"] == "export" and l.get("state") == "ready"}
print(next(("%s %s" % (v["name"], ls[v["moref"]]) for v in d["vms"] if v["moref"] in ls), ""))'
}
victim=""
read -r vid vlease <<<"$(exporting_id)"
for w in w1 w2 w3; do
	[ -n "$vid" ] || break
	last=$(grep "$vid" "$tmp/$w.log" | tail -1)
	if [ -n "$last" ] && ! echo "$last" | grep -q "waiting for a token"; then
		victim=$w
		break
	fi
done
case $victim in w1) vpid=$w1 ;; w2) vpid=$w2 ;; w3) vpid=$w3 ;; *) vpid="" ;; esac
check "a worker holding a token found ($victim)" [ -n "$vpid" ]
before=$(state | python3 -c 'import json,sys; print(",".join(l["moref"] for l in json.load(sys.stdin).get("leases") or []))')
t0=$(date +%s%3N)
kill -KILL "$vpid"
# Its tokens are exclusive queues of its connection "snapworker NAME limits": they go
# when the broker closes that connection.  rabbitmqctl takes a second or more a call:
# the connection went between the start of the last call that still listed it and the
# start of the first that did not.
holder_up() { $RABBITMQCTL list_connections client_properties 2>/dev/null | grep -q "snapworker $victim limits"; }
back=""
for i in $(seq 40); do
	ts=$(( $(date +%s%3N) - t0 ))
	if ! holder_up; then back="$ts-$(( $(date +%s%3N) - t0 ))"; break; fi
done
echo "# the killed worker's token connection was gone from the broker at the first rabbitmqctl call that did not list it (started-answered ${back:-never} ms after the kill)"
check "the killed worker's token comes back within 10 s" [ -n "$back" ]
# Another command starts exporting: a lease that was not open at the kill (the killed
# attempt's own lease stays open until the simulator's lease timeout).
third_starts() {
	local i
	for i in $(seq 300); do
		rigpy "[l for l in d.get('leases') or [] if l['mode']=='export' and l['moref'] not in '$before'.split(',') and l.get('state')=='ready']" && {
			echo "# another command exports $(( $(date +%s%3N) - t0 )) ms after the kill"
			return 0
		}
		sleep 0.1
	done
	return 1
}
check "a waiting command takes the freed token and exports" third_starts
all_k() { local id; for id in "${k[@]}"; do one_outcome "$id" || return 1; done; }
k_ok() { local id; for id in "${k[@]}"; do wait_final "$id" 240 && finals "$id" | tail -1 | grep -q '"status":"succeeded"' || { echo "  not succeeded: $id"; return 1; }; done; }
check "all three succeed, the killed one elsewhere" k_ok
check "each has one outcome" all_k
check "vCenter settles (the killed attempt's lease expires)" rig_settled 200
check "no token left" bash -c "[ \"\$($RABBITMQCTL list_queues name 2>/dev/null | grep -c '^$prefix\.limit\.')\" = 0 ]"

# --- 3. a waiting command is cancelled ----------------------------------------------------
inject "clear=1"
for v in 21 22; do inject "nfc_rate=1048576"; done # two exports of ~16 s hold both tokens
c=()
for v in 21 22 23; do
	id=$(uuid)
	c+=("$id")
	cmd_snapshot "$id" "$disk1" 7 "$v" >"$tmp/x$v.json"
	publish "$tmp/x$v.json"
	[ "$v" = 22 ] && two_exports >/dev/null
done
x=${c[2]}
waits_of() { grep -F "\"id\":\"$1\"" "$EVLOG" | grep -c '"status":"waiting"'; }
waiting_now() { local i; for i in $(seq 100); do [ "$(waits_of "$x")" -ge 1 ] && return 0; sleep 0.1; done; return 1; }
check "the third command waits for a token" waiting_now
"$CTL" -c "$conf" --password-file "$PW_FILE" cancel --timeout 2s "$x" >"$tmp/x.cancel" 2>&1
check "snapctl cancel of the waiting command: recorded" grep -q "cancel is recorded" "$tmp/x.cancel"
cancelled_once() {
	wait_final "$1" 60 && [ "$(nfinals "$1")" = 1 ] && finals "$1" | python3 -c '
import json, sys
e = json.loads(sys.stdin.readline())
sys.exit(0 if e["status"] == "failed" and e["error"]["code"] == "CANCELLED" and e["error"]["retryable"] is False else 1)'
}
check "the waiting command is answered once CANCELLED, not retryable" cancelled_once "$x"
check "it never exported (no progress event, nothing on the share)" bash -c \
    "! grep -F '\"id\":\"$x\"' '$EVLOG' | grep -q '\"status\":\"progress\"' && [ -z \"\$(find '$STORE' -path '*$x*' ! -type d)\" ]"
check "the worker says it was cancelled before it started" bash -c "cat '$tmp'/w[123].log | grep -q '$x.*cancelled before it started'"
both_ok() { local id; for id in "${c[0]}" "${c[1]}"; do succeeded_once "$id" 120 || return 1; done; }
check "the two holding the tokens succeed" both_ok
check "vCenter clean" rig_settled

# --- 4. the snapshot's chain changed under a command ---------------------------------------
inject "clear=1"
inject "fault=CreateVM_Task&fault_type=FileNotFound&fault_msg=File%20was%20not%20found&in_task=1"
f=$(uuid)
cmd_snapshot "$f" "$disk1" 7 31 >"$tmp/f.json"
publish "$tmp/f.json"
check "CreateVM_Task FileNotFound: the chain is read again and the command succeeds" succeeded_once "$f" 120
check "the log says why" bash -c "cat '$tmp'/w[123].log | grep -q '$f.*disk chain changed under us'"
check "vCenter clean" rig_settled
e2e_done
