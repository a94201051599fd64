# shellcheck shell=bash
# Shared by tests/integration/test_e2e_*.sh (sourced; not executable, so the
# runner does not run it): a simulator of the test's own (its flags), the
# runner's broker (or one of our own when run alone), per-run broker object
# names, workers, command builders, checks on the share and on /rig/state.
# Everything started here is stopped by PID in e2e_cleanup.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
CTL=$build/bin/snapctl
OVASTORE=$build/bin/ovastore
VMWCTL=$build/bin/vmwctl
rigbin=${VCSIM_BIN:-$build/bin/snapworker-vcsim}
pass=0
fail=0
wpids=()
tmp=$(mktemp -d /tmp/swe2e.XXXXXX)
own_broker=""
STORE_URL=nfs://10.0.0.5/export/secondary
STORE=$tmp/store
mkdir -p "$STORE"

ok() { echo "ok   - $*"; pass=$((pass + 1)); }
nok() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }
e2e_done() { echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; }

e2e_cleanup() {
	local p
	for p in "${wpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${wpids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	"$here/tests/rig/vcsim.sh" stop "$tmp/vc" >/dev/null 2>&1
	[ -n "$own_broker" ] && "$here/tests/rig/rabbitmq.sh" stop "$own_broker" >/dev/null 2>&1
	[ -n "${E2E_KEEP:-}" ] && { echo "kept $tmp"; return; }
	# A test may have mounted a tmpfs under tmp.
	grep -q " $tmp/" /proc/mounts && awk -v t="$tmp/" 'index($2, t) == 1 {print $2}' /proc/mounts |
	    while read -r m; do umount "$m" 2>/dev/null; done
	rm -rf "$tmp"
}
trap e2e_cleanup EXIT

uuid() { cat /proc/sys/kernel/random/uuid; }

# shellcheck source=tests/integration/wait_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/wait_lib.sh"

# e2e_start_vcsim [flags]: our own simulator (a test's flags and injected faults touch nobody else).
e2e_start_vcsim() {
	if [ ! -x "$rigbin" ]; then
		echo "SKIP: simulator $rigbin not built (make rig)"
		echo "0 passed, 0 failed"
		exit 0
	fi
	if ! "$here/tests/rig/vcsim.sh" start "$tmp/vc" "$@" >"$tmp/vcsim.start" 2>&1; then
		cat "$tmp/vcsim.start"
		echo "0 passed, 1 failed"
		exit 1
	fi
	# shellcheck disable=SC1091
	. "$tmp/vc/vcsim.env"
	VC_BASE=${VCSIM_URL%/sdk}
	printf 'vc-password\n' >"$tmp/vc.secret"
	chmod 600 "$tmp/vc.secret"
}

# e2e_broker: the runner's broker, else one of our own.
e2e_broker() {
	if [ -n "${SW_RABBITMQ_ENV:-}" ] && [ -f "$SW_RABBITMQ_ENV" ]; then
		# shellcheck disable=SC1090
		. "$SW_RABBITMQ_ENV"
	else
		own_broker=$tmp/mq
		if ! "$here/tests/rig/rabbitmq.sh" start "$own_broker" >"$tmp/mq.start" 2>&1; then
			cat "$tmp/mq.start"
			echo "0 passed, 1 failed"
			exit 1
		fi
		# shellcheck disable=SC1091
		. "$own_broker/rabbitmq.env"
	fi
	PW_FILE=$AMQP_PASSWORD_FILE
	prefix="e2e$$"
}

