#!/usr/bin/env bash
# CreateSnapshot end to end (snapctl submit --wait -> broker -> snapworker ->
# simulator -> share) of a seeded 1 GiB disk, against, in the same run:
#   - `curl -o` of the same disk's NFC URL followed by `sync -f` of the file
#     (the transfer and the durability the snapshot gives; goal <= 1.10x);
#   - the legacy pipeline: the same VM exported (vmwctl export, both disks)
#     then `tar -cf` into an .ova, per disk (goal <= 0.55x);
#   - both disks of the VM (two CreateSnapshot commands, one per volume, on a
#     worker of one slot) against curl of both NFC URLs + sync (<= 1.10x).
# The worker logs where each snapshot's time went (wrk__phases, info): the
# vCenter steps (find, snapshot, worker VM, lease, descriptor, cleanup) and
# the stream (first disk byte to last) with the commit.  Two rows hold them
# apart: the stream + commit against curl + sync (the per-byte cost), and
# the vCenter steps on a second simulator whose tasks take 300 ms each
# (-task-delay) against those tasks' own time plus the same steps without
# delay (the fixed cost: what polling and round trips add).  Plus bytes
# written per disk byte (the worker's write() bytes from /proc/PID/io wchar),
# the share's bytes per disk byte and the worker's peak RSS.  The workers'
# phases lines are kept in build/bench/bench_snapshot.phases.
# Every figure is the median of BENCH_RUNS (3) interleaved runs of each
# side, with the spread (bench/lib.sh).  Measures only; never asserts.
# BENCH_SNAPSHOT_MIB overrides the disk size (default 1024); BENCH_RUNS the runs.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
VMWCTL=$build/bin/vmwctl
mib=${BENCH_SNAPSHOT_MIB:-1024}
DELAY_MS=300
if [ ! -x "$build/bin/snapworker-vcsim" ] || [ ! -x "$SW" ] || [ ! -x "$VMWCTL" ]; then
	echo "| CreateSnapshot | not run: simulator or binaries not built | | | |"
	exit 0
fi
T=$(mktemp -d /tmp/snapbench.XXXXXX)
wpids=()
cleanup() {
	local p
	for p in "${wpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${wpids[@]}"; do wait "$p" 2>/dev/null; done
	mkdir -p "$build/bench" && cat "$T"/w*.log 2>/dev/null | grep -E ': phases: ' >"$build/bench/bench_snapshot.phases"
	"$here/tests/rig/vcsim.sh" stop "$T/vc" >/dev/null 2>&1
	"$here/tests/rig/vcsim.sh" stop "$T/vcd" >/dev/null 2>&1
	"$here/tests/rig/rabbitmq.sh" stop "$T/mq" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "| CreateSnapshot $mib MiB | FAILED: $* | | | <= 1.10x |"; exit 0; }
log() { echo "# $*" >&2; }

