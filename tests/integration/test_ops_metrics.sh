#!/usr/bin/env bash
# Operations: the Prometheus endpoint scraped after real commands through
# the broker and the simulator (counters by type and outcome, bytes, the
# duration histogram, in-flight, broker reconnects after the broker drops
# the connection), a port already taken refusing the start, and the sd_notify
# protocol as systemd would see it (READY=1 only once the slots consume,
# WATCHDOG=1 pings with WATCHDOG_USEC, STOPPING=1 on SIGTERM) through a
# notify socket of our own.  Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

e2e_start_vcsim -seed-mib 2
e2e_broker

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
scrape() { curl -sf -m 20 "http://127.0.0.1:$MPORT/metrics"; }
# metric NAME_AND_LABELS: the sample's value (empty when absent).
metric() { scrape | awk -v k="$1" '$1 == k { print $2 }'; }
wait_metric() { # NAME_AND_LABELS VALUE
	local i
	for i in $(seq 100); do [ "$(metric "$1")" = "$2" ] && return 0; sleep 0.1; done
	echo "  $1 = '$(metric "$1")', expected $2"
	return 1
}

# A notify socket that records every datagram, one message per line (newlines inside -> '|').
cat >"$tmp/notify.py" <<'EOF'
import socket, sys, os
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode(errors="replace").replace("\n", "|") + "\n")
EOF
python3 "$tmp/notify.py" "$tmp/notify.sock" "$tmp/notify.log" &
npid=$!
wpids+=("$npid")
for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && break; sleep 0.1; done

MPORT=$(free_port)
conf=$tmp/w.conf
e2e_conf "$conf" 1
printf '[metrics]\nlisten = 127.0.0.1:%s\n' "$MPORT" >>"$conf"

# --- sd_notify: no READY while the broker cannot be reached ------------------------
bad=$tmp/bad.conf
sed -e "s#^url = amqp.*#url = amqp://snapworker@127.0.0.1:$(free_port)/%2f#" -e '/^\[metrics\]/,$d' "$conf" >"$bad"
NOTIFY_SOCKET=$tmp/notify.sock SNAPWORKER_WORKER_NAME=nobroker "$SW" run -c "$bad" 2>"$tmp/nobroker.log" &
bpid=$!
wpids+=("$bpid")
sleep 2
check "no READY=1 while no slot reached the broker" bash -c "! grep -q 'READY=1' '$tmp/notify.log' 2>/dev/null"
kill -TERM "$bpid"
wait_exit 120 "$bpid"
check "SIGTERM while connecting: exit 0" [ $? -eq 0 ]
check "STOPPING=1 sent on SIGTERM" grep -q 'STOPPING=1' "$tmp/notify.log"
: >"$tmp/notify.log"

# --- the worker under test --------------------------------------------------------
# No sweeper: its own vCenter login would blur the login count checked below.
SNAPWORKER_SWEEP_INTERVAL=0 NOTIFY_SOCKET=$tmp/notify.sock WATCHDOG_USEC=400000 e2e_worker "$conf" m1
w1=$wpid
check "worker consumes" e2e_wait_consumers "$conf" 1
for _ in $(seq 50); do grep -q 'READY=1' "$tmp/notify.log" 2>/dev/null && break; sleep 0.1; done
check "READY=1 after the slot connected" grep -q '^READY=1|STATUS=1 job slot' "$tmp/notify.log"
sleep 1
check "WATCHDOG=1 pinged at least every half interval (>= 3 in 1 s at 400 ms)" \
    [ "$(grep -c '^WATCHDOG=1$' "$tmp/notify.log")" -ge 3 ]
check "the log names the metrics address" grep -q "metrics at http://127.0.0.1:$MPORT/metrics" "$tmp/m1.log"

check "GET /metrics answers 200 with the 0.0.4 text format" bash -c \
    "curl -sfi 'http://127.0.0.1:$MPORT/metrics' | tr -d '\r' | grep -qi '^content-type: text/plain; version=0.0.4'"
check "other paths are 404" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" = 404 ]
check "no command counted yet" [ "$(metric 'snapworker_commands_total{type="CreateSnapshot",outcome="succeeded"}')" = 0 ]
check "job slots gauge is the configured jobs" [ "$(metric snapworker_job_slots)" = 1 ]
# A strict reader of the exposition: every sample well-formed and of a declared metric.
cat >"$tmp/promcheck.py" <<'EOF'
import re, sys
types = {}
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        types[name] = kind
    elif line.startswith("#") or not line:
        continue
    else:
        m = re.fullmatch(r'([a-z_]+)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? (-?[0-9.]+|\+Inf)', line)
        if not m:
            sys.exit("bad sample line: " + line)
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        if m.group(1) not in types and base not in types:
            sys.exit("undeclared metric: " + line)
sys.exit(0 if types.get("snapworker_job_duration_seconds") == "histogram" else 1)
EOF
check "the exposition parses strictly" bash -c "curl -sf 'http://127.0.0.1:$MPORT/metrics' | python3 '$tmp/promcheck.py'"
check "the strict reader refuses a bad line" bash -c "printf '# TYPE snapworker_job_duration_seconds histogram\nx{a=b} 1\n' | python3 '$tmp/promcheck.py' 2>/dev/null; [ \$? -ne 0 ]"

