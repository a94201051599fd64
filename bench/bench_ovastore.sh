#!/usr/bin/env bash
# ovastore figures for a 1 GiB disk, each against a baseline measured in the
# same run: pack and unpack vs `cat ovf vmdk > out`, legacy `tar -cf` for
# reference, and the peak RSS of pack and unpack.  Every time is the median
# of 5 interleaved runs (these machines are shared: single runs vary 2x); the
# page cache is left alone (inputs are warm), writeback is flushed between runs.
# Prints markdown rows; never asserts.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
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
size=$((1024 * 1024 * 1024))
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
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
secs() { awk -v a="$1" 'BEGIN { printf "%.2f s", a / 1000 }'; }

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
for i in 1 2 3 4 5; do
	c+=("$(timed_ms cat_run)")
	cs+=("$(timed_ms catsync_run)")
	p+=("$(timed_ms pack_run)")
	po+=("$(timed_ms packout_run)")
	u+=("$(timed_ms unpack_run)")
	un+=("$(timed_ms unpacknd_run)")
	t+=("$(timed_ms tar_run)")
done
cm=$(median "${c[@]}") csm=$(median "${cs[@]}") pm=$(median "${p[@]}") pom=$(median "${po[@]}")
um=$(median "${u[@]}") unm=$(median "${un[@]}") tm=$(median "${t[@]}")
echo "runs (ms): cat ${c[*]}; cat+sync ${cs[*]}; pack ${p[*]}; pack>stdout ${po[*]};" \
    "unpack ${u[*]}; unpack --no-digest ${un[*]}; tar ${t[*]}"

# Peak RSS (KiB) from GNU time, else from VmHWM sampled while it runs.
peak_kib() {
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ { print $2 }'
		return
	fi
	"$@" >/dev/null 2>&1 &
	local pid=$! hwm=0 v
	while kill -0 $pid 2>/dev/null; do
		v=$(awk '/VmHWM/ { print $2 }' /proc/$pid/status 2>/dev/null)
		[ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
		sleep 0.05
	done
	echo $hwm
}
rm -f "$tmp/p.ova"
prss=$(peak_kib "$OVS" -C "$S" pack bench/u/u "$tmp/p.ova")
"$OVS" -C "$S" rm bench/v/v >/dev/null
ursS=$(peak_kib "$OVS" -C "$S" unpack "$tmp/u.ova" bench/v/v)
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

C="cat ovf vmdk > out: $(secs "$cm")"
CS="cat ovf vmdk > out; sync out: $(secs "$csm")"
echo "| ovastore pack - > file (stream, no fsync), 1 GiB | $(secs "$pom") | $C | $(ratio "$pom" "$cm") | <= 1.10 |"
echo "| ovastore pack OUT.ova (atomic: fsync + rename), 1 GiB | $(secs "$pm") | $CS | $(ratio "$pm" "$csm") | <= 1.10 |"
echo "| ovastore pack OUT.ova (atomic) vs plain cat, 1 GiB | $(secs "$pm") | $C | $(ratio "$pm" "$cm") | <= 1.10 (cat does no fsync) |"
echo "| ovastore unpack --no-digest (commit protocol, fsync), 1 GiB | $(secs "$unm") | $CS | $(ratio "$unm" "$csm") | <= 1.10 |"
echo "| ovastore unpack (sha256 on the way, commit protocol), 1 GiB | $(secs "$um") | $CS | $(ratio "$um" "$csm") | <= 1.10 |"
echo "| ovastore unpack vs plain cat, 1 GiB | $(secs "$um") | $C | $(ratio "$um" "$cm") | <= 1.10 (cat does no fsync, no sha256) |"
echo "| legacy tar -cf, 1 GiB (reference) | $(secs "$tm") | $C | $(ratio "$tm" "$cm") | reference |"
echo "| ovastore pack peak RSS, 1 GiB | $(mib "$prss") | - | - | constant, <= 16 MiB |"
echo "| ovastore unpack peak RSS, 1 GiB | $(mib "$ursS") | - | - | constant, <= 16 MiB |"
