#!/usr/bin/env bash
# Benchmark of the NFC export path: vmwctl export of a seeded disk over HTTPS
# (SOAP + lease + streaming into a file with sha256 and fsync) against
# `curl -o` of the same kind of NFC URL + `sync -f` of the file (the same
# durability) in the same run, medians of BENCH_RUNS (3) interleaved runs
# with their spread, and vmwctl's peak RSS for two disk sizes (it must stay
# flat).  Measures only; never asserts.  BENCH_VMW_MIB overrides the big disk
# size (default 1024).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
vmwctl=$build/bin/vmwctl
big=${BENCH_VMW_MIB:-1024}
small=$((big / 4))
[ "$small" -ge 1 ] || small=1
if [ ! -x "$build/bin/snapworker-vcsim" ] || [ ! -x "$vmwctl" ]; then
	echo "| vmware export | not run: simulator or vmwctl not built | | | |"
	exit 0
fi
tmp=$(mktemp -d /tmp/vmwbench.XXXXXX)
trap '"$here/tests/rig/vcsim.sh" stop "$tmp/sim" >/dev/null 2>&1; rm -rf "$tmp"' EXIT

# run_size MIB: starts a simulator with a MIB-sized disk; appends a run of each
# side to vx[] and cu[] (seconds), sets rss_kib.
vx=() cu=()
run_size() {
	local mib=$1 t0 url rep
	"$here/tests/rig/vcsim.sh" stop "$tmp/sim" >/dev/null 2>&1
	rm -rf "$tmp/sim" "$tmp/out"
	mkdir -p "$tmp/out"
	"$here/tests/rig/vcsim.sh" start "$tmp/sim" -seed-mib "$mib" >"$tmp/start.log" 2>&1 || {
		cat "$tmp/start.log"; return 1; }
	# shellcheck disable=SC1091
	. "$tmp/sim/vcsim.env"
	export VMWCTL_PASSWORD=bench
	V=("$vmwctl" --url "$VCSIM_URL" --user bench --thumbprint "$VCSIM_THUMBPRINT")
	"${V[@]}" power-off --vm "$VCSIM_VM" >/dev/null 2>&1
	# The seeded disk's own writeback is not charged to the first run, nor a
	# first export's cold start (measured here at 1.7x the next ones).
	sync
	if [ "${2:-1}" -gt 1 ]; then
		"${V[@]}" export --vm "$VCSIM_VM" --out "$tmp/out" --name b >"$tmp/export.log" 2>&1
		rm -f "$tmp/out"/*
	fi
	for rep in $(seq "${2:-1}"); do
	t0=$(now)
	/usr/bin/time -f '%M' -o "$tmp/rss" "${V[@]}" export --vm "$VCSIM_VM" --out "$tmp/out" --name b \
	    >"$tmp/export.log" 2>&1 || { cat "$tmp/export.log"; return 1; }
	vx+=("$(elapsed "$t0")")
	rss_kib=$(tail -1 "$tmp/rss")
	grep -q "sha256=$VCSIM_SEED_SHA256_0" "$tmp/export.log" || echo "warning: sha256 mismatch"
	rm -f "$tmp/out"/*

	# Baseline: open a lease with plain SOAP, then curl -o its disk URL.
	local soap_url=$VCSIM_URL cj=$tmp/cj env
	env='<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
	soap() { curl -sk -b "$cj" -c "$cj" -H 'Content-Type: text/xml' -H 'SOAPAction: "urn:vim25/6.5"' \
	    --data-binary "$env$1</soapenv:Body></soapenv:Envelope>" "$soap_url"; }
	soap '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>bench</userName><password>bench</password></Login>' >/dev/null
	local vm lease
	vm=$(soap "<FindByInventoryPath xmlns=\"urn:vim25\"><_this type=\"SearchIndex\">SearchIndex</_this><inventoryPath>DC0/vm/$VCSIM_VM</inventoryPath></FindByInventoryPath>" |
	    sed -n 's/.*<returnval type="VirtualMachine">\([^<]*\)<.*/\1/p')
	lease=$(soap "<ExportVm xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm</_this></ExportVm>" |
	    sed -n 's/.*<returnval type="HttpNfcLease">\([^<]*\)<.*/\1/p')
	url=$(soap "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>HttpNfcLease</type><pathSet>info</pathSet></propSet><objectSet><obj type=\"HttpNfcLease\">$lease</obj></objectSet></specSet><options/></RetrievePropertiesEx>" |
	    grep -o '<url>[^<]*</url>' | head -1 | sed 's|<url>\(.*\)</url>|\1|; s|://\*|://'"${VCSIM_URL#https://}"'|; s|/sdk/|/|')
	t0=$(now)
	curl -sk -b "$cj" -o "$tmp/out/curl.vmdk" "$url"
	sync -f "$tmp/out/curl.vmdk"
	cu+=("$(elapsed "$t0")")
	soap "<HttpNfcLeaseAbort xmlns=\"urn:vim25\"><_this type=\"HttpNfcLease\">$lease</_this></HttpNfcLeaseAbort>" >/dev/null
	[ "$(stat -c %s "$tmp/out/curl.vmdk" 2>/dev/null)" = $((mib << 20)) ] || echo "warning: curl baseline got a short file from $url"
	rm -f "$tmp/out"/*
	echo "# $mib MiB run $rep: vmwctl export ${vx[-1]} s, curl -o + sync ${cu[-1]} s" >&2
	done
	return 0
}

if ! run_size "$small"; then
	echo "| vmware export | FAILED (small run) | | | |"
	exit 0
fi
small_rss=$rss_kib
vx=() cu=()
if ! run_size "$big" "${BENCH_RUNS:-3}"; then
	echo "| vmware export | FAILED (big run) | | | |"
	exit 0
fi
echo "| vmware export $big MiB over HTTPS (vmwctl: SOAP, lease, sha256, fsync) | $(secs_cell "${vx[*]}") | curl -o + sync: $(secs_cell "${cu[*]}") | $(ratio_cell "${vx[*]}" "${cu[*]}") | <= 1.10x |"
printf '| vmware export peak RSS (%d MiB disk) | %.1f MiB | %.1f MiB at %d MiB disk | %.2fx | <= 32 MiB, flat |\n' \
    "$big" "$(echo "$rss_kib / 1024" | bc -l)" "$(echo "$small_rss / 1024" | bc -l)" "$small" \
    "$(echo "$rss_kib / $small_rss" | bc -l)"
