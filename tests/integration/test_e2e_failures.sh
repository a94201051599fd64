#!/usr/bin/env bash
# Failure paths of the vCenter-backed commands, end to end: a vCenter fault
# mid-export (NFC connection cut), a fault in a task, a store that fills up,
# a worker killed with SIGKILL mid-export and restarted, and the sweeper
# (CLI and daemon) removing crash leftovers.  After each: the command's
# outcome, no worker VM / VM snapshot / open lease left in the simulator, no
# partial object visible on the share.  Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

e2e_start_vcsim -seed-mib 256 -task-delay 200ms -lease-timeout 120s
e2e_broker
conf=$tmp/w.conf
e2e_conf "$conf" 1
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
VMW=("$build/bin/vmwctl" --url "$VCSIM_URL" --user snap --thumbprint "$VCSIM_THUMBPRINT" --timeout 120)
export VMWCTL_PASSWORD=vc-password

# Waits (at most 20 s) until no worker VM, VM snapshot or open lease is left.
rig_settled() { local i; for i in $(seq 100); do rig_clean && return 0; sleep 0.2; done; return 1; }
object_absent() { [ -z "$(find "$STORE/$1" -type f 2>/dev/null)" ]; }
# The crash journal lives in the store's state directory, by command id.
no_journal() { [ ! -e "$STORE/.snapworker/journal/$1.journal" ]; }

# --- vCenter fault mid-export, no redelivery (run-once) ----------------------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 1 >"$tmp/f1.json"
inject "nfc_fail_after=4194304"
"$SW" run-once -c "$conf" "$tmp/f1.json" >"$tmp/f1.out" 2>"$tmp/f1.log"
check "NFC cut mid-export: failed VCENTER_UNREACHABLE, retryable" \
    evtrue "$tmp/f1.out" "e['error']['code']=='VCENTER_UNREACHABLE' and e['error']['retryable']"
check "NFC cut: the lease was aborted, worker VM destroyed, VM snapshot removed" rig_clean
check "NFC cut: no partial object (no meta, no .part)" object_absent "snapshots/5/1/$id"
check "NFC cut: no journal" no_journal "$id"
check "NFC cut: the volume is intact" volumes_intact

# --- the same through the daemon: requeued, then completed once ----------------------
e2e_worker "$conf" w1
w1=$wpid
e2e_wait_consumers "$conf" 1
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 2 >"$tmp/f2.json"
inject "nfc_fail_after=1048576"
submit "$conf" "$tmp/f2.json" "$tmp/f2.out"
check "daemon: a retryable vCenter fault is redelivered and the command completes" \
    evtrue "$tmp/f2.out" "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
check "daemon: exactly one final event" [ "$(grep -cE '"status":"(succeeded|failed)"' "$tmp/f2.out")" = 1 ]
check "daemon: the first attempt's failure was logged" grep -q "VCENTER_UNREACHABLE" "$tmp/w1.log"
check "daemon: simulator clean" rig_clean
check "daemon: no debris" no_debris

# --- a fault in a task (CreateVM_Task ends in error) --------------------------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 3 >"$tmp/f3.json"
inject "fault=CreateVM_Task&fault_type=InvalidState&fault_msg=injected&in_task=1"
"$SW" run-once -c "$conf" "$tmp/f3.json" >"$tmp/f3.out" 2>"$tmp/f3.log"
check "task fault: failed VCENTER_FAULT with vCenter's message" \
    evtrue "$tmp/f3.out" "e['error']['code']=='VCENTER_FAULT' and 'injected' in e['error']['message']"
check "task fault: the VM snapshot was removed" rig_clean
check "task fault: nothing on the share" object_absent "snapshots/5/3/$id"

