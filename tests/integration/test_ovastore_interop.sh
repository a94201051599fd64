#!/usr/bin/env bash
# Interop of build/bin/ovastore with GNU tar, both directions, including a
# sparse 9 GiB member (over the 8 GiB ustar limit; pack keeps the holes and
# takes milliseconds, but GNU tar streams all 9 GiB through a pipe in each
# direction, about a minute here), plus the CLI contract
# (exit codes, one-line errors).  Needs only the ovastore binary and GNU tar;
# no broker, no simulator.  Prints "N passed, N failed" last.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
OVS="$build/bin/ovastore"
[ -x "$OVS" ] || { echo "no $OVS"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d /var/tmp/ovastore-interop.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
start=$SECONDS
ok() { pass=$((pass + 1)); echo "ok   [$((SECONDS - start))s] $*"; }
ko() { fail=$((fail + 1)); echo "FAIL [$((SECONDS - start))s] $*"; }
check() { local what=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$what"; else ko "$what"; sed 's/^/     /' "$tmp/out" | tail -5; fi; }

S="$tmp/store"
mkdir -p "$S"

# mk_ovf FILE NAME SIZE...: a VMware-style OVF referencing NAME-diskK.vmdk of the given sizes.
mk_ovf() {
	local out=$1 name=$2; shift 2
	local k=0 refs="" disks=""
	for sz in "$@"; do
		refs="$refs    <File ovf:href=\"$name-disk$k.vmdk\" ovf:id=\"file$((k + 1))\" ovf:size=\"$sz\"/>
"
		disks="$disks    <Disk ovf:capacity=\"10\" ovf:capacityAllocationUnits=\"byte * 2^30\" ovf:diskId=\"vmdisk$((k + 1))\" ovf:fileRef=\"file$((k + 1))\" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\" ovf:populatedSize=\"$sz\"/>
"
		k=$((k + 1))
	done
	cat >"$out" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
$refs  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
$disks  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
EOF
}

# --- new format -> OVA -> GNU tar -------------------------------------------
d="$S/snapshots/2/13/u"
mkdir -p "$d"
head -c 3000001 /dev/urandom >"$d/u-disk0.vmdk"
head -c 512 /dev/urandom >"$d/u-disk1.vmdk"
mk_ovf "$d/u.ovf" u 3000001 512
check "commit existing files" "$OVS" -C "$S" commit snapshots/2/13/u/u
check "verify committed object" "$OVS" -C "$S" verify snapshots/2/13/u/u
check "pack to a file" "$OVS" -C "$S" pack snapshots/2/13/u/u "$tmp/u.ova"
list=$(tar -tf "$tmp/u.ova" | tr '\n' ' ')
[ "$list" = "u.ovf u-disk0.vmdk u-disk1.vmdk " ] && ok "GNU tar lists OVF first, disks in meta order" ||
	ko "GNU tar listing: '$list'"
mkdir "$tmp/x1"
check "GNU tar extracts" tar -xf "$tmp/u.ova" -C "$tmp/x1"
check "extracted files byte-identical" bash -c "cmp '$tmp/x1/u-disk0.vmdk' '$d/u-disk0.vmdk' &&
	cmp '$tmp/x1/u-disk1.vmdk' '$d/u-disk1.vmdk' && cmp '$tmp/x1/u.ovf' '$d/u.ovf'"
"$OVS" -C "$S" pack snapshots/2/13/u/u - >"$tmp/u-stdout.ova" 2>"$tmp/err"
check "pack to stdout equals pack to file" cmp "$tmp/u-stdout.ova" "$tmp/u.ova"
check "pack to a pipe, GNU tar reads it" bash -c "'$OVS' -C '$S' pack snapshots/2/13/u/u - | tar -tvf - | grep -q ' 3000001 '"

# --- GNU tar -> ovastore -----------------------------------------------------
for fmt in gnu posix ustar oldgnu; do
	src="$tmp/src-$fmt"
	mkdir -p "$src"
	long=t$(printf 'x%.0s' $(seq 1 90))   # 91 bytes: with -disk0.vmdk over 100
	[ $fmt = ustar ] && long=t
	head -c 1000003 /dev/urandom >"$src/$long-disk0.vmdk"
	mk_ovf "$src/$long.ovf" "$long" 1000003
	(cd "$src" && sha1sum "$long.ovf" "$long-disk0.vmdk" |
		awk '{ printf "SHA1(%s)= %s\n", $2, $1 }' >"$long.mf")
	tar --format=$fmt -cf "$tmp/$fmt.ova" -C "$src" "$long.ovf" "$long.mf" "$long-disk0.vmdk"
	check "unpack GNU tar --format=$fmt (with .mf)" "$OVS" -C "$S" unpack "$tmp/$fmt.ova" "template/tmpl/1/$fmt/t.ova"
	# The files are named after the object (t), whatever the members are called.
	check "unpacked $fmt verifies, disk identical" bash -c "'$OVS' -C '$S' verify template/tmpl/1/$fmt/t &&
		cmp '$S/template/tmpl/1/$fmt/t-disk0.vmdk' '$src/$long-disk0.vmdk' &&
		{ [ '$long' = t ] || [ ! -e '$S/template/tmpl/1/$fmt/$long-disk0.vmdk' ]; } && grep -q 'href=\"t-disk0.vmdk\"' '$S/template/tmpl/1/$fmt/t.ovf' &&
		[ ! -e '$S/template/tmpl/1/$fmt/$long.mf' ]"
	# The same archive as a legacy object: member read by its recorded offset.
	mkdir -p "$S/legacy/$fmt"
	cp "$tmp/$fmt.ova" "$S/legacy/$fmt/l.ova"
	off=$("$OVS" -C "$S" inspect legacy/$fmt/l | sed -n 's/^disk 0: .* offset \([0-9]*\).*/\1/p')
	check "legacy $fmt: disk at its recorded offset" bash -c "[ -n '$off' ] &&
		tail -c +$((${off:-0} + 1)) '$S/legacy/$fmt/l.ova' | head -c 1000003 | cmp - '$src/$long-disk0.vmdk'"
	check "legacy $fmt: pack copies it unchanged" bash -c "'$OVS' -C '$S' pack legacy/$fmt/l '$tmp/l-$fmt.ova' &&
		cmp '$tmp/l-$fmt.ova' '$tmp/$fmt.ova'"
done
# A tampered manifest fails the whole unpack and leaves nothing.
src="$tmp/src-posix"
long=t$(printf 'x%.0s' $(seq 1 90))
cp "$src/$long.mf" "$tmp/ok.mf"
# Flip the first hex digit of the disk's digest (line 2) to a different one.
awk 'NR == 2 { i = index($0, "= ") + 2; c = substr($0, i, 1);
	$0 = substr($0, 1, i - 1) (c == "0" ? "1" : "0") substr($0, i + 1) } { print }' \
	"$src/$long.mf" >"$src/$long.mf.new" && mv "$src/$long.mf.new" "$src/$long.mf"
cmp -s "$src/$long.mf" "$tmp/ok.mf" && ko "tamper left the manifest unchanged"
tar --format=posix -cf "$tmp/bad-mf.ova" -C "$src" "$long.ovf" "$long.mf" "$long-disk0.vmdk"
"$OVS" -C "$S" unpack "$tmp/bad-mf.ova" template/tmpl/1/badmf/t 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -e "$S/template/tmpl/1/badmf/t.ova.meta" ] &&
	[ -z "$(ls -A "$S/template/tmpl/1/badmf" 2>/dev/null)" ] && ok "manifest mismatch: exit 1, one line, nothing left" ||
	ko "manifest mismatch (rc=$rc: $(cat "$tmp/err"))"
