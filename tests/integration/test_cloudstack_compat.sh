#!/usr/bin/env bash
# CloudStack compatibility: what our commands leave on the share, read the way
# Apache CloudStack's Java code reads it (docs/cloudstack.md), by a small Java
# checker of our own (tests/compat/CloudStackCompat.java) that uses
# java.util.Properties, the JDK's XML parser and java.io.File.
#
# Real commands through the broker against the vCenter simulator
# (CreateSnapshot, CreateTemplate from the snapshot, RegisterTemplate of a
# two-disk OVA whose members have non-ASCII names, CopyTemplate to a second
# store, ExtractTemplate, ExtractVolume) and the ovastore CLI (unpack into a
# snapshot, commit of files with non-ASCII names, pack into legacy .ova
# snapshots, templates and volumes).  Checked: Properties semantics of the
# meta and template.properties, TemplateLocation's keys, virtualsize against
# the OVF, locating the OVF of a snapshot (NAME.ovf) and of a template (the
# first *.ovf), template-from-snapshot's startsWith match, CloudStack's
# extract (tar of the meta's files) against ours, the *NAME* delete glob,
# lower-case names, and the refusal of an upper-case backup_uuid.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

# Java's file names follow the locale: a UTF-8 one, as on a CloudStack SSVM.
export LC_ALL=C.UTF-8
classes=$tmp/classes
mkdir -p "$classes"
if ! javac -d "$classes" "$here/tests/compat/CloudStackCompat.java" >"$tmp/javac.log" 2>&1; then
	cat "$tmp/javac.log"
	echo "0 passed, 1 failed"
	exit 1
fi
# jcheck KIND ROOT ARGS...: the checker's ok/FAIL lines join ours.
jcheck() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok   - "*) ok "${line#ok   - }" ;;
		"FAIL - "*) nok "${line#FAIL - }" ;;
		*) echo "$line" ;;
		esac
	done < <(java -cp "$classes" CloudStackCompat "$@" 2>&1)
}

e2e_start_vcsim -seed-mib 2 -vm-disks 2
e2e_broker
STORE2_URL=nfs://10.0.0.6/export/secondary2
STORE2=$tmp/store2
mkdir -p "$STORE2" "$tmp/www" "$tmp/work"
conf=$tmp/w.conf
e2e_conf "$conf" 1
sed -i "s|^extract_dir = |$STORE2_URL = $STORE2\nextract_dir = |" "$conf"
printf '[download]\nallow = 127.0.0.0/8\nmax_size = 1G\n' >>"$conf"
e2e_worker "$conf" w1
check "the worker consumes" e2e_wait_consumers "$conf" 1
disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
disk2="[$VCSIM_DATASTORE] $VCSIM_VM/disk2.vmdk"
ip() { evpy "$1" "e['result']['install_path']"; }

# An OVA as vendors ship them: member names with non-ASCII characters, two
# disks, a manifest.
U=$'vm \xc3\xbc'   # "vm ü"
(cd "$tmp/work" && head -c 1500000 /dev/urandom >"$U-disk1.vmdk" && head -c 40001 /dev/urandom >"$U-disk2.vmdk")
cat >"$tmp/work/$U.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="$U-disk1.vmdk" ovf:id="file1" ovf:size="1500000"/>
    <File ovf:href="$U-disk2.vmdk" ovf:id="file2" ovf:size="40001"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="8" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
    <Disk ovf:capacity="512" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>A virtual machine</Info></VirtualSystem>
</Envelope>
OVF
(cd "$tmp/work" && for f in "$U.ovf" "$U-disk1.vmdk" "$U-disk2.vmdk"; do
	echo "SHA256($f)= $(sha256sum "$f" | cut -d' ' -f1)"; done >"$U.mf")
tar --format=ustar -cf "$tmp/www/appliance.ova" -C "$tmp/work" "$U.ovf" "$U.mf" "$U-disk1.vmdk" "$U-disk2.vmdk"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$tmp/www" && exec python3 -m http.server --bind 127.0.0.1 "$port") >"$tmp/http.log" 2>&1 &
wpids+=("$!")
url="http://127.0.0.1:$port/appliance.ova"
for _ in $(seq 50); do curl -sf -o /dev/null -r 0-0 "$url" && break; sleep 0.1; done

# extract_same OUT LIST: our ExtractTemplate's archive holds what CloudStack's
# own extract would tar (the checker's list), in that order.
extract_same() {
	local f
	f=$tmp/extract/$(evpy "$1" "e['result']['download']['path']")
	[ -f "$f" ] && diff <(tar -tf "$f") "$2" >/dev/null
}

