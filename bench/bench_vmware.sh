#!/usr/bin/env bash
# Benchmark of the NFC export path: vmwctl export of a seeded disk over HTTPS
# (SOAP + lease + streaming into a file with sha256 and fsync) against
# `curl -o` of the same kind of NFC URL in the same run, and vmwctl's peak RSS
# for two disk sizes (it must stay flat).  Measures only; never asserts.
# BENCH_VMW_MIB overrides the big disk size (default 1024).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
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

now() { date +%s.%N; }

# run_size MIB: starts a simulator with a MIB-sized disk; sets secs, rss_kib, curl_secs.
run_size() {
	local mib=$1 t0 t1 url
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
	t0=$(now)
	/usr/bin/time -f '%M' -o "$tmp/rss" "${V[@]}" export --vm "$VCSIM_VM" --out "$tmp/out" --name b \
	    >"$tmp/export.log" 2>&1 || { cat "$tmp/export.log"; return 1; }
	t1=$(now)
	secs=$(echo "$t1 - $t0" | bc -l)
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
	t1=$(now)
	curl_secs=$(echo "$t1 - $t0" | bc -l)
	soap "<HttpNfcLeaseAbort xmlns=\"urn:vim25\"><_this type=\"HttpNfcLease\">$lease</_this></HttpNfcLeaseAbort>" >/dev/null
	[ "$(stat -c %s "$tmp/out/curl.vmdk" 2>/dev/null)" = $((mib << 20)) ] || echo "warning: curl baseline got a short file from $url"
	rm -f "$tmp/out"/*
	return 0
}

if ! run_size "$small"; then
	echo "| vmware export | FAILED (small run) | | | |"
	exit 0
fi
small_rss=$rss_kib
if ! run_size "$big"; then
	echo "| vmware export | FAILED (big run) | | | |"
	exit 0
fi
mbs=$(echo "$big / $secs" | bc -l)
cmbs=$(echo "$big / $curl_secs" | bc -l)
ratio=$(echo "$secs / $curl_secs" | bc -l)
printf '| vmware export %d MiB over HTTPS (vmwctl: SOAP, lease, sha256, fsync) | %.2f s (%.0f MiB/s) | curl -o: %.2f s (%.0f MiB/s) | %.2fx | <= 1.10x |\n' \
    "$big" "$secs" "$mbs" "$curl_secs" "$cmbs" "$ratio"
printf '| vmware export peak RSS (%d MiB disk) | %.1f MiB | %.1f MiB at %d MiB disk | %.2fx | <= 16 MiB, flat |\n' \
    "$big" "$(echo "$rss_kib / 1024" | bc -l)" "$(echo "$small_rss / 1024" | bc -l)" "$small" \
    "$(echo "$rss_kib / $small_rss" | bc -l)"