# Streamed from a pipe.
check "unpack from stdin" bash -c "tar --format=posix -cf - -C '$tmp/src-gnu' '$long.ovf' '$long-disk0.vmdk' |
	'$OVS' -C '$S' unpack - template/tmpl/1/pipe/t && '$OVS' -C '$S' verify template/tmpl/1/pipe/t"
# Hostile archives from GNU tar: a symlink member, a ../ member.
mkdir -p "$tmp/evil"
cp "$tmp/src-gnu/$long.ovf" "$tmp/evil/"
ln -s /etc/shadow "$tmp/evil/$long-disk0.vmdk"
tar -cf "$tmp/evil1.ova" -C "$tmp/evil" "$long.ovf" "$long-disk0.vmdk"
"$OVS" -C "$S" unpack "$tmp/evil1.ova" evil/1/t 2>"$tmp/err"
[ $? -eq 1 ] && grep -q link "$tmp/err" && [ -z "$(ls -A "$S/evil/1" 2>/dev/null)" ] &&
	ok "symlink member refused" || ko "symlink member: $(cat "$tmp/err")"
mkdir -p "$tmp/evil2"
echo x >"$tmp/evil2/x.vmdk"
tar -cPf "$tmp/evil2.ova" -C "$tmp/evil" "$long.ovf" "../evil2/x.vmdk"
"$OVS" -C "$S" unpack "$tmp/evil2.ova" evil/2/t 2>"$tmp/err"
[ $? -eq 1 ] && grep -q unsafe "$tmp/err" && ok "../ member refused" || ko "../ member: $(cat "$tmp/err")"

