#!/usr/bin/env bash
# Cancel (docs/protocol.md, "Cancel") against the real broker and the
# simulator: snapctl cancel ID records the cancel (a quorum queue
# <prefix>.cancel.<id>) and tells every worker through the control exchange.
#   1. a command queued while no worker is up: cancelled, then a worker
#      starts: answered CANCELLED, never run (no VM snapshot, nothing on the
#      share);
#   2. a command queued behind several others, one worker with one slot:
#      the others succeed, it is answered CANCELLED without running;
#   3. a CreateSnapshot cancelled mid-export: stops within seconds (the time
#      is printed), answered once CANCELLED (not retryable), no VM snapshot,
#      no worker VM, no open lease, no partial file, no journal;
#   4. a finished command: unaffected, snapctl says so (exit 1);
#   5. a command waiting in a delay queue for its next attempt: answered
#      CANCELLED when it comes back, never retried;
#   6. a cancel sent while the worker running the command is cut off from
#      the broker (a TCP relay in between is stopped): on reconnecting the
#      worker finds the record, stops and undoes; the command is answered
#      once CANCELLED;
#   7. the broker killed and restarted between the cancel of a queued command
#      and the start of a worker: the record survives, the command is
#      answered CANCELLED without running.
# A private broker of this test's own (it is restarted), never the runner's.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

# The store is a local file system whose locks every worker sees.
export SNAPWORKER_STORE_LOCK_SCOPE=shared
export SNAPWORKER_RETRY_DELAYS="4s"
export SNAPWORKER_DOWNLOAD_ALLOW=127.0.0.0/8
e2e_start_vcsim -seed-mib 16 -task-delay 100ms -lease-timeout 300s
SW_RABBITMQ_ENV="" e2e_broker # own_broker=$tmp/mq: started by e2e_broker, stopped by e2e_cleanup
conf=$tmp/w.conf
e2e_conf "$conf" 1
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
check "event log bound to the event exchange" evlog_start "$conf"

