#!/usr/bin/env bash
# The functional spec's six test groups end to end (snapshot, volume and
# template, each on a fresh store and on an "upgraded system" store holding
# legacy .ova snapshots and templates made by GNU tar:
# tests/fixtures/upgraded-store/make.sh), through broker, two daemons and the
# vCenter simulator (a VM with two seeded disks).  Both formats serve as
# sources; the legacy objects are never unpacked nor changed.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

e2e_start_vcsim -seed-mib 4 -vm-disks 2
e2e_broker
UP=$tmp/upgraded/store
UP_URL=nfs://10.0.0.7/export/upgraded
"$here/tests/fixtures/upgraded-store/make.sh" "$UP" 256 >"$tmp/fixture.log" 2>&1 ||
    { cat "$tmp/fixture.log"; nok "upgraded-store fixture"; }
SUMS=$tmp/upgraded/upgraded-store.sha256
conf=$tmp/w.conf
e2e_conf "$conf" 1
# A second store: the upgraded one.
sed -i "s|^extract_dir = |$UP_URL = $UP\nextract_dir = |" "$conf"
e2e_worker "$conf" w1
e2e_worker "$conf" w2
check "two workers consume" e2e_wait_consumers "$conf" 2

disk1="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
disk2="[$VCSIM_DATASTORE] $VCSIM_VM/disk2.vmdk"
LEG1=snapshots/2/7/db92a8e4-079f-4055-84f5-08d33f6f9fef
LEG2=snapshots/2/8/5a1b2c3d-0000-4000-8000-000000000008
LEGT=template/tmpl/2/201/legacy-tmpl-201
LEGV=volumes/2/9/0c0ffee0-0000-4000-8000-000000000009/0c0ffee0-0000-4000-8000-000000000009
# The legacy archives no command deletes here.
legacy_sha() { sha256sum "$UP/$LEG2.ova" "$UP/$LEGV.ova" | cut -d' ' -f1 | tr '\n' ' '; }
before=$(legacy_sha)
on_up() { sed "s|\"$STORE_URL\"|\"$UP_URL\"|" "$1"; }
sum_of() { awk -v o="$1" -v m="$2" '$2==o && $3==m {print $1}' "$SUMS"; }

# ======================= snapshot, fresh store ======================================
id=$(uuid)
cmd_snapshot "$id" "$disk2" 2 7 >"$tmp/s.json"
submit "$conf" "$tmp/s.json" "$tmp/s.out"
check "[snapshot/fresh] CreateSnapshot of a 2-disk VM's second disk" evtrue "$tmp/s.out" \
    "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_1'"
SNAPF=snapshots/2/7/$id/$id
x=$(uuid)
cmd_path "$x" ExtractTemplate "$SNAPF" >"$tmp/x.json"
submit "$conf" "$tmp/x.json" "$tmp/x.out"
ova=$(evpy "$tmp/x.out" "e['result']['download']['path']")
check "[snapshot/fresh] an .ova generated on request, OVF first, readable by GNU tar" bash -c \
    "tar -tf '$tmp/extract/$ova' | head -1 | grep -q '\\.ovf\$' && [ \$(tar -tf '$tmp/extract/$ova' | wc -l) = 2 ]"
check "[snapshot/fresh] the disk inside it is the volume's" bash -c \
    "[ \"\$(tar -xOf '$tmp/extract/$ova' '$id-disk0.vmdk' | sha256sum | cut -d' ' -f1)\" = '$VCSIM_SEED_SHA256_1' ]"

# ======================= snapshot, upgraded store ===================================
id2=$(uuid)
on_up "$tmp/s.json" | sed "s|$id|$id2|g" >"$tmp/su.json"
submit "$conf" "$tmp/su.json" "$tmp/su.out"
check "[snapshot/upgraded] CreateSnapshot next to a legacy snapshot of the same volume" evtrue "$tmp/su.out" \
    "e['status']=='succeeded' and e['result']['format']=='ovf'"
check "[snapshot/upgraded] both formats side by side in snapshots/2/7" bash -c \
    "[ -f '$UP/$LEG1.ova' ] && [ -f '$UP/snapshots/2/7/$id2/$id2.ova.meta' ]"
