#!/usr/bin/env bash
# CreateSnapshot end to end on a fresh store: publisher (snapctl submit
# --wait) -> broker -> two snapworker daemons -> vCenter simulator (a VM with
# two seeded disks) -> share.  Checks the event, the files and their digests,
# the meta, a multi-disk VM, idempotent redelivery without vCenter, retries of
# a busy VM, credential binding, and that nothing is left in the simulator.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

e2e_start_vcsim -seed-mib 8 -vm-disks 2
e2e_broker
conf=$tmp/w.conf
e2e_conf "$conf" 1
e2e_worker "$conf" w1
e2e_worker "$conf" w2
check "two workers consume" e2e_wait_consumers "$conf" 2

# --- snapworker check logs in to every vCenter URL of every credential set -----------------
"$SW" check -c "$conf" >"$tmp/check.out" 2>&1
check "check: exit 0 and a real vCenter login" bash -c "grep -q '\[vcenter vc1\] .* logged in (' '$tmp/check.out' && grep -qx 'check: ok' '$tmp/check.out'"
sed "s/^thumbprint = .*/thumbprint = $(printf '00:%.0s' $(seq 31))00/" "$conf" >"$tmp/badtp.conf"
"$SW" check -c "$tmp/badtp.conf" >"$tmp/check2.out" 2>&1
check "check: a wrong pinned thumbprint fails the check (exit 1)" [ $? -eq 1 ]
check "check: and says why" grep -q '\[vcenter vc1\] .*FAILED' "$tmp/check2.out"
check "check: never prints the password" bash -c "! grep -q vc-password '$tmp/check.out' '$tmp/check2.out'"

disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
disk2="[$VCSIM_DATASTORE] $VCSIM_VM/disk2.vmdk"

# --- a snapshot of the first disk --------------------------------------------------
id=$(uuid)
cmd_snapshot "$id" "$disk1" >"$tmp/s1.json"
submit "$conf" "$tmp/s1.json" "$tmp/s1.out"
check "CreateSnapshot succeeds" evtrue "$tmp/s1.out" "e['status']=='succeeded'"
dir=snapshots/2/13/$id
check "install path snapshots/2/13/<uuid>/<uuid>" evtrue "$tmp/s1.out" "e['result']['install_path']=='$dir/$id'"
check "format ovf, three files: disk, ovf, meta last" evtrue "$tmp/s1.out" \
    "e['result']['format']=='ovf' and [f['path'].rsplit('/',1)[1] for f in e['result']['files']]==['$id-disk0.vmdk','$id.ovf','$id.ova.meta']"
check "disk sha256 in the event is the seeded disk's" evtrue "$tmp/s1.out" \
    "e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
check "disk on the share has the seeded bytes" \
    [ "$(sha256sum <"$STORE/$dir/$id-disk0.vmdk" | cut -d' ' -f1)" = "$VCSIM_SEED_SHA256_0" ]
check "event sizes are the file sizes" bash -c "$(declare -f final); final '$tmp/s1.out' | python3 -c \"
import json,os,sys
e=json.load(sys.stdin)['result']
ok=all(os.path.getsize('$STORE/'+f['path'])==f['size'] for f in e['files'])
ok=ok and e['physical_size']==sum(f['size'] for f in e['files'])
sys.exit(0 if ok else 1)\""
check "virtual_size is the disk's capacity" evtrue "$tmp/s1.out" "e['result']['virtual_size']==$VCSIM_SEED_BYTES"
check "a progress event was published" grep -q '"status":"progress"' "$tmp/s1.out"
check "meta: numDisks=1, disk1 name and size" bash -c "grep -qx 'numDisks=1' '$STORE/$dir/$id.ova.meta' &&
    grep -qx 'disk1.name=$id-disk0.vmdk' '$STORE/$dir/$id.ova.meta' &&
    grep -qx 'disk1.size=$VCSIM_SEED_BYTES' '$STORE/$dir/$id.ova.meta'"
check "no .ova written (snapshots are OVF + VMDK)" [ ! -e "$STORE/$dir/$id.ova" ]