cancel() { "$CTL" -c "$conf" --password-file "$PW_FILE" cancel "$@"; }
publish() { "$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate "$1" >/dev/null 2>"$1.err"; }
# cancelled_once ID: exactly one final event, failed CANCELLED, not retryable.
cancelled_once() {
	[ "$(nfinals "$1")" = 1 ] && finals "$1" | python3 -c '
import json, sys
e = json.loads(sys.stdin.readline())
sys.exit(0 if e["status"] == "failed" and e["error"]["code"] == "CANCELLED" and e["error"]["retryable"] is False else 1)'
}
# No file of command ID on the share (an empty directory of its object may stay, as after
# any failed attempt).
no_files_of() {
	local left
	left=$(find "$STORE" -path "*$1*" ! -type d 2>/dev/null)
	[ -z "$left" ] && return 0
	echo "  left: $left"
	return 1
}
wait_grep() { # seconds pattern file
	local i
	for i in $(seq $(($1 * 10))); do grep -q "$2" "$3" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
datastore_clean() {
	rigpy "not [f for f in d['files'] if f['path'].count('-') >= 4 or '-00000' in f['path']]"
}
queue_ready() { queue_line "$conf" "$prefix.commands.default" | awk '{print $2}'; }
queue_drained() { local i; for i in $(seq 50); do [ "$(queue_ready)" = 0 ] && return 0; sleep 0.2; done; return 1; }
worker_logs() { cat "$tmp"/w*.log 2>/dev/null; }
not_in_dead() { ! "$CTL" -c "$conf" --password-file "$PW_FILE" dlq list 2>/dev/null | grep -q "$1"; }

# --- --help and bad arguments -------------------------------------------------------
"$CTL" cancel --help >"$tmp/help.out" 2>&1
check "snapctl cancel --help: exit 0 and describes cancel" bash -c "grep -q 'cancel \[--timeout S\] ID' '$tmp/help.out' && grep -q CANCELLED '$tmp/help.out'"
cancel not-a-uuid >/dev/null 2>"$tmp/bad.err"
check "snapctl cancel of a non-UUID: exit 2" [ $? -eq 2 ]

# --- 1. queued while no worker is up -------------------------------------------------
"$CTL" -c "$conf" --password-file "$PW_FILE" declare >/dev/null 2>&1
q1=$(uuid)
cmd_snapshot "$q1" "$disk1" 3 1 >"$tmp/q1.json"
publish "$tmp/q1.json"
cancel --timeout 2s "$q1" >"$tmp/q1.cancel" 2>&1
check "queued, no worker: snapctl cancel exits 0" [ $? -eq 0 ]
check "queued, no worker: it says the cancel is recorded" grep -q "cancel is recorded" "$tmp/q1.cancel"
check "queued, no worker: the cancel record exists" \
    bash -c "$RABBITMQCTL list_queues name 2>/dev/null | grep -qx '$prefix.cancel.$q1'"
e2e_worker "$conf" w1
w1=$wpid
check "queued, no worker: a worker started afterwards answers it" wait_final "$q1" 60
check "queued, no worker: answered once, failed CANCELLED, not retryable" cancelled_once "$q1"
check "queued, no worker: the worker says it never started" \
    grep -q "$q1.*cancelled before it started" "$tmp/w1.log"
check "queued, no worker: no VM snapshot, worker VM or lease in vCenter" rig_settled
check "queued, no worker: nothing on the share" no_files_of "$q1"
check "queued, no worker: not dead-lettered" not_in_dead "$q1"

# --- 2. queued behind several others, one worker with one slot ------------------------
check "one worker consumes" e2e_wait_consumers "$conf" 1
inject "clear=1"
inject "nfc_rate=4194304" # the first snapshot exports 16 MiB in ~4 s
a=$(uuid)
cmd_snapshot "$a" "$disk1" 4 1 >"$tmp/a.json"
publish "$tmp/a.json"
others=()
for i in 1 2 3; do
	o=$(uuid)
	others+=("$o")
	delete_path="snapshots/9/9/$o/$o"
	cmd_path "$o" DeleteSnapshot "$delete_path" >"$tmp/o$i.json"
	publish "$tmp/o$i.json"
done
x=$(uuid)
cmd_snapshot "$x" "$disk1" 4 2 >"$tmp/x.json"
publish "$tmp/x.json"
z=$(uuid)
cmd_path "$z" DeleteSnapshot "snapshots/9/9/$z/$z" >"$tmp/z.json"
publish "$tmp/z.json"
cancel --timeout 2s "$x" >"$tmp/x.cancel" 2>&1
check "queued behind others: snapctl cancel exits 0, recorded" bash -c "[ $? -eq 0 ] && grep -q 'cancel is recorded' '$tmp/x.cancel'"
succeeded_once() { wait_final "$1" "${2:-60}" && [ "$(nfinals "$1")" = 1 ] && finals "$1" | grep -q '"status":"succeeded"'; }
answered_cancelled() { wait_final "$1" "${2:-60}" && cancelled_once "$1"; }
check "queued behind others: the command ahead succeeds" succeeded_once "$a" 90
all_others() { local o; for o in "${others[@]}" "$z"; do wait_final "$o" 60 && finals "$o" | grep -q '"status":"succeeded"' || return 1; done; }
check "queued behind others: the others (before and after it) succeed" all_others
check "queued behind others: it is answered once CANCELLED" answered_cancelled "$x"
check "queued behind others: it never started (worker log)" grep -q "$x.*cancelled before it started" "$tmp/w1.log"
check "queued behind others: nothing of it on the share" no_files_of "$x"
check "queued behind others: vCenter clean" rig_settled
check "queued behind others: the command queue is empty" queue_drained

# --- 3. a running CreateSnapshot, mid-export ------------------------------------------
inject "clear=1"
inject "nfc_rate=1048576" # 16 MiB at 1 MiB/s: the export lasts ~16 s
r=$(uuid)
cmd_snapshot "$r" "$disk1" 5 1 >"$tmp/r.json"
publish "$tmp/r.json"
exporting() {
	local i
	for i in $(seq 300); do
		rigpy "any(f.get('bytes_transferred',0)>0 for l in d.get('leases') or [] if l['mode']=='export' for f in l.get('files') or [])" && return 0
		sleep 0.05
	done
	return 1
}
check "running: the export is under way" exporting
sleep 1
check "running: partial data on the share while it exports" bash -c "[ -n \"\$(find '$STORE' -path '*$r*' -type f)\" ]"
t0=$(date +%s%3N)
cancel "$r" >"$tmp/r.cancel" 2>&1
rc=$?
t_ans=$(( $(date +%s%3N) - t0 ))
check "running: snapctl cancel exits 0" [ $rc -eq 0 ]
check "running: the worker answers 'cancelling'" grep -q "cancelling: it runs on w1" "$tmp/r.cancel"
wait_final "$r" 60
t_fin=$(( $(date +%s%3N) - t0 ))
echo "# cancel of a running export: worker's answer after $t_ans ms, final event after $t_fin ms"
check "running: the final event within 10 s of the cancel ($t_fin ms)" [ "$t_fin" -lt 10000 ]
check "running: answered once, failed CANCELLED, not retryable" cancelled_once "$r"
check "running: no VM snapshot, worker VM or open lease left" rig_settled
check "running: no partial file, no object on the share" no_files_of "$r"
check "running: no journal" no_journal "$r"
check "running: no debris anywhere on the share" no_debris
check "running: the datastore holds no worker VM file or delta" datastore_clean
check "running: the volume is intact" volumes_intact
check "running: not retried, not dead-lettered" bash -c "sleep 5; [ \"\$(grep -F '\"id\":\"$r\"' '$EVLOG' | grep -c '\"status\":\"retrying\"')\" = 0 ]"
check "running: not in the dead-letter queue" not_in_dead "$r"

# --- 4. a finished command -----------------------------------------------------------
f=$(uuid)
cmd_path "$f" DeleteSnapshot "snapshots/9/9/$f/$f" >"$tmp/f.json"
submit "$conf" "$tmp/f.json" "$tmp/f.out" 60
check "finished: the command succeeded" evtrue "$tmp/f.out" "e['status']=='succeeded'"
cancel "$f" >"$tmp/f.cancel" 2>&1
check "finished: snapctl cancel exits 1" [ $? -eq 1 ]
check "finished: the answer says it finished already, succeeded" grep -q "finished already (succeeded) on w1: unaffected" "$tmp/f.cancel"
sleep 1
check "finished: still exactly one outcome, succeeded" bash -c "[ \"\$(grep -F '\"id\":\"$f\"' '$EVLOG' | grep -cE '\"status\":\"(succeeded|failed)\"')\" = 1 ] && grep -F '\"id\":\"$f\"' '$EVLOG' | grep -q succeeded"
s=$(uuid)
cmd_snapshot "$s" "$disk1" 6 1 >"$tmp/s.json"
submit "$conf" "$tmp/s.json" "$tmp/s.out" 120
cancel "$s" >"$tmp/s.cancel" 2>&1
check "finished CreateSnapshot: cancel exits 1, unaffected" bash -c "[ $? -eq 1 ] && grep -q 'finished already (succeeded)' '$tmp/s.cancel'"
check "finished CreateSnapshot: its object still verifies" "$OVASTORE" -C "$STORE" verify "snapshots/6/1/$s/$s"

# --- 5. waiting in a delay queue for its next attempt --------------------------------
d=$(uuid)
printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"%s"},"args":{"url":"http://127.0.0.1:1/t.ova","account_id":2,"template_id":77}}' \
    "$d" "$STORE_URL" >"$tmp/d.json"