# e2e_conf FILE [JOBS] [STORE_DIR]: a worker configuration for this run.
e2e_conf() {
	cat >"$1" <<CONF
[worker]
jobs = ${2:-1}
grace = 30
queues = default
[amqp]
url = ${AMQP_URL:-amqp://snapworker@127.0.0.1:1/%2f}
password_file = ${PW_FILE:-$tmp/vc.secret}
heartbeat = 5
exchange = ${prefix:-e2e}.commands
events_exchange = ${prefix:-e2e}.events
dead_letter_exchange = ${prefix:-e2e}.dlx
dead_letter_queue = ${prefix:-e2e}.dead
[store]
$STORE_URL = ${3:-$STORE}
extract_dir = $tmp/extract
[vcenter vc1]
url = $VCSIM_URL
user = snap
password_file = $tmp/vc.secret
thumbprint = $VCSIM_THUMBPRINT
CONF
}

# e2e_worker CONF NAME: starts a daemon; its PID in $wpid.
e2e_worker() {
	SNAPWORKER_WORKER_NAME=$2 "$SW" run -c "$1" 2>"$tmp/$2.log" &
	wpid=$!
	wpids+=("$wpid")
}

queue_line() { "$CTL" -c "$1" --password-file "$PW_FILE" status 2>/dev/null | grep "^$2 "; }
# e2e_wait_consumers CONF N
e2e_wait_consumers() {
	local i
	for i in $(seq 150); do
		[ "$(queue_line "$1" "$prefix.commands.default" | awk '{print $3}')" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# submit CONF JSONFILE OUT [TIMEOUT]: publishes and waits for the final event.
# The command goes out as it is (--no-validate): these tests are about what the
# worker answers, invalid commands included (snapctl's own check is tested in
# test_worker_broker.sh).
submit() {
	"$CTL" -c "$1" --password-file "$PW_FILE" submit --no-validate --wait --timeout "${4:-120}" \
	    "$2" >"$3" 2>"$3.err"
}

# The final event line of an output file.
final() { grep -E '"status":"(succeeded|failed)"' "$1" | tail -1; }
# jq-like: py FILE EXPR -> prints eval of EXPR over the final event e.
evpy() { final "$1" | python3 -c "import json,sys; e=json.load(sys.stdin); print($2)"; }
evtrue() { final "$1" | python3 -c "import json,sys; e=json.load(sys.stdin); sys.exit(0 if ($2) else 1)"; }

state() { curl -sk -m 20 "$VC_BASE/rig/state"; }
rigpy() { state | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }
inject() { curl -sk -m 20 -X POST "$VC_BASE/rig/inject?$1" >/dev/null; }
# No worker VM (name = a command id, or tagged), no VM snapshot, no open lease.
rig_clean() {
	rigpy "all(v['snapshot_count']==0 for v in d['vms']) and not [v for v in d['vms'] if v['name'].count('-')==4 or 'snapworker.command' in (v.get('extra_config') or {})] and not [l for l in (d.get('leases') or []) if l.get('state') in ('initializing','ready')]"
}
# The seeded disk files of the VM are still there (nothing deleted the volume).
volumes_intact() { [ -s "$VCSIM_DATASTORE_DIR/$VCSIM_VM/disk1.vmdk" ]; }
# No .part file (uncommitted debris) anywhere on the share.
no_debris() { [ -z "$(find "$STORE" -name '*.part' 2>/dev/null)" ]; }

# Command builders: cmd_snapshot ID DISK [ACCOUNT VOLUME]
vc_json() { printf '"vcenter":{"url":"%s","credentials":"vc1"},"store":{"url":"%s"}' "$VCSIM_URL" "$STORE_URL"; }
cmd_snapshot() {
	printf '{"version":1,"id":"%s","type":"CreateSnapshot",%s,"args":{"vm":{"uuid":"%s"},"disk":"%s","account_id":%s,"volume_id":%s}}' \
	    "$1" "$(vc_json)" "$VCSIM_VM_UUID" "$2" "${3:-2}" "${4:-13}"
}
cmd_extract_volume() {
	printf '{"version":1,"id":"%s","type":"ExtractVolume",%s,"args":{"vm":{"name":"%s"},"disk":"%s","account_id":%s,"volume_id":%s}}' \
	    "$1" "$(vc_json)" "$VCSIM_VM" "$2" "${3:-2}" "${4:-13}"
}
cmd_template_snap() { # ID SNAPSHOT_PATH TEMPLATE_ID
	printf '{"version":1,"id":"%s","type":"CreateTemplate","store":{"url":"%s"},"args":{"account_id":2,"template_id":%s,"snapshot_path":"%s"}}' \
	    "$1" "$STORE_URL" "$3" "$2"
}
cmd_template_vm() { # ID DISK TEMPLATE_ID
	printf '{"version":1,"id":"%s","type":"CreateTemplate",%s,"args":{"account_id":2,"template_id":%s,"vm":{"name":"%s"},"disk":"%s"}}' \
	    "$1" "$(vc_json)" "$3" "$VCSIM_VM" "$2"
}
cmd_volume() { # ID SOURCE NAME
	printf '{"version":1,"id":"%s","type":"CreateVolume",%s,"args":{"source_path":"%s","datastore":"%s","name":"%s"}}' \
	    "$1" "$(vc_json)" "$2" "$VCSIM_DATASTORE" "$3"
}
cmd_path() { # ID TYPE PATH
	printf '{"version":1,"id":"%s","type":"%s","store":{"url":"%s"},"args":{"path":"%s"}}' \
	    "$1" "$2" "$STORE_URL" "$3"
}
