#!/usr/bin/env bash
# CreateSnapshot end to end (snapctl submit --wait -> broker -> snapworker ->
# simulator -> share) on a seeded 1 GiB disk, against, in the same run:
#   - `curl -o` of the same disk's NFC URL (the transfer alone; goal <= 1.10x),
#   - the legacy pipeline: the same export (vmwctl export) followed by
#     `tar -cf` of OVF + VMDK into an .ova (goal <= 0.55x),
# plus bytes written per disk byte (the worker's write() bytes from
# /proc/PID/io wchar, and the share's file sizes; goal <= 1.001, legacy 2.0),
# the worker's peak RSS (VmHWM; goal <= 32 MiB), and 2 snapshots on 2
# workers against the same 2 on 1 worker.  Measures only; never asserts.
# BENCH_SNAPSHOT_MIB overrides the disk size (default 1024).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
VMWCTL=$build/bin/vmwctl
mib=${BENCH_SNAPSHOT_MIB:-1024}
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
	"$here/tests/rig/vcsim.sh" stop "$T/vc" >/dev/null 2>&1
	"$here/tests/rig/rabbitmq.sh" stop "$T/mq" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
fail() { echo "| CreateSnapshot $mib MiB | FAILED: $* | | | |"; exit 0; }

"$here/tests/rig/rabbitmq.sh" start "$T/mq" >"$T/mq.log" 2>&1 &
mqp=$!
"$here/tests/rig/vcsim.sh" start "$T/vc" -seed-mib "$mib" -vm-disks 2 >"$T/vc.log" 2>&1 || fail "simulator"
wait $mqp || fail "broker"
# shellcheck disable=SC1091
. "$T/vc/vcsim.env"
# shellcheck disable=SC1091
. "$T/mq/rabbitmq.env"
bytes=$((mib << 20))
printf 'bench\n' >"$T/vc.secret"
chmod 600 "$T/vc.secret"
mkdir -p "$T/share"
cat >"$T/w.conf" <<EOF
[worker]
jobs = 1
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
start_worker() {
	SNAPWORKER_SWEEP_INTERVAL=0 "$SW" run -c "$T/w.conf" 2>"$T/w$1.log" &
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
cmd() { # ID DISKNUMBER
	printf '{"version":1,"id":"%s","type":"CreateSnapshot","vcenter":{"url":"%s","credentials":"vc1"},"store":{"url":"nfs://bench/share"},"args":{"vm":{"uuid":"%s"},"disk":"[%s] %s/disk%s.vmdk","account_id":1,"volume_id":%s}}' \
	    "$1" "$VCSIM_URL" "$VCSIM_VM_UUID" "$VCSIM_DATASTORE" "$VCSIM_VM" "$2" "$2" >"$T/$1.json"
}
submit() { "$CTL" -c "$T/w.conf" submit --wait --timeout 600 "$T/$1.json" >"$T/$1.out" 2>&1; }
uuid() { cat /proc/sys/kernel/random/uuid; }
wchar() { awk '/^wchar:/{print $2}' "/proc/$1/io"; }

# --- one CreateSnapshot through the broker, one worker ------------------------------
start_worker 1
w1=$wpid
consumers 1 || fail "worker did not consume"
# Warm-up (session, page cache of the seeded file), not measured.
id=$(uuid); cmd "$id" 2; submit "$id" || fail "warm-up snapshot: $(tail -1 "$T/$id.out")"
# The machine is shared: the best of 3 runs of each side.
min() { echo "$1 $2" | awk '{print ($1 < $2) ? $1 : $2}'; }
snap_s=999999
for rep in 1 2 3; do
	id=$(uuid); cmd "$id" 1
	wc0=$(wchar "$w1")
	t0=$(now)
	submit "$id" || fail "snapshot: $(tail -1 "$T/$id.out")"
	t1=$(now)
	wc1=$(wchar "$w1")
	snap_s=$(min "$snap_s" "$(echo "$t1 - $t0" | bc -l)")
	grep -q "$VCSIM_SEED_SHA256_0" "$T/$id.out" || echo "warning: snapshot sha256 is not the seed's"
	share_bytes=$(du -sb "$T/share/snapshots/1/1/$id" | cut -f1)
	[ $rep = 3 ] || rm -rf "$T/share/snapshots/1/1/$id"
done
hwm_kib=$(awk '/^VmHWM:/{print $2}' "/proc/$w1/status")

# --- baseline: curl -o of the same disk's NFC URL -----------------------------------
cj=$T/cj
env='<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
soap() { curl -sk -b "$cj" -c "$cj" -H 'Content-Type: text/xml' --data-binary "$env$1</soapenv:Body></soapenv:Envelope>" "$VCSIM_URL"; }
export VMWCTL_PASSWORD=bench
V=("$VMWCTL" --url "$VCSIM_URL" --user bench --thumbprint "$VCSIM_THUMBPRINT")
"${V[@]}" power-off --vm "$VCSIM_VM" >/dev/null 2>&1
soap '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>bench</userName><password>bench</password></Login>' >/dev/null
vm=$(soap "<FindByInventoryPath xmlns=\"urn:vim25\"><_this type=\"SearchIndex\">SearchIndex</_this><inventoryPath>DC0/vm/$VCSIM_VM</inventoryPath></FindByInventoryPath>" |
    sed -n 's/.*<returnval type="VirtualMachine">\([^<]*\)<.*/\1/p')
lease=$(soap "<ExportVm xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm</_this></ExportVm>" |
    sed -n 's/.*<returnval type="HttpNfcLease">\([^<]*\)<.*/\1/p')
url=$(soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>HttpNfcLease</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"HttpNfcLease\">$lease</obj></objectSet></specSet><options/></RetrievePropertiesEx>" |
    grep -o '<url>[^<]*</url>' | head -1 | sed 's|<url>\(.*\)</url>|\1|; s|://\*|://'"${VCSIM_URL#https://}"'|; s|/sdk/|/|')
mkdir -p "$T/curl"
curl_s=999999
curl_sync_s=999999
for rep in 1 2 3; do
	rm -f "$T/curl/disk.vmdk"
	t0=$(now)
	curl -sk -o "$T/curl/disk.vmdk" "$url"
	t1=$(now)
	# The snapshot's disk is durable (fsync) before its meta is written: the same for curl.
	sync -f "$T/curl/disk.vmdk"
	t2=$(now)
	curl_s=$(min "$curl_s" "$(echo "$t1 - $t0" | bc -l)")
	curl_sync_s=$(min "$curl_sync_s" "$(echo "$t2 - $t0" | bc -l)")
	[ "$(stat -c %s "$T/curl/disk.vmdk" 2>/dev/null)" = "$bytes" ] || echo "warning: curl got a short file"
done
soap "<HttpNfcLeaseAbort xmlns=\"urn:vim25\"><_this type=\"HttpNfcLease\">$lease</_this></HttpNfcLeaseAbort>" >/dev/null
rm -rf "$T/curl"

# --- baseline: the legacy pipeline (export, then tar into an .ova) -----------------
mkdir -p "$T/legacy"
t0=$(now)
"${V[@]}" export --vm "$VCSIM_VM" --out "$T/legacy" --name legacy >"$T/legacy.log" 2>&1 || echo "warning: legacy export failed"
tar -cf "$T/legacy/legacy.ova" -C "$T/legacy" legacy.ovf legacy-disk0.vmdk legacy-disk1.vmdk 2>/dev/null ||
    tar -cf "$T/legacy/legacy.ova" -C "$T/legacy" legacy.ovf legacy-disk0.vmdk
sync -f "$T/legacy/legacy.ova"
t1=$(now)
legacy_s=$(echo "$t1 - $t0" | bc -l)
# The VM has two disks; the legacy export took both: scale to one disk's worth.
ndisks=$(ls "$T/legacy"/legacy-disk*.vmdk | wc -l)
legacy_s1=$(echo "$legacy_s / $ndisks" | bc -l)
legacy_written=$(du -cb "$T/legacy"/* | tail -1 | cut -f1)
legacy_ratio=$(echo "$legacy_written / ($bytes * $ndisks)" | bc -l)
rm -rf "$T/legacy"

# --- 2 snapshots: 1 worker vs 2 workers -------------------------------------------
pair() {
	local a b t0 t1
	a=$(uuid); b=$(uuid); cmd "$a" 1; cmd "$b" 2
	t0=$(now)
	submit "$a" & local pa=$!
	submit "$b" & local pb=$!
	wait $pa; wait $pb
	t1=$(now)
	echo "$t1 - $t0" | bc -l
	rm -rf "$T/share/snapshots/1/1/$a" "$T/share/snapshots/1/2/$b"
}
one_s=$(pair)
start_worker 2
consumers 2 || echo "warning: second worker not consuming"
two_s=$(pair)

printf '| CreateSnapshot %d MiB through the broker (1 worker, best of 3) | %.2f s (%.0f MiB/s) | curl -o of the NFC URL (best of 3): %.2f s | %.2fx | <= 1.10x |\n' \
    "$mib" "$snap_s" "$(echo "$mib / $snap_s" | bc -l)" "$curl_s" "$(echo "$snap_s / $curl_s" | bc -l)"
printf '| CreateSnapshot %d MiB through the broker (1 worker, best of 3) | %.2f s | curl -o + sync of the file (best of 3): %.2f s | %.2fx | <= 1.10x |\n' \
    "$mib" "$snap_s" "$curl_sync_s" "$(echo "$snap_s / $curl_sync_s" | bc -l)"
printf '| CreateSnapshot %d MiB vs legacy export + tar -cf into .ova | %.2f s | legacy: %.2f s per disk | %.2fx | <= 0.55x |\n' \
    "$mib" "$snap_s" "$legacy_s1" "$(echo "$snap_s / $legacy_s1" | bc -l)"
printf '| bytes written per disk byte (worker write() calls, /proc wchar) | %.4f | legacy (files on disk): %.4f | %.2fx | <= 1.001 (legacy 2.0) |\n' \
    "$(echo "($wc1 - $wc0) / $bytes" | bc -l)" "$legacy_ratio" "$(echo "($wc1 - $wc0) / $bytes / $legacy_ratio" | bc -l)"
printf '| bytes on the share per disk byte (snapshot object) | %.4f | disk: %d bytes | %.4fx | <= 1.001 |\n' \
    "$(echo "$share_bytes / $bytes" | bc -l)" "$bytes" "$(echo "$share_bytes / $bytes" | bc -l)"
printf '| worker peak RSS (VmHWM) after %d MiB snapshots | %.1f MiB | disk %d MiB | %.4fx | <= 32 MiB |\n' \
    "$mib" "$(echo "$hwm_kib / 1024" | bc -l)" "$mib" "$(echo "$hwm_kib / 1024 / $mib" | bc -l)"
printf '| 2 concurrent CreateSnapshot, 2 workers vs 1 worker | %.2f s | 1 worker: %.2f s | %.2fx | report (2 CPUs, shared) |\n' \
    "$two_s" "$one_s" "$(echo "$two_s / $one_s" | bc -l)"