x=$(uuid)
cmd_path "$x" ExtractTemplate "$LEG2" | sed "s|$STORE_URL|$UP_URL|" >"$tmp/xu.json"
submit "$conf" "$tmp/xu.json" "$tmp/xu.out"
ova=$(evpy "$tmp/xu.out" "e['result']['download']['path']")
check "[snapshot/upgraded] extract of a legacy multi-disk snapshot is the archive itself" bash -c \
    "cmp -s '$tmp/extract/$ova' '$UP/$LEG2.ova'"
check "[snapshot/upgraded] reported as format ova" evtrue "$tmp/xu.out" "e['result']['format']=='ova'"
d=$(uuid)
cmd_path "$d" DeleteSnapshot "$LEG1" | sed "s|$STORE_URL|$UP_URL|" >"$tmp/du.json"
submit "$conf" "$tmp/du.json" "$tmp/du.out"
check "[snapshot/upgraded] DeleteSnapshot of a legacy snapshot removes its .ova only" evtrue "$tmp/du.out" \
    "e['result']['format']=='ova' and [f['path'] for f in e['result']['files']]==['$LEG1.ova']"
check "[snapshot/upgraded] the new snapshot in the same directory survives" \
    "$OVASTORE" -C "$UP" verify "snapshots/2/7/$id2/$id2"

# ======================= template, fresh store ======================================
t=$(uuid)
cmd_template_snap "$t" "$SNAPF" 301 >"$tmp/t.json"
submit "$conf" "$tmp/t.json" "$tmp/t.out"
check "[template/fresh] CreateTemplate from a new-format snapshot" evtrue "$tmp/t.out" \
    "e['status']=='succeeded' and e['result']['install_path']=='template/tmpl/2/301/$t.ova'"
check "[template/fresh] template.properties written last, ova=false" bash -c \
    "grep -qx 'ova=false' '$STORE/template/tmpl/2/301/template.properties' && grep -qx 'uniquename=$t' '$STORE/template/tmpl/2/301/template.properties'"
check "[template/fresh] same disk bytes as the snapshot" evtrue "$tmp/t.out" \
    "[f['sha256'] for f in e['result']['files'] if f['path'].endswith('.vmdk')]==['$VCSIM_SEED_SHA256_1']"
t2=$(uuid)
cmd_template_vm "$t2" "$disk1" 302 >"$tmp/t2.json"
submit "$conf" "$tmp/t2.json" "$tmp/t2.out"
check "[template/fresh] CreateTemplate from a live volume (vm + disk)" evtrue "$tmp/t2.out" \
    "e['status']=='succeeded' and [f['sha256'] for f in e['result']['files'] if f['path'].endswith('.vmdk')]==['$VCSIM_SEED_SHA256_0']"
check "[template/fresh] no worker VM or VM snapshot left" rig_clean
submit "$conf" "$tmp/t2.json" "$tmp/t2b.out"
check "[template/fresh] redelivery answers the same template" evtrue "$tmp/t2b.out" \
    "e['status']=='succeeded' and e['result']['install_path']=='template/tmpl/2/302/$t2.ova'"
x=$(uuid)
cmd_path "$x" ExtractTemplate "$SNAPF" >"$tmp/xt.json"
submit "$conf" "$tmp/xt.json" "$tmp/xt.out"
check "[template/fresh] ExtractTemplate of a new-format object" evtrue "$tmp/xt.out" "e['status']=='succeeded'"

# ======================= template, upgraded store ===================================
t=$(uuid)
cmd_template_snap "$t" "$LEG2" 401 | sed "s|$STORE_URL|$UP_URL|" >"$tmp/tu.json"
submit "$conf" "$tmp/tu.json" "$tmp/tu.out"
check "[template/upgraded] CreateTemplate from a legacy 2-disk .ova snapshot" evtrue "$tmp/tu.out" \
    "e['status']=='succeeded' and e['result']['format']=='ovf'"
