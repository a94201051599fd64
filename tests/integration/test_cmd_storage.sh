#!/usr/bin/env bash
# Integration test of the storage-only commands through the real program:
# `snapworker run-once` with a configuration file, a python3 http.server on
# 127.0.0.1 serving an OVA made by GNU tar (with a .mf manifest), and
# independent checks with GNU tar, cmp and the ovastore CLI.  Needs no
# broker or vCenter.  Prints "N passed, N failed".
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

if [ ! -x "$sw" ] || [ ! -x "$ovastore" ]; then
	echo "FAIL snapworker or ovastore not built in $build"
	echo "0 passed, 1 failed"
	exit 1
fi
tmp=$(mktemp -d /tmp/swcmdit.XXXXXX)
srv_pid=""
cleanup() {
	if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/www" "$tmp/work" "$tmp/s1" "$tmp/s2"

# An OVA: OVF, manifest, two disks.
(cd "$tmp/work" && head -c 3000000 /dev/urandom >deb-disk0.vmdk && head -c 70001 /dev/urandom >deb-disk1.vmdk)
cat >"$tmp/work/deb.ovf" <<'OVF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="deb-disk0.vmdk" ovf:id="file1" ovf:size="3000000"/>
    <File ovf:href="deb-disk1.vmdk" ovf:id="file2" ovf:size="70001"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
    <Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
OVF
(cd "$tmp/work" && for f in deb.ovf deb-disk0.vmdk deb-disk1.vmdk; do
	echo "SHA256($f)= $(sha256sum "$f" | cut -d' ' -f1)"; done >deb.mf)
tar --format=ustar -cf "$tmp/www/deb.ova" -C "$tmp/work" deb.ovf deb.mf deb-disk0.vmdk deb-disk1.vmdk
sum=$(sha256sum "$tmp/www/deb.ova" | cut -d' ' -f1)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$tmp/www" && exec python3 -m http.server --bind 127.0.0.1 "$port") >"$tmp/http.log" 2>&1 &
srv_pid=$!
url="http://127.0.0.1:$port/deb.ova"
for _ in $(seq 50); do curl -sf -o /dev/null -r 0-0 "$url" && break; sleep 0.1; done

cat >"$tmp/conf" <<CONF
[store]
nfs://10.0.0.5/export/secondary = $tmp/s1
nfs://10.0.0.6/export/secondary2 = $tmp/s2
extract_dir = $tmp/extract
[download]
allow = 127.0.0.0/8
max_size = 1G
CONF

# run NAME TYPE ID ARGS: runs one command; the event is in $tmp/NAME.json.
run() {
	local name=$1 type=$2 id=$3 args=$4 store=${5:-nfs://10.0.0.5/export/secondary}
	printf '{"version":1,"id":"%s","type":"%s","store":{"url":"%s"},"args":%s}' \
	    "$id" "$type" "$store" "$args" >"$tmp/$name.cmd"
	"$sw" run-once -c "$tmp/conf" "$tmp/$name.cmd" >"$tmp/$name.out" 2>"$tmp/$name.log"
	local rc=$?
	tail -n 1 "$tmp/$name.out" >"$tmp/$name.json"
	return $rc
}
# jq-like field access with python: field NAME EXPR
field() { python3 -c "import json,sys; e=json.load(open('$tmp/$1.json')); print($2)"; }

ID1=c1d2e3f4-a5b6-4789-8abc-def012345678
TDIR=template/tmpl/2/203
reg_args="{\"url\":\"$url\",\"checksum\":\"sha256:$sum\",\"account_id\":2,\"template_id\":203}"

# RegisterTemplate.
check "register succeeds" run reg RegisterTemplate $ID1 "$reg_args"
check "register event succeeded" test "$(field reg "e['status']")" = succeeded
check "register install path (CloudStack's form, .ova)" test "$(field reg "e['result']['install_path']")" = "$TDIR/$ID1.ova"
check "register format ovf" test "$(field reg "e['result']['format']")" = ovf
check "register virtual size" test "$(field reg "e['result']['virtual_size']")" = $((9 * 1024 * 1024 * 1024))
check "register lists 5 files" test "$(field reg "len(e['result']['files'])")" = 5
check "meta on the share" test -f "$tmp/s1/$TDIR/$ID1.ova.meta"
check "manifest not stored" test ! -e "$tmp/s1/$TDIR/deb.mf"
# The files are named after the object, not after the archive's members.
check "disk0 identical" cmp -s "$tmp/work/deb-disk0.vmdk" "$tmp/s1/$TDIR/$ID1-disk0.vmdk"
check "disk1 identical" cmp -s "$tmp/work/deb-disk1.vmdk" "$tmp/s1/$TDIR/$ID1-disk1.vmdk"
check "no member names on the share" test ! -e "$tmp/s1/$TDIR/deb-disk0.vmdk"
check "ovastore verify" "$ovastore" -C "$tmp/s1" verify "$TDIR/$ID1"
check "template.properties id" grep -qx "id=203" "$tmp/s1/$TDIR/template.properties"
check "template.properties uniquename" grep -qx "uniquename=$ID1" "$tmp/s1/$TDIR/template.properties"
check "template.properties ova.size" grep -qx "ova.size=$(field reg "e['result']['physical_size']")" \
    "$tmp/s1/$TDIR/template.properties"
check "progress events" grep -q '"status":"progress"' "$tmp/reg.out"

# Redelivery: the same answer, no second download.
gets=$(grep -c 'GET /deb.ova' "$tmp/http.log")
check "register again succeeds" run reg2 RegisterTemplate $ID1 "$reg_args"
check "register again: same result" test "$(field reg2 "json.dumps(e['result'],sort_keys=True)")" = \
    "$(field reg "json.dumps(e['result'],sort_keys=True)")"
check "register again: no download" test "$(grep -c 'GET /deb.ova' "$tmp/http.log")" = "$gets"

# A wrong checksum leaves nothing.
bad_sum=$(echo "$sum" | tr '0-9a-f' '1-9a-f0')
ID2=00000000-0000-4000-8000-000000000002
if run badsum RegisterTemplate $ID2 "{\"url\":\"$url\",\"checksum\":\"sha256:$bad_sum\",\"account_id\":2,\"template_id\":204}"; then
	bad "wrong checksum refused"
else
	ok "wrong checksum refused"
fi
check "wrong checksum: CHECKSUM_MISMATCH" test "$(field badsum "e['error']['code']")" = CHECKSUM_MISMATCH
check "wrong checksum: nothing left" test ! -e "$tmp/s1/template/tmpl/2/204"

# ExtractTemplate: a generated .ova that GNU tar reads back.
ID3=00000000-0000-4000-8000-000000000003
check "extract succeeds" run ext ExtractTemplate $ID3 "{\"path\":\"$TDIR/$ID1.ova\"}"
out=$(field ext "e['result']['download']['path']")
check "extract file exists" test -f "$tmp/extract/$out"
check "extract size" test "$(stat -c %s "$tmp/extract/$out")" = "$(field ext "e['result']['download']['size']")"
check "extract: OVF first" test "$(tar -tf "$tmp/extract/$out" | head -1)" = "$ID1.ovf"
mkdir -p "$tmp/x" && tar -xf "$tmp/extract/$out" -C "$tmp/x"
check "extract: disk0 identical" cmp -s "$tmp/work/deb-disk0.vmdk" "$tmp/x/$ID1-disk0.vmdk"
check "extract again succeeds" run ext2 ExtractTemplate $ID3 "{\"path\":\"$TDIR/$ID1.ova\"}"
check "extract again: same file" test "$(field ext2 "e['result']['download']['path']")" = "$out"

# CopyTemplate to the second store, keeping the format.
ID4=00000000-0000-4000-8000-000000000004
check "copy succeeds" run copy CopyTemplate $ID4 \
    "{\"path\":\"$TDIR/$ID1\",\"dest_store\":{\"url\":\"nfs://10.0.0.6/export/secondary2\"}}"
check "copy: identical tree" diff -r "$tmp/s1/$TDIR" "$tmp/s2/$TDIR"
check "copy: ovastore verify" "$ovastore" -C "$tmp/s2" verify "$TDIR/$ID1"

# DeleteTemplate on the copy, twice.
ID5=00000000-0000-4000-8000-000000000005
check "delete succeeds" run del DeleteTemplate $ID5 "{\"path\":\"$TDIR/$ID1.ova\"}" nfs://10.0.0.6/export/secondary2
check "delete: template.properties listed first" test \
    "$(field del "e['result']['files'][0]['path']")" = "$TDIR/template.properties"
check "delete: directory gone" test ! -e "$tmp/s2/$TDIR"
check "delete again succeeds" run del2 DeleteTemplate $ID5 "{\"path\":\"$TDIR/$ID1\"}" nfs://10.0.0.6/export/secondary2
check "delete again: no files" test "$(field del2 "len(e['result']['files'])")" = 0
check "source untouched" "$ovastore" -C "$tmp/s1" verify "$TDIR/$ID1"

# DeleteTemplate removes what CloudStack's own DeleteTemplate would: the whole template
# directory, with what CloudStack left there (its extract's NAME.ova, members its
# OVAProcessor untarred) and links planted there (removed themselves, never followed).
echo secret >"$tmp/outside-secret"
mkdir -p "$tmp/outside-dir" && echo inner >"$tmp/outside-dir/inner"
cp "$tmp/www/deb.ova" "$tmp/s1/$TDIR/$ID1.ova"
cp "$tmp/work/deb.mf" "$tmp/work/deb.ovf" "$tmp/s1/$TDIR/"
ln -s "$tmp/outside-secret" "$tmp/s1/$TDIR/escape"
ln -s "$tmp/outside-dir" "$tmp/s1/$TDIR/escape-dir"
ID7=00000000-0000-4000-8000-000000000007
check "delete with leftovers succeeds" run delx DeleteTemplate $ID7 "{\"path\":\"$TDIR/$ID1.ova\"}"
want="$TDIR/template.properties $TDIR/$ID1.ova.meta $TDIR/$ID1.ova $TDIR/$ID1-disk0.vmdk"
want="$want $TDIR/$ID1-disk1.vmdk $TDIR/$ID1.ovf $TDIR/deb.mf $TDIR/deb.ovf $TDIR/escape $TDIR/escape-dir"
check "delete with leftovers: every removed file listed, in order" test \
    "$(field delx "' '.join(f['path'] for f in e['result']['files'])")" = "$want"
check "delete with leftovers: directory gone" test ! -e "$tmp/s1/$TDIR"
check "delete with leftovers: link targets outside intact" \
    bash -c "[ \"\$(cat '$tmp/outside-secret')\" = secret ] && [ -f '$tmp/outside-dir/inner' ]"

# DeleteSnapshot: CloudStack's glob (*NAME* in the snapshot's directory), whatever
# the meta says: a broken or symlinked meta no longer orphans the OVF and disks.
SID=0a1b2c3d-0000-4000-8000-00000000000a
SDIR=snapshots/2/13/$SID
n=0
for meta in 'numDisks=0' 'disk1.name=../x' 'bigline' 'symlink'; do
	n=$((n + 1))
	mkdir -p "$tmp/s1/$SDIR"
	cp "$tmp/work/deb.ovf" "$tmp/s1/$SDIR/$SID.ovf"
	cp "$tmp/work/deb-disk1.vmdk" "$tmp/s1/$SDIR/$SID-disk0.vmdk"
	ln -s "$tmp/outside-secret" "$tmp/s1/$SDIR/$SID-disk1.vmdk"
	case $meta in
	bigline) python3 -c "import sys; sys.stdout.write('x=' + 'a' * (10 << 20) + '\\n')" \
	    >"$tmp/s1/$SDIR/$SID.ova.meta" ;;
	symlink) printf 'version=1.0\novf=%s.ovf\nnumDisks=1\ndisk1.name=%s-disk0.vmdk\ndisk1.size=70001\n' \
	    "$SID" "$SID" >"$tmp/outside.ova.meta"
		ln -s "$tmp/outside.ova.meta" "$tmp/s1/$SDIR/$SID.ova.meta" ;;
	*) printf 'version=1.0\novf=%s.ovf\nnumDisks=1\n%s\n' "$SID" "$meta" >"$tmp/s1/$SDIR/$SID.ova.meta" ;;
	esac
	check "delete snapshot, meta $meta: succeeds" run dels$n DeleteSnapshot 00000000-0000-4000-8000-00000000010$n \
	    "{\"path\":\"$SDIR/$SID\"}"
	check "delete snapshot, meta $meta: every file listed" test \
	    "$(field dels$n "' '.join(f['path'].rsplit('/',1)[1] for f in e['result']['files'])")" = \
	    "$SID.ova.meta $SID-disk0.vmdk $SID-disk1.vmdk $SID.ovf"
	check "delete snapshot, meta $meta: directory gone" test ! -e "$tmp/s1/$SDIR"
