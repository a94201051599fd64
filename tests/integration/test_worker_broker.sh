#!/usr/bin/env bash
# Integration tests of the snapworker daemon and snapctl against a real
# RabbitMQ (the runner's, from $SW_RABBITMQ_ENV; this script starts its own
# only for the broker-restart case): topology, a command end to end with
# confirms and reply_to, poison messages, fair dispatch across two workers,
# redelivery after kill -9, graceful SIGTERM, broker restart, no secret in logs.
# Every broker object gets a per-run prefix so other tests on the same broker
# are not disturbed.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
# shellcheck source=tests/integration/worker_lib.sh
. "$here/tests/integration/worker_lib.sh"
tmp=$(mktemp -d /tmp/swwrk.XXXXXX)
own_broker=""


cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null
	[ -n "$own_broker" ] && "$here/tests/rig/rabbitmq.sh" stop "$own_broker" >/dev/null 2>&1
	rm -rf "$tmp"
}
http_pid=""
trap cleanup EXIT

if [ -z "${SW_RABBITMQ_ENV:-}" ] || [ ! -f "$SW_RABBITMQ_ENV" ]; then
	echo "no broker (SW_RABBITMQ_ENV unset): run through tests/run.sh"
	echo "0 passed, 1 failed"
	exit 1
fi
# shellcheck disable=SC1090
. "$SW_RABBITMQ_ENV"
PW_FILE=$AMQP_PASSWORD_FILE
PW=$(cat "$PW_FILE")
prefix="t$$"
mkdir -p "$tmp/store"

# A slow HTTP source for RegisterTemplate (/slow/N: 404 after N seconds).
mkdir -p "$tmp/www"
start_http "$tmp/www"

# write_conf FILE URL PASSWORD_FILE [JOBS [GRACE]]
write_conf() {
	cat >"$1" <<EOF
[worker]
jobs = ${4:-1}
grace = ${5:-30}
queues = default
[amqp]
url = $2
password_file = $3
heartbeat = 5
exchange = $prefix.commands
events_exchange = $prefix.events
dead_letter_exchange = $prefix.dlx
dead_letter_queue = $prefix.dead
[store]
nfs://10.0.0.5/export/secondary = $tmp/store
[download]
allow = 127.0.0.0/8
EOF
}

slow_cmd() { # id seconds
	printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"url":"http://127.0.0.1:%s/slow/%s","account_id":2,"template_id":7}}' "$1" "$HTTP_PORT" "$2"
}


conf=$tmp/w.conf
write_conf "$conf" "$AMQP_URL" "$PW_FILE" 1 30
Q=$prefix.commands.default

# --- topology and a command end to end ------------------------------------------
start_worker "$conf" "$tmp/w1.log" w1
w1=$wpid
check "worker consumes its queue" wait_consumers "$Q" 1
args=$($RABBITMQCTL list_queues name type arguments 2>/dev/null | grep "^$Q	")
check "command queue is a quorum queue" grep -q quorum <<<"$args"
check "command queue has x-delivery-limit 5" grep -q 'x-delivery-limit.*5' <<<"$args"
check "command queue dead-letters to the DLX" grep -q "$prefix.dlx" <<<"$args"
check "exchanges declared" bash -c "$RABBITMQCTL list_exchanges name type 2>/dev/null | grep -q '^$prefix.events	topic' && $RABBITMQCTL list_exchanges name type 2>/dev/null | grep -q '^$prefix.dlx	fanout'"

id=$(uuid)
delete_cmd "$id" >"$tmp/c1.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 20 "$tmp/c1.json" >"$tmp/c1.out" 2>/dev/null
rc=$?
check "submit --wait exits 0 on success" [ $rc -eq 0 ]
check "final event arrives through reply_to" grep -q "\"id\":\"$id\".*\"status\":\"succeeded\"" "$tmp/c1.out"
check "exactly one final event printed" [ "$(grep -c '"status":"succeeded"' "$tmp/c1.out")" = 1 ]
check "log line carries the command id" grep -q "\"cmd_id\":\"$id\"" "$tmp/w1.log"

# The password from the environment works too, and argv never carries it.
SNAPCTL_PASSWORD=$PW "$CTL" -c "$conf" submit --wait --timeout 20 "$tmp/c1.json" >/dev/null 2>&1
check "SNAPCTL_PASSWORD is accepted (redelivered id answered again)" [ $? -eq 0 ]

