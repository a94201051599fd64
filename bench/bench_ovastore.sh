#!/usr/bin/env bash
# ovastore figures for a 1 GiB disk (BENCH_OVASTORE_MIB), each against a
# baseline measured in the same run: pack and unpack vs `cat ovf vmdk > out`
# (+ fsync of out, as pack and unpack are durable), legacy `tar -cf` for
# reference, and the peak RSS of pack and unpack (bench_rss.sh compares
# sizes).  Times are the median and spread of BENCH_OVASTORE_RUNS (5)
# interleaved runs (these machines are shared: single runs vary 2x); the
# page cache is left alone (inputs are warm), writeback is flushed between runs.
# Prints markdown rows; never asserts.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${SW_BUILD:-$here/build}
OVS="$build/bin/ovastore"
[ -x "$OVS" ] || { echo "no $OVS" >&2; exit 1; }
base=/var/tmp
[ "$(df -Pk "$base" | awk 'NR == 2 { print $4 }')" -gt $((5 * 1024 * 1024)) ] || base=/tmp
if [ "$(df -Pk "$base" | awk 'NR == 2 { print $4 }')" -lt $((5 * 1024 * 1024)) ]; then
	echo "| ovastore | skipped: less than 5 GiB free in /var/tmp and /tmp | | | |"
	exit 0
fi
tmp=$(mktemp -d "$base/ovastore-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
S="$tmp/store"
d="$S/bench/u"
mkdir -p "$d"
size_mib=${BENCH_OVASTORE_MIB:-1024}
runs=${BENCH_OVASTORE_RUNS:-5}
size=$((size_mib * 1024 * 1024))
L=$(size_label "$size_mib")
# Random-ish data: incompressible, no zero blocks (sparse tricks do not apply).
openssl enc -aes-128-ctr -pass pass:ovastore -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c $size >"$d/u-disk0.vmdk"
cat >"$d/u.ovf" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="u-disk0.vmdk" ovf:id="file1" ovf:size="$size"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="$size"/>
  </DiskSection>
</Envelope>
EOF
"$OVS" -C "$S" commit --no-digest bench/u/u >/dev/null || { echo "commit failed" >&2; exit 1; }
"$OVS" -C "$S" pack bench/u/u "$tmp/u.ova" >/dev/null || exit 1
cat "$d/u-disk0.vmdk" "$tmp/u.ova" >/dev/null # warm the cache

# timed_ms CMD...: wall-clock milliseconds of one run.  The file system is
# synced (untimed) first, so no run pays for the previous run's writeback.
timed_ms() {
	local t0 t1
	sync -f "$tmp" 2>/dev/null || sync
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# Baselines: plain cat (what the issue names), and cat + fsync of the output,
# because pack to a file and unpack are durable (fsync before rename) and cat is not.
cat_run() { rm -f "$tmp/cat.out"; cat "$d/u.ovf" "$d/u-disk0.vmdk" >"$tmp/cat.out"; }
catsync_run() { cat_run; sync "$tmp/cat.out"; }
pack_run() { rm -f "$tmp/p.ova"; "$OVS" -C "$S" pack bench/u/u "$tmp/p.ova"; }
packout_run() { rm -f "$tmp/p.ova"; "$OVS" -C "$S" pack bench/u/u - >"$tmp/p.ova"; }
unpack_run() { "$OVS" -C "$S" rm bench/v/v >/dev/null; "$OVS" -C "$S" unpack "$tmp/u.ova" bench/v/v; }
unpacknd_run() { "$OVS" -C "$S" rm bench/v/v >/dev/null; "$OVS" -C "$S" unpack --no-digest "$tmp/u.ova" bench/v/v; }
tar_run() { rm -f "$tmp/t.tar"; tar -cf "$tmp/t.tar" -C "$d" u.ovf u-disk0.vmdk; }

c=() cs=() p=() po=() u=() un=() t=()
echo "$(load_note) before"
for i in $(seq "$runs"); do
	c+=("$(timed_ms cat_run)")
	cs+=("$(timed_ms catsync_run)")
	p+=("$(timed_ms pack_run)")
	po+=("$(timed_ms packout_run)")
	u+=("$(timed_ms unpack_run)")
	un+=("$(timed_ms unpacknd_run)")
	t+=("$(timed_ms tar_run)")
done
echo "runs (ms): cat ${c[*]}; cat+sync ${cs[*]}; pack ${p[*]}; pack>stdout ${po[*]};" \
    "unpack ${u[*]}; unpack --no-digest ${un[*]}; tar ${t[*]}; $(load_note) after"

rm -f "$tmp/p.ova"
prss=$(peak_kib "$OVS" -C "$S" pack bench/u/u "$tmp/p.ova")
"$OVS" -C "$S" rm bench/v/v >/dev/null
ursS=$(peak_kib "$OVS" -C "$S" unpack "$tmp/u.ova" bench/v/v)
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

C="cat ovf vmdk > out: $(spread_s "${c[@]}")"
CS="cat ovf vmdk > out; sync out: $(spread_s "${cs[@]}")"
echo "| ovastore pack - > file (stream, no fsync), $L | $(spread_s "${po[@]}") | $C | $(ratio_spread "${po[*]}" "${c[*]}") | <= 1.10x |"
echo "| ovastore pack OUT.ova (atomic: fsync + rename), $L | $(spread_s "${p[@]}") | $CS | $(ratio_spread "${p[*]}" "${cs[*]}") | <= 1.10x |"
echo "| ovastore unpack --no-digest (commit protocol, fsync), $L | $(spread_s "${un[@]}") | $CS | $(ratio_spread "${un[*]}" "${cs[*]}") | <= 1.10x |"
echo "| ovastore unpack (sha256 on the way, commit protocol), $L | $(spread_s "${u[@]}") | $CS | $(ratio_spread "${u[*]}" "${cs[*]}") | <= 1.10x |"
echo "| ovastore unpack vs plain cat, $L | $(spread_s "${u[@]}") | $C | $(ratio_spread "${u[*]}" "${c[*]}") | reference (cat does no fsync, no sha256) |"
echo "| legacy tar -cf, $L (reference) | $(spread_s "${t[@]}") | $C | $(ratio_spread "${t[*]}" "${c[*]}") | reference |"
echo "| ovastore pack peak RSS, $L | $(mib "$prss") | - | - | <= 32 MiB |"
echo "| ovastore unpack peak RSS, $L | $(mib "$ursS") | - | - | <= 32 MiB |"
