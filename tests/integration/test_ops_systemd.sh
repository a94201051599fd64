#!/usr/bin/env bash
# Operations: the systemd units in systemd/ (systemd-analyze verify when it
# works here, the directives the daemon relies on, TimeoutStopSec above the
# sample's grace period) and the sample configuration (it loads, with its
# secret paths pointed at test files).  Needs no broker.
# Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
SW=$build/bin/snapworker
pass=0
fail=0
tmp=$(mktemp -d /tmp/swops.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok   - $*"; pass=$((pass + 1)); }
nok() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

# directive UNIT KEY: the last value of KEY= in the unit (what systemd applies).
directive() { grep -E "^$2=" "$1" | tail -1 | cut -d= -f2-; }
seconds() { case $1 in *min) echo $(( ${1%min} * 60 )) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac; }

for u in snapworker.service snapworker@.service; do
	f=$here/systemd/$u
	check "$u exists" [ -f "$f" ]
	check "$u: Type=notify, NotifyAccess=main" bash -c "[ '$(directive "$f" Type)' = notify ] && [ '$(directive "$f" NotifyAccess)' = main ]"
	check "$u: a watchdog" [ -n "$(directive "$f" WatchdogSec)" ]
	check "$u: dedicated user" [ "$(directive "$f" User)" = snapworker ]
	for kv in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes KillMode=mixed \
	    CapabilityBoundingSet= "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"; do
		check "$u: $kv" [ "$(directive "$f" "${kv%%=*}")" = "${kv#*=}" ]
	done
	check "$u: ReadWritePaths= for the store mounts" grep -q '^ReadWritePaths=.*/mnt/secondary' "$f"
	grace=$(grep -E '^grace *=' "$here/systemd/snapworker.conf" | sed -E 's/^grace *= *([0-9]+).*/\1/')
	stop=$(seconds "$(directive "$f" TimeoutStopSec)")
	# The daemon gives jobs grace seconds, then 30 s after cancelling (daemon.c CANCEL_WAIT_S).
	check "$u: TimeoutStopSec ($stop) above grace ($grace) + 30" [ "${stop:-0}" -gt $(( ${grace:-300} + 30 )) ]
	exec_start=$(directive "$f" ExecStart)
	check "$u: ExecStart runs 'snapworker run -c FILE'" bash -c "[[ '$exec_start' =~ ^/[^\ ]+/snapworker\ run\ -c\ /etc/snapworker/ ]]"
done
check "the template reads /etc/snapworker/%i.conf" \
    grep -q '^ExecStart=.* -c /etc/snapworker/%i.conf$' "$here/systemd/snapworker@.service"

# systemd-analyze verify with ExecStart pointing at the built binary.
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$tmp/units"
	for u in snapworker.service snapworker@.service; do
		sed "s#^ExecStart=[^ ]*/snapworker #ExecStart=$SW #" "$here/systemd/$u" >"$tmp/units/$u"
	done
	cp "$tmp/units/snapworker@.service" "$tmp/units/snapworker@test.service"
	(cd "$tmp/units" && systemd-analyze verify --man=no ./snapworker.service ./snapworker@test.service) \
	    >"$tmp/verify.out" 2>&1
	rc=$?
	if grep -qiE 'Failed to (initialize|connect|create)|No such file or directory.*bus|Operation not permitted' "$tmp/verify.out" && [ $rc -ne 0 ]; then
		echo "SKIP: systemd-analyze verify cannot run in this environment: $(head -1 "$tmp/verify.out")"
	else
		check "systemd-analyze verify accepts both units" [ $rc -eq 0 ]
		check "systemd-analyze verify prints no warning" [ ! -s "$tmp/verify.out" ]
		[ -s "$tmp/verify.out" ] && sed 's/^/  | /' "$tmp/verify.out"
	fi
	# A unit with a typo must fail, or the check above proves nothing.
	sed 's/^Type=notify/Type=notifyy/' "$tmp/units/snapworker.service" >"$tmp/units/bad.service"
	(cd "$tmp/units" && systemd-analyze verify --man=no ./bad.service) >"$tmp/bad.out" 2>&1
	check "systemd-analyze verify notices a bad directive" grep -q 'notifyy' "$tmp/bad.out"
else
	# An allowed skip (tests/run.sh): systemd is optional in scripts/tools.list.
	echo "SKIP: optional tool systemd-analyze not installed"
fi

# The sample configuration loads (paths pointed at test files), every key known to the parser.
printf 'secret\n' >"$tmp/s"
chmod 600 "$tmp/s"
mkdir -p "$tmp/store"
# The broker URL goes to a closed loopback port: tests send nothing off this host (not even DNS).
sed -e "s#/etc/snapworker/[a-z0-9]*\.secret#$tmp/s#" -e "s#= /mnt/secondary/1#= $tmp/store#" \
    -e "s#^url = amqp://.*#url = amqp://snapworker@127.0.0.1:1/%2f#" \
    "$here/systemd/snapworker.conf" >"$tmp/c.conf"
"$SW" check -c "$tmp/c.conf" >"$tmp/check.out" 2>&1
check "the sample snapworker.conf loads" grep -q "^config $tmp/c.conf: ok" "$tmp/check.out"
check "its store mount is checked writable" grep -q "mount $tmp/store: ok" "$tmp/check.out"
check "it enables the metrics endpoint on loopback" grep -qE '^listen = 127\.0\.0\.1:[0-9]+' "$here/systemd/snapworker.conf"
check "the sysusers entry creates the unit's user" grep -qE '^u snapworker ' "$here/systemd/snapworker.sysusers"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
