# shellcheck shell=bash
# Sourced by test_e2e_lib.sh and worker_lib.sh (not executable, so the runner
# does not run it).
#
# wait_exit SECS PID: waits for the child PID at most SECS seconds, then kills
# it (SIGKILL), so a process that hangs fails its check instead of holding the
# suite until the runner's timeout; returns the child's exit status.
wait_exit() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$2" 2>/dev/null; then
		echo "  !! pid $2 still running after $1 s: killed"
		kill -KILL "$2" 2>/dev/null
	fi
	wait "$2"
}