# --- the command's deadline passes mid-way: TIMEOUT, cleanup still done ------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 6 | sed 's/"type":"CreateSnapshot",/"type":"CreateSnapshot","timeout_s":1,/' >"$tmp/f5.json"
# The export served at 32 MiB/s (8 s for the disk): the 1 s deadline passes whatever
# the machine's speed (on a fresh machine the whole command once fitted in 1 s).
inject "nfc_rate=33554432"
"$SW" run-once -c "$conf" "$tmp/f5.json" >"$tmp/f5.out" 2>"$tmp/f5.log"
inject "clear=1" # the rate, if the deadline came before the download
check "deadline passed: failed TIMEOUT" evtrue "$tmp/f5.out" "e['error']['code']=='TIMEOUT'"
check "deadline passed: cleanup ran on a deadline of its own" rig_settled
check "deadline passed: nothing on the share" object_absent "snapshots/5/6/$id"

# --- SIGTERM mid-export (shutdown): CANCELLED, cleanup done ---------------------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 7 >"$tmp/f6.json"
"$SW" run-once -c "$conf" "$tmp/f6.json" >"$tmp/f6.out" 2>"$tmp/f6.log" &
once=$!
# The moment its VM snapshot exists: the worker VM's task is then under way.
for _ in $(seq 300); do state | grep -Eq '"snapshot_count": *1' && break; sleep 0.01; done
kill -TERM "$once"
wait_exit 120 "$once"
# A shutdown hands the command back (no final event): run-once says so and fails.
check "SIGTERM mid-way: CANCELLED, handed back without a final event" bash -c \
    "grep -q 'failed: CANCELLED' '$tmp/f6.log' && ! grep -q '\"status\":\"succeeded\"' '$tmp/f6.out'"
check "SIGTERM mid-way: worker VM and VM snapshot removed before exit" rig_settled
check "SIGTERM mid-way: nothing on the share" object_absent "snapshots/5/7/$id"

# --- store write failure: a 1 MiB tmpfs fills up -----------------------------------
mkdir -p "$tmp/small"
if mount -t tmpfs -o size=1m tmpfs "$tmp/small" 2>"$tmp/mount.err"; then
	e2e_conf "$tmp/small.conf" 1 "$tmp/small"
	id=$(uuid)
	cmd_snapshot "$id" "$disk1" 5 4 >"$tmp/f4.json"
	"$SW" run-once -c "$tmp/small.conf" "$tmp/f4.json" >"$tmp/f4.out" 2>"$tmp/f4.log"
	check "full store: failed NO_SPACE, not retryable" \
	    evtrue "$tmp/f4.out" "e['error']['code']=='NO_SPACE' and not e['error']['retryable']"
	check "full store: worker VM and VM snapshot removed anyway" rig_clean
	check "full store: nothing left on it (no .part, no meta, no journal)" \
	    bash -c "[ -z \"\$(find '$tmp/small' -type f)\" ]"
	umount "$tmp/small"
else
	echo "SKIP: cannot mount a tmpfs ($(cat "$tmp/mount.err")): store-full case not run"
fi

# --- a fresh journal and host-local locks: another attempt may be at work elsewhere;
#     wait for its journal to go stale (lock_scope = host stands for an NFS nolock mount) ---
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 8 >"$tmp/f7.json"
mkdir -p "$STORE/.snapworker/journal"
printf 'command=%s\ncredentials=vc1\nurl=%s\nvm=vm-0\nsnapshot=\n' "$id" "$VCSIM_URL" \
    >"$STORE/.snapworker/journal/$id.journal"
t0=$(date +%s%N)
SNAPWORKER_STORE_LOCK_SCOPE=host SNAPWORKER_SWEEP_JOURNAL_STALE=3s \
    "$SW" run-once -c "$conf" "$tmp/f7.json" >"$tmp/f7.out" 2>"$tmp/f7.log"
t1=$(date +%s%N)
check "fresh journal: the command waited for it to go stale ($(( (t1 - t0) / 1000000 )) ms)" \
    [ $(( (t1 - t0) / 1000000 )) -ge 2000 ]
check "fresh journal: it said why it waited (host-local locks)" \
    grep -q "whether it still runs (\[store\] lock_scope = host): waiting for its journal" "$tmp/f7.log"
check "fresh journal: then undid it and succeeded" evtrue "$tmp/f7.out" "e['status']=='succeeded'"
check "fresh journal: it is gone" [ ! -e "$STORE/.snapworker/journal/$id.journal" ]