# --- on a terminal, submit --wait draws a progress bar (script gives it a pty) -----------
pid_=$(uuid)
cmd_snapshot "$pid_" "$disk1" 2 21 >"$tmp/pb.json"
inject "nfc_rate=4194304"
script -qec "'$CTL' -c '$conf' --password-file '$PW_FILE' submit --wait --timeout 120 '$tmp/pb.json' >'$tmp/pb.out'" \
    /dev/null >"$tmp/pb.tty" 2>&1
inject "clear=1"
check "on a terminal: a bar with percent, bytes, rate and ETA" \
    grep -qaE '\[#*\.*\] +[0-9]+%  [0-9.]+ [KMG]?i?B  [0-9.]+ [KMG]?i?B/s  ETA [0-9]+:[0-9]{2}:[0-9]{2}' "$tmp/pb.tty"
check "stdout not a terminal: the progress events still go there, and the final one" \
    bash -c "grep -q '\"status\":\"progress\"' '$tmp/pb.out' && grep -q '\"status\":\"succeeded\"' '$tmp/pb.out'"
check "ovastore verify accepts the object" "$OVASTORE" -C "$STORE" verify "$dir/$id"
check "the OVF is well-formed XML" xmllint --noout "$STORE/$dir/$id.ovf"
check "qemu-img reads the disk" bash -c "qemu-img info '$STORE/$dir/$id-disk0.vmdk' >/dev/null"
check "no worker VM, VM snapshot or open lease left in the simulator" rig_clean
check "the volume's files are intact" volumes_intact
check "no debris on the share" no_debris

# --- multi-disk VM: the second disk is the one exported ------------------------------
id2=$(uuid)
cmd_snapshot "$id2" "$disk2" 2 14 >"$tmp/s2.json"
submit "$conf" "$tmp/s2.json" "$tmp/s2.out"
check "snapshot of the second disk of a 2-disk VM succeeds" evtrue "$tmp/s2.out" "e['status']=='succeeded'"
check "it holds the second disk's bytes" evtrue "$tmp/s2.out" \
    "e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_1'"
check "simulator clean after the second snapshot" rig_clean

# --- redelivery: answered from the share, vCenter untouched -------------------------
inject "fault=CreateSnapshot_Task&fault_type=SystemError&fault_msg=must-not-be-called"
inject "fault=Login&fault_type=InvalidLogin&fault_msg=must-not-be-called"
submit "$conf" "$tmp/s1.json" "$tmp/s1b.out"
check "redelivered command succeeds again" evtrue "$tmp/s1b.out" "e['status']=='succeeded'"
check "with the same files, sizes and sha256" bash -c "diff <($(declare -f final); final '$tmp/s1.out' | python3 -c 'import json,sys; print([(f[\"path\"],f[\"size\"],f.get(\"sha256\")) for f in json.load(sys.stdin)[\"result\"][\"files\"]])') <($(declare -f final); final '$tmp/s1b.out' | python3 -c 'import json,sys; print([(f[\"path\"],f[\"size\"],f.get(\"sha256\")) for f in json.load(sys.stdin)[\"result\"][\"files\"]])')"
# The faults are still queued: the redelivery neither logged in nor snapshotted.  The
# next vCenter command meets one of them: the Login fault on a worker without a pooled
# session, the CreateSnapshot_Task fault on one that reuses its session.
idq=$(uuid)
cmd_snapshot "$idq" "$disk1" 2 16 >"$tmp/sq.json"
submit "$conf" "$tmp/sq.json" "$tmp/sq.out"
check "the redelivery did not talk to vCenter (the next command meets an injected fault)" \
    evtrue "$tmp/sq.out" "e['status']=='failed' and e['error']['code'] in ('VCENTER_AUTH', 'VCENTER_FAULT') and 'must-not-be-called' in e['error']['message']"
inject "clear=1"

# --- a busy VM (TaskInProgress) is retried with backoff -----------------------------
inject "fault=CreateSnapshot_Task&fault_type=TaskInProgress&fault_msg=busy"
inject "fault=CreateSnapshot_Task&fault_type=TaskInProgress&fault_msg=busy"
id3=$(uuid)
cmd_snapshot "$id3" "$disk1" 2 15 >"$tmp/s3.json"
submit "$conf" "$tmp/s3.json" "$tmp/s3.out"
check "TaskInProgress twice, then the snapshot succeeds" evtrue "$tmp/s3.out" "e['status']=='succeeded'"
check "the worker logged the retries" grep -q "after 3 attempts" "$tmp/w1.log" "$tmp/w2.log"
check "simulator clean after the retried snapshot" rig_clean