publish "$tmp/d.json"
retrying() { local i; for i in $(seq 100); do grep -F "\"id\":\"$d\"" "$EVLOG" | grep -q '"status":"retrying"' && return 0; sleep 0.1; done; return 1; }
check "delayed retry: the first attempt fails retryably" retrying
cancel --timeout 1s "$d" >"$tmp/d.cancel" 2>&1
check "delayed retry: cancel exits 0, recorded" bash -c "[ $? -eq 0 ] && grep -q 'cancel is recorded' '$tmp/d.cancel'"
check "delayed retry: when it comes back it is answered CANCELLED" answered_cancelled "$d" 30
check "delayed retry: the second attempt never started (worker log)" grep -q "$d.*cancelled before it started" "$tmp/w1.log"

# --- 6. cancel while the worker running it is cut off from the broker ---------------
kill -TERM "$w1"
wait_exit 40 "$w1" >/dev/null
cat >"$tmp/relay.py" <<'PY'
import socket, sys, threading
listen_port_file, target_port = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
port = int(open(listen_port_file).read()) if len(sys.argv) > 3 else 0
s.bind(('127.0.0.1', port)); s.listen(16)
open(listen_port_file, 'w').write(str(s.getsockname()[1]))
def pipe(a, b):
    try:
        while True:
            x = a.recv(65536)
            if not x: break
            b.sendall(x)
    except OSError: pass
    for c in (a, b):
        try: c.shutdown(socket.SHUT_RDWR)
        except OSError: pass