# --- a fresh journal of an older release (beside the object): its attempts may not take
#     the command lock, so even a lock every host sees proves nothing: wait ---
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 10 >"$tmp/f9.json"
mkdir -p "$STORE/snapshots/5/10/$id"
printf 'command=%s\ncredentials=vc1\nurl=%s\nvm=vm-0\nsnapshot=\n' "$id" "$VCSIM_URL" \
    >"$STORE/snapshots/5/10/$id/$id~vcenter.part"
t0=$(date +%s%N)
SNAPWORKER_STORE_LOCK_SCOPE=shared SNAPWORKER_SWEEP_JOURNAL_STALE=3s \
    "$SW" run-once -c "$conf" "$tmp/f9.json" >"$tmp/f9.out" 2>"$tmp/f9.log"
t1=$(date +%s%N)
check "legacy journal: waited for it to go stale although locks are shared ($(( (t1 - t0) / 1000000 )) ms)" \
    [ $(( (t1 - t0) / 1000000 )) -ge 2000 ]
check "legacy journal: it said why (an older release)" \
    grep -q "whether it still runs (a journal of an older release): waiting" "$tmp/f9.log"
check "legacy journal: then undid it and succeeded" evtrue "$tmp/f9.out" "e['status']=='succeeded'"
check "legacy journal: it is gone" [ ! -e "$STORE/snapshots/5/10/$id/$id~vcenter.part" ]

# --- cleanup itself fails: no commit, the journal stays for the next attempt ---------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 9 >"$tmp/f8.json"
inject "fault=RemoveSnapshot_Task&fault_type=SystemError&fault_msg=cleanup-refused&in_task=1"
"$SW" run-once -c "$conf" "$tmp/f8.json" >"$tmp/f8.out" 2>"$tmp/f8.log"
check "VM snapshot removal refused: the command fails with vCenter's message" \
    evtrue "$tmp/f8.out" "e['error']['code']=='VCENTER_FAULT' and 'cleanup-refused' in e['error']['message']"
check "and commits nothing, keeping its journal (naming the snapshot)" bash -c \
    "[ ! -e '$STORE/snapshots/5/9/$id/$id.ova.meta' ] && grep -q '^snapshot=.' '$STORE/.snapworker/journal/$id.journal'"
t0=$(date +%s%N)
"$SW" run-once -c "$conf" "$tmp/f8.json" >"$tmp/f8b.out" 2>"$tmp/f8b.log"
t1=$(date +%s%N)
check "the next attempt does not wait for that journal ($(( (t1 - t0) / 1000000 )) ms), undoes it, succeeds" \
    bash -c "[ $(( (t1 - t0) / 1000000 )) -lt 60000 ] && grep -q '\"status\":\"succeeded\"' '$tmp/f8b.out'"
check "nothing left in the simulator after the retry" rig_settled
check "no journal or .part left" no_debris

# --- kill -9 mid-export, restart: completes once, nothing left ----------------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 5 >"$tmp/k.json"
submit "$conf" "$tmp/k.json" "$tmp/k.out" 180 &
kctl=$!
# Kill the worker the moment its NFC download is under way.
python3 - "$VC_BASE" "$w1" <<'PY'
import json, os, ssl, sys, time, urllib.request
base, pid = sys.argv[1], int(sys.argv[2])
ctx = ssl._create_unverified_context()
end = time.time() + 60
while time.time() < end:
    d = json.load(urllib.request.urlopen(base + "/rig/state", context=ctx, timeout=20))
    for l in d.get("leases") or []:
        if l.get("mode") == "export" and any(f.get("bytes_transferred", 0) > 0 for f in l.get("files") or []):
            os.kill(pid, 9)
            sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
PY
killed=$?
wait_exit 120 "$w1" 2>/dev/null
check "worker killed with SIGKILL while its export ran" [ $killed = 0 ]
jdir=$STORE/snapshots/5/5/$id
check "the crash left a journal naming the VM snapshot" \
    grep -q '^snapshot=.\+' "$STORE/.snapworker/journal/$id.journal"