# --- a second process on the same port refuses to start ------------------------------
SNAPWORKER_WORKER_NAME=m2 "$SW" run -c "$conf" 2>"$tmp/m2.log" &
m2=$!
wpids+=("$m2")
for _ in $(seq 50); do kill -0 "$m2" 2>/dev/null || break; sleep 0.1; done
wait_exit 120 "$m2"
check "a taken metrics port stops the start with status 1" [ $? -eq 1 ]
check "and says which address" grep -q "listen 127.0.0.1:$MPORT" "$tmp/m2.log"

# --- commands through the broker -------------------------------------------------
disk="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
id1=$(uuid)
cmd_snapshot "$id1" "$disk" >"$tmp/c1.json"
submit "$conf" "$tmp/c1.json" "$tmp/c1.out"
check "CreateSnapshot succeeds" evtrue "$tmp/c1.out" "e['status']=='succeeded'"
bytes=$(evpy "$tmp/c1.out" "sum(f['size'] for f in e['result']['files'])")
id2=$(uuid)
cmd_path "$id2" DeleteSnapshot "snapshots/2/13/$id1/$id1" >"$tmp/c2.json"
submit "$conf" "$tmp/c2.json" "$tmp/c2.out"
check "DeleteSnapshot succeeds" evtrue "$tmp/c2.out" "e['status']=='succeeded'"
id3=$(uuid)
cmd_path "$id3" DeleteSnapshot "snapshots/2/13/does-not-exist" >"$tmp/c3.json"
submit "$conf" "$tmp/c3.json" "$tmp/c3.out"
id4=$(uuid)
# Not found in the store is success for a delete; a path escaping the store is a failed command.
cmd_path "$id4" DeleteTemplate "../../etc/passwd" >"$tmp/c4.json"
submit "$conf" "$tmp/c4.json" "$tmp/c4.out"
check "an invalid path fails" evtrue "$tmp/c4.out" "e['status']=='failed'"
printf '{"garbage' >"$tmp/p.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate "$tmp/p.json" >/dev/null 2>&1

check "CreateSnapshot succeeded counted once" wait_metric 'snapworker_commands_total{type="CreateSnapshot",outcome="succeeded"}' 1
check "DeleteSnapshot succeeded counted twice" wait_metric 'snapworker_commands_total{type="DeleteSnapshot",outcome="succeeded"}' 2
failed_total=$(scrape | awk '$1 ~ /^snapworker_commands_total\{/ && ($1 ~ /outcome="failed"/ || $1 ~ /outcome="invalid"/) { s += $2 } END { print s + 0 }')
check "the invalid command and the poison message counted as failed/invalid (2)" [ "$failed_total" = 2 ]
check "poison message counted as type other, invalid" wait_metric 'snapworker_commands_total{type="other",outcome="invalid"}' 1
check "bytes transferred = the snapshot's files ($bytes)" [ "$(metric snapworker_bytes_transferred_total)" = "$bytes" ]
check "bytes are real (the seeded 2 MiB disk at least)" [ "${bytes:-0}" -ge 2097152 ]
check "duration histogram counts the snapshot" [ "$(metric 'snapworker_job_duration_seconds_count{type="CreateSnapshot"}')" = 1 ]
check "its +Inf bucket equals its count" [ "$(metric 'snapworker_job_duration_seconds_bucket{type="CreateSnapshot",le="+Inf"}')" = 1 ]
check "nothing in flight after the commands" [ "$(metric snapworker_jobs_in_flight)" = 0 ]
check "vCenter logins counted (the snapshot logged in once)" [ "$(metric snapworker_vcenter_logins_total)" = 1 ]
# A second vCenter command of the same credential set reuses the session.
id5=$(uuid)
cmd_snapshot "$id5" "$disk" >"$tmp/c5.json"
submit "$conf" "$tmp/c5.json" "$tmp/c5.out"
check "a second CreateSnapshot succeeds" evtrue "$tmp/c5.out" "e['status']=='succeeded'"
check "and reuses the session: still one vCenter login" [ "$(metric snapworker_vcenter_logins_total)" = 1 ]
check "no reconnect yet" [ "$(metric snapworker_broker_reconnects_total)" = 0 ]

# --- the broker drops every connection: the worker reconnects and counts it ---------------
if [ -n "${RABBITMQCTL:-}" ]; then
	$RABBITMQCTL close_all_connections "test_ops_metrics" >/dev/null 2>&1
	check "broker reconnect counted" wait_metric snapworker_broker_reconnects_total 1
	check "it consumes again" e2e_wait_consumers "$conf" 1
	check "READY=1 is not sent again after a reconnect" [ "$(grep -c 'READY=1' "$tmp/notify.log")" = 1 ]
fi

# --- stop ---------------------------------------------------------------------------------
kill -TERM "$w1"
wait_exit 120 "$w1"
check "SIGTERM: worker exits 0" [ $? -eq 0 ]
check "STOPPING=1 after READY=1" bash -c "grep -n 'READY=1\|STOPPING=1' '$tmp/notify.log' | cut -d: -f2 | cut -d'|' -f1 | tr '\n' ' ' | grep -q '^READY=1 STOPPING=1 $'"
check "the endpoint is gone after the stop" bash -c "! curl -sf 'http://127.0.0.1:$MPORT/metrics' >/dev/null"

e2e_done