check "[template/upgraded] numDisks=2 and the disks are the archive's members" bash -c \
    "grep -qx 'numDisks=2' '$UP/template/tmpl/2/401/$t.ova.meta' &&
     [ \"\$(sha256sum <'$UP/template/tmpl/2/401/5a1b2c3d-0000-4000-8000-000000000008-disk1.vmdk' | cut -d' ' -f1)\" = '$(sum_of "$LEG2" 5a1b2c3d-0000-4000-8000-000000000008-disk1.vmdk)' ]"
check "[template/upgraded] the legacy snapshot was read in place (nothing unpacked beside it)" bash -c \
    "[ \$(ls '$UP/snapshots/2/8' | wc -l) = 1 ]"
x=$(uuid)
cmd_path "$x" ExtractTemplate "$LEGT.ova" | sed "s|$STORE_URL|$UP_URL|" >"$tmp/xl.json"
submit "$conf" "$tmp/xl.json" "$tmp/xl.out"
ova=$(evpy "$tmp/xl.out" "e['result']['download']['path']")
check "[template/upgraded] ExtractTemplate of a legacy template (install path with .ova)" bash -c \
    "cmp -s '$tmp/extract/$ova' '$UP/$LEGT.ova'"
# What CloudStack's OVAProcessor does to a downloaded template: untars it beside the .ova.
tar -xf "$UP/$LEGT.ova" -C "$UP/${LEGT%/*}"
members=$(tar -tf "$UP/$LEGT.ova" | LC_ALL=C sort | tr '\n' ' ')
d=$(uuid)
cmd_path "$d" DeleteTemplate "$LEGT" | sed "s|$STORE_URL|$UP_URL|" >"$tmp/dt.json"
submit "$conf" "$tmp/dt.json" "$tmp/dt.out"
check "[template/upgraded] DeleteTemplate of a legacy template: template.properties, the .ova, then what OVAProcessor untarred" evtrue "$tmp/dt.out" \
    "[f['path'].rsplit('/',1)[1] for f in e['result']['files']]==['template.properties','legacy-tmpl-201.ova']+'$members'.split()"
check "[template/upgraded] DeleteTemplate removed the template directory" test ! -e "$UP/${LEGT%/*}"

# ======================= volume, fresh store ========================================
v=$(uuid)
cmd_extract_volume "$v" "$disk1" 2 9 >"$tmp/v.json"
submit "$conf" "$tmp/v.json" "$tmp/v.out"
check "[volume/fresh] ExtractVolume into volumes/2/9/<id>/ in the new format" evtrue "$tmp/v.out" \
    "e['status']=='succeeded' and e['result']['install_path']=='volumes/2/9/$v/$v' and e['result']['format']=='ovf'"
check "[volume/fresh] download is <id>.ova in the extract area, its disk the volume's" bash -c \
    "[ \"\$(tar -xOf '$tmp/extract/$v.ova' '$v-disk0.vmdk' | sha256sum | cut -d' ' -f1)\" = '$VCSIM_SEED_SHA256_0' ]"
check "[volume/fresh] download size is the file's" evtrue "$tmp/v.out" \
    "e['result']['download']['size']==$(stat -c %s "$tmp/extract/$v.ova" 2>/dev/null || echo -1)"
check "[volume/fresh] no worker VM or VM snapshot left" rig_clean
submit "$conf" "$tmp/v.json" "$tmp/v2.out"
check "[volume/fresh] redelivery: same answer" evtrue "$tmp/v2.out" \
    "e['status']=='succeeded' and e['result']['download']['path']=='$v.ova'"

# ======================= volume, upgraded store =====================================
v2=$(uuid)
on_up "$tmp/v.json" | sed "s|$v|$v2|g" >"$tmp/vu.json"
submit "$conf" "$tmp/vu.json" "$tmp/vu.out"
check "[volume/upgraded] ExtractVolume next to a legacy extracted volume" evtrue "$tmp/vu.out" \
    "e['status']=='succeeded'"
check "[volume/upgraded] the legacy volume is untouched" "$OVASTORE" -C "$UP" verify "$LEGV"
x=$(uuid)
cmd_path "$x" ExtractTemplate "$LEGV" | sed "s|$STORE_URL|$UP_URL|" >"$tmp/xv.json"
submit "$conf" "$tmp/xv.json" "$tmp/xv.out"
check "[volume/upgraded] a legacy volume is still downloadable as is" evtrue "$tmp/xv.out" \
    "e['status']=='succeeded' and e['result']['format']=='ova'"

# Every legacy archive that nothing deleted is byte for byte what the fixture made.
after=$(legacy_sha)
check "legacy archives never modified" [ "$before" = "$after" ]
check "simulator clean at the end" rig_clean
check "no debris on either store" bash -c "[ -z \"\$(find '$STORE' '$UP' -name '*.part')\" ]"
e2e_done
