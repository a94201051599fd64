# Shared by bench/bench_*.sh (sourced; not a benchmark itself).
# Times are integers in milliseconds; each side of a comparison is run the
# same number of times, interleaved, and reported as median and spread.

# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# median N...: the median (lower middle for an even count).
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# secs MS: "1.23 s".
secs() { awk -v a="$1" 'BEGIN { printf "%.2f s", a / 1000 }'; }

# spread_s MS...: "1.23 s (1.10-1.40)": median and range of a list of times.
spread_s() {
	local m lo hi
	m=$(median "$@")
	lo=$(printf '%s\n' "$@" | sort -n | head -1)
	hi=$(printf '%s\n' "$@" | sort -n | tail -1)
	awk -v m="$m" -v l="$lo" -v h="$hi" 'BEGIN { printf "%.2f s (%.2f-%.2f)", m / 1000, l / 1000, h / 1000 }'
}

# ratio_spread "A1 A2 A3" "B1 B2 B3": median(A)/median(B) and the range of
# the per-run ratios Ai/Bi (run i of each side are neighbours in time), as
# "1.05x (1.02-1.11)".
ratio_spread() {
	local a=($1) b=($2) i rs=() ma mb
	ma=$(median "${a[@]}")
	mb=$(median "${b[@]}")
	for i in "${!a[@]}"; do
		[ -n "${b[$i]:-}" ] && [ "${b[$i]}" -gt 0 ] &&
			rs+=("$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN { printf "%.4f", x / y }')")
	done
	if [ "$mb" -le 0 ] || [ ${#rs[@]} -eq 0 ]; then echo "n/a"; return; fi
	awk -v ma="$ma" -v mb="$mb" -v lo="$(printf '%s\n' "${rs[@]}" | sort -g | head -1)" \
	    -v hi="$(printf '%s\n' "${rs[@]}" | sort -g | tail -1)" \
	    'BEGIN { printf "%.2fx (%.2f-%.2f)", ma / mb, lo, hi }'
}

# size_label MIB: "1 GiB" or "256 MiB".
size_label() {
	if [ "$1" -ge 1024 ] && [ $(($1 % 1024)) -eq 0 ]; then echo "$(($1 / 1024)) GiB"; else echo "$1 MiB"; fi
}

# peak_kib CMD...: peak RSS of CMD in KiB (GNU time, else VmHWM sampled).
peak_kib() {
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f 'PEAKRSS %M' "$@" 2>&1 >/dev/null | awk '/^PEAKRSS / { v = $2 } END { print v + 0 }'
		return
	fi
	"$@" >/dev/null 2>&1 &
	local pid=$! hwm=0 v
	while kill -0 $pid 2>/dev/null; do
		v=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status 2>/dev/null)
		[ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
		sleep 0.02
	done
	echo $hwm
}

# load_note: the 1-minute load average, for the log (shared machines).
load_note() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"; }
