#!/usr/bin/env bash
# The operator's store tools over a tree: `ovastore ls [--json]` lists every
# object (committed, legacy, broken) and the debris of interrupted attempts,
# `ovastore verify DIR` walks a tree, and absolute object paths work with -C or
# with a derived root.  Needs no broker.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
O=$build/bin/ovastore
pass=0
fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
nok() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

tmp=$(mktemp -d /tmp/swtree.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
S=$tmp/store
mkdir -p "$S/.snapworker/journal"
"$here/tests/fixtures/upgraded-store/make.sh" "$S" 64 >/dev/null
# A committed (new-format) template made from the legacy one, plus debris beside it.
(cd "$S" && "$O" pack template/tmpl/2/201/legacy-tmpl-201 "$tmp/t.ova" >/dev/null &&
    "$O" unpack "$tmp/t.ova" template/tmpl/2/202/newt >/dev/null)
echo part >"$S/template/tmpl/2/202/newt-disk1.vmdk.part"
echo orphan >"$S/template/tmpl/2/202/left.ovf"
# A broken object: a meta that does not parse.
mkdir -p "$S/volumes/3/4"
printf 'numDisks=0\n' >"$S/volumes/3/4/bad.ova.meta"
# Things the walk must not list: the workers' records, and a tree behind a symbolic link.
echo '{}' >"$S/.snapworker/journal/x.ova.meta"
mkdir -p "$tmp/outside"
cp "$S/template/tmpl/2/202/newt.ova.meta" "$tmp/outside/"
ln -s "$tmp/outside" "$S/volumes/3/link"

"$O" -C "$S" ls >"$tmp/ls.out" 2>"$tmp/ls.err"
check "ls exits 0" [ $? -eq 0 ]
row() { awk -F'\t' -v p="$1" '$1 == p' "$tmp/ls.out"; }
check "ls: the legacy snapshot, with its disk count" \
    bash -c "[ \"\$(awk -F'\t' '\$1==\"snapshots/2/8/5a1b2c3d-0000-4000-8000-000000000008\" {print \$2, \$3, \$4}' '$tmp/ls.out')\" = 'legacy ova 2' ]"
check "ls: the committed template" [ "$(row template/tmpl/2/202/newt | cut -f2,3)" = "$(printf 'committed\tovf')" ]
phys=$("$O" -C "$S" inspect --json template/tmpl/2/202/newt | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["physical_size"], j["virtual_size"])')
check "ls: its sizes are inspect's" [ "$(row template/tmpl/2/202/newt | cut -f5,6 | tr '\t' ' ')" = "$phys" ]
check "ls: a .part file is debris" [ "$(row template/tmpl/2/202/newt-disk1.vmdk.part | cut -f2)" = debris ]
check "ls: an OVF no object owns is debris" [ "$(row template/tmpl/2/202/left.ovf | cut -f2)" = debris ]
check "ls: the committed object's own files are not debris (2 debris rows in its directory)" \
    [ "$(awk -F'\t' '$1 ~ /^template\/tmpl\/2\/202\// && $2 == "debris"' "$tmp/ls.out" | wc -l)" = 2 ]
check "ls: a meta that does not parse is broken, with the reason" \
    bash -c "row() { awk -F'\t' -v p=\"\$1\" '\$1 == p' '$tmp/ls.out'; }; row volumes/3/4/bad | grep -q \$'broken\tovf.*missing key'"
check "ls: nothing from .snapworker" bash -c "! grep -q snapworker '$tmp/ls.out'"
check "ls: no symbolic link is followed" bash -c "! grep -q 'volumes/3/link' '$tmp/ls.out'"
check "ls: 8 entries in all (4 legacy, 1 committed, 1 broken, 2 debris)" \
    [ "$(wc -l <"$tmp/ls.out")" = 8 ]

"$O" -C "$S" ls --json snapshots >"$tmp/ls.json"
check "ls --json DIR: valid JSON listing only that subtree" python3 - "$tmp/ls.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
paths = sorted(e["path"] for e in a)
ok = paths == ["snapshots/2/7/db92a8e4-079f-4055-84f5-08d33f6f9fef",
               "snapshots/2/8/5a1b2c3d-0000-4000-8000-000000000008"]
ok = ok and all(e["state"] == "legacy" and e["format"] == "ova" and e["physical_size"] > 0
                and e["virtual_size"] > 0 for e in a)
sys.exit(0 if ok else 1)
PY
"$O" -C "$S" ls nowhere >/dev/null 2>"$tmp/ls2.err"
check "ls of a missing directory fails (1) naming it" \
    bash -c "[ $? -eq 1 ] && grep -q nowhere '$tmp/ls2.err'"

# --- verify walks a tree ------------------------------------------------------------
"$O" -C "$S" verify template >"$tmp/v1.out" 2>&1
check "verify DIR: every object ok, exit 0" bash -c "[ $? -eq 0 ] && grep -q '^2 objects verified: 2 ok, 0 failed; 2 debris files$' '$tmp/v1.out'"
check "verify DIR: names each object" bash -c "grep -qx 'template/tmpl/2/202/newt: ok' '$tmp/v1.out' &&
    grep -qx 'template/tmpl/2/201/legacy-tmpl-201: ok' '$tmp/v1.out'"
# One flipped byte in the committed disk: its recorded sha256 no longer matches.
disk=$S/template/tmpl/2/202/$(sed -n 's/^disk1\.name=//p' "$S/template/tmpl/2/202/newt.ova.meta")
printf '\xff' | dd of="$disk" bs=1 seek=600 conv=notrunc status=none
"$O" -C "$S" verify . >"$tmp/v2.out" 2>&1
rc=$?
check "verify of the whole store fails (1) when one object is damaged" [ $rc -eq 1 ]
check "and names the damaged object and the broken one" bash -c \
    "grep -q '^template/tmpl/2/202/newt: FAILED: .*' '$tmp/v2.out' && grep -q '^volumes/3/4/bad: FAILED' '$tmp/v2.out'"
check "and still verifies the rest" bash -c "grep -q '^6 objects verified: 4 ok, 2 failed' '$tmp/v2.out'"
"$O" -C "$S" verify --no-digest template/tmpl/2/202 >"$tmp/v3.out" 2>&1
check "verify --no-digest DIR skips the data digests" [ $? -eq 0 ]

# --- absolute paths ------------------------------------------------------------------
legacy=snapshots/2/7/db92a8e4-079f-4055-84f5-08d33f6f9fef
check "inspect with an absolute path under -C ROOT" bash -c \
    "'$O' -C '$S' inspect '$S/$legacy' | grep -qx 'install_path: $legacy'"
check "the root is derived from .snapworker above the path" bash -c \
    "cd / && '$O' inspect '$S/$legacy' | grep -qx 'install_path: $legacy'"
check "verify with an absolute directory and a derived root" bash -c \
    "cd / && '$O' verify '$S/snapshots' | grep -q '^2 objects verified: 2 ok'"
check "ls with an absolute directory and a derived root" bash -c \
    "cd / && '$O' ls '$S/snapshots/2/7' | grep -q '^$legacy'"
mv "$S/.snapworker" "$tmp/records"
check "without .snapworker, the root is the parent of snapshots/" bash -c \
    "cd / && '$O' inspect '$S//./$legacy' | grep -qx 'install_path: $legacy'"
mv "$tmp/records" "$S/.snapworker"
check "an absolute path outside -C ROOT is refused (2) naming the root" bash -c \
    "'$O' -C '$tmp/outside' inspect '$S/$legacy' 2>&1 >/dev/null | grep -q 'not under the store root' ;
     '$O' -C '$tmp/outside' inspect '$S/$legacy' >/dev/null 2>&1; [ \$? -eq 2 ]"
check "'..' in an absolute path is refused (2)" bash -c \
    "'$O' inspect '$S/snapshots/../$legacy' >/dev/null 2>&1; [ \$? -eq 2 ]"
check "a path with no derivable root asks for -C" bash -c \
    "'$O' inspect '$tmp/outside/newt' 2>&1 | grep -q 'give it with -C ROOT'"
check "a relative path still means relative to -C ROOT" bash -c \
    "'$O' -C '$S' inspect '$legacy' | grep -qx 'install_path: $legacy'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
