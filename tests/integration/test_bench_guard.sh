#!/usr/bin/env bash
# bench/guard.sh, the regression guard of `make bench`, on rows made up for
# the purpose: each kind of goal it parses (a ratio "<= 1.10x", a lower bound
# ">= 2x", a figure with a unit "<= 32 MiB", one without "<= 1.001 (...)",
# "< 60 s", the sign ≤), 20% of slack on both sides, the median (first number)
# of "1.05x (1.02-1.11)", a figure in other units left alone, bytes before a
# time ("<= 1 MiB allocated" of "0.02 MiB allocated (...); 0.04 s": bench_copy's
# reflink row), goals it does not check ("report ...", "0 lost"), a row with
# no figure, and bench/run.sh exiting with the guard's verdict.  Needs no broker or vCenter.
# Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
guard=$here/bench/guard.sh
tmp=$(mktemp -d /tmp/benchguard.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# verdict NAME WANT ROW: the guard's exit status on the single ROW is WANT (0 or 1).
verdict() {
	local name=$1 want=$2 rc
	printf '%s\n' "| benchmark | figure | baseline (same run) | ratio | goal |" "|---|---|---|---|---|" "$3" >"$tmp/rows.md"
	"$guard" "$tmp/rows.md" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" = "$want" ]; then ok "$name"; else bad "$name (exit $rc, want $want: $(cat "$tmp/out" "$tmp/err"))"; fi
}

verdict "ratio at its goal" 0 "| a | 3.10 s | 2.9 s | 1.10x (1.02-1.15) | <= 1.10x |"
verdict "ratio 19% over its goal" 0 "| a | 3.10 s | 2.9 s | 1.31x | <= 1.10x |"
verdict "ratio 21% over its goal" 1 "| a | 3.10 s | 2.9 s | 1.34x | <= 1.10x |"
verdict "the median counts, not the spread" 0 "| a | 3 s | 2 s | 1.05x (1.02-1.90) | <= 1.10x |"
verdict "the median counts, not the spread (over)" 1 "| a | 3 s | 2 s | 1.90x (1.02-1.95) | <= 1.10x |"
verdict "lower bound within 20%" 0 "| a | 700 cmd/s | 400 cmd/s | 1.70x | >= 2x |"
verdict "lower bound more than 20% under" 1 "| a | 700 cmd/s | 400 cmd/s | 1.50x | >= 2x |"
verdict "figure with a unit" 0 "| rss | 16.9 MiB | disk | 0.0165x | <= 32 MiB |"
verdict "figure with a unit, over" 1 "| rss | 40.1 MiB | disk | 0.0391x | <= 32 MiB |"
verdict "figure in other units is not compared" 0 "| rss | 1.2 GiB | disk | 1.17x | <= 32 MiB |"
verdict "figure without a unit" 0 "| bytes | 1.0000 | legacy | 0.50x | <= 1.001 (legacy 2.0) |"
verdict "figure without a unit, over" 1 "| bytes | 2.0000 | legacy | 1.00x | <= 1.001 (legacy 2.0) |"
verdict "unitless goal of a figure in seconds holds the ratio" 0 "| reg | 12.3 s (83 MiB/s) | curl -o 11 s | 1.12 | ≤ 1.15 |"
verdict "unitless goal of a figure in seconds holds the ratio, over" 1 "| reg | 12.3 s | curl -o 8 s | 1.54 | <= 1.10 (cat does no fsync) |"
verdict "a unit after the spread" 1 "| rate | 138 (99-291) cmd/s | broker 30% | | >= 800 cmd/s |"
verdict "a unit after the spread, met" 0 "| rate | 700 (650-900) cmd/s; broker 80% | | | >= 800 cmd/s |"
verdict "unitless goal, figure with a spread and a unit" 1 "| reg | 3.36 (2.76-4.61) s | 2 s | 1.60x | <= 1.10 |"
verdict "bytes allocated before a time (bench_copy's reflink row)" 0 \
    "| copy (xfs) | 0.02 MiB allocated (0.00-0.02); 0.04 s (0.04-0.09) | cp: 0.00 MiB allocated; 0.02 s | 2.11x (1.19-4.89) | <= 1 MiB allocated (~0 bytes copied) |"
verdict "bytes allocated before a time, a byte copy" 1 \
    "| copy (xfs) | 1024.00 MiB allocated (1024.00-1024.00); 3.10 s (3.0-3.2) | cp: 0.00 MiB allocated; 0.02 s | 155x | <= 1 MiB allocated (~0 bytes copied) |"
verdict "strict bound in seconds" 1 "| fault | 75.0 s | 1 s | 75x | < 60 s |"
verdict "the sign ≤" 1 "| a | 2 s | 1 s | 1.5 | ≤ 1.15 |"
verdict "the sign ≥ on a rate" 1 "| rate | 500 cmd/s | | | ≥ 800 cmd/s |"
verdict "no figure for a checked goal" 1 "| a | n/a (see log) | | | <= 1.10x |"
verdict "report goals are not checked" 0 "| a | 9 s | 1 s | 9.00x | report (2 CPUs, shared) |"
verdict "0 lost is not checked" 0 "| soak | 3 lost | 300 | 3/300 | 0 lost |"
verdict "an empty goal is not checked" 0 "| x | FAILED to run | | | |"
BENCH_GUARD_SLACK=0.5 verdict "the slack is configurable" 0 "| a | 3 s | 2 s | 1.60x | <= 1.10x |"

# The guard names every row beyond its goal, and only those.
printf '%s\n' "| a | 1 s | 1 s | 1.00x | <= 1.10x |" "| b | 2 s | 1 s | 2.00x | <= 1.10x |" \
    "| c | 1 s | | 0.20x | >= 2x |" >"$tmp/rows.md"
"$guard" "$tmp/rows.md" >"$tmp/out" 2>"$tmp/err"
if [ "$(grep -c '^guard: ' "$tmp/out")" = 2 ] && grep -q '^guard: b: ' "$tmp/out" && grep -q '^guard: c: ' "$tmp/out" &&
    grep -q '3 goal(s) checked, 2 beyond' "$tmp/err"; then
	ok "every row beyond its goal is named"
else
	bad "every row beyond its goal is named: $(cat "$tmp/out" "$tmp/err")"
fi

# bench/run.sh exits with the guard's verdict (a copy of the tree's bench/ with stand-in benchmarks).
mkdir -p "$tmp/tree/bench" "$tmp/tree/build"
cp "$here/bench/run.sh" "$here/bench/guard.sh" "$tmp/tree/bench/"
printf '#!/bin/sh\necho "| fast | 1 s | 1 s | 1.00x | <= 1.10x |"\n' >"$tmp/tree/bench/bench_fast.sh"
printf '#!/bin/sh\necho "| slow | 2 s | 1 s | 2.00x | <= 1.10x |"\n' >"$tmp/tree/bench/bench_slow.sh"
printf '#!/bin/sh\nexit 3\n' >"$tmp/tree/bench/bench_broken.sh"
chmod +x "$tmp/tree/bench/"*.sh
if "$tmp/tree/bench/run.sh" --build "$tmp/tree/build" fast >"$tmp/out" 2>&1; then ok "run.sh: 0 when every goal is met"; else bad "run.sh fast: $(cat "$tmp/out")"; fi
if ! "$tmp/tree/bench/run.sh" --build "$tmp/tree/build" fast slow >"$tmp/out" 2>&1 && grep -q '^| slow | 2 s' "$tmp/out"; then
	ok "run.sh: 1 when a goal is missed by more than 20%, with the table printed"
else
	bad "run.sh fast slow: $(cat "$tmp/out")"
fi
if ! "$tmp/tree/bench/run.sh" --build "$tmp/tree/build" fast broken >"$tmp/out" 2>&1 && grep -q 'broken | FAILED to run' "$tmp/out"; then
	ok "run.sh: 1 when a benchmark failed to run"
else
	bad "run.sh fast broken: $(cat "$tmp/out")"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
