#!/usr/bin/env bash
# CopyTemplate of a new-format template with one 1 GiB disk (random data,
# sha256 recorded in its meta) between two stores on the same file system,
# through `snapworker run-once`, against `cp` of the same files + fsync of
# each copy (coreutils cp uses a reflink or copy_file_range where it can) in
# the same run.  Each side runs BENCH_COPY_RUNS times (3), interleaved; rows
# give the median and the spread.  Size: BENCH_COPY_MIB (1024).  Whether the
# file system shares blocks (reflinks) is printed: there both sides should
# take ~0 s and copy ~0 bytes.
#
# A second row makes that case happen where it can (root, mkfs.xfs, a loop
# device; BENCH_COPY_REFLINK=0 turns it off): the same comparison on an XFS
# file system made with `mkfs.xfs -m reflink=1` on a sparse file, attached
# with `losetup -f --show` and mounted, against `cp --reflink=auto` + fsync.
# Its figure and baseline give the bytes each copy allocated (the file
# system's used bytes after it, less before it, both after a sync: df) and
# the times; its goal, "<= 1 MiB allocated", is on the figure (bench/guard.sh
# checks it: a byte copy allocates the whole disk).  Where it cannot run, a
# line says why and no row is printed.  Prints result rows; never asserts.
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
mnt=$tmp/xfs
loopdev=""
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then
		umount "$mnt" || umount -l "$mnt"
	fi
	[ -n "$loopdev" ] && losetup -d "$loopdev"
	[ -n "${BENCH_KEEP:-}" ] || mountpoint -q "$mnt" 2>/dev/null || rm -rf "$tmp"
}
trap cleanup EXIT
# A timeout or ^C still unmounts and detaches: the EXIT trap runs on exit, not on a fatal signal.
trap 'exit 143' TERM
trap 'exit 130' INT
obj=template/tmpl/2/301/bench

# setup ROOT: the template (its disk of size_mib pseudo-random MiB) in the
# store ROOT/src, an empty store ROOT/dst, ROOT/cp for cp, the configuration ROOT/conf.
setup() {
	local root=$1 d=$1/src/template/tmpl/2/301 bytes
	mkdir -p "$root/dst" "$root/cp" "$d" || return 1
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
	"$OVS" -C "$root/src" commit "$obj" >/dev/null || { echo "commit failed" >&2; return 1; }
	cat >"$root/conf" <<CONF
[store]
nfs://bench/src = $root/src
nfs://bench/dst = $root/dst
extract_dir = $root/extract
CONF
}

# reflinks ROOT: "yes" when the file system of ROOT shares blocks (cp --reflink=always fails where not).
reflinks() {
	head -c 65536 /dev/zero >"$1/r1"
	if cp --reflink=always "$1/r1" "$1/r2" 2>/dev/null; then echo yes; else echo no; fi
	rm -f "$1/r1" "$1/r2"
}

# used_bytes ROOT: the used bytes of ROOT's file system once its dirty data is on the disk.
used_bytes() {
	sync -f "$1" 2>/dev/null || sync
	df -P -B1 "$1" | awk 'NR == 2 { print $3 }'
}

# cp_run ROOT [CP-OPTION]: "MS BYTES": cp + fsync of the template's files, and the bytes they allocated.
cp_run() {
	local root=$1 d=$1/src/template/tmpl/2/301 t0 t1 u0 u1
	rm -rf "$root/cp/d"
	mkdir -p "$root/cp/d"
	u0=$(used_bytes "$root")
	t0=$(now_ms)
	cp ${2:+"$2"} "$d/bench-disk0.vmdk" "$d/bench.ovf" "$d/bench.ova.meta" "$root/cp/d/" &&
		sync "$root/cp/d/bench-disk0.vmdk" "$root/cp/d/bench.ovf" "$root/cp/d/bench.ova.meta" "$root/cp/d"
	t1=$(now_ms)
	u1=$(used_bytes "$root")
	echo "$((t1 - t0)) $((u1 - u0))"
}

# copy_run ROOT: "MS BYTES" of one CopyTemplate src -> dst; nothing when it failed.
copy_run() {
	local root=$1 id t0 t1 rc u0 u1
	rm -rf "$root/dst/template"
	u0=$(used_bytes "$root")
	id=$(python3 -c 'import uuid; print(uuid.uuid4())')
	printf '{"version":1,"id":"%s","type":"CopyTemplate","store":{"url":"nfs://bench/src"},"args":{"path":"%s","dest_store":{"url":"nfs://bench/dst"}}}' \
	    "$id" "$obj" >"$root/cmd.json"
	t0=$(now_ms)
	"$bin" run-once -c "$root/conf" "$root/cmd.json" >"$root/event.json" 2>"$root/run.log"
	rc=$?
	t1=$(now_ms)
	if [ $rc -ne 0 ] || ! grep -q '"status":"succeeded"' "$root/event.json"; then
		echo "CopyTemplate failed (exit $rc):" >&2
		cat "$root/run.log" "$root/event.json" >&2
		return
	fi
	u1=$(used_bytes "$root")
	echo "$((t1 - t0)) $((u1 - u0))"
}

# mib_cell BYTES...: "0.00 MiB allocated (0.00-0.01)": median and range, in MiB.
mib_cell() {
	local m lo hi
	m=$(median "$@")
	lo=$(vmin "$@")
	hi=$(vmax "$@")
	awk -v m="$m" -v l="$lo" -v h="$hi" 'BEGIN { printf "%.2f MiB allocated (%.2f-%.2f)", m / 1048576, l / 1048576, h / 1048576 }'
}

setup "$tmp" || exit 1

rm -rf "$tmp/dst/template"
id=$(cat /proc/sys/kernel/random/uuid); printf '{"version":1,"id":"%s","type":"CopyTemplate","store":{"url":"nfs://bench/src"},"args":{"path":"%s","dest_store":{"url":"nfs://bench/dst"}}}' "$id" "$obj" >"$tmp/cmd.json"
strace -f -tt -T -e trace=copy_file_range,fsync,fdatasync,sync_file_range,fadvise64,renameat,renameat2,openat -o /tmp/copy.strace "$bin" run-once -c "$tmp/conf" "$tmp/cmd.json" > /dev/null 2>&1
rm -rf "$tmp/dst/template"
perf record -q -g -o /tmp/perf.copy "$bin" run-once -c "$tmp/conf" "$tmp/cmd.json" > /dev/null 2>&1