while True:
    c, _ = s.accept()
    u = socket.create_connection(('127.0.0.1', target_port))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
: >"$tmp/relay.port"
python3 "$tmp/relay.py" "$tmp/relay.port" "$AMQP_PORT" &
relay=$!
for _ in $(seq 50); do [ -s "$tmp/relay.port" ] && break; sleep 0.1; done
rport=$(cat "$tmp/relay.port")
sed "s#^url = amqp://.*#url = amqp://snapworker@127.0.0.1:$rport/%2f#" "$conf" >"$tmp/relay.conf"
e2e_worker "$tmp/relay.conf" w2
w2=$wpid
check "cut off: a worker consumes through the relay" e2e_wait_consumers "$conf" 1
inject "clear=1"
inject "nfc_rate=1048576"
c6=$(uuid)
cmd_snapshot "$c6" "$disk1" 7 1 >"$tmp/c6.json"
publish "$tmp/c6.json"
r="$c6"
check "cut off: the export is under way" exporting
kill -KILL "$relay"
wait "$relay" 2>/dev/null
check "cut off: the worker lost the broker" wait_grep 10 "slot 0: .*reconnecting\|connection to broker lost\|broker missed heartbeats" "$tmp/w2.log"
cancel --timeout 2s "$c6" >"$tmp/c6.cancel" 2>&1
check "cut off: nobody answers; snapctl says the cancel is recorded (exit 0)" bash -c "[ $? -eq 0 ] && grep -q 'cancel is recorded' '$tmp/c6.cancel'"
t0=$(date +%s%3N)
python3 "$tmp/relay.py" "$tmp/relay.port" "$AMQP_PORT" reuse &
relay=$!
evpids+=("$relay")
check "cut off: on reconnecting the worker finds the record and cancels" \
    wait_grep 30 "cancel record found after reconnecting" "$tmp/w2.log"
check "cut off: the command is answered" wait_final "$c6" 60
echo "# cancel of a cut-off worker's command: final event $(( $(date +%s%3N) - t0 )) ms after the relay came back"
check "cut off: answered once, failed CANCELLED, not retryable" cancelled_once "$c6"
check "cut off: no VM snapshot, worker VM or open lease left" rig_settled 150
check "cut off: no partial file, no object, no journal" no_files_of "$c6"
check "cut off: no debris anywhere on the share" no_debris
check "cut off: the datastore holds no worker VM file or delta" datastore_clean
check "cut off: the command queue is empty" queue_drained
check "no journal left on the store" no_journals
kill -TERM "$w2"
wait_exit 40 "$w2" >/dev/null
kill -TERM "$relay" 2>/dev/null

# --- 7. the record outlives a broker restart --------------------------------------------
b=$(uuid)
cmd_snapshot "$b" "$disk1" 8 1 >"$tmp/b.json"
publish "$tmp/b.json"
cancel --timeout 1s "$b" >"$tmp/b.cancel" 2>&1
check "broker restart: cancel of a queued command recorded" bash -c "[ $? -eq 0 ] && grep -q 'cancel is recorded' '$tmp/b.cancel'"
evlog_stop
t0=$(date +%s)
"$here/tests/rig/rabbitmq.sh" restart "$own_broker" >"$tmp/restart.log" 2>&1
check "broker killed and restarted ($(($(date +%s) - t0)) s)" [ $? = 0 ]
check "broker restart: the event log is bound again" evlog_start "$conf"
check "broker restart: the cancel record is still there" \
    bash -c "$RABBITMQCTL list_queues name 2>/dev/null | grep -qx '$prefix.cancel.$b'"
e2e_worker "$conf" w3
check "broker restart: a worker started afterwards answers it" wait_final "$b" 60
check "broker restart: answered once, failed CANCELLED, not retryable" cancelled_once "$b"
check "broker restart: it never started" grep -q "$b.*cancelled before it started" "$tmp/w3.log"
check "broker restart: nothing of it on the share" bash -c "$(declare -f no_files_of); STORE='$STORE'; no_files_of '$b'"
check "broker restart: vCenter clean" rig_settled

e2e_done