not_clean() { ! rig_clean; }
check "and leftovers in the simulator (worker VM and VM snapshot)" not_clean
check "and no committed object" [ ! -e "$jdir/$id.ova.meta" ]
# The killed attempt's journal is fresh, and its export lease is open: vCenter blocks
# the destruction of the worker VM until that lease ends (the simulator here times
# leases out after 120 s; vCenter after 300 s).  The new worker holds the command lock
# on a store whose locks every host sees (lock_scope = shared: a local file system
# here, which a chroot's mountinfo may not show), so the earlier attempt is known
# dead: it aborts the lease the journal records and undoes at once, no wait.
check "the crash left a journal naming its export lease" \
    grep -q '^lease=.\+' "$STORE/.snapworker/journal/$id.journal"
t0=$(date +%s%N)
SNAPWORKER_STORE_LOCK_SCOPE=shared e2e_worker "$conf" w2
w2=$wpid
wait_exit 120 "$kctl"
t1=$(date +%s%N)
echo "# recovery after kill -9: the new worker finished the command $(( (t1 - t0) / 1000000 )) ms after it started"
check "restarted worker completes the command" evtrue "$tmp/k.out" \
    "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
check "exactly one final event" [ "$(grep -cE '"status":"(succeeded|failed)"' "$tmp/k.out")" = 1 ]
check "the restarted worker knew the earlier attempt dead, and did not wait" \
    bash -c "grep -q 'the earlier attempt is dead; undoing its vCenter work now' '$tmp/w2.log' &&
        ! grep -q 'waiting for its journal to go stale' '$tmp/w2.log'"
check "it aborted the export lease the killed attempt left open" \
    grep -q "aborted the export lease" "$tmp/w2.log"
check "then removed the earlier attempt's leftovers first" \
    grep -q "removing what an interrupted attempt left" "$tmp/w2.log"
check "after the restart: no worker VM, VM snapshot or open lease" rig_settled
check "after the restart: no journal or .part on the share" no_debris
check "the object verifies" "$OVASTORE" -C "$STORE" verify "snapshots/5/5/$id/$id"
check "the volume is intact" volumes_intact
kill -TERM "$w2"; wait_exit 120 "$w2" 2>/dev/null

# --- issue 9: DeleteSnapshot of a crashed CreateSnapshot's path keeps its journal ---
# CloudStack deletes a failed snapshot's files routinely; the journal is the only
# record of the VM snapshot, so the sweep must still find it and remove the snapshot.
id=$(uuid)
cmd_snapshot "$id" "$disk1" 5 6 >"$tmp/l.json"
"$SW" run-once -c "$conf" "$tmp/l.json" >"$tmp/l.out" 2>"$tmp/l.log" &
lpid=$!
python3 - "$VC_BASE" "$lpid" <<'PY'
import json, os, ssl, sys, time, urllib.request
base, pid = sys.argv[1], int(sys.argv[2])
ctx = ssl._create_unverified_context()
end = time.time() + 60
while time.time() < end:
    d = json.load(urllib.request.urlopen(base + "/rig/state", context=ctx))
    for l in d.get("leases") or []:
        if l.get("mode") == "export" and any(f.get("bytes_transferred", 0) > 0 for f in l.get("files") or []):
            os.kill(pid, 9)
            sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
PY
killed=$?
wait_exit 120 "$lpid" 2>/dev/null
check "leak: CreateSnapshot killed after its VM snapshot was taken" [ $killed = 0 ]
check "leak: its journal names the VM snapshot" \
    grep -q '^snapshot=.\+' "$STORE/.snapworker/journal/$id.journal"
check "leak: the simulator holds its worker VM and VM snapshot" not_clean
d=$(uuid)
cmd_path "$d" DeleteSnapshot "snapshots/5/6/$id/$id" >"$tmp/ld.json"
"$SW" run-once -c "$conf" "$tmp/ld.json" >"$tmp/ld.out" 2>"$tmp/ld.log"
check "leak: DeleteSnapshot of its path succeeds" evtrue "$tmp/ld.out" "e['status']=='succeeded'"
check "leak: and removes its debris" object_absent "snapshots/5/6/$id"
check "leak: but keeps the journal" [ -s "$STORE/.snapworker/journal/$id.journal" ]
sleep 2
"$SW" sweep -c "$conf" --older-than 1s >"$tmp/ls0.out" 2>&1
check "leak: a sweep by hand below the floor is refused without --force" \
    bash -c "[ $? = 2 ] && grep -q -- '--force' '$tmp/ls0.out' && [ -s '$STORE/.snapworker/journal/$id.journal' ]"