# --- CreateSnapshot: a snapshot CloudStack can restore, template and delete ------------------
sid=$(uuid)
cmd_snapshot "$(uuid)" "$disk1" 2 13 | sed "s|\"volume_id\":13|\"volume_id\":13,\"backup_uuid\":\"$sid\"|" >"$tmp/s.json"
submit "$conf" "$tmp/s.json" "$tmp/s.out"
check "CreateSnapshot succeeds" evtrue "$tmp/s.out" "e['status']=='succeeded'"
SNAP=$(ip "$tmp/s.out")
check "snapshot install path is snapshots/2/13/<uuid>/<uuid>" [ "$SNAP" = "snapshots/2/13/$sid/$sid" ]
jcheck snapshot "$STORE" "$SNAP"

UP=$(echo "$sid" | tr a-f A-F)
cmd_snapshot "$(uuid)" "$disk1" 2 13 | sed "s|\"volume_id\":13|\"volume_id\":13,\"backup_uuid\":\"$UP\"|" >"$tmp/su.json"
submit "$conf" "$tmp/su.json" "$tmp/su.out"
check "an upper-case backup_uuid is INVALID_COMMAND, saying why" evtrue "$tmp/su.out" \
    "e['status']=='failed' and e['error']['code']=='INVALID_COMMAND' and 'lower case' in e['error']['message']"

# --- CreateTemplate from the snapshot, with CloudStack's unique name --------------------------
u1="201-2-$(uuid | cut -c1-8)"
cmd_template_snap "$(uuid)" "$SNAP" 201 | sed "s|\"template_id\":201|\"template_id\":201,\"unique_name\":\"$u1\"|" >"$tmp/t1.json"
submit "$conf" "$tmp/t1.json" "$tmp/t1.out"
check "CreateTemplate from the snapshot succeeds" evtrue "$tmp/t1.out" "e['status']=='succeeded'"
T1=$(ip "$tmp/t1.out")
check "template install path is template/tmpl/2/201/<unique name>.ova" [ "$T1" = "template/tmpl/2/201/$u1.ova" ]
jcheck template "$STORE" "$T1" "$u1" "$tmp/t1.list"
cmd_path "$(uuid)" ExtractTemplate "$T1" >"$tmp/x1.json"
submit "$conf" "$tmp/x1.json" "$tmp/x1.out"
check "ExtractTemplate takes the .ova install path" evtrue "$tmp/x1.out" \
    "e['status']=='succeeded' and e['result']['install_path']=='$T1'"
check "ExtractTemplate's archive is what CloudStack's extract tars (single disk)" extract_same "$tmp/x1.out" "$tmp/t1.list"

# --- RegisterTemplate: a two-disk vendor OVA with non-ASCII member names -------------------
u2=202-2-appliance
printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"%s"},"args":{"url":"%s","account_id":2,"template_id":202,"unique_name":"%s"}}' \
    "$(uuid)" "$STORE_URL" "$url" "$u2" >"$tmp/r.json"
submit "$conf" "$tmp/r.json" "$tmp/r.out"
check "RegisterTemplate succeeds" evtrue "$tmp/r.out" "e['status']=='succeeded'"
T2=$(ip "$tmp/r.out")
check "registered install path is template/tmpl/2/202/$u2.ova" [ "$T2" = "template/tmpl/2/202/$u2.ova" ]
check "the files are named after the unique name, not the members" evtrue "$tmp/r.out" \
    "sorted(f['path'].rsplit('/',1)[1] for f in e['result']['files'])==['$u2-disk0.vmdk','$u2-disk1.vmdk','$u2.ova.meta','$u2.ovf','template.properties']"
jcheck template "$STORE" "$T2" "$u2" "$tmp/t2.list"
check "virtualsize is 8 GiB + 512 MiB" grep -qx 'virtualsize=9126805504' "$STORE/template/tmpl/2/202/template.properties"
cmd_path "$(uuid)" ExtractTemplate "$T2" >"$tmp/x2.json"
submit "$conf" "$tmp/x2.json" "$tmp/x2.out"
check "ExtractTemplate of the two-disk template succeeds" evtrue "$tmp/x2.out" "e['status']=='succeeded'"
check "its archive holds both disks, as the meta lists them" extract_same "$tmp/x2.out" "$tmp/t2.list"
check "and the disks' bytes are the vendor's" bash -c \
    "[ \"\$(tar -xOf '$tmp/extract/$(evpy "$tmp/x2.out" "e['result']['download']['path']")' '$u2-disk1.vmdk' | sha256sum)\" = \"\$(sha256sum <'$tmp/work/$U-disk2.vmdk')\" ]"

