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
set -u
list=$(cd "$(dirname "$0")" && pwd)/tools.list

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

case "${1:-}" in
packages) entries | awk '$3 != "optional" { print $2 }' | sort -u ;;
optional) entries | awk '$3 == "optional" { print $1 }' ;;
check) check ;;
bindir) [ $# -eq 2 ] || { echo "usage: $0 bindir DIR" >&2; exit 2; }; bindir "$2" ;;
*) sed -n '2,/^set -u$/{/^set -u$/d;p}' "$0" >&2; exit 2 ;;
esac
