#!/usr/bin/env bash
# RegisterTemplate of a 1 GiB OVA (GNU tar: OVF, .mf with SHA256 lines,
# one 1 GiB disk of random data) from a local HTTP server (python3
# http.server on 127.0.0.1, a free port), through `snapworker run-once`,
# against `curl -o` of the same URL in the same run.  Both write to the same
# file system; each is run 3 times, alternating, and the best time counts.
# Prints result rows; never asserts.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
build=${SW_BUILD:-$here/build}
bin=$build/bin/snapworker
size_mib=${BENCH_REGISTER_MIB:-1024}
runs=${BENCH_REGISTER_RUNS:-3}
if [ ! -x "$bin" ]; then
	echo "| register 1 GiB OVA | n/a (no $bin) | | | ≤ 1.15 |"
	exit 0
fi
tmp=$(mktemp -d /tmp/swbench-register.XXXXXX)
srv_pid=""
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/www" "$tmp/work" "$tmp/store" "$tmp/curl"

# The OVA.
name=bench
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$tmp/work/$name-disk0.vmdk"
bytes=$(stat -c %s "$tmp/work/$name-disk0.vmdk")
cat >"$tmp/work/$name.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="$name-disk0.vmdk" ovf:id="file1" ovf:size="$bytes"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="$((size_mib * 2))" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
OVF
(cd "$tmp/work" && for f in "$name.ovf" "$name-disk0.vmdk"; do
	echo "SHA256($f)= $(sha256sum "$f" | cut -d' ' -f1)"; done >"$name.mf")
tar --format=ustar -cf "$tmp/www/$name.ova" -C "$tmp/work" "$name.ovf" "$name.mf" "$name-disk0.vmdk"
rm -rf "$tmp/work"
sum=$(sha256sum "$tmp/www/$name.ova" | cut -d' ' -f1)
ova_bytes=$(stat -c %s "$tmp/www/$name.ova")

# The server.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$tmp/www" && exec python3 -m http.server --bind 127.0.0.1 "$port") >"$tmp/http.log" 2>&1 &
srv_pid=$!
url="http://127.0.0.1:$port/$name.ova"
for _ in $(seq 50); do curl -sf -o /dev/null -r 0-0 "$url" && break; sleep 0.1; done

cat >"$tmp/conf" <<CONF
[store]
nfs://bench/store = $tmp/store
extract_dir = $tmp/extract
[download]
allow = 127.0.0.0/8
max_size = 4G
CONF

now() { date +%s.%N; }
best_curl=""
best_curl_sync=""
best_reg=""
best_reg_nosum=""
for i in $(seq "$runs"); do
	rm -f "$tmp/curl/dl.ova"
	sync
	t0=$(now)
	curl -s -f -o "$tmp/curl/dl.ova" "$url" || echo "curl failed" >&2
	t1=$(now)
	c=$(echo "$t1 - $t0" | bc -l)
	rm -f "$tmp/curl/dl.ova"
	sync
	# The same with the file made durable, as the register's commit does (fsync).
	t0=$(now)
	curl -s -f -o "$tmp/curl/dl.ova" "$url" && sync "$tmp/curl/dl.ova"
	t1=$(now)
	cs=$(echo "$t1 - $t0" | bc -l)
	rm -f "$tmp/curl/dl.ova"
	{ [ -z "$best_curl_sync" ] || [ "$(echo "$cs < $best_curl_sync" | bc -l)" = 1 ]; } && best_curl_sync=$cs

	for variant in sum nosum; do
		rm -rf "$tmp/store/template"
		sync
		id=$(python3 -c 'import uuid; print(uuid.uuid4())')
		if [ $variant = sum ]; then
			ck="\"checksum\":\"sha256:$sum\","
		else
			ck=""
		fi
		printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"nfs://bench/store"},"args":{"url":"%s",%s"account_id":2,"template_id":%d}}' \
		    "$id" "$url" "$ck" $((200 + i)) >"$tmp/cmd.json"
		t0=$(now)
		"$bin" run-once -c "$tmp/conf" "$tmp/cmd.json" >"$tmp/event.json" 2>"$tmp/run.log"
		rc=$?
		t1=$(now)
		r=$(echo "$t1 - $t0" | bc -l)
		if [ $rc -ne 0 ]; then
			echo "register ($variant) failed:" >&2
			cat "$tmp/run.log" "$tmp/event.json" >&2
			r=""
		fi
		echo "run $i: register ($variant) $r s" >&2
		if [ $variant = sum ]; then
			[ -n "$r" ] && { [ -z "$best_reg" ] || [ "$(echo "$r < $best_reg" | bc -l)" = 1 ]; } && best_reg=$r
		else
			[ -n "$r" ] && { [ -z "$best_reg_nosum" ] || [ "$(echo "$r < $best_reg_nosum" | bc -l)" = 1 ]; } && best_reg_nosum=$r
		fi
	done
	{ [ -z "$best_curl" ] || [ "$(echo "$c < $best_curl" | bc -l)" = 1 ]; } && best_curl=$c
	echo "run $i: curl $c s, curl+fsync $cs s" >&2
done
rm -rf "$tmp/store/template"

fmt() { printf '%.2f' "$1"; }
mbps() { echo "$ova_bytes / $1 / 1048576" | bc -l | xargs printf '%.0f'; }
label="register $((size_mib / 1024)) GiB OVA"
[ "$size_mib" -lt 1024 ] && label="register $size_mib MiB OVA"
if [ -n "$best_reg" ]; then
	echo "| $label (sha256 checksum + .mf) | $(fmt "$best_reg") s ($(mbps "$best_reg") MiB/s) | curl -o $(fmt "$best_curl") s ($(mbps "$best_curl") MiB/s) | $(echo "$best_reg / $best_curl" | bc -l | xargs printf '%.2f') | ≤ 1.15 |"
else
	echo "| $label (sha256 checksum + .mf) | FAILED | curl -o $(fmt "$best_curl") s | | ≤ 1.15 |"
fi
if [ -n "$best_reg" ]; then
	echo "| $label (sha256 checksum + .mf) vs durable curl | $(fmt "$best_reg") s | curl -o + fsync $(fmt "$best_curl_sync") s | $(echo "$best_reg / $best_curl_sync" | bc -l | xargs printf '%.2f') | ≤ 1.15 |"
fi
if [ -n "$best_reg_nosum" ]; then
	echo "| $label (.mf only) | $(fmt "$best_reg_nosum") s ($(mbps "$best_reg_nosum") MiB/s) | curl -o $(fmt "$best_curl") s | $(echo "$best_reg_nosum / $best_curl" | bc -l | xargs printf '%.2f') | ≤ 1.15 |"
fi
exit 0
