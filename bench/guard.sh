#!/usr/bin/env bash
# The bench regression guard: reads result rows
#     | benchmark | figure | baseline (same run) | ratio | goal |
# (a file, or stdin) and exits 1 when a figure is more than the slack
# (BENCH_GUARD_SLACK, default 0.20 = 20%) beyond its goal, listing each such
# row on stdout; 0 when none is.
#
# A goal is checked when it starts with a comparison and a number:
#     <= 1.10x   >= 2x   < 60 s   <= 32 MiB   >= 800 cmd/s   <= 1.001 (legacy 2.0)
# (also the signs ≤ and ≥).  A goal whose number ends in "x" holds the ratio
# column; a goal with a unit holds the figure column, whose first word after
# its number must be that unit (a figure in other units is not compared); a
# goal without either holds the figure when the figure is a bare number
# ("1.0000"), else the ratio column ("<= 1.15" of "12.3 s" and ratio "1.12").  The first number of the cell
# counts: "1.05x (1.02-1.11)" is 1.05, the median.  Upper bounds fail above
# goal * (1 + slack), lower bounds below goal * (1 - slack).  A row whose goal
# is checked but whose cell has no number (n/a, FAILED) fails as well: a
# benchmark that did not measure cannot show that nothing got slower.  Goals
# of other forms ("report ...", "0 lost", "completes once") are not checked.
set -u
slack=${BENCH_GUARD_SLACK:-0.20}
awk -F'|' -v slack="$slack" '
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
# The first number of s, with what follows it; "" when s has none.
function firstnum(s) {
	if (match(s, /[0-9]+(\.[0-9]+)?/) == 0) return ""
	rest = substr(s, RSTART + RLENGTH)
	return substr(s, RSTART, RLENGTH)
}
/^\|/ {
	if (NF < 7) next
	name = trim($2); fig = trim($3); ratio = trim($5); goal = trim($6)
	if (name == "benchmark" || name ~ /^-+$/) next
	g = goal
	gsub(/≤/, "<=", g); gsub(/≥/, ">=", g)
	if (match(g, /^(<=|>=|<|>)[ \t]*[0-9]+(\.[0-9]+)?/) == 0) next
	op = g; sub(/[ \t]*[0-9].*$/, "", op)
	gv = firstnum(g) + 0
	gunit = rest
	isratio = (gunit ~ /^x/)
	sub(/^[ \t]+/, "", gunit); ng = split(gunit, gw, /[ \t(]+/); gunit = gw[1]
	cell = isratio ? ratio : fig
	# A goal without a unit holds a figure without one ("1.0000"); a figure with a
	# unit ("12.3 s") has its ratio held ("<= 1.15" of a ratio printed as "1.12").
	if (!isratio && gunit == "" && firstnum(fig) != "") {
		fu = rest; sub(/^[ \t]+/, "", fu); sub(/^\([^)]*\)[ \t]*/, "", fu)
		if (fu ~ /^[A-Za-z%]/) cell = ratio
	}
	checked++
	v = firstnum(cell)
	if (v == "") {
		printf "guard: %s: no figure (figure \"%s\", ratio \"%s\") for the goal %s\n", name, fig, ratio, goal
		bad++
		next
	}
	if (!isratio && gunit != "") {
		# The unit follows the number, or the spread after it: "138 (99-291) cmd/s".
		fu = rest; sub(/^[ \t]+/, "", fu); sub(/^\([^)]*\)[ \t]*/, "", fu); nf = split(fu, fw, /[ \t(,;]+/)
		if (fw[1] != gunit) { checked--; next }
	}
	v += 0
	if (op ~ /^</) { lim = gv * (1 + slack); out = (v > lim) }
	else { lim = gv * (1 - slack); out = (v < lim) }
	if (out) {
		printf "guard: %s: %s is more than %d%% beyond the goal %s (limit %g)\n", name, cell, slack * 100 + 0.5, goal, lim
		bad++
	}
}
END {
	printf "guard: %d goal(s) checked, %d beyond goal + %d%%\n", checked, bad, slack * 100 + 0.5 > "/dev/stderr"
	exit bad > 0 ? 1 : 0
}' "${1:--}"
