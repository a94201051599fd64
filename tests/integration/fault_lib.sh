# shellcheck shell=bash
# Shared by tests/integration/test_fault_*.sh (sourced; not executable, so the
# runner does not run it): test_e2e_lib.sh plus what a fault test needs on top
# of it: an event log that records every event of the run (duplicates
# included) in a durable queue of its own, checks of "exactly one outcome per
# command", bounded waits for a settled simulator, and a kill at the moment an
# export is under way.
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/test_e2e_lib.sh"

evpids=()
fault_cleanup() {
	local p
	for p in "${evpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	e2e_cleanup
}
trap fault_cleanup EXIT

# Waits (bounded) until no worker VM, VM snapshot or open lease is left (a killed
# worker's lease expires with -lease-timeout).
rig_settled() { local i; for i in $(seq "${1:-100}"); do rig_clean && return 0; sleep 0.2; done; return 1; }
no_journal() { [ ! -e "$STORE/.snapworker/journal/$1.journal" ]; }
no_journals() { [ -z "$(ls -A "$STORE/.snapworker/journal" 2>/dev/null)" ]; }
sha_of() { sha256sum <"$1" | cut -d' ' -f1; }
alive() { kill -0 "$1" 2>/dev/null; }

# evlog_start CONF: declares the run's topology (snapctl declare), a queue
# $prefix.evlog (amqp-consume declares it, not durable) bound to every event,
# and a consumer appending each event as one line to $EVLOG.  Ready when a probe published to the event exchange comes back.
# amqp-tools 0.11 cannot read the password from a file (its --authfile parser
# refuses every layout), so it is on the command line of these short-lived
# clients: a random password of a test-only broker user, never logged.
EVLOG=$tmp/events.jsonl
amqp_auth() { amqp_srv=(--server 127.0.0.1 --port "$AMQP_PORT" --username snapworker --password "$(cat "$PW_FILE")"); }
evlog_start() {
	local i probe
	"$CTL" -c "$1" --password-file "$PW_FILE" declare >/dev/null 2>&1 || return 1
	amqp_auth
	touch "$EVLOG"
	amqp-consume "${amqp_srv[@]}" -q "$prefix.evlog" -e "$prefix.events" -r '#' -p 100 \
	    -- sh -c "cat >>'$EVLOG'; echo >>'$EVLOG'" 2>>"$tmp/evlog.err" &
	EVPID=$!
	evpids+=("$EVPID")
	probe="probe-$(uuid)"
	for i in $(seq 50); do
		amqp-publish "${amqp_srv[@]}" -e "$prefix.events" -r probe -b "{\"probe\":\"$probe\"}" 2>/dev/null
		sleep 0.2
		grep -q "$probe" "$EVLOG" && return 0
	done
	return 1
}
evlog_stop() { kill -TERM "$EVPID" 2>/dev/null; wait "$EVPID" 2>/dev/null; }

# finals ID: the final events (succeeded or failed) recorded for a command id.
finals() { grep -F "\"id\":\"$1\"" "$EVLOG" | grep -E '"status":"(succeeded|failed)"'; }
nfinals() { finals "$1" | wc -l; }
# wait_final ID [SECONDS]: bounded wait for a final event of ID.
wait_final() {
	local i
	for i in $(seq $((${2:-60} * 10))); do [ "$(nfinals "$1")" -ge 1 ] && return 0; sleep 0.1; done
	return 1
}
# one_outcome ID: exactly one final event; or several identical succeeded ones, which the
# protocol allows when an attempt died after publishing its answer and before its ack
# (the redelivery answers again from the share).
one_outcome() {
	local n
	n=$(nfinals "$1")
	[ "$n" = 1 ] && return 0
	[ "$n" -gt 1 ] || return 1
	finals "$1" | python3 -c '
import json, sys
ev = [json.loads(l) for l in sys.stdin if l.strip()]
ok = all(e["status"] == "succeeded" for e in ev) and len({json.dumps(e["result"], sort_keys=True) for e in ev}) == 1
print("  (%d identical succeeded events: an attempt answered, then died before its ack)" % len(ev)) if ok else None
sys.exit(0 if ok else 1)'
}
succeeded_with() { # ID SHA256
	finals "$1" | tail -1 | python3 -c "import json,sys; e=json.load(sys.stdin); sys.exit(0 if e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$2' else 1)" 2>/dev/null
}

# ready_unacked CONF QUEUE: "READY UNACKED" of a queue (snapctl status).
ready_unacked() { queue_line "$1" "$2" | awk '{print $2, $3}'; }
