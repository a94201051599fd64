#!/usr/bin/env bash
# Integration tests of vmware/ through vmwctl against the vCenter simulator
# of the test rig.  Starts its own simulator (a user with a password file,
# seeded disks, delayed tasks) in a temporary directory, so failure
# injection cannot disturb other tests, and stops it by PID at the end.
# Prints "N passed, M failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
vmwctl=$build/bin/vmwctl
rigbin=${VCSIM_BIN:-$build/bin/snapworker-vcsim}

if [ ! -x "$rigbin" ] || [ ! -x "$here/tests/rig/vcsim.sh" ]; then
	echo "SKIP: simulator $rigbin not built (make rig): vmware integration tests not run"
	echo "0 passed, 0 failed"
	exit 0
fi
if [ ! -x "$vmwctl" ]; then
	echo "vmwctl not built: $vmwctl"
	echo "0 passed, 1 failed"
	exit 1
fi

tmp=$(mktemp -d /tmp/vmwit.XXXXXX)
passed=0
failed=0
cleanup() {
	"$here/tests/rig/vcsim.sh" stop "$tmp/sim" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "${VMWIT_KEEP:-}" ] && trap - EXIT

ok() { passed=$((passed + 1)); echo "ok - $1"; }
nok() { failed=$((failed + 1)); echo "FAIL - $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }

printf 's3cr3t-pw\n' >"$tmp/pw"
chmod 600 "$tmp/pw"
printf 'wrong-pw\n' >"$tmp/badpw"
chmod 600 "$tmp/badpw"
if ! "$here/tests/rig/vcsim.sh" start "$tmp/sim" -user snap -password-file "$tmp/pw" \
    -seed-mib 8 -vm-disks 2 -task-delay 300ms >"$tmp/start.log" 2>&1; then
	cat "$tmp/start.log"
	echo "0 passed, 1 failed"
	exit 1
fi
# shellcheck disable=SC1091
. "$tmp/sim/vcsim.env"
base=${VCSIM_URL%/sdk}
V=("$vmwctl" --url "$VCSIM_URL" --user snap --password-file "$tmp/pw" --thumbprint "$VCSIM_THUMBPRINT"
   --timeout 300)

state() { curl -sk -m 20 "$base/rig/state"; }
# py EXPR: evaluates a Python expression over the rig state d; exit status 0 if true.
py() { state | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }
no_workers() { local out; out=$("${V[@]}" worker-list) || return 1; [ -z "$out" ]; }
no_snapshots() { py "[v for v in d['vms'] if v['name']=='$VCSIM_VM'][0]['snapshot_count']==0"; }
# The volume is still in its VM's disk chain (a snapshot may have put a delta
# on top) and its file is still on the datastore.
volume_intact() {
	"${V[@]}" vm-info --vm "$VCSIM_VM" | grep -qF -e "file=$disk0 " -e "]: $disk0" &&
	    [ -e "$VCSIM_DATASTORE_DIR/${disk0#*] }" ]
}
no_open_leases() { py "not [l for l in (d.get('leases') or []) if l.get('state') in ('initializing','ready')]"; }

# --- the password file: the same rule as every snapworker program ---------------
cp "$tmp/pw" "$tmp/pw644"; chmod 644 "$tmp/pw644"
ln -s "$tmp/pw" "$tmp/pwlink"
out=$("$vmwctl" --url "$VCSIM_URL" --user snap --password-file "$tmp/pw644" \
    --thumbprint "$VCSIM_THUMBPRINT" about 2>&1)
check "a 0644 password file is refused, with the fix" bash -c '[[ "$1" == *"chmod 600"* ]]' _ "$out"
out=$("$vmwctl" --url "$VCSIM_URL" --user snap --password-file "$tmp/pwlink" \
    --thumbprint "$VCSIM_THUMBPRINT" about 2>&1)
check "a symlinked password file is refused, saying so" bash -c '[[ "$1" == *"symbolic link"* ]]' _ "$out"

ui_url=${VCSIM_URL/https:\/\//https://snap:pw-SECRET@}
out=$("$vmwctl" --url "$ui_url" --user snap --password-file "$tmp/pw" \
    --thumbprint "$VCSIM_THUMBPRINT" about 2>&1)
check "a URL carrying user:password is refused, without echoing it" \
    bash -c '[[ "$1" == *"carries a user name or password"* && "$1" != *SECRET* ]]' _ "$out"

# --- TLS and login -----------------------------------------------------------
check "about with pinned thumbprint" bash -c '"$@" about | grep -q "^api-type: VirtualCenter"' _ "${V[@]}"
# A thumbprint one byte off (its first byte changed, never to the same value).
wrong=00; [ "${VCSIM_THUMBPRINT:0:2}" = 00 ] && wrong=01
out=$("$vmwctl" --url "$VCSIM_URL" --user snap --password-file "$tmp/pw" \
    --thumbprint "$wrong:${VCSIM_THUMBPRINT:3}" about 2>&1)
check "wrong thumbprint refused, both thumbprints shown" \
    bash -c '[[ "$1" == *"does not match"* && "$1" == *"$2"* ]]' _ "$out" "$VCSIM_THUMBPRINT"
if [ -n "${VCSIM_CACERT:-}" ]; then
	check "CA file verification" "$vmwctl" --url "$VCSIM_URL" --user snap --password-file "$tmp/pw" \
	    --cacert "$VCSIM_CACERT" about
fi
out=$("$vmwctl" --url "$VCSIM_URL" --user snap --password-file "$tmp/pw" about 2>&1)
check "unknown CA refused by default" bash -c '[[ "$1" == *"not trusted"* ]]' _ "$out"
out=$("$vmwctl" --url "$VCSIM_URL" --user snap --password-file "$tmp/badpw" \
    --thumbprint "$VCSIM_THUMBPRINT" about 2>&1); rc=$?
check "wrong password: exit 1, InvalidLogin, password not echoed" \
    bash -c '[ "$1" = 1 ] && [[ "$2" == *InvalidLogin* && "$2" != *wrong-pw* ]]' _ "$rc" "$out"
out=$(VMWCTL_PASSWORD=s3cr3t-pw "$vmwctl" --url "$VCSIM_URL" --user snap \
    --thumbprint "$VCSIM_THUMBPRINT" about 2>&1)
check "password from VMWCTL_PASSWORD" bash -c '[[ "$1" == *"api-version"* ]]' _ "$out"

# --- inventory ---------------------------------------------------------------
"${V[@]}" vm-info --vm "$VCSIM_VM" >"$tmp/info" 2>&1
disk0=$(sed -n 's/^disk key=[0-9-]* file=\(.*\) capacity=.*/\1/p' "$tmp/info" | head -1)
ndisks=$(grep -c '^disk ' "$tmp/info")
check "vm-info by name lists 2 disks" [ "$ndisks" = 2 ]
check "vm-info by BIOS UUID" bash -c '"$@" | grep -q "^name: $0"' "$VCSIM_VM" "${V[@]}" vm-info --vm "$VCSIM_VM_UUID"
check "vm-info of a missing VM fails" bash -c '"$@" vm-info --vm no-such-vm 2>&1 | grep -q "no VM named"' _ "${V[@]}"

# --- the CreateSnapshot data path ---------------------------------------------
mkdir -p "$tmp/out1"
"${V[@]}" backup --vm "$VCSIM_VM" --disk "$disk0" --out "$tmp/out1" --name bk1 >"$tmp/bk1" 2>&1
cat "$tmp/bk1"
sha=$(sed -n 's/^disk0: .* sha256=\(.*\)/\1/p' "$tmp/bk1")
check "backup: exported disk sha256 equals the seeded disk" [ "$sha" = "$VCSIM_SEED_SHA256_0" ]
check "backup: on-disk file matches too" \
    bash -c '[ "$(sha256sum "$1" | cut -d" " -f1)" = "$2" ]' _ "$tmp/out1/bk1-disk0.vmdk" "$VCSIM_SEED_SHA256_0"
check "backup: OVF is well-formed XML" xmllint --noout "$tmp/out1/bk1.ovf"
check "backup: no worker VM left" no_workers
check "backup: no snapshot left" no_snapshots
check "backup: no open lease" no_open_leases
check "backup: the volume's files are still there" volume_intact

# --- failure injected mid-export -----------------------------------------------
curl -sk -X POST "$base/rig/inject?nfc_fail_after=1000000" >/dev/null
mkdir -p "$tmp/out2"
out=$("${V[@]}" backup --vm "$VCSIM_VM" --disk "$disk0" --out "$tmp/out2" --name bk2 2>&1); rc=$?
echo "$out"
check "mid-export failure: backup fails" [ "$rc" = 1 ]
check "mid-export failure: no partial disk left in the output" \
    bash -c '[ -z "$(ls -A "$1")" ]' _ "$tmp/out2"
check "mid-export failure: no worker VM left" no_workers
check "mid-export failure: no snapshot left" no_snapshots
check "mid-export failure: lease aborted" no_open_leases

# --- a task fault ----------------------------------------------------------------
curl -sk -X POST "$base/rig/inject?fault=CreateSnapshot_Task&fault_type=TaskInProgress&in_task=1" >/dev/null
out=$("${V[@]}" snapshot-create --vm "$VCSIM_VM" --name busy 2>&1); rc=$?
check "task fault: TaskInProgress reported with its message" \
    bash -c '[ "$1" = 1 ] && [[ "$2" == *TaskInProgress* ]]' _ "$rc" "$out"

# --- import round trip -------------------------------------------------------------
"${V[@]}" import --ovf "$tmp/out1/bk1.ovf" --name imported-bk1 --like "$VCSIM_VM" >"$tmp/imp" 2>&1
cat "$tmp/imp"
check "import: a new VM with a disk" grep -q '^disk0: ' "$tmp/imp"
"${V[@]}" power-off --vm imported-bk1 >/dev/null 2>&1
# --out names a directory that does not exist yet: export makes it.
"${V[@]}" export --vm imported-bk1 --out "$tmp/out3" --name rt >"$tmp/rt" 2>&1
cat "$tmp/rt"
sha=$(sed -n 's/^disk0: .* sha256=\(.*\)/\1/p' "$tmp/rt")
check "import round trip: re-exported disk equals the seed" [ "$sha" = "$VCSIM_SEED_SHA256_0" ]

# --- worker VM + sweeper ---------------------------------------------------------------
snap=$("${V[@]}" snapshot-create --vm "$VCSIM_VM" --name sw | sed -n 's/^snapshot: //p')
cur=$("${V[@]}" vm-info --vm "$VCSIM_VM" | sed -n 's/^disk key=[0-9-]* file=\(.*\) capacity=.*/\1/p' | head -1)
echo "after snapshot the VM runs on: $cur"
check "snapshot put a delta on top of the volume" [ "$cur" != "$disk0" ]
check "the snapshot's disk, named by the VM's newer delta, is the frozen base" \
    bash -c '"$@" | grep -qF "file=$0 "' "$disk0" "${V[@]}" snapshot-disk --vm "$VCSIM_VM" --snapshot "$snap" --disk "$cur"
worker=$("${V[@]}" worker-create --vm "$VCSIM_VM" --snapshot "$snap" --disk "$disk0" --name cmd-sweep \
    --tag cmd-sweep | sed -n 's/^worker: //p')
check "worker VM created and listed" bash -c '"$@" worker-list | grep -q "tag=cmd-sweep"' _ "${V[@]}"
check "sweep --dry-run destroys nothing" bash -c '"$@" sweep --older-than 0 --dry-run | grep -q "would destroy" &&
    "$@" worker-list | grep -q cmd-sweep' _ "${V[@]}"
check "sweep destroys the worker VM" "${V[@]}" sweep --older-than 0
check "sweep: no worker VM left" no_workers
check "sweep: the volume's files are still there" volume_intact
vmref=$("${V[@]}" vm-info --vm "$VCSIM_VM" | sed -n 's/^vm: //p')
check "destroying a VM without the tag is refused" \
    bash -c '"$@" worker-destroy --worker "$0" 2>&1 | grep -q "not a worker VM"' "$vmref" "${V[@]}"
check "snapshot removed" "${V[@]}" snapshot-remove --snapshot "$snap"
[ -n "$worker" ] || nok "worker id printed"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