# --- a sparse 9 GiB member, both directions ---------------------------------
big="$S/big/b"
mkdir -p "$big"
truncate -s 9G "$big/b-disk0.vmdk"
printf 'HEAD' | dd of="$big/b-disk0.vmdk" conv=notrunc status=none
printf 'TAIL-OF-THE-DISK' | dd of="$big/b-disk0.vmdk" bs=1 seek=$((9 * 1024 * 1024 * 1024 - 16)) conv=notrunc status=none
mk_ovf "$big/b.ovf" b $((9 * 1024 * 1024 * 1024))
check "commit 9 GiB disk (no digest)" "$OVS" -C "$S" commit --no-digest big/b/b
t0=$(date +%s%N)
check "pack 9 GiB sparse disk" "$OVS" -C "$S" pack big/b/b "$tmp/big.ova"
t1=$(date +%s%N)
echo "     pack of 9 GiB sparse: $(( (t1 - t0) / 1000000 )) ms, allocated $(du -k "$tmp/big.ova" | cut -f1) KiB"
alloc=$(du -k "$tmp/big.ova" | cut -f1)
[ "$alloc" -lt 102400 ] && ok "packed OVA keeps the holes" || ko "packed OVA allocates $alloc KiB"
sz=$(tar -tvf "$tmp/big.ova" | awk '$6 == "b-disk0.vmdk" { print $3 }')
[ "$sz" = $((9 * 1024 * 1024 * 1024)) ] && ok "GNU tar lists the 9 GiB member size ($sz)" || ko "GNU tar size '$sz'"
# Digests with openssl (SHA-NI): cmp over a 9 GiB pipe takes minutes on these machines.
ref=$(openssl dgst -sha256 -r <"$big/b-disk0.vmdk" | cut -d' ' -f1)
got=$(tar -xOf "$tmp/big.ova" b-disk0.vmdk | openssl dgst -sha256 -r | cut -d' ' -f1)
[ -n "$ref" ] && [ "$ref" = "$got" ] && ok "GNU tar extracts the 9 GiB member byte-identically" ||
	ko "9 GiB member extracted by GNU tar differs ($ref vs $got)"
# GNU tar writes a 9 GiB member (pax size record); we unpack it from a pipe, sparse.
check "unpack GNU tar's 9 GiB archive from a pipe" bash -c "tar --format=posix -cf - -C '$big' b.ovf b-disk0.vmdk |
	'$OVS' -C '$S' unpack - big/c/c"
# unpack computed the sha256 on the way (diskK.sha256); the tail is checked directly.
check "9 GiB unpacked: size, recorded sha256, tail" bash -c "[ \$(stat -c %s '$S/big/c/c-disk0.vmdk') = $((9 * 1024 * 1024 * 1024)) ] &&
	grep -qx 'disk1.sha256=$ref' '$S/big/c/c.ova.meta' &&
	[ \"\$(tail -c 16 '$S/big/c/c-disk0.vmdk')\" = TAIL-OF-THE-DISK ]"
alloc=$(du -k "$S/big/c/c-disk0.vmdk" | cut -f1)
[ "$alloc" -lt 102400 ] && ok "unpacked 9 GiB disk is sparse" || ko "unpacked disk allocates $alloc KiB"
# The big OVA as a legacy object: inspect finds the member past 8 GiB boundaries.
mv "$tmp/big.ova" "$S/big/legacy.ova"
check "legacy 9 GiB: inspect and verify" bash -c "'$OVS' -C '$S' inspect big/legacy | grep -q 'size 9663676416' &&
	'$OVS' -C '$S' verify big/legacy"
# GNU tar's own sparse format is refused (its data is not contiguous).
tar -S --format=posix -cf "$S/big/sparse.ova" -C "$big" b.ovf b-disk0.vmdk
"$OVS" -C "$S" inspect big/sparse 2>"$tmp/err"
[ $? -eq 1 ] && grep -q sparse "$tmp/err" && ok "GNU sparse members refused" || ko "GNU sparse: $(cat "$tmp/err")"

# --- CLI contract -------------------------------------------------------------
"$OVS" >/dev/null 2>&1; [ $? -eq 2 ] && ok "no command: exit 2" || ko "no command"
"$OVS" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && ok "unknown command: exit 2" || ko "unknown command"
"$OVS" pack only-one >/dev/null 2>&1; [ $? -eq 2 ] && ok "missing argument: exit 2" || ko "missing argument"
"$OVS" inspect --bogus a >/dev/null 2>&1; [ $? -eq 2 ] && ok "unknown option: exit 2" || ko "unknown option"
for c in inspect verify pack unpack commit rm; do
	"$OVS" $c --help | grep -q "usage: ovastore" || ko "$c --help"
done
ok "--help on every subcommand"
"$OVS" -C "$S" inspect no/such 2>"$tmp/err"
[ $? -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "not found" "$tmp/err" && ok "not found: exit 1, one line" ||
	ko "not found: $(cat "$tmp/err")"
"$OVS" -C "$S" inspect ../escape 2>"$tmp/err"
[ $? -eq 1 ] && ok "path escaping the root refused" || ko "escape"
check "inspect --json is JSON" bash -c "'$OVS' -C '$S' inspect --json snapshots/2/13/u/u | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"format\"]==\"ovf\" and len(d[\"disks\"])==2'"
out=$("$OVS" --root "$S" rm snapshots/2/13/u/u)
[ "$(echo "$out" | head -1)" = "snapshots/2/13/u/u.ova.meta" ] && [ "$(echo "$out" | wc -l)" = 4 ] &&
	[ ! -e "$S/snapshots/2/13/u" ] && ok "rm prints removed paths, meta first, removes the empty dir" || ko "rm: $out"
check "rm of an absent object succeeds" "$OVS" -C "$S" rm snapshots/2/13/u/u
check "rm of a legacy object" bash -c "'$OVS' -C '$S' rm legacy/gnu/l | grep -qx legacy/gnu/l.ova"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
