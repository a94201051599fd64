#!/usr/bin/env bash
# Runs every bench/bench_*.sh and gathers what they print into one markdown
# table.  A benchmark prints result rows of the form
#     | benchmark | figure | baseline (same run) | ratio | goal |
# and may print other lines (kept in build/bench/<name>.log).  Benchmarks
# measure; they never assert.  The regression guard (bench/guard.sh) reads the
# gathered rows: this script exits 1 when a figure is more than 20% beyond its
# goal (BENCH_GUARD_SLACK), or when a benchmark failed to run, so a slower
# change is seen.  Not run in CI: the figures need a machine of their own.
# usage: bench/run.sh [--build DIR] [NAME...]
set -u
cd "$(dirname "$0")/.."
build=build
if [ "${1:-}" = "--build" ]; then build=$2; shift 2; fi
export SW_BUILD="$(cd "$build" && pwd)" SW_SRCDIR="$(pwd)"
mkdir -p "$build/bench"
rows="$build/bench/rows.md"
: >"$rows"
failed=0
for b in bench/bench_*.sh; do
	[ -x "$b" ] || continue
	name=$(basename "$b" .sh)
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "${name#bench_}"; then continue; fi
	echo "--- $name" >&2
	"$b" >"$build/bench/$name.log" 2>&1
	rc=$?
	grep -E '^\|' "$build/bench/$name.log" >>"$rows"
	if [ $rc -ne 0 ]; then
		echo "| $name | FAILED to run (exit $rc, see $build/bench/$name.log) | | | |" >>"$rows"
		failed=1
	fi
done
echo
echo "| benchmark | figure | baseline (same run) | ratio | goal |"
echo "|---|---|---|---|---|"
cat "$rows"
echo
./bench/guard.sh "$rows"
guard=$?
[ $failed = 0 ] || echo "guard: a benchmark failed to run"
[ $guard = 0 ] && [ $failed = 0 ]
