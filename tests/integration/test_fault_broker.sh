#!/usr/bin/env bash
# Fault suite (b): the broker dies (SIGKILL) and comes back on the same ports
# and data (tests/rig/rabbitmq.sh restart) while a worker runs a
# CreateSnapshot.  A private broker of this test's own, never the runner's.
# The command completes once: one committed object with the seeded bytes,
# one succeeded outcome in the worker's log, nothing left in the simulator or
# on the share, the command queue empty, the worker alive.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

e2e_start_vcsim -seed-mib 16 -task-delay 100ms -lease-timeout 30s
SW_RABBITMQ_ENV="" e2e_broker # own_broker=$tmp/mq: started by e2e_broker, stopped by e2e_cleanup
conf=$tmp/w.conf
e2e_conf "$conf" 1
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
"$CTL" -c "$conf" --password-file "$PW_FILE" declare >/dev/null 2>&1
e2e_worker "$conf" w1
w1=$wpid
check "worker consumes from the private broker" e2e_wait_consumers "$conf" 1

id=$(uuid)
cmd_snapshot "$id" "$disk1" 10 1 >"$tmp/b.json"
inject "nfc_rate=1048576" # the export lasts ~16 s: the broker restart (~10 s) falls in it
"$CTL" -c "$conf" --password-file "$PW_FILE" submit "$tmp/b.json" >/dev/null 2>"$tmp/b.err"
exporting() {
	local i
	for i in $(seq 300); do
		rigpy "any(f.get('bytes_transferred',0)>0 for l in d.get('leases') or [] if l['mode']=='export' for f in l.get('files') or [])" && return 0
		sleep 0.05
	done
	return 1
}
check "the export is under way" exporting
t0=$(date +%s)
"$here/tests/rig/rabbitmq.sh" restart "$own_broker" >"$tmp/restart.log" 2>&1
check "broker killed and restarted ($(($(date +%s) - t0)) s)" [ $? = 0 ]
# shellcheck disable=SC1091
. "$own_broker/rabbitmq.env"
done_once() {
	local i
	for i in $(seq 900); do
		[ -e "$STORE/snapshots/10/1/$id/$id.ova.meta" ] && grep -q "\"cmd_id\":\"$id\".*succeeded" "$tmp/w1.log" && return 0
		sleep 0.1
	done
	return 1
}
check "the command completes" done_once
sleep 2 # a duplicate attempt would show by now
# An attempt that finished while the broker was away could not send its answer; the
# redelivery answers from the committed object: one answer sent in all.
# When the first attempt's answer was lost, the redelivery (after the worker's reconnect
# backoff) answers: waited for, bounded, then 2 s more for a duplicate to show.
sent_once() {
	local ok lost i
	for i in $(seq 600); do
		ok=$(grep -c "\"cmd_id\":\"$id\".*\"msg\":\"succeeded" "$tmp/w1.log")
		lost=$(grep -c "\"cmd_id\":\"$id\".*result not sent" "$tmp/w1.log")
		[ $((ok - lost)) -ge 1 ] && break
		sleep 0.1
	done
	sleep 2
	ok=$(grep -c "\"cmd_id\":\"$id\".*\"msg\":\"succeeded" "$tmp/w1.log")
	lost=$(grep -c "\"cmd_id\":\"$id\".*result not sent" "$tmp/w1.log")
	echo "# $ok succeeded attempt(s), $lost of them unsent"
	[ $((ok - lost)) = 1 ]
}
check "exactly once: one answer sent (attempts that succeeded minus those whose result was not sent)" sent_once
check "a redelivery did not export again (the answer came from the share)" bash -c \
    "[ \$(grep -c '\"cmd_id\":\"$id\".*\"msg\":\"started\"' '$tmp/w1.log') -le 1 ] || grep -q '\"cmd_id\":\"$id\".*succeeded in [0-9]\{1,3\} ms' '$tmp/w1.log'"
check "one committed object with the seeded bytes" bash -c \
    "[ \$(find '$STORE/snapshots/10/1' -name '*.ova.meta' | wc -l) = 1 ] && [ \"\$(sha256sum <'$STORE/snapshots/10/1/$id/$id-disk0.vmdk' | cut -d' ' -f1)\" = '$VCSIM_SEED_SHA256_0' ]"
check "no debris, no journal" bash -c "[ -z \"\$(find '$STORE' -name '*.part')\" ] && [ ! -e '$STORE/.snapworker/journal/$id.journal' ]"
check "nothing left in the simulator" rig_settled
check "the worker is alive" alive "$w1"
check "the worker reconnected and consumes again" e2e_wait_consumers "$conf" 1
queue_empty() { local i; for i in $(seq 50); do [ "$(queue_line "$conf" "$prefix.commands.default" | awk '{print $2}')" = 0 ] && return 0; sleep 0.2; done; return 1; }
check "the command queue is empty" queue_empty
id2=$(uuid)
cmd_snapshot "$id2" "$disk1" 10 2 >"$tmp/b2.json"
submit "$conf" "$tmp/b2.json" "$tmp/b2.out" 60
check "a command after the restart succeeds" evtrue "$tmp/b2.out" "e['status']=='succeeded'"

e2e_done
