#!/usr/bin/env bash
# Runs every bench/bench_*.sh and gathers what they print into one markdown
# table.  A benchmark prints result rows of the form
#     | benchmark | figure | baseline (same run) | ratio | goal |
# and may print other lines (kept in build/bench/<name>.log).  Benchmarks
# measure; they never assert: a missed goal is visible in the table.
# usage: bench/run.sh [--build DIR] [NAME...]
set -u
cd "$(dirname "$0")/.."
build=build
if [ "${1:-}" = "--build" ]; then build=$2; shift 2; fi
export SW_BUILD="$(cd "$build" && pwd)" SW_SRCDIR="$(pwd)"
mkdir -p "$build/bench"
rows="$build/bench/rows.md"
: >"$rows"
for b in bench/bench_*.sh; do
	[ -x "$b" ] || continue
	name=$(basename "$b" .sh)
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "${name#bench_}"; then continue; fi
	echo "--- $name" >&2
	"$b" >"$build/bench/$name.log" 2>&1
	rc=$?
	grep -E '^\|' "$build/bench/$name.log" >>"$rows"
	[ $rc -ne 0 ] && echo "| $name | FAILED to run (exit $rc, see $build/bench/$name.log) | | | |" >>"$rows"
done
echo
echo "| benchmark | figure | baseline (same run) | ratio | goal |"
echo "|---|---|---|---|---|"
cat "$rows"