done
check "delete snapshot: link targets outside intact" \
    bash -c "[ \"\$(cat '$tmp/outside-secret')\" = secret ] && [ -f '$tmp/outside.ova.meta' ]"

# ovastore delete: the same rules by hand, printing every removed path.
mkdir -p "$tmp/s2/template/tmpl/2/209"
cp "$tmp/www/deb.ova" "$tmp/s2/template/tmpl/2/209/legacy.ova"
tar -xf "$tmp/www/deb.ova" -C "$tmp/s2/template/tmpl/2/209"
echo 'filename=legacy.ova' >"$tmp/s2/template/tmpl/2/209/template.properties"
check "ovastore delete --template" test "$("$ovastore" -C "$tmp/s2" delete --template template/tmpl/2/209/legacy | tr '\n' ' ')" = \
    "template/tmpl/2/209/template.properties template/tmpl/2/209/legacy.ova template/tmpl/2/209/deb-disk0.vmdk template/tmpl/2/209/deb-disk1.vmdk template/tmpl/2/209/deb.mf template/tmpl/2/209/deb.ovf "
check "ovastore delete --template: directory gone" test ! -e "$tmp/s2/template/tmpl/2/209"
mkdir -p "$tmp/s2/snapshots/2/13/z"
printf 'numDisks=0\n' >"$tmp/s2/snapshots/2/13/z/z.ova.meta"
echo x >"$tmp/s2/snapshots/2/13/z/z.ovf"
if "$ovastore" -C "$tmp/s2" delete snapshots/2/13/z/z >/dev/null 2>"$tmp/rm.err"; then
	bad "ovastore delete of a broken meta refused"
else
	ok "ovastore delete of a broken meta refused"
fi
check "ovastore delete of a broken meta: says nothing was removed" grep -q "nothing removed" "$tmp/rm.err"
check "ovastore delete of a broken meta: files kept" test -f "$tmp/s2/snapshots/2/13/z/z.ovf"
check "ovastore delete --snapshot of a broken meta" test \
    "$("$ovastore" -C "$tmp/s2" delete --snapshot snapshots/2/13/z/z | tr '\n' ' ')" = \
    "snapshots/2/13/z/z.ova.meta snapshots/2/13/z/z.ovf "

# Unknown store; a vCenter command in this build.
ID6=00000000-0000-4000-8000-000000000006
run unk DeleteSnapshot $ID6 '{"path":"snapshots/1/2/x/x"}' nfs://nowhere/x
check "unknown store: UNKNOWN_STORE" test "$(field unk "e['error']['code']")" = UNKNOWN_STORE
check "unknown store: not retryable" test "$(field unk "e['error']['retryable']")" = False

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
