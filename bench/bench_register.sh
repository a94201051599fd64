#!/usr/bin/env bash
# RegisterTemplate of a 1 GiB OVA (GNU tar: OVF, .mf with SHA256 lines,
# one disk of random data) from a local HTTP server (bench/http_sendfile.py on
# 127.0.0.1, a free port: bodies sent with sendfile, so the server does not
# take the CPUs the download needs), through `snapworker run-once`, against `curl -o`
# of the same URL + fsync of the file (the register's commit is durable) in
# the same run.  Both write to the same file system; each side runs
# BENCH_REGISTER_RUNS times (3), interleaved; rows give the median and the
# spread.  Size: BENCH_REGISTER_MIB (1024).  Prints result rows; never asserts.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
bin=$build/bin/snapworker
size_mib=${BENCH_REGISTER_MIB:-1024}
runs=${BENCH_REGISTER_RUNS:-3}
label="register $(size_label "$size_mib") OVA"
if [ ! -x "$bin" ]; then
	echo "| $label | n/a (no $bin) | | | <= 1.10x |"
	exit 0
fi
base=/var/tmp
[ "$(df -Pk "$base" | awk 'NR == 2 { print $4 }')" -gt $((size_mib * 4 * 1024)) ] || base=/tmp
tmp=$(mktemp -d "$base/swbench-register.XXXXXX")
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
python3 "$here/bench/http_sendfile.py" "$tmp/www" "$port" >"$tmp/http.log" 2>&1 &
srv_pid=$!
url="http://127.0.0.1:$port/$name.ova"
for _ in $(seq 50); do curl -sf -o /dev/null -I "$url" && break; sleep 0.1; done

cat >"$tmp/conf" <<CONF
[store]
nfs://bench/store = $tmp/store
extract_dir = $tmp/extract
[download]
allow = 127.0.0.0/8
max_size = 4G
CONF

curl_sync_run() {
	rm -f "$tmp/curl/dl.ova"
	sync -f "$tmp" 2>/dev/null || sync
	local t0 t1
	t0=$(now_ms)
	curl -s -f -o "$tmp/curl/dl.ova" "$url" && sync "$tmp/curl/dl.ova" || echo "curl failed" >&2
	t1=$(now_ms)
	rm -f "$tmp/curl/dl.ova"
	echo $((t1 - t0))
}
curl_run() {
	rm -f "$tmp/curl/dl.ova"
	sync -f "$tmp" 2>/dev/null || sync
	local t0 t1
	t0=$(now_ms)
	curl -s -f -o "$tmp/curl/dl.ova" "$url" || echo "curl failed" >&2
	t1=$(now_ms)
	rm -f "$tmp/curl/dl.ova"
	echo $((t1 - t0))
}
# reg_run sum|nosum I: one RegisterTemplate; prints ms, or nothing on failure.
reg_run() {
	local variant=$1 i=$2 id ck t0 t1 rc
	rm -rf "$tmp/store/template"
	sync -f "$tmp" 2>/dev/null || sync
	id=$(python3 -c 'import uuid; print(uuid.uuid4())')
	ck=""
	[ "$variant" = sum ] && ck="\"checksum\":\"sha256:$sum\","
	printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"nfs://bench/store"},"args":{"url":"%s",%s"account_id":2,"template_id":%d}}' \
	    "$id" "$url" "$ck" $((200 + i)) >"$tmp/cmd.json"
	t0=$(now_ms)
	"$bin" run-once -c "$tmp/conf" "$tmp/cmd.json" >"$tmp/event.json" 2>"$tmp/run.log"
	rc=$?
	t1=$(now_ms)
	if [ $rc -ne 0 ]; then
		echo "register ($variant) failed:" >&2
		cat "$tmp/run.log" "$tmp/event.json" >&2
		return
	fi
	echo $((t1 - t0))
}

echo "$(load_note) before"
cs=() c=() rs=() rn=()
for i in $(seq "$runs"); do
	cs+=("$(curl_sync_run)")
	v=$(reg_run sum "$i"); [ -n "$v" ] && rs+=("$v")
	v=$(reg_run nosum "$i"); [ -n "$v" ] && rn+=("$v")
	c+=("$(curl_run)")
	echo "run $i: curl+fsync ${cs[-1]} ms, register(sha256) ${rs[-1]:-FAILED} ms," \
	    "register(.mf) ${rn[-1]:-FAILED} ms, curl ${c[-1]} ms ($(load_note))"
done
rm -rf "$tmp/store/template"

mbps() { awk -v b="$ova_bytes" -v ms="$1" 'BEGIN { printf "%.0f MiB/s", b / 1048576 / (ms / 1000) }'; }
CS="curl -o + fsync: $(spread_s "${cs[@]}")"
if [ ${#rs[@]} -eq "$runs" ]; then
	echo "| $label (sha256 checksum + .mf) | $(spread_s "${rs[@]}"), $(mbps "$(median "${rs[@]}")") | $CS | $(ratio_spread "${rs[*]}" "${cs[*]}") | <= 1.10x |"
else
	echo "| $label (sha256 checksum + .mf) | FAILED | $CS | | <= 1.10x |"
fi
if [ ${#rn[@]} -eq "$runs" ]; then
	echo "| $label (.mf only) | $(spread_s "${rn[@]}"), $(mbps "$(median "${rn[@]}")") | $CS | $(ratio_spread "${rn[*]}" "${cs[*]}") | <= 1.10x |"
else
	echo "| $label (.mf only) | FAILED | $CS | | <= 1.10x |"
fi
[ ${#rs[@]} -eq "$runs" ] &&
	echo "| $label (sha256 checksum + .mf) vs plain curl -o | $(spread_s "${rs[@]}") | curl -o (no fsync): $(spread_s "${c[@]}") | $(ratio_spread "${rs[*]}" "${c[*]}") | reference |"
exit 0
