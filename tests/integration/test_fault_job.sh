#!/usr/bin/env bash
# Fault suite (c, d, f): what goes wrong around one running CreateSnapshot.
#   c. the store fills up (a small tmpfs): NO_SPACE, no partial file, the VM
#      snapshot and worker VM removed;
#   d. the vCenter session is lost mid-job (NotAuthenticated on the lease
#      progress during the export, on the lease completion, and on the
#      cleanup's RemoveSnapshot_Task): the job logs in again, or fails
#      retryable; either way cleanup runs and a retry succeeds;
#   f. `snapworker sweep --older-than 1s --force` by hand in the middle of a
#      slow export leaves the running command's journal, worker VM and VM
#      snapshot alone, and the command succeeds.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

# A lease with no HttpNfcLeaseProgress for 15 s fails: long enough for an export
# that sends none (every 20 s) on a loaded machine, short enough to reap what a
# lost session leaves.
e2e_start_vcsim -seed-mib 16 -task-delay 100ms -lease-timeout 15s
conf=$tmp/w.conf
e2e_conf "$conf" 1
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
once() { # NAME JSON: run-once, output in $tmp/NAME.out, log in $tmp/NAME.log
	timeout 90 "$SW" run-once -c "${3:-$conf}" "$2" >"$tmp/$1.out" 2>"$tmp/$1.log"
}

# --- c. ENOSPC on a small tmpfs store ------------------------------------------------
mkdir -p "$tmp/small"
if mount -t tmpfs -o size=4m tmpfs "$tmp/small" 2>"$tmp/mount.err"; then
	e2e_conf "$tmp/small.conf" 1 "$tmp/small"
	id=$(uuid)
	cmd_snapshot "$id" "$disk1" 9 1 >"$tmp/c.json"
	once c "$tmp/c.json" "$tmp/small.conf"
	check "ENOSPC: failed NO_SPACE, not retryable" \
	    evtrue "$tmp/c.out" "e['error']['code']=='NO_SPACE' and not e['error']['retryable']"
	check "ENOSPC: the message names the failing step" evtrue "$tmp/c.out" "'No space left' in e['error']['message']"
	check "ENOSPC: no file left on the store (no .part, no meta, no journal, no lock)" \
	    bash -c "[ -z \"\$(find '$tmp/small' -type f)\" ]"
	check "ENOSPC: VM snapshot, worker VM and lease removed" rig_settled
	check "ENOSPC: the volume is intact" volumes_intact
	# The same store, room made: the command succeeds (nothing of the failure was in the way).
	umount "$tmp/small"
	mount -t tmpfs -o size=40m tmpfs "$tmp/small"
	once c2 "$tmp/c.json" "$tmp/small.conf"
	check "ENOSPC: with room, the same command then succeeds" \
	    evtrue "$tmp/c2.out" "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
	umount "$tmp/small"
else
	echo "SKIP: cannot mount a tmpfs ($(cat "$tmp/mount.err")): ENOSPC case not run"
	nok "ENOSPC: a tmpfs store could not be mounted (run as root)"
fi

# --- d. vCenter session lost mid-job ----------------------------------------------
# Lease progress is sent after each disk's download, while the lease is open.
id=$(uuid)
cmd_snapshot "$id" "$disk1" 9 2 >"$tmp/d1.json"
inject "clear=1"
inject "fault=HttpNfcLeaseProgress&fault_type=NotAuthenticated&fault_msg=session-gone"
once d1 "$tmp/d1.json"
check "session lost at HttpNfcLeaseProgress: the job logged in again and succeeded" \
    evtrue "$tmp/d1.out" "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
check "session lost at HttpNfcLeaseProgress: cleanup ran" rig_settled
check "session lost at HttpNfcLeaseProgress: no journal, no debris" bash -c \
    "[ ! -e '$STORE/.snapworker/journal/$id.journal' ] && [ -z \"\$(find '$STORE' -name '*.part')\" ]"

for m in HttpNfcLeaseComplete RemoveSnapshot_Task; do
	id=$(uuid)
	cmd_snapshot "$id" "$disk1" 9 3 >"$tmp/d-$m.json"
	inject "clear=1"
	inject "fault=$m&fault_type=NotAuthenticated&fault_msg=session-gone"
	once "d-$m" "$tmp/d-$m.json"
	check "session lost at $m: logged in again and succeeded, or failed retryable" \
	    evtrue "$tmp/d-$m.out" "e['status']=='succeeded' or e['error']['retryable']"
	check "session lost at $m: cleanup still ran (no worker VM, VM snapshot, lease)" rig_settled
	check "session lost at $m: no debris" no_debris
	if ! evtrue "$tmp/d-$m.out" "e['status']=='succeeded'"; then
		once "d-$m-2" "$tmp/d-$m.json"
		check "session lost at $m: the retry succeeds" evtrue "$tmp/d-$m-2.out" "e['status']=='succeeded'"
	fi
	check "session lost at $m: no journal left" no_journal "$id"
