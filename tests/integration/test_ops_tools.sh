#!/usr/bin/env bash
# Operations: scripts/tools.list owns every program the scripts call.
# tests/run.sh already runs the tests with a PATH of the listed tools only; this
# static scan also covers the scripts it does not run (bench, demo, CI, fuzz,
# deps), so a new `col` in any of them fails here, not on a fresh machine.
# Needs no broker.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
pass=0
fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
nok() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

# The scan asks the full PATH (the runner's, SW_PEER_PATH) whether a word is a program.
sys_path=${SW_PEER_PATH:-$PATH}
check "every program the scripts call is in scripts/tools.list" \
    env PATH="$sys_path" "$here/scripts/tools.sh" scan
check "every required listed command is installed (scripts/deps.sh)" \
    env PATH="$sys_path" "$here/scripts/tools.sh" check
# The scan must be able to fail: a script calling an unlisted program.
tmp=$(mktemp -d /tmp/swtools.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/scripts"
cp "$here/scripts/tools.sh" "$here/scripts/tools.list" "$tmp/scripts/"
printf '#!/bin/sh\ngroff -man x | col -b\n' >"$tmp/scripts/new.sh"
sed -i '/^col /d' "$tmp/scripts/tools.list"
check "a script calling an unlisted program (col) is noticed" bash -c \
    "PATH='$sys_path' '$tmp/scripts/tools.sh' scan 2>&1 | grep -q 'not in scripts/tools.list: col\$'"

# Every program answers --help and --version (exit 0, the release on one line).
build=${SW_BUILD:-$here/build}
ver=$(sed -n 's/^#define SW_VERSION *"\(.*\)"$/\1/p' "$here/common/version.h")
for prog in snapworker snapctl ovastore vmwctl; do
	check "$prog --version prints its name and release $ver" bash -c \
	    "out=\$('$build/bin/$prog' --version) && [ \"\$(echo \"\$out\" | wc -l)\" = 1 ] && echo \"\$out\" | grep -q '^$prog $ver\\b'"
	check "$prog --help exits 0 with a usage line" bash -c "'$build/bin/$prog' --help | grep -q 'usage: $prog'"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
