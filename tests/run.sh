#!/usr/bin/env bash
# Runs snapworker's test suites and prints one summary line:
#   total: N passed, M failed, K skipped
# usage: tests/run.sh [--build DIR] [--valgrind] [--filter SUBSTR] unit|integration|all
#
# Unit tests are the cmocka programs build/tests/unit/test_*; each runs in its
# own process with a timeout.  Integration tests are tests/integration/test_*.sh
# scripts and build/tests/integration/test_* programs; this script starts the
# peers they need (a private RabbitMQ node and the vCenter simulator) once, on
# free loopback ports in a temporary directory, exports their env files
# (SW_RABBITMQ_ENV, SW_VCSIM_ENV), and stops them by PID when it ends.
# Every test prints cmocka's summary or a line "N passed, N failed".
#
# Tools: the tests run with PATH set to a directory of symlinks to the commands
# listed in scripts/tools.list, then build/bin, so a test that calls a command
# missing from that list (and so possibly from scripts/deps.sh) fails here as
# on a fresh machine.  The peers (RabbitMQ's own scripts, started by absolute
# path in tests/rig/rabbitmq.sh) get the caller's PATH as SW_PEER_PATH.
#
# Skips: a test reports a skipped check with a line "SKIP: REASON" (cmocka's
# "[  SKIPPED ] N test(s)" counts too).  Skips are counted and printed; a skip fails the
# run unless it is allowed.  Allowed reasons: a missing optional tool,
#   SKIP: optional tool NAME not installed
# where NAME is marked "optional" in scripts/tools.list and is indeed missing; and a
# machine where no Docker engine can start (test_ops_compose's engine part),
#   SKIP: no Docker engine can start here: dockerd needs root     (when not root)
#   SKIP: no Docker engine can start here: dockerd did not answer (its log above)
# and a machine where no XFS image can be loop-mounted (test_copy_reflink), each
# allowed only when it is so:
#   SKIP: no XFS loop file system here: needs root               (when not root)
#   SKIP: no XFS loop file system here: no /dev/loop-control     (when there is none)
#
# Each test program or script has TEST_TIMEOUT seconds (default 600); a script
# that needs longer says so in its first 40 lines, "# test-timeout: SECONDS"
# (the larger of the two applies).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 2
build=build
valgrind=0
filter=""
suite=all
while [ $# -gt 0 ]; do
	case "$1" in
	--build) build=$2; shift 2 ;;
	--valgrind) valgrind=1; shift ;;
	--filter) filter=$2; shift 2 ;;
	unit|integration|all) suite=$1; shift ;;
	-h|--help) sed -n '2,/^set -u$/{/^set -u$/d;p}' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
case "$build" in /*) ;; *) build="$here/$build" ;; esac

TEST_TIMEOUT=${TEST_TIMEOUT:-600}
passed=0
failed=0
skipped=0
failed_names=()
durations=()
logdir=$(mktemp -d /tmp/swtest.XXXXXX)
peers_dir=""

# The restricted PATH of the tests (see the top of this file).
export SW_PEER_PATH=$PATH
if ! scripts/tools.sh bindir "$logdir/tools"; then
	echo "run.sh: a command the tests need is missing: run scripts/deps.sh" >&2
	rm -rf "$logdir"
	exit 2
fi
test_path="$logdir/tools:$build/bin"
optional_tools=" $(scripts/tools.sh optional | tr '\n' ' ') "

# skip_allowed REASON: a skip allowed (see the header).
skip_allowed() {
	local t
	[ "$1" = "no Docker engine can start here: dockerd needs root" ] && [ "$(id -u)" != 0 ] && return 0
	[[ "$1" == "no Docker engine can start here: dockerd did not answer"* ]] && return 0
	[ "$1" = "no XFS loop file system here: needs root" ] && [ "$(id -u)" != 0 ] && return 0
	[ "$1" = "no XFS loop file system here: no /dev/loop-control" ] && [ ! -e /dev/loop-control ] && return 0
	[[ "$1" =~ ^optional\ tool\ ([A-Za-z0-9._+-]+)\ not\ installed$ ]] || return 1
	t=${BASH_REMATCH[1]}
	[[ "$optional_tools" == *" $t "* ]] && [ ! -e "$logdir/tools/$t" ]
}

# run_one NAME CMD...: runs a test with a timeout and adds up what it printed.
run_one() {
	local name=$1; shift
	local log="$logdir/$name.log" rc p f s line reason t0=$SECONDS
	local limit=$TEST_TIMEOUT own
	echo "=== $name"
	if [[ "$1" == *.sh ]]; then
		own=$(sed -n '1,40s/^# test-timeout: \([0-9][0-9]*\)$/\1/p' "$1" | head -n 1)
		[ -n "$own" ] && [ "$own" -gt "$limit" ] && limit=$own
	fi
	PATH=$test_path timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	cat "$log"
	durations+=("$((SECONDS - t0)) $name")
	[ $rc -eq 124 ] && echo "  !! $name timed out after ${limit}s"
	p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | tail -1 | sed -E 's/.*\] ([0-9]+) test.*/\1/')
	f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | tail -1 | sed -E 's/.*\] ([0-9]+) test.*/\1/')
	if [ -z "$p$f" ]; then
		line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
		if [ -n "$line" ]; then
			p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/')
			f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
		fi
	fi
	p=${p:-0}
	f=${f:-0}
	s=$(grep -E '^\[  SKIPPED \] [0-9]+ test' "$log" | tail -1 | sed -E 's/.*\] ([0-9]+) test.*/\1/')
	s=${s:-0}
	if [ "$s" -gt 0 ]; then
		echo "  !! $name: $s cmocka test(s) skipped: not an allowed skip"
		f=$((f + s))
	fi
	while IFS= read -r line; do
		reason=${line#SKIP: }
		s=$((s + 1))
		if skip_allowed "$reason"; then
			echo "  -- $name: allowed skip: $reason"
		else
			echo "  !! $name: skip not allowed: $reason"
			f=$((f + 1))
		fi
	done < <(grep -E '^SKIP: ' "$log")
	skipped=$((skipped + s))
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		# A crash, a timeout or a sanitizer/valgrind report after the last test.
		echo "  !! $name exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -gt 0 ] && failed_names+=("$name")
	return 0
}