"$here/tests/rig/rabbitmq.sh" start "$T/mq" >"$T/mq.log" 2>&1 &
mqp=$!
"$here/tests/rig/vcsim.sh" start "$T/vc" -seed-mib "$mib" -vm-disks 2 >"$T/vc.log" 2>&1 || fail "simulator"
"$here/tests/rig/vcsim.sh" start "$T/vcd" -seed-mib 1 -task-delay "${DELAY_MS}ms" >"$T/vcd.log" 2>&1 || fail "simulator with task delays"
wait $mqp || fail "broker"
# shellcheck disable=SC1091
. "$T/mq/rabbitmq.env"
bytes=$((mib << 20))
printf 'bench\n' >"$T/vc.secret"
chmod 600 "$T/vc.secret"
mkdir -p "$T/share"
# conf FILE VCSIM_DIR LOG_LEVEL
conf() {
	# shellcheck disable=SC1090,SC1091
	. "$2/vcsim.env"
	cat >"$1" <<EOF
[worker]
jobs = 1
log_level = $3
[amqp]
url = $AMQP_URL
password_file = $AMQP_PASSWORD_FILE
[store]
nfs://bench/share = $T/share
[vcenter vc1]
url = $VCSIM_URL
user = bench
password_file = $T/vc.secret
thumbprint = $VCSIM_THUMBPRINT
EOF
}
conf "$T/d.conf" "$T/vcd" debug
conf "$T/w.conf" "$T/vc" info   # last: VCSIM_* of the big simulator stay set
start_worker() { # CONF LOG
	SNAPWORKER_SWEEP_INTERVAL=0 "$SW" run -c "$1" 2>"$2" &
	wpids+=($!)
	wpid=$!
}
consumers() {
	local i
	for i in $(seq 150); do
		[ "$("$CTL" -c "$T/w.conf" status 2>/dev/null | awk '$1=="snapworker.commands.default"{print $3}')" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
cmd() { # ID DISKNUMBER VOLUME [VCSIM_URL]
	printf '{"version":1,"id":"%s","type":"CreateSnapshot","vcenter":{"url":"%s","credentials":"vc1"},"store":{"url":"nfs://bench/share"},"args":{"vm":{"uuid":"%s"},"disk":"[%s] %s/disk%s.vmdk","account_id":1,"volume_id":%s}}' \
	    "$1" "${4:-$VCSIM_URL}" "$VCSIM_VM_UUID" "$VCSIM_DATASTORE" "$VCSIM_VM" "$2" "$3" >"$T/$1.json"
}
submit() { "$CTL" -c "$T/w.conf" submit --wait --timeout 600 "$T/$1.json" >"$T/$1.out" 2>&1; }
uuid() { cat /proc/sys/kernel/random/uuid; }
wchar() { awk '/^wchar:/{print $2}' "/proc/$1/io"; }
# phase LOG ID FIELD: milliseconds of FIELD (vcenter, stream, commit) in ID's phases line.
phase() {
	grep -F "$2: phases:" "$1" | tail -1 | sed -n "s/.* $3 \([0-9]*\) ms.*/\1/p"
}

start_worker "$T/w.conf" "$T/w1.log"
w1=$wpid
consumers 1 || fail "worker did not consume"
# The source VM powered off (ExportVm of the baselines wants it so); a snapshot does not mind.
export VMWCTL_PASSWORD=bench
V=("$VMWCTL" --url "$VCSIM_URL" --user bench --thumbprint "$VCSIM_THUMBPRINT")
"${V[@]}" power-off --vm "$VCSIM_VM" >/dev/null 2>&1
BENCH_CJ=$T/cj
vc_login bench bench
vm=$(vc_vm "$VCSIM_VM")
[ -n "$vm" ] || fail "VM not found over SOAP"
# Warm-up (session, page cache of the seeded files), not measured.
id=$(uuid); cmd "$id" 2 2; submit "$id" || fail "warm-up snapshot: $(tail -1 "$T/$id.out")"
rm -rf "$T/share/snapshots/1/2/$id"

# curl_sync FILE URL...: downloads every URL (in turn) into FILE.K, syncs them; prints seconds.
curl_sync() {
	local out=$1 t0 k=0 u
	shift
	t0=$(now)
	for u in "$@"; do
		curl -sk -o "$out.$k" "$u" || echo "warning: curl of $u failed" >&2
		k=$((k + 1))
	done
	# The snapshot's disk is durable (fsync) before its meta is written: the same for curl.
	sync -f "$out.0"
	elapsed "$t0"
	[ "$(stat -c %s "$out.0" 2>/dev/null)" = "$bytes" ] || echo "warning: curl got a short file" >&2
	rm -f "$out".*
}

snap=() curl1=() stream=() vcms=() two=() curl2=() legacy=()
wc_total=0
for rep in $(seq "$BENCH_RUNS"); do
	# --- one CreateSnapshot through the broker, one worker
	id=$(uuid); cmd "$id" 1 1
	wc0=$(wchar "$w1")
	t0=$(now)
	submit "$id" || fail "snapshot: $(tail -1 "$T/$id.out")"
	snap+=("$(elapsed "$t0")")
	wc1=$(wchar "$w1")
	wc_total=$((wc_total + wc1 - wc0))
	grep -q "$VCSIM_SEED_SHA256_0" "$T/$id.out" || echo "warning: snapshot sha256 is not the seed's" >&2
	s=$(phase "$T/w1.log" "$id" stream); c=$(phase "$T/w1.log" "$id" commit); v=$(phase "$T/w1.log" "$id" vcenter)
	stream+=("$(echo "(${s:-0} + ${c:-0}) / 1000" | bc -l)")
	vcms+=("${v:-0}")
	log "run $rep: CreateSnapshot ${snap[-1]} s; vCenter steps $v ms, stream $s ms, commit $c ms"
	share_bytes=$(du -sb "$T/share/snapshots/1/1/$id" | cut -f1)
	rm -rf "$T/share/snapshots/1/1/$id"
	# --- curl -o + sync of the same disk's NFC URL (a fresh lease, aborted after)
	lease=$(vc_export_lease "$vm")
	mapfile -t urls < <(vc_lease_urls "$lease")
	curl1+=("$(curl_sync "$T/c" "${urls[0]}")")
	log "run $rep: curl -o + sync ${curl1[-1]} s"
	# --- both disks: curl + sync of both URLs, then two CreateSnapshot
	curl2+=("$(curl_sync "$T/c" "${urls[0]}" "${urls[1]}")")
	vc_lease_abort "$lease"
	a=$(uuid); b=$(uuid); cmd "$a" 1 1; cmd "$b" 2 2
	t0=$(now)
	submit "$a" & pa=$!
	submit "$b" & pb=$!
	wait $pa; ra=$?; wait $pb; rb=$?
	two+=("$(elapsed "$t0")")
	[ $ra = 0 ] && [ $rb = 0 ] || echo "warning: a 2-disk snapshot failed" >&2
	log "run $rep: 2 disks: CreateSnapshot x2 ${two[-1]} s, curl x2 + sync ${curl2[-1]} s"
	rm -rf "$T/share/snapshots/1/1/$a" "$T/share/snapshots/1/2/$b"
	# --- legacy: export of the VM (both disks), then tar into an .ova
	mkdir -p "$T/legacy"
	t0=$(now)
	"${V[@]}" export --vm "$VCSIM_VM" --out "$T/legacy" --name legacy >"$T/legacy.log" 2>&1 || echo "warning: legacy export failed" >&2
	tar -cf "$T/legacy/legacy.ova" -C "$T/legacy" legacy.ovf legacy-disk0.vmdk legacy-disk1.vmdk 2>/dev/null
	sync -f "$T/legacy/legacy.ova"
	ndisks=$(find "$T/legacy" -name 'legacy-disk*.vmdk' | wc -l)
	[ "$ndisks" -ge 1 ] || ndisks=1
	legacy+=("$(echo "$(elapsed "$t0") / $ndisks" | bc -l)")
	legacy_written=$(du -cb "$T/legacy"/* | tail -1 | cut -f1)
	legacy_ratio=$(echo "$legacy_written / ($bytes * $ndisks)" | bc -l)
	rm -rf "$T/legacy"
	log "run $rep: legacy ${legacy[-1]} s per disk"
done
hwm_kib=$(awk '/^VmHWM:/{print $2}' "/proc/$w1/status")
kill -TERM "$w1"; wait "$w1" 2>/dev/null

# --- the fixed cost: the same command where every vCenter task takes DELAY_MS
# shellcheck disable=SC1091
. "$T/vcd/vcsim.env"
start_worker "$T/d.conf" "$T/wd.log"
wd=$wpid
consumers 1 || fail "worker (task delays) did not consume"
dvc=() ntasks=0
for rep in $(seq "$BENCH_RUNS"); do
	id=$(uuid); cmd "$id" 1 1 "$VCSIM_URL"
	submit "$id" || fail "snapshot with task delays: $(tail -1 "$T/$id.out")"
	dvc+=("$(phase "$T/wd.log" "$id" vcenter)")
	# The tasks of this command: their "done" lines come after its "started" line.
	ntasks=$(awk -v id="$id" 'index($0, id) && /started/ { on = 1 } on && /vmw: task .* done in/ { n++ } index($0, id ": phases:") { print n + 0; exit }' "$T/wd.log")
	log "run $rep: vCenter steps with ${DELAY_MS} ms tasks: ${dvc[-1]} ms, $ntasks tasks"
	rm -rf "$T/share/snapshots/1/1/$id"
done
kill -TERM "$wd"; wait "$wd" 2>/dev/null
# Baseline per run: the tasks' own time plus that run's steps without delay.
dbase=()
for rep in $(seq 0 $((BENCH_RUNS - 1))); do dbase+=("$((ntasks * DELAY_MS + ${vcms[$rep]}))"); done

row() { echo "| $1 | $2 | $3 | $4 | $5 |"; }
row "CreateSnapshot $mib MiB through the broker (1 worker) vs curl -o + sync of the NFC URL" \
    "$(secs_cell "${snap[*]}") ($(printf '%.0f' "$(echo "$mib / $(median "${snap[@]}")" | bc -l)") MiB/s)" \
    "curl -o + sync: $(secs_cell "${curl1[*]}")" "$(ratio_cell "${snap[*]}" "${curl1[*]}")" "<= 1.10x"
row "CreateSnapshot $mib MiB vs legacy export + tar -cf into .ova" "$(secs_cell "${snap[*]}")" \
    "legacy, per disk: $(secs_cell "${legacy[*]}")" "$(ratio_cell "${snap[*]}" "${legacy[*]}")" "<= 0.55x"
row "CreateSnapshot $mib MiB: per-byte cost, the stream (first byte to last) + commit, vs curl -o + sync" \
    "$(secs_cell "${stream[*]}")" "curl -o + sync: $(secs_cell "${curl1[*]}")" "$(ratio_cell "${stream[*]}" "${curl1[*]}")" "<= 1.10x"
row "CreateSnapshot: fixed cost, the vCenter steps (find, snapshot, worker VM, lease, descriptor, cleanup) with every task taking ${DELAY_MS} ms" \
    "$(spread %.0f "${dvc[@]}") ms ($ntasks tasks)" "$ntasks x ${DELAY_MS} ms + the steps without delay ($(spread %.0f "${vcms[@]}") ms): $(spread %.0f "${dbase[@]}") ms" \
    "$(ratio_cell "${dvc[*]}" "${dbase[*]}")" "<= 1.10x"
row "CreateSnapshot of a VM with 2 disks of $mib MiB (2 commands, 1 worker) vs curl -o of both + sync" \
    "$(secs_cell "${two[*]}")" "curl x2 + sync: $(secs_cell "${curl2[*]}")" "$(ratio_cell "${two[*]}" "${curl2[*]}")" "<= 1.10x"
printf '| bytes written per disk byte (worker write() calls, /proc wchar) | %.4f | legacy (files on disk): %.4f | %.2fx | <= 1.001 (legacy 2.0) |\n' \
    "$(echo "$wc_total / $bytes / $BENCH_RUNS" | bc -l)" "$legacy_ratio" "$(echo "$wc_total / $bytes / $BENCH_RUNS / $legacy_ratio" | bc -l)"
printf '| bytes on the share per disk byte (snapshot object) | %.4f | disk: %d bytes | %.4fx | <= 1.001 |\n' \
    "$(echo "$share_bytes / $bytes" | bc -l)" "$bytes" "$(echo "$share_bytes / $bytes" | bc -l)"
printf '| worker peak RSS (VmHWM) after %d MiB snapshots | %.1f MiB | disk %d MiB | %.4fx | <= 32 MiB |\n' \
    "$mib" "$(echo "$hwm_kib / 1024" | bc -l)" "$mib" "$(echo "$hwm_kib / 1024 / $mib" | bc -l)"
