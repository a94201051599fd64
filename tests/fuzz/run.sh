#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_<name>.c with clang's libFuzzer + ASan/UBSan and
# runs it for SECONDS over its seed corpus tests/fuzz/corpus/<name>/.
# A target names the modules it needs in a comment line:
#     /* FUZZ_MODULES: ovastore common */
# The modules' objects are compiled once for all targets (build/fuzz/obj, two at
# a time), again only when their source or any header is newer.
# Prints one summary line, "fuzz: N fuzzers, S s each, C crashes" (and how many
# failed to build or have no committed corpus), and fails when any did.
# usage: tests/fuzz/run.sh [SECONDS] [NAME...]
set -u
cd "$(dirname "$0")/../.."
secs=${1:-20}
[ $# -gt 0 ] && shift
out=build/fuzz
mkdir -p "$out"
pkgs="librabbitmq json-c libcurl libxml-2.0 openssl libarchive libsystemd libmicrohttpd uuid"
cflags="-g -O1 -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs) -lpthread -lm"
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
passed=0 failed=0 crashes=0 nobuild=0 nocorpus=0 n=0

# srcs_of TARGET.c: the library sources of the modules the target names.
srcs_of() {
	local m f
	for m in $(sed -n 's/.*FUZZ_MODULES:\(.*\)\*\/.*/\1/p' "$1" | head -1); do
		for f in "$m"/*.c; do
			# Programs' main files are not part of a library.
			[ -f "$f" ] && ! grep -q '^main(' "$f" && echo "$f"
		done
	done
}
obj_of() { echo "$out/obj/${1%.c}.o"; }

targets=()
for src in tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	name=$(basename "$src" .c); name=${name#fuzz_}
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
	targets+=("$src")
done
newest_h=$(find . -path ./build -prune -o -path ./.git -prune -o -name '*.h' -printf '%T@\n' |
    sort -n | tail -1 | cut -d. -f1)
stale=()
for f in $(for src in "${targets[@]}"; do srcs_of "$src"; done | sort -u); do
	o=$(obj_of "$f")
	if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "${newest_h:-0}" -ge "$(stat -c %Y "$o")" ]; then
		stale+=("$f")
	fi
done
if [ ${#stale[@]} -gt 0 ]; then
	echo "--- compiling ${#stale[@]} module sources for the fuzzers"
	# shellcheck disable=SC2016
	printf '%s\n' "${stale[@]}" | CFLAGS="$cflags $san -fsanitize=fuzzer-no-link" OUT=$out \
	    xargs -P 2 -I{} sh -c 'o="$OUT/obj/${1%.c}.o"; mkdir -p "$(dirname "$o")" &&
	        clang $CFLAGS -c "$1" -o "$o" || { rm -f "$o"; exit 1; }' _ {}
fi

for src in "${targets[@]}"; do
	name=$(basename "$src" .c); name=${name#fuzz_}
	mods=$(sed -n 's/.*FUZZ_MODULES:\(.*\)\*\/.*/\1/p' "$src" | head -1)
	objs=""
	for f in $(srcs_of "$src"); do objs="$objs $(obj_of "$f")"; done
	echo "=== fuzz_$name ($secs s; modules:$mods)"
	n=$((n + 1))
	# shellcheck disable=SC2086
	if ! clang $cflags $san -fsanitize=fuzzer -o "$out/fuzz_$name" "$src" $objs $libs; then
		echo "  !! fuzz_$name does not build"
		nobuild=$((nobuild + 1)); failed=$((failed + 1)); continue
	fi
	corpus="tests/fuzz/corpus/$name"
	if [ ! -d "$corpus" ]; then
		echo "  !! fuzz_$name has no committed seed corpus $corpus"
		nocorpus=$((nocorpus + 1)); failed=$((failed + 1)); continue
	fi
	# New inputs go to build/fuzz; the committed corpus is only read.  The
	# outer timeout bounds a fuzzer that hangs before its time limit applies.
	mkdir -p "$out/corpus-$name"
	if timeout --kill-after=10 $((secs + 120)) "$out/fuzz_$name" -max_total_time="$secs" \
	    -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/fuzz_$name-" \
	    "$out/corpus-$name" "$corpus" 2>"$out/fuzz_$name.log"; then
		tail -1 "$out/fuzz_$name.log"
		passed=$((passed + 1))
	else
		tail -30 "$out/fuzz_$name.log"
		echo "  !! fuzz_$name found a crash, leak, timeout or OOM (artifact in $out/)"
		crashes=$((crashes + 1)); failed=$((failed + 1))
	fi
done
extra=""
[ $nobuild -eq 0 ] || extra="$extra, $nobuild failed to build"
[ $nocorpus -eq 0 ] || extra="$extra, $nocorpus without corpus"
[ $n -gt 0 ] || { extra="$extra, no fuzzer found"; failed=1; }
echo "fuzz: $n fuzzers, $secs s each, $crashes crashes$extra"
[ "$failed" -eq 0 ]