# --- commands queued before any worker ran: snapctl declare ---------------------------
confd=$tmp/d.conf
sed "s/= $prefix\./= ${prefix}d./" "$conf" >"$confd"
idd=$(uuid)
delete_cmd "$idd" >"$tmp/d.json"
"$CTL" -c "$confd" --password-file "$PW_FILE" submit "$tmp/d.json" >/dev/null 2>"$tmp/d.err"
rc=$?
check "submit with no topology yet: exit 2, says how to fix it" \
	bash -c "[ $rc -eq 2 ] && grep -q 'snapctl declare' '$tmp/d.err'"
"$CTL" -c "$confd" --password-file "$PW_FILE" declare >"$tmp/d.out" 2>&1
rc=$?
check "declare: exit 0, names the quorum queue" \
	bash -c "[ $rc -eq 0 ] && grep -q '^queue: ${prefix}d.commands.default (quorum, x-delivery-limit 5)' '$tmp/d.out'"
check "declare again: idempotent" "$CTL" -c "$confd" --password-file "$PW_FILE" declare
check "submit with no worker running: confirmed" \
	"$CTL" -c "$confd" --password-file "$PW_FILE" submit "$tmp/d.json"
queued() { local i; for i in $(seq 100); do [ "$(conf=$confd ready "${prefix}d.commands.default")" = 1 ] && return 0; sleep 0.1; done; return 1; }
check "the command waits in the queue" queued
start_worker "$confd" "$tmp/wd.log" wd
wd=$wpid
check "the first worker to start runs it" wait_grep 20 "\"cmd_id\":\"$idd\".*succeeded" "$tmp/wd.log"
kill -TERM "$wd"
wait_exit 120 "$wd" 2>/dev/null

# --- poison messages ----------------------------------------------------------------
dead_before=$(ready "$prefix.dead")
printf '{"garbage' >"$tmp/p1.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate "$tmp/p1.json" >/dev/null 2>&1
pid_bad=$(uuid)
printf '{"version":1,"id":"%s","type":"DeleteSnapshot","store":{"url":"nfs://x/y"},"args":{"path":"/etc/passwd"}}' "$pid_bad" >"$tmp/p2.json"
# snapctl itself refuses it, naming the field, publishing nothing; --dry-run only checks.
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 20 "$tmp/p2.json" >"$tmp/p2v.out" 2>"$tmp/p2v.err"
rc=$?
check "snapctl refuses an invalid command (exit 1), naming the field" \
    bash -c "[ $rc -eq 1 ] && grep -q 'invalid command.*args.path' '$tmp/p2v.err' && [ ! -s '$tmp/p2v.out' ]"
printf 'not json' >"$tmp/p3.json"
check "snapctl refuses a body that is not JSON (exit 1)" bash -c \
    "! '$CTL' -c '$conf' --password-file '$PW_FILE' submit '$tmp/p3.json' 2>'$tmp/p3.err'; [ \$? -eq 0 ] && grep -q 'not valid JSON' '$tmp/p3.err'"
check "snapctl --dry-run accepts a valid command without any broker" bash -c \
    "'$CTL' --amqp-url amqp://nobody@127.0.0.1:1/ submit --dry-run '$here/tests/fixtures/proto/CreateSnapshot.json' | grep -q '^valid: CreateSnapshot '"
