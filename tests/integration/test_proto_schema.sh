#!/usr/bin/env bash
# The JSON Schemas of docs/schema/ against the worker's own parser, with an
# independent validator (python3-jsonschema, draft 2020-12; see
# tests/integration/proto_schema.py):
#   - every valid command fixture passes command.schema.json and its type's
#     schema; every invalid one is refused where the parser refuses it (the
#     field its .err message starts with, or at the JSON level);
#   - every event fixture passes event.schema.json, every invalid event
#     (tests/fixtures/proto/events/invalid, whose messages test_proto checks
#     against the C parser) is refused at the parser's field;
#   - about 300 edge cases judged by the parser itself through
#     `snapctl submit --dry-run` get the same verdict and field;
#   - the events `snapworker run-once` writes for real storage commands
#     (progress, succeeded with files and a download, failed, a failed event
#     without type) pass event.schema.json;
#   - schemas broken on purpose (a `required` dropped, a path rule dropped,
#     the retry bound dropped, two rules swapped) are caught by the fixtures.
# Needs no broker or vCenter.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
schemas=$here/docs/schema
fixtures=$here/tests/fixtures/proto
py=$here/tests/integration/proto_schema.py
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

for b in snapctl snapworker ovastore; do
	if [ ! -x "$build/bin/$b" ]; then
		echo "FAIL $b not built in $build"
		echo "0 passed, 1 failed"
		exit 1
	fi
done
if ! python3 -c 'import jsonschema' 2>/dev/null; then
	echo "FAIL python3 module jsonschema missing: install Debian package python3-jsonschema (scripts/deps.sh)"
	echo "0 passed, 1 failed"
	exit 1
