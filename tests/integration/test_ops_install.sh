#!/usr/bin/env bash
# Operations: `make install` with DESTDIR and PREFIX (programs, man pages,
# systemd units pointed at PREFIX, sysusers entry, sample configuration,
# nothing outside DESTDIR) and with the directory variables debian/rules
# sets, `make programs`, the man pages (groff without warnings) and their
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
check "the JSON Schemas installed under share/snapworker/schema" bash -c \
    "cd '$here/docs/schema' && for f in *.schema.json README.md; do cmp -s \"\$f\" '$root/share/snapworker/schema/'\"\$f\" || exit 1; done"
check "nothing installed outside DESTDIR" [ ! -e "$prefix" ]
check "only PREFIX under DESTDIR" [ "$(ls -A "$dest")" = "$(echo "$prefix" | cut -d/ -f2)" ]

# The directory variables below PREFIX, as debian/rules sets them.
dest2=$tmp/root2
make -C "$here" -s install BUILD="$build" DESTDIR="$dest2" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system \
    SYSUSERSDIR=/usr/lib/sysusers.d >"$tmp/install2.out" 2>&1
check "make install with SYSTEMDUNITDIR and SYSUSERSDIR succeeds" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/install2.out"
check "  the units go to SYSTEMDUNITDIR, ExecStart at PREFIX/bin" \
    grep -q '^ExecStart=/usr/bin/snapworker run ' "$dest2/lib/systemd/system/snapworker.service"
check "  the sysusers entry to SYSUSERSDIR" [ -f "$dest2/usr/lib/sysusers.d/snapworker.conf" ]
check "  nothing at the defaults below PREFIX" [ ! -e "$dest2/usr/lib/systemd" ]
check "make programs builds no unit test (make all does)" bash -c \
    "! make -C '$here' -n programs BUILD='$tmp/nobuild' | grep -q tests/unit && make -C '$here' -n all BUILD='$tmp/nobuild' | grep -q tests/unit"

# --- the man pages ---------------------------------------------------------------
render() { groff -man -Tascii -P-cbou "$1" 2>/dev/null | col -b; }
for m in "$here"/man/*.[158]; do
	n=$(basename "$m")
	groff -man -Tutf8 -ww -z "$m" >"$tmp/groff.out" 2>&1
	check "$n formats without groff warnings" [ ! -s "$tmp/groff.out" ] || sed 's/^/  | /' "$tmp/groff.out"
	for s in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		check "$n has $s" bash -c "render_() { groff -man -Tascii -P-cbou '$m' 2>/dev/null | col -b; }; render_ | grep -q '^$s'"
	done
	check "man -l $n renders" bash -c "MANPAGER=cat man -l '$m' 2>/dev/null | grep -q ."
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
# Every configuration key is documented in snapworker.conf(5) and known to the
# parser, which refuses unknown keys (proved below).  The list is this test's
# own: a test never learns what to check by reading the source.
conf_keys="worker:name worker:jobs worker:queues worker:grace worker:log_format worker:log_level
worker:log_file amqp:url amqp:password_file amqp:cacert amqp:heartbeat amqp:delivery_limit
amqp:exchange amqp:events_exchange amqp:dead_letter_exchange amqp:dead_letter_queue
amqp:retry_exchange amqp:control_exchange amqp:cancel_prefix amqp:cancel_ttl store:extract_dir store:lock_scope retry:delays vcenter_vc1:url vcenter_vc1:user vcenter_vc1:password_file vcenter_vc1:thumbprint
vcenter_vc1:cacert vcenter_vc1:insecure download:allow download:max_size download:max_redirects
metrics:listen sweep:max_age sweep:interval sweep:journal_stale amqp:limit_prefix
limits:vcenter limits:host limits:datastore limits:wait"
# parser_knows SECTION KEY: `snapworker check` does not call KEY unknown in [SECTION].
parser_knows() {
	printf '[amqp]\nurl = amqp://127.0.0.1:1/%%2f\n[%s]\n%s = 1\n' "${1/_/ }" "$2" >"$tmp/key.conf"
	! timeout 20 "$build/bin/snapworker" check -c "$tmp/key.conf" 2>&1 | grep -q "unknown key '$2'"
}
unknown_keys() {
	local sk bad=""
	for sk in $conf_keys; do parser_knows "${sk%%:*}" "${sk#*:}" || bad="$bad $sk"; done
	[ -z "$bad" ] || echo "  not known to the parser:$bad"
	[ -z "$bad" ]
}
check "the parser knows every key listed here" unknown_keys
check "and refuses a key it does not know" bash -c "$(declare -f parser_knows); tmp='$tmp' build='$build'; ! parser_knows worker no_such_key"
# shellcheck disable=SC2086
check "every config key is in snapworker.conf(5)" consistent config "$here/man/snapworker.conf.5" \
    $(printf '%s\n' $conf_keys | sed 's/.*://' | sort -u)
check "and every section" consistent config "$here/man/snapworker.conf.5" '[worker]' '[amqp]' '[store]' '[vcenter NAME]' '[download]' '[metrics]' '[sweep]' '[retry]' '[limits]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
