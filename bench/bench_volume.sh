#!/usr/bin/env bash
# The volume commands end to end (snapctl submit --wait -> broker ->
# snapworker -> simulator / share), each against a baseline in the same run:
#   - CreateVolume of a new-format snapshot of a seeded 1 GiB disk (an NFC
#     upload through ImportVApp, the disk moved to [ds] NAME.vmdk, the helper
#     VM destroyed) against a bare `curl -T` of the same .vmdk to an import
#     lease of the same OVF (bench/import_lease.py opens it, aborts it after);
#     goal <= 1.10x;
#   - ExtractVolume of the VM's disk (snapshot, worker VM, export into the
#     object, cleanup, then the downloadable .ova packed into the extract
#     area) against the legacy way: `vmwctl export` of the VM, then `cat` of
#     its OVF and disk into an .ova and `sync -f` of it; goal <= 1.10x.
# Medians of BENCH_RUNS (3) interleaved runs with their spread (bench/lib.sh).
# Measures only; never asserts.  BENCH_VOLUME_MIB overrides the disk size
# (default 1024).  The simulator (its datastore) runs in a directory of its
# own file system, /dev/shm when it has room, as a datastore is never on the
# NFS share's file system: on one ext4 the simulator's rewrite of a whole
# imported disk is in the same journal as the share, and CreateVolume's
# marker fsync waits for that writeback (0.5-0.7 s per GiB here).
# BENCH_VOLUME_VC_DIR=DIR picks the directory, BENCH_VOLUME_VC_DIR=same puts
# the simulator beside the share (the row says which).  The
# worker's log lines with each command's phases (vCenter steps, stream,
# commit or marker) are kept in build/bench/bench_volume.phases.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
VMWCTL=$build/bin/vmwctl
mib=${BENCH_VOLUME_MIB:-1024}
if [ ! -x "$build/bin/snapworker-vcsim" ] || [ ! -x "$SW" ] || [ ! -x "$VMWCTL" ]; then
	echo "| CreateVolume / ExtractVolume | not run: simulator or binaries not built | | | |"
	exit 0
fi
T=$(mktemp -d /tmp/volbench.XXXXXX)
VCD=$T/vc
vcdir=${BENCH_VOLUME_VC_DIR:-auto}
if [ "$vcdir" = auto ]; then
	vcdir=same
	[ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt $(((mib * 3 + 512) * 1024)) ] && vcdir=/dev/shm
fi
where="datastore on $vcdir"
[ "$vcdir" = same ] && where="datastore on the share's file system"
if [ "$vcdir" != same ]; then
	VCD=$(mktemp -d "$vcdir/volbench-vc.XXXXXX") || { echo "| CreateVolume / ExtractVolume | not run: $vcdir is not writable | | | |"; rm -rf "$T"; exit 0; }