# --- credential sets are bound to their URLs ---------------------------------------
id4=$(uuid)
sed -e "s|$VCSIM_URL|https://127.0.0.2:9/sdk|" -e "s|$id3|$id4|" "$tmp/s3.json" >"$tmp/s4.json"
submit "$conf" "$tmp/s4.json" "$tmp/s4.out"
check "a vcenter.url the credential set is not bound to: VCENTER_AUTH, not retryable" \
    evtrue "$tmp/s4.out" "e['error']['code']=='VCENTER_AUTH' and not e['error']['retryable']"
id5=$(uuid)
sed -e 's|"credentials":"vc1"|"credentials":"nope"|' -e "s|$id3|$id5|" "$tmp/s3.json" >"$tmp/s5.json"
submit "$conf" "$tmp/s5.json" "$tmp/s5.out"
check "unknown credential set: VCENTER_AUTH" evtrue "$tmp/s5.out" "e['error']['code']=='VCENTER_AUTH'"
id6=$(uuid)
sed -e "s|$VCSIM_VM_UUID|00000000-0000-4000-8000-000000000000|" -e "s|$id3|$id6|" "$tmp/s3.json" >"$tmp/s6.json"
submit "$conf" "$tmp/s6.json" "$tmp/s6.out"
check "unknown VM: NOT_FOUND" evtrue "$tmp/s6.out" "e['error']['code']=='NOT_FOUND'"
id7=$(uuid)
sed -e "s|disk1.vmdk|nosuch.vmdk|" -e "s|$id3|$id7|" "$tmp/s3.json" >"$tmp/s7.json"
submit "$conf" "$tmp/s7.json" "$tmp/s7.out"
check "unknown disk: NOT_FOUND" evtrue "$tmp/s7.out" "e['error']['code']=='NOT_FOUND'"
check "failed commands left nothing in the simulator" rig_clean
check "failed commands left nothing on the share" bash -c "no_debris() { [ -z \"\$(find '$STORE' -name '*.part')\" ]; }; no_debris && [ ! -e '$STORE/snapshots/2/13/$id7' ] || [ -z \"\$(ls -A '$STORE/snapshots/2/13/$id7' 2>/dev/null)\" ]"
check "the password appears in no log" bash -c "! grep -qF 'vc-password' $tmp/w*.log"

# --- two snapshots at once on two workers -------------------------------------------
a=$(uuid); b=$(uuid)
cmd_snapshot "$a" "$disk1" 3 1 >"$tmp/ca.json"
cmd_snapshot "$b" "$disk2" 3 2 >"$tmp/cb.json"
submit "$conf" "$tmp/ca.json" "$tmp/ca.out" &
pa=$!
submit "$conf" "$tmp/cb.json" "$tmp/cb.out" &
pb=$!
wait_exit 120 $pa; wait_exit 120 $pb
check "two concurrent snapshots of one VM both succeed" bash -c \
    "grep -q '\"status\":\"succeeded\"' '$tmp/ca.out' && grep -q '\"status\":\"succeeded\"' '$tmp/cb.out'"
check "each with its own disk's bytes" bash -c \
    "grep -q '$VCSIM_SEED_SHA256_0' '$tmp/ca.out' && grep -q '$VCSIM_SEED_SHA256_1' '$tmp/cb.out'"
check "simulator clean after concurrent snapshots" rig_clean

# --- DeleteSnapshot of what CreateSnapshot made ------------------------------------
d=$(uuid)
cmd_path "$d" DeleteSnapshot "$dir/$id" >"$tmp/d.json"
submit "$conf" "$tmp/d.json" "$tmp/d.out"
check "DeleteSnapshot removes the three files" evtrue "$tmp/d.out" "len(e['result']['files'])==3"
check "and the directory" [ ! -e "$STORE/$dir" ]

e2e_done
