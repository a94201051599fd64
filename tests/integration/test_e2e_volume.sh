#!/usr/bin/env bash
# CreateVolume end to end (broker, daemon, vCenter simulator): a fresh
# new-format snapshot and an upgraded store's legacy 2-disk .ova (read in
# place) are imported onto the datastore the command names; the disks end
# up at [ds] NAME.vmdk (NAME-1.vmdk ...) with the source's bytes, the helper
# VM is gone, a redelivery answers the same path without importing again,
# and failures leave neither a helper VM nor a success.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

e2e_start_vcsim -seed-mib 4 -vm-disks 2
e2e_broker
UP=$tmp/upgraded/store
UP_URL=nfs://10.0.0.7/export/upgraded
"$here/tests/fixtures/upgraded-store/make.sh" "$UP" 256 >"$tmp/fixture.log" 2>&1 ||
    { cat "$tmp/fixture.log"; nok "upgraded-store fixture"; }
SUMS=$tmp/upgraded/upgraded-store.sha256
conf=$tmp/w.conf
e2e_conf "$conf" 1
sed -i "s|^extract_dir = |$UP_URL = $UP\nextract_dir = |" "$conf"
e2e_worker "$conf" w1
check "worker consumes" e2e_wait_consumers "$conf" 1

DS=$VCSIM_DATASTORE_DIR
disk2="[$VCSIM_DATASTORE] $VCSIM_VM/disk2.vmdk"
LEG2=snapshots/2/8/5a1b2c3d-0000-4000-8000-000000000008
sum_of() { awk -v o="$1" -v m="$2" '$2==o && $3==m {print $1}' "$SUMS"; }
sha() { sha256sum <"$1" | cut -d' ' -f1; }
nvms() { state | python3 -c "import json,sys; print(len(json.load(sys.stdin)['vms']))"; }
leg_before=$(sha "$UP/$LEG2.ova")

# ---------------------------------------------------------------- fresh source
s=$(uuid)
cmd_snapshot "$s" "$disk2" 2 7 >"$tmp/s.json"
submit "$conf" "$tmp/s.json" "$tmp/s.out"
check "source: CreateSnapshot of the second disk" evtrue "$tmp/s.out" "e['status']=='succeeded'"
SNAP=snapshots/2/7/$s/$s
vms0=$(nvms)

id=$(uuid)
cmd_volume "$id" "$SNAP" "vol-fresh" >"$tmp/v.json"
submit "$conf" "$tmp/v.json" "$tmp/v.out"
check "[fresh] CreateVolume succeeds with the disk's datastore path" evtrue "$tmp/v.out" \
    "e['status']=='succeeded' and e['result']['datastore_path']=='[$VCSIM_DATASTORE] vol-fresh.vmdk'"
check "[fresh] the disk on the datastore holds the volume's bytes" \
    [ "$(sha "$DS/vol-fresh.vmdk" 2>/dev/null)" = "$VCSIM_SEED_SHA256_1" ]
