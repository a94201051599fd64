#!/usr/bin/env bash
# Peak RSS of every store-side command on an object of 4 GiB against the same
# command on 256 MiB (sizes: BENCH_RSS_BIG_MIB, BENCH_RSS_SMALL_MIB): ovastore
# commit (sha256 of the disk), verify, pack to a file and to a pipe, unpack,
# and through `snapworker run-once` RegisterTemplate (from a local HTTP
# server), CopyTemplate and ExtractTemplate.  The disks are sparse (one
# random MiB at each end, zeros between): memory must not follow the size,
# and reading zeros exercises the same paths.  Peak RSS from GNU time (or
# VmHWM).  Prints result rows; never asserts.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
bin=$build/bin/snapworker
OVS=$build/bin/ovastore
small=${BENCH_RSS_SMALL_MIB:-256}
big=${BENCH_RSS_BIG_MIB:-4096}
if [ ! -x "$bin" ] || [ ! -x "$OVS" ]; then
	echo "| peak RSS | n/a (no $bin) | | | <= 32 MiB |"
	exit 0
fi
tmp=$(mktemp -d /var/tmp/swbench-rss.XXXXXX)
srv_pid=""
cleanup() {
	[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/www" "$tmp/extract"

# mkobj STORE OBJ MIB: a committed new-format object, sparse disk.
mkobj() {
	local S=$1 obj=$2 mib=$3 dir name
	dir=$S/$(dirname "$obj")
	name=$(basename "$obj")
	mkdir -p "$dir"
	truncate -s "${mib}M" "$dir/$name-disk0.vmdk"
	head -c 1048576 /dev/urandom | dd of="$dir/$name-disk0.vmdk" conv=notrunc status=none
	head -c 1048576 /dev/urandom | dd of="$dir/$name-disk0.vmdk" conv=notrunc status=none \
	    bs=1M seek=$((mib - 1))
	cat >"$dir/$name.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="$name-disk0.vmdk" ovf:id="file1" ovf:size="$((mib * 1048576))"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
</Envelope>
OVF
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$tmp/www" && exec python3 -m http.server --bind 127.0.0.1 "$port") >"$tmp/http.log" 2>&1 &
srv_pid=$!

declare -A rss
for mib in "$small" "$big"; do
	S=$tmp/s$mib
	D=$tmp/d$mib
	mkdir -p "$S" "$D"
	obj=template/tmpl/2/401/t
	mkobj "$S" "$obj" "$mib"
	rss[commit,$mib]=$(peak_kib "$OVS" -C "$S" commit "$obj")
	rss[verify,$mib]=$(peak_kib "$OVS" -C "$S" verify "$obj")
	rss[pack,$mib]=$(peak_kib "$OVS" -C "$S" pack "$obj" "$tmp/www/t$mib.ova")
	rss[packpipe,$mib]=$(peak_kib sh -c "'$OVS' -C '$S' pack '$obj' - | cat >/dev/null")
	rss[unpack,$mib]=$(peak_kib "$OVS" -C "$S" unpack "$tmp/www/t$mib.ova" u/u/u)
	sum=$(sha256sum "$tmp/www/t$mib.ova" | cut -d' ' -f1)
	cat >"$tmp/conf$mib" <<CONF
[store]
nfs://bench/s = $S
nfs://bench/d = $D
extract_dir = $tmp/extract
[download]
allow = 127.0.0.0/8
max_size = 8G
CONF
	run() { # run TYPE ARGS-JSON
		printf '{"version":1,"id":"%s","type":"%s","store":{"url":"nfs://bench/s"},"args":%s}' \
		    "$(python3 -c 'import uuid; print(uuid.uuid4())')" "$1" "$2" >"$tmp/cmd.json"
		peak_kib "$bin" run-once -c "$tmp/conf$mib" "$tmp/cmd.json"
	}
	rss[register,$mib]=$(run RegisterTemplate "{\"url\":\"http://127.0.0.1:$port/t$mib.ova\",\"checksum\":\"sha256:$sum\",\"account_id\":2,\"template_id\":402}")
	rss[copy,$mib]=$(run CopyTemplate "{\"path\":\"$obj\",\"dest_store\":{\"url\":\"nfs://bench/d\"}}")
	rss[extract,$mib]=$(run ExtractTemplate "{\"path\":\"$obj\"}")
	ls "$S/template/tmpl/2/402" "$D/template/tmpl/2/401" "$tmp/extract" >&2
	rm -rf "$S" "$D" "$tmp/extract"/* "$tmp/www/t$mib.ova"
done

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
for k in commit verify pack packpipe unpack register copy extract; do
	case $k in
	commit) what="ovastore commit (sha256)" ;;
	verify) what="ovastore verify" ;;
	pack) what="ovastore pack OUT.ova" ;;
	packpipe) what="ovastore pack to a pipe (sh and cat included)" ;;
	unpack) what="ovastore unpack" ;;
	register) what="RegisterTemplate (snapworker run-once)" ;;
	copy) what="CopyTemplate (snapworker run-once)" ;;
	extract) what="ExtractTemplate (snapworker run-once)" ;;
	esac
	a=${rss[$k,$big]:-0} b=${rss[$k,$small]:-0}
	echo "| peak RSS, $what, $(size_label "$big") | $(mib "$a") | $(size_label "$small"): $(mib "$b") | $(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }') | <= 32 MiB |"
done
exit 0
