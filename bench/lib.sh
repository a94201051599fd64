# Helpers of the bench scripts (sourced, not run).
#
# Figures are medians over BENCH_RUNS runs (default 3) of each side, the two
# sides interleaved so that a load that comes and goes on a shared machine
# falls on both; a ratio row's ratio is the median of the per-run ratios
# (figure of run i / baseline of run i), its spread their minimum-maximum.

BENCH_RUNS=${BENCH_RUNS:-3}

now() { date +%s.%N; }
# elapsed T0: seconds since T0 (from now).
elapsed() { echo "$(now) - $1" | bc -l; }

# median V...: the median (mean of the middle two for an even count).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
vmin() { printf '%s\n' "$@" | sort -g | head -1; }
vmax() { printf '%s\n' "$@" | sort -g | tail -1; }

# spread FMT V...: "M (LO-HI)" with each number printed by FMT (e.g. %.2f).
spread() {
	local fmt=$1
	shift
	# shellcheck disable=SC2059
	printf "$fmt ($fmt-$fmt)" "$(median "$@")" "$(vmin "$@")" "$(vmax "$@")"
}

# ratios A B: per-run ratios of the space-separated lists A and B (same length).
ratios() {
	awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); m = split(b, y, " ")
		for (i = 1; i <= n; i++) printf "%s%.4f", (i > 1 ? " " : ""), (y[i] > 0 ? x[i] / y[i] : 0) }'
}

# ratio_cell A B: "1.05x (1.02-1.11)" from the per-run ratios of A and B.
ratio_cell() {
	local r
	# shellcheck disable=SC2046
	r=$(ratios "$1" "$2")
	# shellcheck disable=SC2086
	printf '%.2fx (%.2f-%.2f)' "$(median $r)" "$(vmin $r)" "$(vmax $r)"
}

# secs_cell LIST: "3.10 s (2.95-3.40)"
secs_cell() {
	# shellcheck disable=SC2086
	printf '%s s' "$(spread %.2f $1)"
}

# ---- the simulator's NFC URLs, as a plain HTTP client sees them -------------------
# vc_soap XML: one SOAP call to $VCSIM_URL with the cookie jar $BENCH_CJ.
vc_soap() {
	curl -sk -b "$BENCH_CJ" -c "$BENCH_CJ" -H 'Content-Type: text/xml' \
	    --data-binary "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>$1</soapenv:Body></soapenv:Envelope>" \
	    "$VCSIM_URL"
}
# vc_login USER PASSWORD
vc_login() {
	vc_soap "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">SessionManager</_this><userName>$1</userName><password>$2</password></Login>" >/dev/null
}
# vc_vm NAME: the VM's moref value.
vc_vm() {
	vc_soap "<FindByInventoryPath xmlns=\"urn:vim25\"><_this type=\"SearchIndex\">SearchIndex</_this><inventoryPath>DC0/vm/$1</inventoryPath></FindByInventoryPath>" |
	    sed -n 's/.*<returnval type="VirtualMachine">\([^<]*\)<.*/\1/p'
}
# vc_lease_urls LEASE: the lease's deviceUrl urls, one per line, with the "*" host filled in.
vc_lease_urls() {
	vc_soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>HttpNfcLease</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"HttpNfcLease\">$1</obj></objectSet></specSet><options/></RetrievePropertiesEx>" |
	    grep -o '<url>[^<]*</url>' | sed 's|<url>\(.*\)</url>|\1|; s|://\*|://'"${VCSIM_URL#https://}"'|; s|/sdk/|/|'
}
# vc_export_lease VM: an export lease of VM (ExportVm); prints the lease.
vc_export_lease() {
	vc_soap "<ExportVm xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$1</_this></ExportVm>" |
	    sed -n 's/.*<returnval type="HttpNfcLease">\([^<]*\)<.*/\1/p'
}
vc_lease_abort() {
	vc_soap "<HttpNfcLeaseAbort xmlns=\"urn:vim25\"><_this type=\"HttpNfcLease\">$1</_this></HttpNfcLeaseAbort>" >/dev/null
}

# ---- times in integer milliseconds (bench_register, bench_copy, bench_rss, bench_ovastore)
# now_ms: monotonic-enough wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

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
	if awk -v m="$mb" 'BEGIN { exit !(m <= 0) }' || [ ${#rs[@]} -eq 0 ]; then echo "n/a"; return; fi
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