"$SW" sweep -c "$conf" --older-than 1s --force >"$tmp/ls.out" 2>&1
check "leak: the sweep undid the journal" grep -q "undid journal of command $id" "$tmp/ls.out"
check "leak: no VM snapshot or worker VM left in the simulator" rig_settled
check "leak: the journal is gone" no_journal "$id"
check "leak: the volume is intact" volumes_intact

# --- the sweeper: old worker VM, old journal, old debris ----------------------------
snap=$("${VMW[@]}" snapshot-create --vm "$VCSIM_VM" --name crashed-snap | awk '/^snapshot:/{print $2}')
wk=$("${VMW[@]}" worker-create --vm "$VCSIM_VM" --snapshot "$snap" --disk "$disk1" --name old-worker \
    --tag 11111111-2222-4333-8444-555555555555 | awk '/^worker:/{print $2}')
check "made a leftover worker VM and VM snapshot" bash -c "[ -n '$snap' ] && [ -n '$wk' ]"
jd=$STORE/snapshots/7/7/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee
mkdir -p "$jd"
printf 'command=11111111-2222-4333-8444-555555555555\ncredentials=vc1\nurl=%s\nvm=x\nsnapshot=%s\n' \
    "$VCSIM_URL" "$snap" >"$jd/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee~vcenter.part"
head -c 1000 /dev/urandom >"$jd/aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee-disk0.vmdk.part"
head -c 100 /dev/urandom >"$jd/oldobj.ovf.part"
head -c 100 /dev/urandom >"$jd/young-disk0.vmdk.part"
touch -d '2 days ago' "$jd"/aaaaaaaa*.part "$jd/oldobj.ovf.part"
"$SW" sweep -c "$conf" --dry-run --older-than 1h >"$tmp/sw1.out" 2>&1
check "sweep --dry-run reports the journal and the debris" bash -c \
    "grep -q 'would undo journal' '$tmp/sw1.out' && grep -q 'would remove the debris of .*oldobj' '$tmp/sw1.out'"
unchanged() { [ "$(ls "$jd" | wc -l)" = 4 ] && not_clean; }
check "sweep --dry-run changes nothing" unchanged
"$SW" sweep -c "$conf" --older-than 1h >"$tmp/sw2.out" 2>&1
check "sweep: undid the journal (its worker VM and VM snapshot)" grep -q 'undid journal' "$tmp/sw2.out"
check "sweep: old debris removed, the young write in progress kept" bash -c \
    "[ \"\$(ls '$jd')\" = young-disk0.vmdk.part ]"
check "sweep: no worker VM or VM snapshot left" rig_clean
check "sweep: the volume is intact" volumes_intact

# --- the daemon sweeps at start -------------------------------------------------------
snap=$("${VMW[@]}" snapshot-create --vm "$VCSIM_VM" --name s2 | awk '/^snapshot:/{print $2}')
wk=$("${VMW[@]}" worker-create --vm "$VCSIM_VM" --snapshot "$snap" --disk "$disk1" --name old-worker-2 \
    --tag 21111111-2222-4333-8444-555555555555 | awk '/^worker:/{print $2}')
"${VMW[@]}" snapshot-remove --snapshot "$snap" >/dev/null 2>&1
SNAPWORKER_SWEEP_MAX_AGE=0s e2e_worker "$conf" w3
gone() { local i; for i in $(seq 100); do ! "${VMW[@]}" worker-list | grep -q old-worker-2 && return 0; sleep 0.1; done; return 1; }
check "a starting daemon destroys leftover worker VMs" gone
logged() { local i; for i in $(seq 50); do grep -q "sweep: destroyed worker VM" "$tmp/w3.log" && return 0; sleep 0.1; done; return 1; }
check "and logs it" logged
check "the volume is intact after the daemon's sweep" volumes_intact

e2e_done