check "[fresh] helper VM removed, no lease open, no tagged VM" rig_clean
check "[fresh] no helper directory left on the datastore" [ ! -e "$DS/$id" ]
check "[fresh] VM count back to before" [ "$(nvms)" = "$vms0" ]
check "[fresh] progress events were published" grep -q '"status":"progress"' "$tmp/v.out"
# The info line with the vCenter steps timed apart from the stream, which carried the disk file.
srcsize=$(stat -c %s "$(dirname "$STORE/$SNAP")"/*.vmdk 2>/dev/null | head -n 1)
check "[fresh] the log times the vCenter steps apart from the stream of the disk's $srcsize bytes" \
    grep -Eq "$id: phases: vcenter [0-9]+ ms [(]login [0-9]+, leftovers [0-9]+, placement [0-9]+, import [0-9]+, detach [0-9]+, move [0-9]+, destroy [0-9]+\), stream [0-9]+ ms \($srcsize bytes, [0-9.]+ MiB/s\), marker [0-9]+ ms" "$tmp/w1.log"
m1=$(stat -c %Y.%s "$DS/vol-fresh.vmdk" 2>/dev/null)
sleep 1
submit "$conf" "$tmp/v.json" "$tmp/v2.out"
check "[fresh] redelivery answers the same path" evtrue "$tmp/v2.out" \
    "e['status']=='succeeded' and e['result']['datastore_path']=='[$VCSIM_DATASTORE] vol-fresh.vmdk'"
check "[fresh] redelivery did not import again" [ "$(stat -c %Y.%s "$DS/vol-fresh.vmdk" 2>/dev/null)" = "$m1" ]

# ------------------------------------------------------------- upgraded source
id2=$(uuid)
cmd_volume "$id2" "$LEG2" "vol-legacy" | sed "s|\"$STORE_URL\"|\"$UP_URL\"|" >"$tmp/l.json"
submit "$conf" "$tmp/l.json" "$tmp/l.out"
check "[upgraded] CreateVolume from a legacy 2-disk .ova" evtrue "$tmp/l.out" \
    "e['status']=='succeeded' and e['result']['datastore_path']=='[$VCSIM_DATASTORE] vol-legacy.vmdk' and e['result']['format']=='ova'"
check "[upgraded] first disk is the archive's first member" \
    [ "$(sha "$DS/vol-legacy.vmdk" 2>/dev/null)" = "$(sum_of "$LEG2" 5a1b2c3d-0000-4000-8000-000000000008-disk0.vmdk)" ]
check "[upgraded] second disk at NAME-1.vmdk is the second member" \
    [ "$(sha "$DS/vol-legacy-1.vmdk" 2>/dev/null)" = "$(sum_of "$LEG2" 5a1b2c3d-0000-4000-8000-000000000008-disk1.vmdk)" ]
check "[upgraded] the archive was read in place, unchanged, nothing unpacked" bash -c \
    "[ '$(sha "$UP/$LEG2.ova")' = '$leg_before' ] && [ \$(ls '$UP/snapshots/2/8' | wc -l) = 1 ]"
check "[upgraded] helper VM removed" rig_clean

# ---------------------------------------------------------------------- failures
f=$(uuid)
cmd_volume "$f" "$SNAP" "vol-nods" | sed "s|\"datastore\":\"$VCSIM_DATASTORE\"|\"datastore\":\"NoSuchDS\"|" >"$tmp/f.json"
submit "$conf" "$tmp/f.json" "$tmp/f.out"
check "[failure] unknown datastore: failed, nothing imported" evtrue "$tmp/f.out" \
    "e['status']=='failed' and 'NoSuchDS' in e['error']['message']"
check "[failure] no helper VM after it" rig_clean

f2=$(uuid)
cmd_volume "$f2" "$SNAP" "vol-fresh" >"$tmp/f2.json"
submit "$conf" "$tmp/f2.json" "$tmp/f2.out"
check "[failure] a name taken on the datastore: failed, the existing disk kept" evtrue "$tmp/f2.out" \
    "e['status']=='failed'"
check "[failure] ... its bytes unchanged" [ "$(sha "$DS/vol-fresh.vmdk" 2>/dev/null)" = "$VCSIM_SEED_SHA256_1" ]
check "[failure] ... and its helper VM destroyed" rig_clean

f3=$(uuid)
cmd_volume "$f3" "snapshots/2/7/nope/nope" "vol-nosrc" >"$tmp/f3.json"
submit "$conf" "$tmp/f3.json" "$tmp/f3.out"
check "[failure] missing source: failed, not retryable" evtrue "$tmp/f3.out" \
    "e['status']=='failed' and not e['error']['retryable']"
# -------------------------------------------------------------- fault recovery
# The move fails after the upload: failed, helper VM gone, no disk at the
# final path; the redelivery imports again and succeeds.
r1=$(uuid)
cmd_volume "$r1" "$SNAP" "vol-retry" >"$tmp/r1.json"
inject "fault=MoveVirtualDisk_Task&fault_type=CannotAccessFile&fault_msg=injected&in_task=1"
submit "$conf" "$tmp/r1.json" "$tmp/r1.out"
check "[recovery] a failed move fails the command" evtrue "$tmp/r1.out" \
    "e['status']=='failed' and 'injected' in e['error']['message']"
check "[recovery] ... leaving no disk at the final path" [ ! -e "$DS/vol-retry.vmdk" ]
check "[recovery] ... and no helper VM" rig_clean
submit "$conf" "$tmp/r1.json" "$tmp/r1b.out"
check "[recovery] the redelivery imports and succeeds" evtrue "$tmp/r1b.out" \
    "e['status']=='succeeded' and e['result']['datastore_path']=='[$VCSIM_DATASTORE] vol-retry.vmdk'"
check "[recovery] ... with the volume's bytes" \
    [ "$(sha "$DS/vol-retry.vmdk" 2>/dev/null)" = "$VCSIM_SEED_SHA256_1" ]

# The lease cannot complete: the import is aborted, nothing is left.
r2=$(uuid)
cmd_volume "$r2" "$SNAP" "vol-abort" >"$tmp/r2.json"
inject "fault=HttpNfcLeaseComplete&fault_msg=injected-complete"
submit "$conf" "$tmp/r2.json" "$tmp/r2.out"
check "[recovery] lease completion refused: failed" evtrue "$tmp/r2.out" "e['status']=='failed'"
check "[recovery] ... no helper VM, no open lease, no disk" bash -c \
    "[ ! -e '$DS/vol-abort.vmdk' ] && [ ! -e '$DS/$r2' ]" 
check "[recovery] ... simulator clean" rig_clean

# The helper VM cannot be destroyed at the end: the volume is complete and
# answered; the tagged VM stays for the sweeper or a redelivery, which
# removes it and answers the same path.
r3=$(uuid)
cmd_volume "$r3" "$SNAP" "vol-leftover" >"$tmp/r3.json"
inject "fault=Destroy_Task&fault_msg=injected-destroy&in_task=1"
submit "$conf" "$tmp/r3.json" "$tmp/r3.out"
check "[recovery] helper VM not destroyable: the complete volume is still answered" evtrue "$tmp/r3.out" \
    "e['status']=='succeeded' and e['result']['datastore_path']=='[$VCSIM_DATASTORE] vol-leftover.vmdk'"
check "[recovery] ... the helper VM is left tagged with the command id, without disks" rigpy \
    "[v for v in d['vms'] if v['name']=='$r3' and (v.get('extra_config') or {}).get('snapworker.command')=='$r3' and not v['disks']]"
submit "$conf" "$tmp/r3.json" "$tmp/r3b.out"
check "[recovery] the redelivery removes it and answers the same path" evtrue "$tmp/r3b.out" \
    "e['status']=='succeeded' and e['result']['datastore_path']=='[$VCSIM_DATASTORE] vol-leftover.vmdk'"
check "[recovery] ... the disk survived the cleanup" \
    [ "$(sha "$DS/vol-leftover.vmdk" 2>/dev/null)" = "$VCSIM_SEED_SHA256_1" ]
# Two disks, the second's final path taken: the first disk is moved back,
# so the redelivery (once the path is free) finds both final paths free.
r4=$(uuid)
cmd_volume "$r4" "$LEG2" "vol-two" | sed "s|\"$STORE_URL\"|\"$UP_URL\"|" >"$tmp/r4.json"
echo occupied >"$DS/vol-two-1.vmdk"
echo occupied >"$DS/vol-two-1-flat.vmdk"
submit "$conf" "$tmp/r4.json" "$tmp/r4.out"
check "[recovery] second disk's path taken: failed" evtrue "$tmp/r4.out" \
    "e['status']=='failed' and 'FileAlreadyExists' in e['error']['message']"
check "[recovery] ... the first disk did not stay at its final path" [ ! -e "$DS/vol-two.vmdk" ]
check "[recovery] ... the occupant untouched" bash -c \
    "[ \"\$(cat '$DS/vol-two-1.vmdk')\" = occupied ] && [ \"\$(cat '$DS/vol-two-1-flat.vmdk')\" = occupied ]"
check "[recovery] ... no helper VM" rig_clean
rm -f "$DS/vol-two-1.vmdk" "$DS/vol-two-1-flat.vmdk"
submit "$conf" "$tmp/r4.json" "$tmp/r4b.out"
check "[recovery] the redelivery succeeds with both disks" bash -c \
    "[ -s '$DS/vol-two.vmdk' ] && [ -s '$DS/vol-two-1.vmdk' ]"
check "[recovery] ... and answers the first disk" evtrue "$tmp/r4b.out" \
    "e['status']=='succeeded' and e['result']['datastore_path']=='[$VCSIM_DATASTORE] vol-two.vmdk'"
check "simulator clean at the end" rig_clean
e2e_done