# --- CopyTemplate to a second store with the unique name ----------------------------------
printf '{"version":1,"id":"%s","type":"CopyTemplate","store":{"url":"%s"},"args":{"path":"%s","unique_name":"%s","dest_store":{"url":"%s"}}}' \
    "$(uuid)" "$STORE_URL" "$T2" "$u2" "$STORE2_URL" >"$tmp/c.json"
submit "$conf" "$tmp/c.json" "$tmp/c.out"
check "CopyTemplate succeeds" evtrue "$tmp/c.out" "e['status']=='succeeded' and e['result']['install_path']=='$T2'"
jcheck template "$STORE2" "$T2" "$u2"

# --- ExtractVolume: a volume CloudStack can find and delete ---------------------------------
vid=$(uuid | tr a-f A-F)
cmd_extract_volume "$vid" "$disk2" 2 14 >"$tmp/v.json"
submit "$conf" "$tmp/v.json" "$tmp/v.out"
check "ExtractVolume succeeds" evtrue "$tmp/v.out" "e['status']=='succeeded'"
VOL=$(ip "$tmp/v.out")
lvid=$(echo "$vid" | tr A-F a-f)
check "an upper-case command id names the volume in lower case" [ "$VOL" = "volumes/2/14/$lvid/$lvid" ]
jcheck volume "$STORE" "$VOL"

# --- ovastore unpack into a snapshot: files named after the snapshot ----------------------
s2=$(uuid)
"$OVASTORE" -C "$STORE" unpack "$tmp/www/appliance.ova" "snapshots/2/15/$s2/$s2" >"$tmp/unpack.out" 2>&1
check "ovastore unpack of the non-ASCII OVA into a snapshot path" [ $? -eq 0 ]
jcheck snapshot "$STORE" "snapshots/2/15/$s2/$s2"

# --- ovastore commit of files with non-ASCII names: the meta escapes them -------------------
s3=$(uuid)
d3=$STORE/snapshots/2/16/$s3
mkdir -p "$d3"
n3="$s3-d"$'\xc3\xafsk \xe2\x82\xac'".vmdk"   # "<uuid>-dïsk €.vmdk"
cp "$tmp/work/$U-disk1.vmdk" "$d3/$n3"
sed -e "s|$U-disk1.vmdk|$n3|" -e '/file2/d' -e '/vmdisk2/d' "$tmp/work/$U.ovf" >"$d3/$s3.ovf"
"$OVASTORE" -C "$STORE" commit "snapshots/2/16/$s3/$s3" >"$tmp/commit.out" 2>&1
check "ovastore commit of a disk with non-ASCII characters in its name" [ $? -eq 0 ]
check "the meta carries them as \\uXXXX escapes" grep -qxF "disk1.name=$s3-d\\u00EFsk \\u20AC.vmdk" "$d3/$s3.ova.meta"
jcheck snapshot "$STORE" "snapshots/2/16/$s3/$s3"
check "Properties.load reads the name back exactly" bash -c \
    "java -cp '$classes' CloudStackCompat props '$d3/$s3.ova.meta' | grep -qxF 'disk1.name=$n3'"

# --- legacy .ova objects (pack): snapshot, template, volume --------------------------------
l1=$(uuid)
mkdir -p "$STORE/snapshots/2/17/$l1" "$STORE/template/tmpl/2/203" "$STORE/volumes/2/18/$l1"
"$OVASTORE" -C "$STORE" pack "$SNAP" "$STORE/snapshots/2/17/$l1/$l1.ova" >/dev/null 2>&1 &&
"$OVASTORE" -C "$STORE" pack "${T2%.ova}" "$STORE/template/tmpl/2/203/203-2-legacy.ova" >/dev/null 2>&1 &&
"$OVASTORE" -C "$STORE" pack "$VOL" "$STORE/volumes/2/18/$l1/$l1.ova" >/dev/null 2>&1
check "ovastore pack makes legacy snapshot, template and volume" [ $? -eq 0 ]
jcheck legacy "$STORE" "snapshots/2/17/$l1/$l1"
jcheck legacy "$STORE" "template/tmpl/2/203/203-2-legacy.ova"
jcheck legacy "$STORE" "volumes/2/18/$l1/$l1"
cmd_path "$(uuid)" ExtractTemplate "template/tmpl/2/203/203-2-legacy.ova" >"$tmp/x3.json"
submit "$conf" "$tmp/x3.json" "$tmp/x3.out"
check "ExtractTemplate of the legacy template answers its .ova install path" evtrue "$tmp/x3.out" \
    "e['status']=='succeeded' and e['result']['install_path']=='template/tmpl/2/203/203-2-legacy.ova' and e['result']['format']=='ova'"

check "nothing left uncommitted" no_debris
e2e_done
