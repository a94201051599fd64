#!/usr/bin/env bash
# Fault suite (e): a flood of malformed commands (not JSON, wrong version, bad
# fields, unknown type, huge strings, a 2 MiB body) interleaved with valid
# ones, against one worker on the runner's broker: every valid command is
# answered exactly once, every malformed one is dead-lettered (snapctl status
# counts them in the dead-letter queue), the ones with a readable id get a
# failed event, and the worker is alive and still serving afterwards.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

BAD=${FAULT_FLOOD_BAD:-250}
e2e_start_vcsim
e2e_broker
conf=$tmp/w.conf
e2e_conf "$conf" 2
check "event log bound to the event exchange" evlog_start "$conf"
e2e_worker "$conf" w1
w1=$wpid
check "worker consumes" e2e_wait_consumers "$conf" 2
amqp_auth
dead() { queue_line "$conf" "$prefix.dead" | awk '{print $2}'; }
wait_dead() { # N SECONDS
	local i
	for i in $(seq $(($2 * 5))); do [ "$(dead)" = "$1" ] && return 0; sleep 0.2; done
	return 1
}

# A body over 1 MiB cannot go through snapctl (it refuses it): amqp-publish, then
# wait for it in the dead-letter queue (amqp-publish has no confirms).
head -c 2097152 /dev/zero | tr '\0' 'x' >"$tmp/big.json"
amqp-publish "${amqp_srv[@]}" -e "$prefix.commands" -r default -p <"$tmp/big.json"
check "a 2 MiB body is dead-lettered unread" wait_dead 1 30
check "the worker survived it" alive "$w1"

del() { printf '{"version":1,"id":"%s","type":"DeleteSnapshot","store":{"url":"%s"},"args":{"path":"%s"}}' "$1" "$STORE_URL" "$2"; }
huge=$(head -c 200000 /dev/zero | tr '\0' 'a')
valid=()
badids=()
: >"$tmp/batch.list"
for i in $(seq "$BAD"); do
	f=$tmp/m$i.json
	id=$(uuid)
	case $((i % 7)) in
	0) printf 'not json %d {' "$i" >"$f" ;;
	1) del "$id" "snapshots/1/2/x" | sed 's/"version":1/"version":2/' >"$f"; badids+=("$id") ;;
	2) del "$id" "/etc/passwd" >"$f"; badids+=("$id") ;;
	3) del "$id" "snapshots/1/2/x" | sed 's/"DeleteSnapshot"/"FormatDisk"/' >"$f"; badids+=("$id") ;;
	4) del "$id" "snapshots/$huge" >"$f"; badids+=("$id") ;;
	5) printf '[1,2,3]' >"$f" ;;
	6) del "$id" "snapshots/1/2/x" | sed 's/"version":1,/"version":1,"version":1,/' >"$f"; badids+=("$id") ;;
	esac
	echo "$f" >>"$tmp/batch.list"
	if [ $((i % 5)) = 0 ]; then
		id=$(uuid)
		valid+=("$id")
		del "$id" "snapshots/1/2/$id/$id" >"$tmp/v$i.json"
		echo "$tmp/v$i.json" >>"$tmp/batch.list"
	fi
done
t0=$(date +%s)
sent=0
while read -r f; do
	"$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate "$f" >/dev/null 2>>"$tmp/submit.err" && sent=$((sent + 1))
done <"$tmp/batch.list"
echo "# published $sent messages ($BAD malformed, ${#valid[@]} valid) in $(($(date +%s) - t0)) s"
check "every message published with a confirm" [ "$sent" = $((BAD + ${#valid[@]})) ]

waited() { local i; for i in $(seq 600); do all_answered_once && return 0; sleep 0.1; done; return 1; }
all_answered_once() { local id; for id in "${valid[@]}"; do [ "$(nfinals "$id")" -ge 1 ] || return 1; done; }
check "every valid command answered" waited
exactly_once() {
	local id
	for id in "${valid[@]}"; do
		[ "$(nfinals "$id")" = 1 ] && finals "$id" | grep -q '"status":"succeeded"' || return 1
	done
}
check "each valid command exactly once, succeeded" exactly_once
check "every malformed message is in the dead-letter queue ($((BAD + 1)))" wait_dead $((BAD + 1)) 40
failed_events() {
	local id
	for id in "${badids[@]}"; do
		[ "$(nfinals "$id")" = 1 ] && finals "$id" | grep -q '"status":"failed"' || return 1
	done
}
check "each malformed message with a readable id got one failed event" failed_events
check "wrong version: UNSUPPORTED_VERSION" bash -c \
    "grep -F '\"code\":\"UNSUPPORTED_VERSION\"' '$EVLOG' | grep -q ."
check "bad fields: INVALID_COMMAND" grep -q '"code":"INVALID_COMMAND"' "$EVLOG"
check "no event carries a huge string" bash -c "! awk 'length(\$0) > 8192' '$EVLOG' | grep -q ."
check "the worker is alive" alive "$w1"
check "the command queue is empty" bash -c "[ \"\$($(declare -f queue_line); CTL='$CTL' PW_FILE='$PW_FILE' queue_line '$conf' '$prefix.commands.default' | awk '{print \$2}')\" = 0 ]"
id=$(uuid)
del "$id" "snapshots/1/2/$id/$id" >"$tmp/after.json"
submit "$conf" "$tmp/after.json" "$tmp/after.out" 30
check "and still serves a valid command" evtrue "$tmp/after.out" "e['status']=='succeeded'"

e2e_done
