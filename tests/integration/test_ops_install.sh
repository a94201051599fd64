#!/usr/bin/env bash
# Operations: `make install` with DESTDIR and PREFIX (programs, man pages,
# systemd units pointed at PREFIX, sysusers entry, sample configuration,
# nothing outside DESTDIR), the man pages (groff without warnings) and their
# agreement with each program's --help (every option and command the help
# names is in the page).  Needs no broker.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${SW_BUILD:-$here/build}
pass=0
fail=0
tmp=$(mktemp -d /tmp/swinst.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok   - $*"; pass=$((pass + 1)); }
nok() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

prefix=/opt/snapworker-test-$$
dest=$tmp/root
make -C "$here" -s install BUILD="$build" DESTDIR="$dest" PREFIX="$prefix" >"$tmp/install.out" 2>&1
check "make install DESTDIR=... PREFIX=... succeeds" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/install.out"
root=$dest$prefix
for b in snapworker snapctl ovastore vmwctl; do
	check "bin/$b installed, executable" [ -x "$root/bin/$b" ]
done
for m in man1/snapctl.1 man1/ovastore.1 man1/vmwctl.1 man5/snapworker.conf.5 man8/snapworker.8; do
	check "share/man/$m installed, mode 0644" [ "$(stat -c %a "$root/share/man/$m" 2>/dev/null)" = 644 ]
done
for u in snapworker.service snapworker@.service; do
	check "lib/systemd/system/$u installed" [ -f "$root/lib/systemd/system/$u" ]
	check "$u runs $prefix/bin/snapworker" grep -q "^ExecStart=$prefix/bin/snapworker run " "$root/lib/systemd/system/$u"
done
check "sysusers entry installed" [ -f "$root/lib/sysusers.d/snapworker.conf" ]
check "sample configuration installed under share/doc" [ -f "$root/share/doc/snapworker/snapworker.conf.sample" ]
check "nothing installed outside DESTDIR" [ ! -e "$prefix" ]
check "only PREFIX under DESTDIR" [ "$(ls -A "$dest")" = "$(echo "$prefix" | cut -d/ -f2)" ]

# --- the man pages ---------------------------------------------------------------
render() { groff -man -Tascii -P-cbou "$1" 2>/dev/null | col -b; }
for m in "$here"/man/*.[158]; do
	n=$(basename "$m")
	groff -man -Tutf8 -ww -z "$m" >"$tmp/groff.out" 2>&1
	check "$n formats without groff warnings" [ ! -s "$tmp/groff.out" ] || sed 's/^/  | /' "$tmp/groff.out"
	for s in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		check "$n has $s" bash -c "render_() { groff -man -Tascii -P-cbou '$m' 2>/dev/null | col -b; }; render_ | grep -q '^$s'"
	done
	if command -v man >/dev/null; then
		check "man -l $n renders" bash -c "MANPAGER=cat man -l '$m' 2>/dev/null | grep -q ."
	fi
done

# consistent PROGRAM PAGE WORD...: every word is in the rendered page.
consistent() {
	local prog=$1 page=$2 w missing=""
	shift 2
	render "$page" >"$tmp/page.txt"
	for w in "$@"; do
		grep -qF -- "$w" "$tmp/page.txt" || missing="$missing $w"
	done
	[ -z "$missing" ] || echo "  $prog: in --help, not in $(basename "$page"):$missing"
	[ -z "$missing" ]
}
# help_words PROGRAM: the long options and the commands its --help names.
help_opts() { "$build/bin/$1" --help 2>&1 | grep -oE -- '--[a-z][a-z-]*' | sort -u; }

# shellcheck disable=SC2046
check "snapworker --help options are in snapworker(8)" consistent snapworker "$here/man/snapworker.8" \
    $(help_opts snapworker) run check run-once sweep -c -v
check "snapworker(8) names its default configuration as --help does" bash -c \
    "'$build/bin/snapworker' --help | grep -q '/etc/snapworker/snapworker.conf' && grep -q '/etc/snapworker/snapworker.conf' '$here/man/snapworker.8'"
# shellcheck disable=SC2046
check "snapctl --help options are in snapctl(1)" consistent snapctl "$here/man/snapctl.1" \
    $(help_opts snapctl) submit status -c SNAPCTL_PASSWORD
# shellcheck disable=SC2046
check "ovastore --help options and commands are in ovastore(1)" consistent ovastore "$here/man/ovastore.1" \
    $(help_opts ovastore) $("$build/bin/ovastore" --help 2>&1 | awk '$1 == "ovastore" && $2 !~ /^-/ && $2 != "COMMAND" {print $2}') -C
# shellcheck disable=SC2046
check "vmwctl --help options and commands are in vmwctl(1)" consistent vmwctl "$here/man/vmwctl.1" \
    $(help_opts vmwctl) $("$build/bin/vmwctl" --help 2>&1 | sed -n '/^commands:/,$p' | awk '/^  [a-z]/ {print $1}') VMWCTL_PASSWORD
# The check above must be able to fail.
check "a help word missing from a page is noticed" bash -c "$(declare -f consistent render); tmp='$tmp'; ! consistent x '$here/man/snapctl.1' --no-such-option >/dev/null"
# Every configuration key the parser knows is documented in snapworker.conf(5).
keys=$(grep -oE 'strcmp\(x->key, "[a-z_]+"\)' "$here/worker/config.c" | sed -E 's/.*"([a-z_]+)".*/\1/' | sort -u)
keys="$keys $(grep -A2 'keys\[\] = {' "$here/worker/config.c" | grep -oE '"[a-z_]+"' | tr -d '"')"
# shellcheck disable=SC2086
check "every config key of worker/config.c is in snapworker.conf(5)" consistent config "$here/man/snapworker.conf.5" $keys
check "and every section" consistent config "$here/man/snapworker.conf.5" '[worker]' '[amqp]' '[store]' '[vcenter NAME]' '[download]' '[metrics]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
