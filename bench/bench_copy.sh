#!/usr/bin/env bash
# CopyTemplate of a new-format template with one 1 GiB disk (random data,
# sha256 recorded in its meta) between two stores on the same file system,
# through `snapworker run-once`, against `cp` of the same files + fsync of
# each copy (coreutils cp uses a reflink or copy_file_range where it can) in
# the same run.  Each side runs BENCH_COPY_RUNS times (3), interleaved; rows
# give the median and the spread.  Size: BENCH_COPY_MIB (1024).  Whether the
# file system shares blocks (reflinks) is printed: there both sides should
# take ~0 s and copy ~0 bytes.  Prints result rows; never asserts.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
bin=$build/bin/snapworker
OVS=$build/bin/ovastore
size_mib=${BENCH_COPY_MIB:-1024}
runs=${BENCH_COPY_RUNS:-3}
label="CopyTemplate $(size_label "$size_mib") template"
if [ ! -x "$bin" ] || [ ! -x "$OVS" ]; then
	echo "| $label | n/a (no $bin) | | | <= 1.05x |"
	exit 0
fi
base=${BENCH_COPY_DIR:-/var/tmp}
[ "$(df -Pk "$base" | awk 'NR == 2 { print $4 }')" -gt $((size_mib * 4 * 1024)) ] || base=/tmp
tmp=$(mktemp -d "$base/swbench-copy.XXXXXX")
trap '[ -n "${BENCH_KEEP:-}" ] || rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$tmp/dst" "$tmp/cp"
obj=template/tmpl/2/301/bench
d="$tmp/src/template/tmpl/2/301"
mkdir -p "$d"
openssl enc -aes-128-ctr -pass pass:copybench -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $((size_mib * 1024 * 1024)) >"$d/bench-disk0.vmdk"
bytes=$(stat -c %s "$d/bench-disk0.vmdk")
cat >"$d/bench.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="bench-disk0.vmdk" ovf:id="file1" ovf:size="$bytes"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="$bytes"/>
  </DiskSection>
</Envelope>
OVF
"$OVS" -C "$tmp/src" commit "$obj" >/dev/null || { echo "commit failed" >&2; exit 1; }
cat >"$tmp/conf" <<CONF
[store]
nfs://bench/src = $tmp/src
nfs://bench/dst = $tmp/dst
extract_dir = $tmp/extract
CONF
# Does this file system share blocks?  (cp --reflink=always fails where not.)
head -c 65536 /dev/zero >"$tmp/r1"
reflink=no
cp --reflink=always "$tmp/r1" "$tmp/r2" 2>/dev/null && reflink=yes
rm -f "$tmp/r1" "$tmp/r2"
fstype=$(stat -f -c %T "$tmp")
echo "file system $fstype, reflinks: $reflink; $(load_note)"

cp_run() {
	rm -rf "$tmp/cp/d"
	mkdir -p "$tmp/cp/d"
	sync -f "$tmp" 2>/dev/null || sync
	local t0 t1
	t0=$(now_ms)
	cp "$d/bench-disk0.vmdk" "$d/bench.ovf" "$d/bench.ova.meta" "$tmp/cp/d/" &&
		sync "$tmp/cp/d/bench-disk0.vmdk" "$tmp/cp/d/bench.ovf" "$tmp/cp/d/bench.ova.meta" "$tmp/cp/d"
	t1=$(now_ms)
	echo $((t1 - t0))
}
copy_run() {
	local id t0 t1 rc
	rm -rf "$tmp/dst/template"
	sync -f "$tmp" 2>/dev/null || sync
	id=$(python3 -c 'import uuid; print(uuid.uuid4())')
	printf '{"version":1,"id":"%s","type":"CopyTemplate","store":{"url":"nfs://bench/src"},"args":{"path":"%s","dest_store":{"url":"nfs://bench/dst"}}}' \
	    "$id" "$obj" >"$tmp/cmd.json"
	t0=$(now_ms)
	"$bin" run-once -c "$tmp/conf" "$tmp/cmd.json" >"$tmp/event.json" 2>"$tmp/run.log"
	rc=$?
	t1=$(now_ms)
	if [ $rc -ne 0 ] || ! grep -q '"status":"ok"\|"status": "ok"\|"succeeded"\|"done"' "$tmp/event.json"; then
		if [ $rc -ne 0 ]; then
			echo "CopyTemplate failed:" >&2
			cat "$tmp/run.log" "$tmp/event.json" >&2
			return
		fi
	fi
	echo $((t1 - t0))
}

c=() s=()
for i in $(seq "$runs"); do
	c+=("$(cp_run)")
	v=$(copy_run); [ -n "$v" ] && s+=("$v")
	echo "run $i: cp+fsync ${c[-1]} ms, CopyTemplate ${s[-1]:-FAILED} ms ($(load_note))"
done
used=$(du -sk "$tmp/dst" 2>/dev/null | cut -f1)
rm -rf "$tmp/dst/template" "$tmp/cp/d"

C="cp + fsync: $(spread_s "${c[@]}")"
if [ ${#s[@]} -eq "$runs" ]; then
	echo "| $label ($fstype, reflinks: $reflink) | $(spread_s "${s[@]}") | $C | $(ratio_spread "${s[*]}" "${c[*]}") | <= 1.05x |"
else
	echo "| $label ($fstype, reflinks: $reflink) | FAILED | $C | | <= 1.05x |"
fi
exit 0