fi
tmp=$(mktemp -d /tmp/swschema.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# --- events from the C code: snapworker run-once on a store with one object
mkdir -p "$tmp/work" "$tmp/s1" "$tmp/s2" "$tmp/extract" "$tmp/events"
head -c 70000 /dev/urandom >"$tmp/work/t-disk0.vmdk"
cat >"$tmp/work/t.ovf" <<'OVF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="t-disk0.vmdk" ovf:id="file1" ovf:size="70000"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
OVF
tar --format=ustar -cf "$tmp/t.ova" -C "$tmp/work" t.ovf t-disk0.vmdk
check "ovastore unpack makes a snapshot object" \
    "$build/bin/ovastore" -C "$tmp/s1" unpack "$tmp/t.ova" snapshots/2/13/aa/aa
cat >"$tmp/conf" <<CONF
[store]
nfs://10.0.0.5/export/secondary = $tmp/s1
nfs://10.0.0.6/export/secondary2 = $tmp/s2
extract_dir = $tmp/extract
CONF
n=0
# run NAME BODY: one command through snapworker run-once; each event line it
# prints becomes $tmp/events/NAME-K.json.
run() {
	local name=$1 k=0 line
	printf '%s' "$2" >"$tmp/$name.cmd"
	"$build/bin/snapworker" run-once -c "$tmp/conf" "$tmp/$name.cmd" >"$tmp/$name.out" 2>"$tmp/$name.log"
	while IFS= read -r line; do
		k=$((k + 1))
		printf '%s\n' "$line" >"$tmp/events/$name-$k.json"
	done <"$tmp/$name.out"
	n=$((n + k))
	[ "$k" -gt 0 ]
}
cmd() { printf '{"version":1,"id":"%s","type":"%s","store":{"url":"%s"},"args":%s}' "$1" "$2" \
    "${4:-nfs://10.0.0.5/export/secondary}" "$3"; }
check "run-once CreateTemplate from the snapshot" run create-template \
    "$(cmd 6c3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c CreateTemplate \
    '{"account_id":2,"template_id":201,"unique_name":"t201","snapshot_path":"snapshots/2/13/aa/aa.ova"}')"
check "run-once ExtractTemplate" run extract-template \
    "$(cmd 7c3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c ExtractTemplate '{"path":"template/tmpl/2/201/t201"}')"
check "run-once CopyTemplate" run copy-template \
    "$(cmd 8c3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c CopyTemplate \
    '{"path":"template/tmpl/2/201/t201","dest_store":{"url":"nfs://10.0.0.6/export/secondary2"}}')"
check "run-once DeleteTemplate" run delete-template \
    "$(cmd 9c3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c DeleteTemplate '{"path":"template/tmpl/2/201/t201.ova"}')"
check "run-once DeleteSnapshot" run delete-snapshot \
    "$(cmd ac3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c DeleteSnapshot '{"path":"snapshots/2/13/aa/aa"}')"
check "run-once DeleteSnapshot of nothing" run delete-nothing \
    "$(cmd bc3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c DeleteSnapshot '{"path":"snapshots/2/13/aa/aa"}')"
check "run-once ExtractTemplate of nothing (NOT_FOUND)" run extract-nothing \
    "$(cmd cc3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c ExtractTemplate '{"path":"template/tmpl/2/9/none"}')"
check "run-once on an unknown store (UNKNOWN_STORE)" run unknown-store \
    "$(cmd dc3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c DeleteSnapshot '{"path":"a/b"}' nfs://elsewhere/x)"
check "run-once on an invalid command (INVALID_COMMAND)" run invalid \
    "$(cmd ec3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c CreateVolume '{"source_path":"../x"}')"
check "run-once on an unknown type (failed, no type)" run unknown-type \
    '{"version":1,"id":"fc3a9f0e-7b1d-4e2a-9c4b-5d6e7f8a9b0c","type":"Foo"}'
check "run-once wrote a progress, a download and a type-less failed event" bash -c \
    "grep -l '\"status\":\"progress\"' '$tmp'/events/*.json >/dev/null &&
     grep -l '\"download\":{' '$tmp'/events/*.json >/dev/null &&
     grep -L '\"type\":' '$tmp'/events/*.json | grep -q ."
echo "--- $n events from run-once"

# --- the schemas against fixtures, events and the parser's verdicts
python3 "$py" test "$schemas" "$fixtures" --snapctl "$build/bin/snapctl" --events "$tmp/events" \
    >"$tmp/schema.out" 2>&1
rc=$?
cat "$tmp/schema.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/schema.out" | tail -1)
if [ -n "$line" ]; then
	pass=$((pass + ${line%% passed*}))
	f=${line#*passed, }
	fail=$((fail + ${f%% failed}))
else
	bad "proto_schema.py printed no summary (exit $rc)"
fi
[ "$rc" -ne 0 ] && [ -n "$line" ] && [ "${f%% failed}" -eq 0 ] && bad "proto_schema.py exited $rc"

# --- broken on purpose: each mutation must make some check fail
# break NAME FILE PYTHON: copies the schemas, runs PYTHON on the JSON of FILE (as d),
# and expects the fixtures to notice.
broken() {
	local name=$1 file=$2 code=$3 out
	rm -rf "$tmp/broken" && cp -r "$schemas" "$tmp/broken" || return 1
	python3 - "$tmp/broken/$file" "$code" <<'PY' || return 1
import json, sys
path, code = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as f:
    d = json.load(f)
before = json.dumps(d, sort_keys=True)
exec(code)
if json.dumps(d, sort_keys=True) == before:
    sys.exit("the mutation changed nothing")
with open(path, "w", encoding="utf-8") as f:
    json.dump(d, f, indent=1)
PY
	out=$(python3 "$py" test "$tmp/broken" "$fixtures" --broken 2>&1)
	echo "     $name: $out"
	[[ "$out" =~ ^broken\ schemas:\ [1-9][0-9]*\ checks\ failed ]]
}
check "a schema without 'account_id' required is caught" broken no-account-id \
    CreateSnapshot.schema.json 'd["$defs"]["args"]["allOf"][2].pop("required")'
check "a schema without the install path rules is caught" broken no-path-rules \
    command.schema.json 'd["$defs"]["install_path"].pop("allOf")'
check "a schema without the retry attempt bound is caught" broken no-attempt-bound \
    event.schema.json 'd["$defs"]["retry"]["allOf"].pop(2)'
check "a schema that checks args before version is caught" broken args-first \
    command.schema.json 'a = d["allOf"]; a[0], a[6] = a[6], a[0]'
check "a schema that allows 'vm' with both uuid and name is caught" broken vm-any \
    command.schema.json 'd["$defs"]["vm"]["allOf"][2]["anyOf"] = d["$defs"]["vm"]["allOf"][2].pop("oneOf")'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
