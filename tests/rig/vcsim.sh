#!/bin/bash
# The vCenter simulator of the test rig (see tests/rig/README.md).
#
#   tests/rig/vcsim.sh start DIR [snapworker-vcsim flags]   start on a free loopback port, wait until ready
#   tests/rig/vcsim.sh stop DIR                             stop it (SIGTERM, then SIGKILL after 10 s)
#
# Leaves DIR/vcsim.env (VCSIM_* lines, shell-sourceable), DIR/vcsim.pid, DIR/vcsim.log;
# the simulator's state (datastore, certificate) is under DIR/vcsim/.
# The binary is $VCSIM_BIN, default build/bin/snapworker-vcsim of this checkout (make rig).
set -euo pipefail

die() { echo "vcsim.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 start DIR [flags] | stop DIR"
cmd=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
shift 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${VCSIM_BIN:-$ROOT/build/bin/snapworker-vcsim}

# ours tells whether pid $1 is still the simulator started for DIR (not a
# recycled pid): its command line names DIR's env file.
ours() {
	[ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "-env $DIR/vcsim.env " || return 1
	[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

start() {
	[ -x "$BIN" ] || die "$BIN not built (make rig)"
	if [ -s "$DIR/vcsim.pid" ] && ours "$(cat "$DIR/vcsim.pid")"; then
		die "$DIR: simulator already running (pid $(cat "$DIR/vcsim.pid"))"
	fi
	rm -f "$DIR/vcsim.env" "$DIR/vcsim.pid"
	setsid "$BIN" -listen 127.0.0.1:0 -dir "$DIR/vcsim" -env "$DIR/vcsim.env" "$@" \
		</dev/null >"$DIR/vcsim.out" 2>"$DIR/vcsim.log" &
	local pid=$! i
	echo "$pid" >"$DIR/vcsim.pid"
	# The env file appears (renamed into place, whole) once the listener serves.
	for i in $(seq 1 600); do
		[ -s "$DIR/vcsim.env" ] && break
		kill -0 "$pid" 2>/dev/null || { tail -20 "$DIR/vcsim.log" >&2; die "simulator exited"; }
		sleep 0.1
	done
	[ -s "$DIR/vcsim.env" ] || { stop_pid "$pid"; die "simulator not ready after 60 s"; }
	cat "$DIR/vcsim.env"
}

stop_pid() {
	local pid=$1 i
	ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do
		ours "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

stop() {
	[ -s "$DIR/vcsim.pid" ] || return 0
	stop_pid "$(cat "$DIR/vcsim.pid")"
	rm -f "$DIR/vcsim.pid"
}

case $cmd in
start) start "$@" ;;
stop) stop ;;
*) die "unknown command $cmd" ;;
esac