fi
wpid=""
cleanup() {
	[ -n "$wpid" ] && { kill -TERM "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null; }
	mkdir -p "$build/bench" && grep -E ': phases: ' "$T/w.log" >"$build/bench/bench_volume.phases" 2>/dev/null
	"$here/tests/rig/vcsim.sh" stop "$VCD" >/dev/null 2>&1
	[ "$VCD" = "$T/vc" ] || rm -rf "$VCD"
	"$here/tests/rig/rabbitmq.sh" stop "$T/mq" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "| CreateVolume $mib MiB | FAILED: $* | | | <= 1.10x |"
	echo "| ExtractVolume $mib MiB | FAILED: $* | | | <= 1.10x |"
	exit 0
}
log() { echo "# $*" >&2; }

"$here/tests/rig/rabbitmq.sh" start "$T/mq" >"$T/mq.log" 2>&1 &
mqp=$!
"$here/tests/rig/vcsim.sh" start "$VCD" -seed-mib "$mib" -vm-disks 1 >"$T/vc.log" 2>&1 || fail "simulator"
wait $mqp || fail "broker"
# shellcheck disable=SC1091
. "$T/mq/rabbitmq.env"
# shellcheck disable=SC1091
. "$VCD/vcsim.env"
bytes=$((mib << 20))
printf 'bench\n' >"$T/vc.secret"
chmod 600 "$T/vc.secret"
mkdir -p "$T/share" "$T/extract"
cat >"$T/w.conf" <<EOF
[worker]
jobs = 1
log_level = info
[amqp]
url = $AMQP_URL
password_file = $AMQP_PASSWORD_FILE
[store]
extract_dir = $T/extract
nfs://bench/share = $T/share
[vcenter vc1]
url = $VCSIM_URL
user = bench
password_file = $T/vc.secret
thumbprint = $VCSIM_THUMBPRINT
EOF
SNAPWORKER_SWEEP_INTERVAL=0 "$SW" run -c "$T/w.conf" 2>"$T/w.log" &
wpid=$!
for i in $(seq 150); do
	[ "$("$CTL" -c "$T/w.conf" status 2>/dev/null | awk '$1=="snapworker.commands.default"{print $3}')" = 1 ] && break
	sleep 0.1
done
uuid() { cat /proc/sys/kernel/random/uuid; }
VC='"vcenter":{"url":"'$VCSIM_URL'","credentials":"vc1"},"store":{"url":"nfs://bench/share"}'
DISK="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
submit() { # ID JSON: submits, waits; 0 on a succeeded final event
	printf '%s' "$2" >"$T/$1.json"
	"$CTL" -c "$T/w.conf" submit --wait --timeout 600 "$T/$1.json" >"$T/$1.out" 2>&1 &&
	    grep -q '"status":"succeeded"' "$T/$1.out"
}
snapshot() { # ID
	submit "$1" '{"version":1,"id":"'"$1"'","type":"CreateSnapshot",'"$VC"',"args":{"vm":{"uuid":"'"$VCSIM_VM_UUID"'"},"disk":"'"$DISK"'","account_id":1,"volume_id":1}}'
}

# The source of CreateVolume (also the warm-up: session, page cache of the seeded disk).
src=$(uuid)
snapshot "$src" || fail "source snapshot: $(tail -1 "$T/$src.out")"
SRC=snapshots/1/1/$src/$src
vmdk=$T/share/$SRC-disk0.vmdk
ovf=$T/share/$SRC.ovf
[ "$(stat -c %s "$vmdk" 2>/dev/null)" = "$bytes" ] || fail "source snapshot has no $mib MiB disk"
export VMWCTL_PASSWORD=bench
V=("$VMWCTL" --url "$VCSIM_URL" --user bench --thumbprint "$VCSIM_THUMBPRINT")
# ExportVm of the baseline wants the VM powered off; a snapshot does not mind.
"${V[@]}" power-off --vm "$VCSIM_VM" >/dev/null 2>&1

cv=() curlT=() xv=() legacy=()
for rep in $(seq "$BENCH_RUNS"); do
	# --- CreateVolume
	id=$(uuid)
	t0=$(now)
	submit "$id" '{"version":1,"id":"'"$id"'","type":"CreateVolume",'"$VC"',"args":{"source_path":"'"$SRC"'","datastore":"'"$VCSIM_DATASTORE"'","name":"benchvol'"$rep"'"}}' ||
	    fail "CreateVolume: $(tail -1 "$T/$id.out")"
	cv+=("$(elapsed "$t0")")
	[ "$(stat -c %s "$VCSIM_DATASTORE_DIR/benchvol$rep.vmdk" 2>/dev/null)" = "$bytes" ] || echo "warning: the imported disk is not $bytes bytes" >&2
	rm -f "$VCSIM_DATASTORE_DIR/benchvol$rep.vmdk"
	# --- curl -T to an import lease of the same OVF
	read -r lease url < <(python3 "$here/bench/import_lease.py" open "$VCSIM_URL" bench "$T/vc.secret" "$ovf" "$VCSIM_VM" "benchput$rep")
	[ -n "${url:-}" ] || fail "no import lease for the baseline"
	t0=$(now)
	code=$(curl -sk -T "$vmdk" -H 'Content-Type: application/x-vnd.vmware-streamVmdk' -o /dev/null -w '%{http_code}' "$url")
	curlT+=("$(elapsed "$t0")")
	[ "$code" = 200 ] || echo "warning: curl -T answered HTTP $code" >&2
	python3 "$here/bench/import_lease.py" abort "$VCSIM_URL" bench "$T/vc.secret" "$lease" >/dev/null 2>&1
	rm -rf "${VCSIM_DATASTORE_DIR:?}/benchput$rep"
	log "run $rep: CreateVolume ${cv[-1]} s, curl -T ${curlT[-1]} s"
	# --- ExtractVolume
	id=$(uuid)
	t0=$(now)
	submit "$id" '{"version":1,"id":"'"$id"'","type":"ExtractVolume",'"$VC"',"args":{"vm":{"uuid":"'"$VCSIM_VM_UUID"'"},"disk":"'"$DISK"'","account_id":1,"volume_id":2}}' ||
	    fail "ExtractVolume: $(tail -1 "$T/$id.out")"
	xv+=("$(elapsed "$t0")")
	osz=$(stat -c %s "$T/extract/$id.ova" 2>/dev/null || echo 0)
	[ "$osz" -gt "$bytes" ] || echo "warning: the extracted .ova is $osz bytes" >&2
	rm -rf "$T/extract/$id.ova" "$T/share/volumes/1/2/$id"
	# --- export + cat into an .ova
	mkdir -p "$T/legacy"
	t0=$(now)
	"${V[@]}" export --vm "$VCSIM_VM" --out "$T/legacy" --name legacy >"$T/legacy.log" 2>&1 || echo "warning: export failed" >&2
	cat "$T/legacy/legacy.ovf" "$T/legacy/legacy-disk0.vmdk" >"$T/legacy/legacy.ova"
	sync -f "$T/legacy/legacy.ova"
	legacy+=("$(elapsed "$t0")")
	rm -rf "$T/legacy"
	log "run $rep: ExtractVolume ${xv[-1]} s, export + cat ${legacy[-1]} s"
done

echo "| CreateVolume $mib MiB (NFC upload through ImportVApp, disk moved, helper VM destroyed; $where) vs curl -T of the .vmdk to an import lease of the same OVF | $(secs_cell "${cv[*]}") | curl -T: $(secs_cell "${curlT[*]}") | $(ratio_cell "${cv[*]}" "${curlT[*]}") | <= 1.10x |"
echo "| ExtractVolume $mib MiB (snapshot, worker VM, export into the object, cleanup, .ova packed; $where) vs vmwctl export + cat into an .ova + sync | $(secs_cell "${xv[*]}") | export + cat: $(secs_cell "${legacy[*]}") | $(ratio_cell "${xv[*]}" "${legacy[*]}") | <= 1.10x |"
