#!/usr/bin/env bash
# The project's external commands, as listed in scripts/tools.list.
#
#   scripts/tools.sh packages     the Debian packages of the required commands
#   scripts/tools.sh check        fail, naming command and package, when a required
#                                 command is not on PATH
#   scripts/tools.sh bindir DIR   make DIR a directory of symlinks to every listed
#                                 command found on PATH, or of exec scripts for
#                                 those marked "wrap" (fails like check)
#   scripts/tools.sh optional     the optional commands, one a line
#   scripts/tools.sh scan         static check: the words in command position in
#                                 the scripts that are programs on PATH but are
#                                 not listed; fails when there is one
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
list=$top/scripts/tools.list

# entries prints "command package flag" for each entry of the list.
entries() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" | awk '{ print $1, $2, ($3 == "" ? "-" : $3) }'; }

# find_cmd NAME prints the first executable NAME on PATH (a file, never a
# builtin or keyword: `time` must be /usr/bin/time).
find_cmd() {
	local d IFS=:
	for d in $PATH; do
		[ -n "$d" ] && [ -f "$d/$1" ] && [ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}

check() {
	local c p o missing=0
	while read -r c p o; do
		find_cmd "$c" >/dev/null && continue
		if [ "$o" = optional ]; then
			echo "tools: optional command '$c' (Debian package $p) not installed"
		else
			echo "tools: missing command '$c': install Debian package $p (scripts/deps.sh)" >&2
			missing=$((missing + 1))
		fi
	done < <(entries)
	[ $missing -eq 0 ]
}

bindir() {
	local dir=$1 c p o path
	check >/dev/null || return 1
	mkdir -p "$dir" || return 1
	while read -r c p o; do
		path=$(find_cmd "$c") || continue
		if [ "$o" = wrap ]; then
			rm -f "$dir/$c"
			printf '#!/bin/sh\nexec %s "$@"\n' "$path" >"$dir/$c" && chmod 755 "$dir/$c" || return 1
		else
			ln -sfn "$path" "$dir/$c" || return 1
		fi
	done < <(entries)
}

# The scripts whose commands the list must own (see tools.list).
scripts() {
	(cd "$top" && ls tests/run.sh tests/integration/*.sh tests/rig/*.sh tests/fixtures/*/*.sh \
	    tests/fuzz/run.sh tests/unit/*.sh scripts/*.sh bench/*.sh .ci/run 2>/dev/null)
}

# Words the scan finds in command position that are not commands there: a
# Python heredoc's variable (docker), a loop value (sum), a package name in
# deps.sh (rabbitmq-server), words of check descriptions (size, dir, GET: a
# program of libwww-perl, which lintian brings in).
not_commands=" dir docker GET rabbitmq-server size sum "

# scan: a static second net for the scripts that tests/run.sh does not run
# (bench, demo, CI, fuzz, deps): each word after a line start, a pipe, ;, &&,
# ||, $(, then/do/else, `check "..."`, `bash -c "`, timeout N, setsid, xargs
# or env VAR=... that is a program on PATH (not a shell builtin, not an
# assignment) must be listed or be a function of the scripts.
scan() {
	local listed funcs w bad=""
	listed=" $(entries | awk '{ print $1 }' | tr '\n' ' ') "
	cd "$top" || return 1
	funcs=" $(scripts | xargs cat | grep -oE '^[[:space:]]*[a-zA-Z_][a-zA-Z0-9_-]*\(\)' |
	    tr -d ' \t()' | sort -u | tr '\n' ' ') "
	for w in $(scripts | xargs cat | sed -E 's/^[[:space:]]*#.*//; s/[[:space:]]#[[:space:]].*//' |
	    grep -oE '(^|[;&|(`!{]|\$\(|\bthen|\bdo|\belse|\btimeout( -[-a-zA-Z=0-9]+)* [0-9.]+|\bsetsid|\bxargs( -[a-zA-Z] ?[0-9]*)*|\benv( [A-Za-z_]+=[^ ]*)+|check "[^"]*"|-c ["'"'"'])[[:space:]]*[a-zA-Z][a-zA-Z0-9_.+-]*=?' |
	    grep -v '=$' | grep -oE '[a-zA-Z][a-zA-Z0-9_.+-]*$' | sort -u); do
		case "$listed$funcs$not_commands" in *" $w "*) continue ;; esac
		case "$(type -t "$w")" in builtin|keyword) continue ;; esac
		find_cmd "$w" >/dev/null && bad="$bad $w"
	done
	if [ -n "$bad" ]; then
		echo "tools: called by the scripts, not in scripts/tools.list:$bad" >&2
		return 1
	fi
	echo "tools: every program the scripts call is listed"
}

case "${1:-}" in
packages) entries | awk '$3 != "optional" { print $2 }' | sort -u ;;
optional) entries | awk '$3 == "optional" { print $1 }' ;;
check) check ;;
scan) scan ;;
bindir) [ $# -eq 2 ] || { echo "usage: $0 bindir DIR" >&2; exit 2; }; bindir "$2" ;;
*) sed -n '2,/^set -u$/{/^set -u$/d;p}' "$0" >&2; exit 2 ;;
esac
