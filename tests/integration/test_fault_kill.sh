#!/usr/bin/env bash
# Fault suite (a): the worker running a CreateSnapshot dies by SIGKILL at a
# random point (before its VM snapshot, during the export, during cleanup or
# commit), ten times; each time a freshly started worker takes the
# redelivered command over.  After every trial: one committed object with the
# seeded bytes, exactly one final event, no debris and no journal on the
# share, nothing left in the simulator, the volume intact, the new worker
# alive; at the end the command queue is empty.  The simulator serves each
# first download at 8 MiB/s (inject nfc_rate) so the export spans ~2 s and the
# tasks take 150 ms each: the whole job spans ~3.5 s, and the kill delays are
# spread over it (trial i waits (i-1)*350 ms plus a random 0-350 ms).
# Prints "N passed, N failed".
#
# A kill while the dead attempt cleaned up (its RemoveSnapshot_Task running)
# leaves a journal naming a VM snapshot that is gone by the time the
# redelivery reads it: vCenter answers ManagedObjectNotFound, and the undo
# counts it done.  (The simulator's delayed tasks used to relay that fault as
# a bare SystemError; tests/rig/vcsim/front.go asMethodFault.)
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

TRIALS=${FAULT_KILL_TRIALS:-10}
# A worker killed mid-export leaves its export lease open, and vCenter blocks
# the destruction of its worker VM until the lease ends (300 s without
# progress, as here).  The store is a local file system, whose locks every
# worker sees (lock_scope = shared; a chroot's mountinfo may not show it): the
# redelivery knows the killed attempt dead, aborts the lease its journal
# records and undoes at once.  Retry delays stay short for the rare kill that
# leaves vCenter work the redelivery cannot undo yet.
export SNAPWORKER_STORE_LOCK_SCOPE=shared
export SNAPWORKER_RETRY_DELAYS="5s 5s 5s"
e2e_start_vcsim -seed-mib 16 -task-delay 150ms -lease-timeout 300s
e2e_broker
conf=$tmp/w.conf
e2e_conf "$conf" 1
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
check "event log bound to the event exchange" evlog_start "$conf"

# The stage a job is in, from the simulator's point of view.
stage() {
	state | python3 -c '
import json, sys
d = json.load(sys.stdin)
snaps = sum(v["snapshot_count"] for v in d["vms"])
workers = [v for v in d["vms"] if v["name"].count("-") == 4 or "snapworker.command" in (v.get("extra_config") or {})]
leases = [l for l in d.get("leases") or [] if l["mode"] == "export"]
done = sum(f.get("bytes_transferred", 0) for l in leases for f in l.get("files") or [])
if leases: print("exporting (%d KiB sent)" % (done // 1024))
elif workers: print("worker VM, no lease")
elif snaps: print("VM snapshot taken")
else: print("no vCenter state")'
}

n=0
e2e_worker "$conf" w0
victim=$wpid
check "first worker consumes" e2e_wait_consumers "$conf" 1
ids=()
stages=()
recov=()
for i in $(seq "$TRIALS"); do
	id=$(uuid)
	ids+=("$id")
	cmd_snapshot "$id" "$disk1" 8 "$i" >"$tmp/k$i.json"
	inject "clear=1"
	inject "nfc_rate=8388608"
	delay_ms=$(( (i - 1) * 350 + RANDOM % 350 ))
	"$CTL" -c "$conf" --password-file "$PW_FILE" submit "$tmp/k$i.json" >/dev/null 2>"$tmp/k$i.err"
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	st=$(stage)
	kill -KILL "$victim"
	wait "$victim" 2>/dev/null
	stages+=("$delay_ms ms: $st")
	echo "# trial $i: killed after $delay_ms ms: $st"
	n=$((n + 1))
	t_restart=$(date +%s%3N)
	e2e_worker "$conf" "w$n"
	victim=$wpid
	# Within a minute of the restart (issue: fast crash recovery), or not at all.
	wait_final "$id" 60
	recov+=("$(( $(date +%s%3N) - t_restart ))")
	echo "# trial $i: final event $(( $(date +%s%3N) - t_restart )) ms after the new worker started"
	check "trial $i: exactly one outcome" one_outcome "$id"
	if ! succeeded_with "$id" "$VCSIM_SEED_SHA256_0" >/dev/null 2>&1; then
		# For the log of a failing trial: its outcome and the workers' last words on it.
		finals "$id" | tail -1 | cut -c1-600
		grep -h "$id" "$tmp"/w*.log | tail -8 | cut -c1-400
	fi
	check "trial $i: succeeded with the seeded disk's sha256" succeeded_with "$id" "$VCSIM_SEED_SHA256_0"
	dir=$STORE/snapshots/8/$i/$id
	check "trial $i: one committed object, its disk holds the seeded bytes" bash -c \
	    "[ \$(find '$STORE/snapshots/8/$i' -name '*.ova.meta' | wc -l) = 1 ] && [ \"\$(sha256sum <'$dir/$id-disk0.vmdk' | cut -d' ' -f1)\" = '$VCSIM_SEED_SHA256_0' ]"
	check "trial $i: the object verifies" "$OVASTORE" -C "$STORE" verify "snapshots/8/$i/$id/$id"
	check "trial $i: no debris, no journal" bash -c "[ -z \"\$(find '$STORE' -name '*.part')\" ] && [ ! -e '$STORE/.snapworker/journal/$id.journal' ]"
	check "trial $i: no worker VM, VM snapshot or open lease left" rig_settled
	check "trial $i: the volume is intact" volumes_intact
	check "trial $i: the new worker is alive" alive "$victim"
done

echo "# recovery (final event after the restart), ms: ${recov[*]}; max $(printf '%s\n' "${recov[@]}" | sort -n | tail -1)"
echo "# kill points: ${#stages[@]} trials"
printf '#   %s\n' "${stages[@]}"
all_one() { local id; for id in "${ids[@]}"; do [ "$(finals "$id" | grep -c '"status":"succeeded"')" -ge 1 ] && one_outcome "$id" >/dev/null || return 1; done; }
check "no command lost: every id has its one succeeded outcome" all_one
no_failed() { ! grep -q '"status":"failed"' "$EVLOG"; }
check "no failed event at all" no_failed
queue_empty() { local i; for i in $(seq 50); do [ "$(queue_line "$conf" "$prefix.commands.default" | awk '{print $2}')" = 0 ] && return 0; sleep 0.2; done; return 1; }
check "the command queue is empty" queue_empty
check "no journal left on the store" no_journals
check "the datastore holds what it held before (no file of a worker VM or delta left)" \
    rigpy "not [f for f in d['files'] if f['path'].count('-') >= 4 or '-00000' in f['path']]"

e2e_done