# The worker's answer to the same command, published as is.
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate --wait --timeout 20 "$tmp/p2.json" >"$tmp/p2.out" 2>/dev/null
rc=$?
check "invalid command with an id: failed event, exit 1" [ $rc -eq 1 ]
check "failed event says INVALID_COMMAND" grep -q '"code":"INVALID_COMMAND"' "$tmp/p2.out"
dead_ok() {
	local i
	for i in $(seq 50); do
		[ "$(ready "$prefix.dead")" -ge $((dead_before + 2)) ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
check "both poison messages land in the dead-letter queue" dead_ok
check "worker survived the poison messages" kill -0 "$w1"

# --- snapctl dlq and events: look at the dead letters, replay one, purge it ----------------
DLQ=("$CTL" -c "$conf" --password-file "$PW_FILE" dlq)
"${DLQ[@]}" list >"$tmp/dlq1.out" 2>"$tmp/dlq1.err"
check "dlq list shows the invalid command with its id and the worker's error" \
    grep -qE "^$pid_bad +DeleteSnapshot +default +1  INVALID_COMMAND: .*args.path" "$tmp/dlq1.out"
check "dlq list shows the unreadable one too, without an id" grep -q '^(no id) ' "$tmp/dlq1.out"
"${DLQ[@]}" list --json >"$tmp/dlq2.out" 2>/dev/null
check "dlq list --json: one JSON object per message, the error and who dead-lettered it" python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$tmp/dlq2.out')]
r = [x for x in rows if x['id'] == '$pid_bad']
sys.exit(0 if len(r) == 1 and r[0]['error'].startswith('INVALID_COMMAND') and r[0]['dead_lettered_by'] == 'worker' and r[0]['attempt'] == 1 else 1)"
check "dlq show prints the command's body" bash -c \
    "'${DLQ[0]}' -c '$conf' --password-file '$PW_FILE' dlq show '$pid_bad' | grep -q '/etc/passwd'"
check "looking took nothing: the dead-letter queue still holds both" \
    [ "$(ready "$prefix.dead")" -ge $((dead_before + 2)) ]
# Replay: the command goes back to its zone; the worker refuses it again (a failed event).
"$CTL" -c "$conf" --password-file "$PW_FILE" events --id "$pid_bad" --status failed --count 1 \
    --timeout 30 >"$tmp/ev.out" 2>"$tmp/ev.err" &
evp=$!
for _ in $(seq 50); do grep -q following "$tmp/ev.err" && break; sleep 0.1; done
"${DLQ[@]}" replay "$pid_bad" >"$tmp/replay.out" 2>&1
check "dlq replay sends it back to its zone" grep -q "^replayed $pid_bad (DeleteSnapshot, zone default)" "$tmp/replay.out"
wait "$evp"
check "snapctl events --id --status failed sees the worker's answer to the replay" \
    bash -c "[ \$(wc -l <'$tmp/ev.out') = 1 ] && grep -q '\"id\":\"$pid_bad\"' '$tmp/ev.out' && grep -q '\"status\":\"failed\"' '$tmp/ev.out'"
in_dlq() { "${DLQ[@]}" list --json 2>/dev/null | grep -c "\"$1\""; }
again() { local i; for i in $(seq 50); do [ "$(in_dlq "$pid_bad")" = 1 ] && return 0; sleep 0.2; done; return 1; }
check "and it is dead-lettered again, once" again
"${DLQ[@]}" purge "$pid_bad" >"$tmp/purge.out" 2>&1
check "dlq purge removes it" bash -c "grep -q '^purged $pid_bad' '$tmp/purge.out' && [ \"\$('${DLQ[0]}' -c '$conf' --password-file '$PW_FILE' dlq list --json | grep -c '$pid_bad')\" = 0 ]"
"${DLQ[@]}" show "$pid_bad" >/dev/null 2>"$tmp/show.err"
check "dlq show of a command not there: exit 1, says so" \
    bash -c "[ $? -eq 1 ] && grep -q 'no command $pid_bad' '$tmp/show.err'"
"${DLQ[@]}" frobnicate >/dev/null 2>"$tmp/bad.err"
check "an unknown dlq action is named" bash -c "[ $? -eq 2 ] && grep -q \"'frobnicate'\" '$tmp/bad.err'"

# --- snapctl reads only the broker part of a configuration; status says nothing before the broker answers
sed "s|^\[download\]|[vcenter vc9]\nurl = https://vc.example/sdk\nuser = u\npassword_file = /nonexistent/vc.secret\n[download]|" \
    "$conf" >"$tmp/c_vc.conf"
check "snapctl -c works without read access to a vCenter secret it never uses" bash -c \
    "'$CTL' -c '$tmp/c_vc.conf' --password-file '$PW_FILE' status | grep -q '^$Q '"
sed "s|^url = .*|url = amqp://snapworker@127.0.0.1:1/|" "$conf" >"$tmp/c_down.conf"
"$CTL" -c "$tmp/c_down.conf" --password-file "$PW_FILE" status >"$tmp/st_down.out" 2>"$tmp/st_down.err"
rc=$?
check "snapctl status with the broker down: exit 2, an error, no table" \
    bash -c "[ $rc -eq 2 ] && [ ! -s '$tmp/st_down.out' ] && grep -q 'cannot connect' '$tmp/st_down.err'"

# --- check means what run means -------------------------------------------------------
bad_conf() { cp "$conf" "$1"; printf '%s\n' "${@:2}" >>"$1"; }
bad_conf "$tmp/c_metrics.conf" "[metrics]" "listen = localhost:9464"
"$SW" check -c "$tmp/c_metrics.conf" >"$tmp/c_metrics.out" 2>&1
rc=$?
check "check: [metrics] listen with a host name is a configuration error (exit 2), as for run" \
    bash -c "[ $rc -eq 2 ] && grep -q 'not a numeric address' '$tmp/c_metrics.out'"
"$SW" run -c "$tmp/c_metrics.conf" >/dev/null 2>&1
check "run refuses the same configuration (exit 2)" [ $? -eq 2 ]
sed 's|^jobs = |log_file = /nonexistent-dir/w.log\njobs = |' "$conf" >"$tmp/c_log.conf"
"$SW" check -c "$tmp/c_log.conf" >"$tmp/c_log.out" 2>&1
rc=$?
check "check: a log_file that cannot be opened fails (exit 1), naming it" \
    bash -c "[ $rc -eq 1 ] && grep -q 'log_file /nonexistent-dir/w.log: FAILED' '$tmp/c_log.out'"
sed "s|^nfs://10.0.0.5/export/secondary = .*|&\nextract_dir = /nonexistent-dir/extract|" "$conf" >"$tmp/c_x.conf"
"$SW" check -c "$tmp/c_x.conf" >"$tmp/c_x.out" 2>&1
rc=$?
check "check: an extract_dir that cannot exist fails, naming it" \
    bash -c "[ $rc -eq 1 ] && grep -q 'extract_dir /nonexistent-dir/extract: FAILED' '$tmp/c_x.out'"
sed 's|^heartbeat = 5|heartbeat = 5\ndelivery_limit = 7|' "$conf" >"$tmp/c_dl.conf"
"$SW" check -c "$tmp/c_dl.conf" >"$tmp/c_dl.out" 2>&1
rc=$?
check "check: a delivery_limit other than the existing queue's fails, naming the argument" \
    bash -c "[ $rc -eq 1 ] && grep -q 'topology: FAILED.*x-delivery-limit' '$tmp/c_dl.out'"
timeout 60 "$SW" run -c "$tmp/c_dl.conf" >/dev/null 2>"$tmp/c_dl.log"
rc=$?
check "run with it stops at once (exit 2) instead of retrying forever, and says why" \
    bash -c "[ $rc -eq 2 ] && grep -q 'other arguments.*not starting' '$tmp/c_dl.log'"
"$SW" check -c "$conf" >"$tmp/c_ok.out" 2>&1
check "check: the good configuration passes, topology included" \
    bash -c "[ $? -eq 0 ] && grep -q 'topology: ok' '$tmp/c_ok.out'"

# --- fair dispatch: a slow command does not hold up others ------------------------
start_worker "$conf" "$tmp/w2.log" w2
w2=$wpid
check "second worker consumes" wait_consumers "$Q" 2
slow=$(uuid)
slow_cmd "$slow" 10 >"$tmp/slow.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 30 "$tmp/slow.json" >"$tmp/slow.out" 2>/dev/null &
slow_ctl=$!
sleep 0.5
t0=$(date +%s%N)
all=0
for i in $(seq 10); do
	delete_cmd "$(uuid)" >"$tmp/f$i.json"
	"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 5 "$tmp/f$i.json" >/dev/null 2>&1 && all=$((all + 1))
done
t1=$(date +%s%N)
check "10 fast commands done ($(( (t1 - t0) / 1000000 )) ms)" [ $all -eq 10 ]
# Not a time bound: the order.  The slow one (10 s) has no answer yet.
check "... all of them while the slow one still runs (its snapctl waits)" kill -0 "$slow_ctl"
wait_exit 120 "$slow_ctl"
check "slow command finished with one final event (NOT_FOUND)" grep -q '"code":"NOT_FOUND"' "$tmp/slow.out"

# --- kill -9 of a worker mid-run: the command is redelivered and completes --------
kill -TERM "$w2"; wait_exit 120 "$w2" 2>/dev/null
wait_consumers "$Q" 1
k=$(uuid)
slow_cmd "$k" 4 >"$tmp/k.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 40 "$tmp/k.json" >"$tmp/k.out" 2>/dev/null &
k_ctl=$!
sleep 1
kill -KILL "$w1"
wait_exit 120 "$w1" 2>/dev/null
start_worker "$conf" "$tmp/w3.log" w3
w3=$wpid
wait_exit 120 "$k_ctl"
check "command killed mid-run completes on another worker" grep -q "\"id\":\"$k\".*\"status\":\"failed\".*NOT_FOUND" "$tmp/k.out"
check "the new worker ran it" grep -q "\"cmd_id\":\"$k\"" "$tmp/w3.log"
check "one final event for it" [ "$(grep -c '"status":"failed"' "$tmp/k.out")" = 1 ]

# --- graceful SIGTERM: the running job finishes and is acknowledged -----------------
g=$(uuid)
slow_cmd "$g" 2 >"$tmp/g.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 30 "$tmp/g.json" >"$tmp/g.out" 2>/dev/null &
g_ctl=$!
sleep 0.7
kill -TERM "$w3"
wait_exit 120 "$w3"
rc=$?
wait_exit 120 "$g_ctl"
check "SIGTERM: worker exits 0" [ $rc -eq 0 ]
check "SIGTERM: the running command still finished" grep -q "\"id\":\"$g\".*\"status\":\"failed\"" "$tmp/g.out"
check "SIGTERM: logged the stop" grep -q 'stopping; running jobs get' "$tmp/w3.log"
check "queue empty after graceful stop" [ "$(ready "$Q")" = 0 ]

# --- grace over: the job is cancelled and requeued, not lost ----------------------
write_conf "$tmp/short.conf" "$AMQP_URL" "$PW_FILE" 1 1
start_worker "$tmp/short.conf" "$tmp/w4.log" w4
w4=$wpid
wait_consumers "$Q" 1
c=$(uuid)
slow_cmd "$c" 5 >"$tmp/cx.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit "$tmp/cx.json" >/dev/null 2>&1
sleep 0.7
kill -TERM "$w4"
wait_exit 120 "$w4"
requeued() { local i; for i in $(seq 30); do [ "$(ready "$Q")" = 1 ] && return 0; sleep 0.2; done; return 1; }
check "after grace the cancelled command is back in the queue" requeued
start_worker "$conf" "$tmp/w5.log" w5
w5=$wpid
drained() { local i; for i in $(seq 60); do [ "$(ready "$Q")" = 0 ] && grep -q "\"cmd_id\":\"$c\".*NOT_FOUND" "$tmp/w5.log" && return 0; sleep 0.2; done; return 1; }
check "the requeued command runs on the next worker" drained

# --- secrets never in logs ----------------------------------------------------------
check "the broker password appears in no log" bash -c "! grep -qFf '$PW_FILE' $tmp/w*.log"

kill -TERM "$w5"; wait_exit 120 "$w5" 2>/dev/null

# --- broker restart mid-run: reconnect, nothing lost --------------------------------
own_broker=$tmp/broker2
if "$here/tests/rig/rabbitmq.sh" start "$own_broker" >"$tmp/broker2.log" 2>&1; then
	# shellcheck disable=SC1090
	B2_URL=$(. "$own_broker/rabbitmq.env"; echo "$AMQP_URL")
	B2_PW=$(. "$own_broker/rabbitmq.env"; echo "$AMQP_PASSWORD_FILE")
	write_conf "$tmp/b2.conf" "$B2_URL" "$B2_PW" 1 30
	conf=$tmp/b2.conf
	PW_FILE=$B2_PW
	start_worker "$conf" "$tmp/w6.log" w6
	w6=$wpid
	wait_consumers "$Q" 1
	r=$(uuid)
	slow_cmd "$r" 3 >"$tmp/r.json"
	"$CTL" -c "$conf" --password-file "$PW_FILE" submit "$tmp/r.json" >/dev/null 2>&1
	sleep 1
	"$here/tests/rig/rabbitmq.sh" restart "$own_broker" >>"$tmp/broker2.log" 2>&1
	check "worker reconnects after the broker restart" wait_consumers "$Q" 1
	rid=$(uuid)
	delete_cmd "$rid" >"$tmp/r2.json"
	"$CTL" -c "$conf" --password-file "$PW_FILE" submit --wait --timeout 30 "$tmp/r2.json" >"$tmp/r2.out" 2>/dev/null
	check "a new command succeeds after the restart" grep -q '"status":"succeeded"' "$tmp/r2.out"
	redone() { local i; for i in $(seq 100); do [ "$(grep -c "\"cmd_id\":\"$r\".*NOT_FOUND" "$tmp/w6.log")" -ge 1 ] && [ "$(ready "$Q")" = 0 ] && return 0; sleep 0.2; done; return 1; }
	check "the command running during the restart is redelivered and answered" redone
	check "reconnect was logged" grep -q 'reconnecting\|retrying' "$tmp/w6.log"
	kill -TERM "$w6"; wait_exit 120 "$w6" 2>/dev/null
else
	nok "could not start a second broker (see broker2.log)"
	cat "$tmp/broker2.log"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