done
inject "clear=1"

# --- f. a sweep by hand in the middle of a slow export -------------------------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 9 4 >"$tmp/f.json"
# 16 MiB in ~8 s: the export outlasts the sweep below on a loaded machine, and
# stays below -lease-timeout (the worker sends lease progress every 20 s).
inject "nfc_rate=2097152"
"$SW" run-once -c "$conf" "$tmp/f.json" >"$tmp/f.out" 2>"$tmp/f.log" &
fpid=$!
exporting() {
	local i
	for i in $(seq 200); do
		rigpy "any(f.get('bytes_transferred',0)>0 for l in d.get('leases') or [] if l['mode']=='export' for f in l.get('files') or [])" && return 0
		sleep 0.05
	done
	return 1
}
check "sweep: the export is under way" exporting
sleep 1.2 # the journal, worker VM and snapshot are now older than --older-than 1s
# The disk's temporary as an export stalled on vCenter leaves it: untouched for
# minutes.  Its age does not make it debris while the attempt writes it.
touch -d '-10 minutes' "$STORE/snapshots/9/4/$id/"*.part
"$SW" sweep -c "$conf" --older-than 1s --force >"$tmp/sweep.out" 2>&1
check "sweep: ran (exit 0)" [ $? = 0 ]
check "sweep: the running command's journal is still there" [ -s "$STORE/.snapworker/journal/$id.journal" ]
check "sweep: the disk it is writing is still there" [ -n "$(find "$STORE/snapshots/9/4/$id" -name '*-disk0.vmdk.part')" ]
check "sweep: it said the command is running (its lock is held)" grep -qi "$id" "$tmp/sweep.out"
check "sweep: the worker VM, VM snapshot and lease are still there" \
    rigpy "sum(v['snapshot_count'] for v in d['vms'])==1 and [l for l in d['leases'] if l['state']=='ready']"
wait "$fpid"
if evtrue "$tmp/f.out" "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"; then
	ok "sweep: the command then succeeds with the seeded bytes"
else
	nok "sweep: the command then succeeds with the seeded bytes"
	final "$tmp/f.out"
	grep -E 'error|warn' "$tmp/f.log" | tail -n 5
fi
check "sweep: and cleaned up after itself" rig_settled
check "sweep: no journal, no debris" bash -c "[ ! -e '$STORE/.snapworker/journal/$id.journal' ] && [ -z \"\$(find '$STORE' -name '*.part')\" ]"
# An attempt killed between its snapshot task's end and its journal write: the journal
# names the VM but no snapshot.  The undo finds snapworker-<id> on that VM by its name.
id3=$(uuid)
vmref=$(state | python3 -c "import json,sys; print([v['moref'] for v in json.load(sys.stdin)['vms'] if v['name']=='$VCSIM_VM'][0])")
"$VMWCTL" --url "$VCSIM_URL" --user snap --password-file "$tmp/vc.secret" --thumbprint "$VCSIM_THUMBPRINT" \
    snapshot-create --vm "$vmref" --name "snapworker-$id3" >"$tmp/snap3.out" 2>&1
check "unjournaled snapshot: taken (vmwctl)" rigpy "any(v['snapshot_count']==1 for v in d['vms'] if v['name']=='$VCSIM_VM')"
printf 'command=%s\ncredentials=vc1\nurl=%s\nvm=%s\nsnapshot=\nobject=snapshots/9/9/%s/%s\n' \
    "$id3" "$VCSIM_URL" "$vmref" "$id3" "$id3" >"$STORE/.snapworker/journal/$id3.journal"
touch -d '-10 minutes' "$STORE/.snapworker/journal/$id3.journal"
"$SW" sweep -c "$conf" --older-than 5m --force >"$tmp/sweep3.out" 2>&1
check "unjournaled snapshot: the sweep ran (exit 0)" [ $? = 0 ]
check "unjournaled snapshot: found by its name and removed" rig_settled
check "unjournaled snapshot: the journal is gone" no_journal "$id3"
check "the volume is intact" volumes_intact

e2e_done
