#!/usr/bin/env bash
# The main job, shown end to end on one machine (what `make demo` runs):
#
#   a private RabbitMQ and the vCenter simulator (one VM whose disk holds
#   64 MiB of seeded data) on free loopback ports, two snapworker daemons,
#   a CreateSnapshot published with `snapctl submit --wait`, the files it left
#   on the share (OVF + VMDK + .ova.meta, no .ova), then an ExtractTemplate of
#   that snapshot producing the downloadable .ova.  Everything runs in a
#   temporary directory and everything started here is stopped by PID at the
#   end, also on Ctrl-C or failure.
#
# usage: scripts/demo.sh [--build DIR] [--keep]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "demo.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
case "$build" in /*) ;; *) build=$here/$build ;; esac
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
OVASTORE=$build/bin/ovastore
export VCSIM_BIN=${VCSIM_BIN:-$build/bin/snapworker-vcsim}
for b in "$SW" "$CTL" "$OVASTORE" "$VCSIM_BIN"; do
	[ -x "$b" ] || { echo "demo.sh: $b is not built (make all rig)" >&2; exit 2; }
done

T=$(mktemp -d /tmp/snapworker-demo.XXXXXX)
wpids=()
t_start=$(date +%s)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
explain() { printf '   %s\n' "$@"; }
pretty() { if command -v python3 >/dev/null; then python3 -m json.tool; else cat; fi; }

stop_all() {
	local p
	trap - EXIT INT TERM
	say "Stopping everything this demo started"
	for p in "${wpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${wpids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	"$here/tests/rig/vcsim.sh" stop "$T/vc" >/dev/null 2>&1
	"$here/tests/rig/rabbitmq.sh" stop "$T/mq" >/dev/null 2>&1
	if [ $keep = 1 ]; then
		echo "   kept $T"
	else
		rm -rf "$T"
	fi
	echo "   done in $(( $(date +%s) - t_start )) s"
}
trap stop_all EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

fail() {
	echo "demo.sh: $*" >&2
	for f in "$T"/w*.log; do [ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
	exit 1
}

say "1. Start the peers: a private RabbitMQ broker and the vCenter simulator"
explain "Both listen on free ports of 127.0.0.1 only, with their state in $T."
"$here/tests/rig/rabbitmq.sh" start "$T/mq" >"$T/mq.log" 2>&1 &
mq_start=$!
"$here/tests/rig/vcsim.sh" start "$T/vc" -seed-mib 64 >"$T/vc.start" 2>&1 ||
    { cat "$T/vc.start"; fail "the simulator did not start"; }
# shellcheck disable=SC1091
. "$T/vc/vcsim.env"
explain "vCenter simulator: $VCSIM_URL (VM $VCSIM_VM, a 64 MiB disk, sha256 ${VCSIM_SEED_SHA256_0:0:16}...)"
wait $mq_start || { cat "$T/mq.log"; fail "the broker did not start"; }
# shellcheck disable=SC1091
. "$T/mq/rabbitmq.env"
explain "RabbitMQ: $AMQP_URL"

say "2. Configure and start two snapworker daemons"
mkdir -p "$T/share" "$T/extract"
printf 'demo-password\n' >"$T/vc.secret"
chmod 600 "$T/vc.secret"
cat >"$T/snapworker.conf" <<EOF
[worker]
jobs = 1
queues = default
[amqp]
url = $AMQP_URL
password_file = $AMQP_PASSWORD_FILE
[store]
nfs://10.0.0.5/export/secondary = $T/share
extract_dir = $T/extract
[vcenter vc1]
url = $VCSIM_URL
user = administrator@vsphere.local
password_file = $T/vc.secret
thumbprint = $VCSIM_THUMBPRINT
EOF
explain "The configuration maps the store URL nfs://10.0.0.5/export/secondary to $T/share" \
    "and binds credential set vc1 to the simulator's URL, pinned by its certificate's SHA-256."
for n in 1 2; do
	SNAPWORKER_WORKER_NAME=demo-worker-$n "$SW" -v run -c "$T/snapworker.conf" 2>"$T/w$n.log" &
	wpids+=($!)
done
for _ in $(seq 100); do
	[ "$("$CTL" -c "$T/snapworker.conf" status 2>/dev/null |
	    awk '$1=="snapworker.commands.default"{print $3}')" = 2 ] && break
	sleep 0.1
done
"$CTL" -c "$T/snapworker.conf" status 2>/dev/null | sed 's/^/   /'
explain "(queue, ready messages, consumers): two workers share one quorum queue; prefetch 1 each."

say "3. Publish a CreateSnapshot and wait for its completion event"
id=$(cat /proc/sys/kernel/random/uuid)
cat >"$T/create-snapshot.json" <<EOF
{"version":1,"id":"$id","type":"CreateSnapshot",
 "vcenter":{"url":"$VCSIM_URL","credentials":"vc1"},
 "store":{"url":"nfs://10.0.0.5/export/secondary"},
 "args":{"vm":{"uuid":"$VCSIM_VM_UUID"},"disk":"[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk",
         "account_id":2,"volume_id":13}}
EOF
pretty <"$T/create-snapshot.json" | sed 's/^/   /'
t0=$(date +%s%N)
"$CTL" -c "$T/snapworker.conf" submit --wait --timeout 120 "$T/create-snapshot.json" \
    >"$T/snapshot.events" 2>"$T/snapctl.err" || { cat "$T/snapshot.events" "$T/snapctl.err"; fail "CreateSnapshot failed"; }
t1=$(date +%s%N)
explain "$(grep -c '"status":"progress"' "$T/snapshot.events") progress event(s), then the final one ($(( (t1 - t0) / 1000000 )) ms):"
grep '"status":"succeeded"' "$T/snapshot.events" | pretty | sed 's/^/   /'
explain "The worker took a VM snapshot, made a worker VM (named after the command id) on the" \
    "snapshot's disk, exported it over NFC straight into the share computing sha256 on the way," \
    "wrote the OVF from CreateDescriptor and committed the .ova.meta last; then it destroyed the" \
    "worker VM (disk detached first) and removed the VM snapshot."
for n in 1 2; do grep -q "$id" "$T/w$n.log" && explain "It ran on demo-worker-$n."; done

say "4. The share: OVF + VMDK + .ova.meta, and no .ova"
dir=snapshots/2/13/$id
(cd "$T/share" && ls -l "$dir") | sed 's/^/   /'
explain "" "$dir/$id.ova.meta:"
sed 's/^/     /' "$T/share/$dir/$id.ova.meta"
disk_sha=$(sha256sum <"$T/share/$dir/$id-disk0.vmdk" | cut -d' ' -f1)
if [ "$disk_sha" = "$VCSIM_SEED_SHA256_0" ]; then
	explain "The disk on the share has exactly the VM disk's bytes (sha256 matches the seed)."
else
	fail "disk sha256 $disk_sha is not the seed's $VCSIM_SEED_SHA256_0"
fi
explain "" "ovastore inspect / verify (independent checks of the object):"
"$OVASTORE" -C "$T/share" inspect "$dir/$id" | sed 's/^/     /'
"$OVASTORE" -C "$T/share" verify "$dir/$id" | sed 's/^/     /' || fail "verify failed"
state=$(curl -sk "${VCSIM_URL%/sdk}/rig/state")
explain "Simulator afterwards: $(grep -Ec '"snapshot_count": *[1-9]' <<<"$state") VM(s) with a snapshot," \
    "$(grep -Ec "\"name\": *\"$id\"" <<<"$state") worker VM, $(grep -Ec '"state": *"(initializing|ready)"' <<<"$state") open NFC lease."

say "5. A downloadable .ova of the snapshot: ExtractTemplate"
xid=$(cat /proc/sys/kernel/random/uuid)
printf '{"version":1,"id":"%s","type":"ExtractTemplate","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"path":"%s/%s"}}\n' \
    "$xid" "$dir" "$id" >"$T/extract.json"
"$CTL" -c "$T/snapworker.conf" submit --wait --timeout 60 "$T/extract.json" >"$T/extract.events" \
    2>>"$T/snapctl.err" || { cat "$T/extract.events"; fail "ExtractTemplate failed"; }
grep '"status":"succeeded"' "$T/extract.events" | pretty | sed 's/^/   /'
ova=$(grep -o '"download":{"path":"[^"]*"' "$T/extract.events" | sed 's/.*"path":"//; s/"$//')
explain "Only now, on request, is an .ova generated (from the meta: OVF first, then the disks):"
ls -l "$T/extract/$ova" | sed 's/^/   /'
tar -tvf "$T/extract/$ova" | sed 's/^/   /'
explain "GNU tar reads it: this is the file a user downloads, and the only time the data is" \
    "written a second time. The legacy path packed every snapshot into an .ova at once."

say "Summary"
explain "CreateSnapshot through the broker: $(( (t1 - t0) / 1000000 )) ms for a 64 MiB disk," \
    "bytes on the share per disk byte: $(awk -v a="$(du -sb "$T/share/$dir" | cut -f1)" -v b="$VCSIM_SEED_BYTES" 'BEGIN{printf "%.4f", a/b}') (the legacy path wrote 2.0: export, then tar)."