run_unit() {
	local t name found=0
	local vg=()
	[ $valgrind = 1 ] && vg=(valgrind -q --error-exitcode=99 --leak-check=full
	    --errors-for-leak-kinds=definite --show-leak-kinds=definite)
	for t in "$build"/tests/unit/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=$(basename "$t")
		[ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
		found=1
		run_one "$name" "${vg[@]}" "$t"
	done
	[ $found = 1 ] || { echo "  !! no unit tests found in $build/tests/unit"; failed=$((failed + 1)); }
}

stop_peers() {
	[ -n "$peers_dir" ] || return 0
	[ -f "$peers_dir/vcsim/vcsim.pid" ] && tests/rig/vcsim.sh stop "$peers_dir/vcsim" >/dev/null 2>&1
	[ -f "$peers_dir/rabbitmq/rabbitmq.env" ] && tests/rig/rabbitmq.sh stop "$peers_dir/rabbitmq" >/dev/null 2>&1
	rm -rf "$peers_dir"
	peers_dir=""
}

start_peers() {
	peers_dir=$(mktemp -d /tmp/swpeers.XXXXXX)
	mkdir -p "$peers_dir/rabbitmq" "$peers_dir/vcsim"
	echo "--- starting RabbitMQ and the vCenter simulator on loopback ($peers_dir)"
	if ! tests/rig/rabbitmq.sh start "$peers_dir/rabbitmq" >"$peers_dir/rabbitmq.log" 2>&1; then
		cat "$peers_dir/rabbitmq.log"
		return 1
	fi
	if ! tests/rig/vcsim.sh start "$peers_dir/vcsim" >"$peers_dir/vcsim.log" 2>&1; then
		cat "$peers_dir/vcsim.log"
		return 1
	fi
	export SW_RABBITMQ_ENV="$peers_dir/rabbitmq/rabbitmq.env"
	export SW_VCSIM_ENV="$peers_dir/vcsim/vcsim.env"
	export SW_BUILD="$build" SW_SRCDIR="$here"
	return 0
}

run_integration() {
	local t name tests=()
	for t in tests/integration/test_*.sh "$build"/tests/integration/test_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=$(basename "$t")
		[ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
		tests+=("$t")
	done
	if [ ${#tests[@]} -eq 0 ]; then
		echo "--- no integration tests"
		return 0
	fi
	if ! start_peers; then
		echo "  !! could not start the test peers"
		failed=$((failed + 1))
		failed_names+=("start-peers")
		stop_peers
		return 0
	fi
	for t in "${tests[@]}"; do
		run_one "$(basename "$t")" "$t"
	done
	stop_peers
}

trap 'stop_peers; rm -rf "$logdir"' EXIT
trap 'exit 130' INT TERM

case $suite in
unit) run_unit ;;
integration) run_integration ;;
all) run_unit; run_integration ;;
esac

echo
# The slowest programs, for the CI time budget.
if [ ${#durations[@]} -gt 3 ]; then
	echo "slowest: $(printf '%s\n' "${durations[@]}" | sort -rn | head -8 |
	    awk '{printf "%s%s %d s", (NR > 1 ? ", " : ""), $2, $1}')"
fi
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
