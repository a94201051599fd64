#!/usr/bin/env bash
# CopyTemplate on a file system that shares blocks: an XFS image made with
# `mkfs.xfs -m reflink=1` on a sparse file of 1 GiB in the test's temporary
# directory, attached with `losetup -f --show` and mounted, two stores on it,
# a new-format template whose disk is 48 MiB of random data, copied with
# `snapworker run-once`.  Checks that the copy succeeded with the right
# sha256 (event, meta, the bytes themselves), that it is a reflink: the
# worker's own FICLONE path (its debug line), every extent of the copied disk
# shared (filefrag -v) and the file system's used space grown by far less than
# the disk (df); that the source is unchanged; and the debris rules on this
# file system: an earlier attempt's temporary is removed, no temporary stays,
# and a copy that fails after its disk was committed leaves nothing.
# A plain byte copy fails the filefrag and df checks; a copy_file_range that
# the kernel turns into a clone fails the debug-line check.
# Needs root and a loop device: where either is missing it prints
#   SKIP: no XFS loop file system here: needs root
#   SKIP: no XFS loop file system here: no /dev/loop-control
# (tests/run.sh allows those two only when they are true).  The cleanup trap
# unmounts and detaches the loop device it attached, by its name.
# Needs no broker or vCenter.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
sw=$build/bin/snapworker
ovastore=$build/bin/ovastore
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
quiet() { "$@" >/dev/null; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

if [ ! -x "$sw" ] || [ ! -x "$ovastore" ]; then
	bad "snapworker or ovastore not built in $build"
	finish
fi
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: no XFS loop file system here: needs root"
	finish
fi
if [ ! -e /dev/loop-control ]; then
	echo "SKIP: no XFS loop file system here: no /dev/loop-control"
	finish
fi

tmp=$(mktemp -d /tmp/swreflink.XXXXXX)
mnt=$tmp/mnt
dev=""
cleanup() {
	if mountpoint -q "$mnt"; then
		umount "$mnt" || umount -l "$mnt"
	fi
	# A device still busy after a lazy unmount is detached by the kernel when released.
	[ -n "$dev" ] && losetup -d "$dev"
	mountpoint -q "$mnt" || rm -rf "$tmp"
}
trap cleanup EXIT
# A timeout or ^C still unmounts and detaches: the EXIT trap runs on exit, not on a fatal signal.
trap 'exit 143' TERM
trap 'exit 130' INT

truncate -s 1G "$tmp/xfs.img"
if ! mkfs.xfs -q -m reflink=1 "$tmp/xfs.img" >"$tmp/mkfs.log" 2>&1; then
	bad "mkfs.xfs -m reflink=1: $(cat "$tmp/mkfs.log")"
	finish
fi
if ! dev=$(losetup -f --show "$tmp/xfs.img" 2>"$tmp/losetup.log") || [ -z "$dev" ]; then
	dev=""
	bad "losetup -f --show: $(cat "$tmp/losetup.log")"
	finish
fi
mkdir "$mnt"
if ! mount -t xfs "$dev" "$mnt" 2>"$tmp/mount.log"; then
	bad "mount of the XFS image ($dev): $(cat "$tmp/mount.log")"
	finish
fi
ok "XFS with reflinks on $dev"
mkdir -p "$mnt/s1" "$mnt/s2"

# The template: OVF, one disk of random data, the meta with its sha256.
ID=8d1f0a3c-5b7e-4c2d-9a61-0f3e2d4c5b6a
TDIR=template/tmpl/2/401
src=$mnt/s1/$TDIR
dst=$mnt/s2/$TDIR
disk_bytes=$((48 * 1024 * 1024))
mkdir -p "$src"
head -c "$disk_bytes" /dev/urandom >"$src/$ID-disk0.vmdk"
cat >"$src/$ID.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="$ID-disk0.vmdk" ovf:id="file1" ovf:size="$disk_bytes"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
OVF
check "source committed" quiet "$ovastore" -C "$mnt/s1" commit "$TDIR/$ID"
sum=$(sha256sum "$src/$ID-disk0.vmdk" | cut -d' ' -f1)
check "source meta records the disk's sha256" grep -qx "disk1.sha256=$sum" "$src/$ID.ova.meta"
cp "$src/$ID.ova.meta" "$tmp/src.meta"
src_ino=$(stat -c '%i %s %Y' "$src/$ID-disk0.vmdk")

cat >"$tmp/conf" <<CONF
[worker]
log_level = debug
[store]
nfs://10.0.0.5/export/secondary = $mnt/s1
nfs://10.0.0.6/export/secondary2 = $mnt/s2
extract_dir = $tmp/extract
CONF

# run NAME ID: one CopyTemplate from s1 to s2; the event is in $tmp/NAME.json, the log in $tmp/NAME.log.
run() {
	printf '{"version":1,"id":"%s","type":"CopyTemplate","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"path":"%s","dest_store":{"url":"nfs://10.0.0.6/export/secondary2"}}}' \
	    "$2" "$TDIR/$ID" >"$tmp/$1.cmd"
	"$sw" run-once -c "$tmp/conf" "$tmp/$1.cmd" >"$tmp/$1.out" 2>"$tmp/$1.log"
	local rc=$?
	tail -n 1 "$tmp/$1.out" >"$tmp/$1.json"
	return $rc
}
field() { python3 -c "import json,sys; e=json.load(open('$tmp/$1.json')); print($2)"; }
# used_bytes: the file system's used bytes, after its dirty data reached the disk.
used_bytes() { sync -f "$mnt"; df -P -B1 "$mnt" | awk 'NR == 2 { print $3 }'; }
# parts: the temporaries in the destination directory, one a line.
parts() { find "$dst" -name '*.part' 2>/dev/null; }

# A copy that fails once its disk is committed (the OVF's name is taken by a
# directory) leaves nothing of its own; an earlier attempt's temporary is removed.
mkdir -p "$dst/$ID.ovf"
head -c 4096 /dev/urandom >"$dst/$ID~$ID-disk0.vmdk.part"
if run fail 00000000-0000-4000-8000-0000000004f1; then
	bad "copy onto a directory refused"
else
	ok "copy onto a directory refused"
fi
check "failed copy: event failed" test "$(field fail "e['status']")" = failed
check "failed copy: at the OVF's rename, after the disk's reflink" bash -c \
    "grep -q \"'$ID-disk0.vmdk' reflinked\" '$tmp/fail.log' && grep -q '$ID.ovf.* into place' '$tmp/fail.json'"
check "failed copy: no disk left" test ! -e "$dst/$ID-disk0.vmdk"
check "failed copy: no meta left" test ! -e "$dst/$ID.ova.meta"
check "failed copy: no temporary left" test -z "$(parts)"
check "failed copy: only the directory in the way is left" test "$(ls -A "$dst")" = "$ID.ovf"
rm -r "$dst/$ID.ovf"

# The copy.
head -c 4096 /dev/urandom >"$dst/$ID~$ID-disk0.vmdk.part"
before=$(used_bytes)
check "copy succeeds" run copy 00000000-0000-4000-8000-0000000004f2
after=$(used_bytes)
check "copy: event succeeded" test "$(field copy "e['status']")" = succeeded
check "copy: event gives the disk's sha256" test "$(field copy \
    "[f.get('sha256') for f in e['result']['files'] if f['path'].endswith('-disk0.vmdk')][0]")" = "$sum"
check "copy: event gives the disk's size" test "$(field copy \
    "[f['size'] for f in e['result']['files'] if f['path'].endswith('-disk0.vmdk')][0]")" = "$disk_bytes"
check "copy: meta byte for byte" cmp -s "$tmp/src.meta" "$dst/$ID.ova.meta"
check "copy: the disk's bytes have the sha256" test "$(sha256sum "$dst/$ID-disk0.vmdk" | cut -d' ' -f1)" = "$sum"
check "copy: ovastore verify (digests read)" quiet "$ovastore" -C "$mnt/s2" verify "$TDIR/$ID"
check "copy: the worker took its reflink path" grep -q "'$ID-disk0.vmdk' reflinked" "$tmp/copy.log"

# Shared blocks: every extent of the copy is flagged shared, and the copy took
# far less space than its disk (metadata only: a byte copy takes 48 MiB).
filefrag -v "$dst/$ID-disk0.vmdk" >"$tmp/filefrag.txt" 2>&1
extents=$(awk '$1 ~ /^[0-9]+:$/' "$tmp/filefrag.txt" | wc -l)
shared=$(awk '$1 ~ /^[0-9]+:$/ && /shared/' "$tmp/filefrag.txt" | wc -l)
check "copy: filefrag lists the disk's extents ($extents)" test "$extents" -gt 0
check "copy: every extent is shared ($shared of $extents)" test "$shared" = "$extents"
grown=$((after - before))
echo "used bytes: $before before the copy, $after after: +$grown for a disk of $disk_bytes"
check "copy: used space grew by less than 1/16 of the disk (+$grown bytes)" test "$grown" -lt $((disk_bytes / 16))

# The source is unchanged.
check "source: same disk inode, size and mtime" test "$(stat -c '%i %s %Y' "$src/$ID-disk0.vmdk")" = "$src_ino"
check "source: same bytes" test "$(sha256sum "$src/$ID-disk0.vmdk" | cut -d' ' -f1)" = "$sum"
check "source: same meta" cmp -s "$tmp/src.meta" "$src/$ID.ova.meta"
check "source: ovastore verify" quiet "$ovastore" -C "$mnt/s1" verify "$TDIR/$ID"

# Debris: the earlier attempt's temporary is gone, and the copy left none.
check "copy: no temporary left (the planted one removed)" test -z "$(parts)"
check "copy: the destination holds the object's three files only" test \
    "$(cd "$dst" && ls -A | sort | tr '\n' ' ')" = "$ID-disk0.vmdk $ID.ova.meta $ID.ovf "

# A redelivery answers from the copy: the same answer, nothing copied again.
check "copy again succeeds" run copy2 00000000-0000-4000-8000-0000000004f2
check "copy again: same result" test "$(field copy2 "json.dumps(e['result'],sort_keys=True)")" = \
    "$(field copy "json.dumps(e['result'],sort_keys=True)")"
check "copy again: nothing copied" bash -c "! grep -q 'reflinked' '$tmp/copy2.log'"

finish
