#!/usr/bin/env bash
# Hostile input through a running worker, the real broker and the vCenter
# simulator (issue 14's campaign, the classes that travel as messages; the
# library-level classes are the unit suites tests/unit/test_hostile_*.c):
#   - malformed and duplicated messages: two ids (no event at all: which id
#     to answer would be a guess), two types (no type in the answer), NUL
#     bytes, invalid UTF-8: dead-lettered, the worker unharmed;
#   - path fields of every store command: INVALID_COMMAND, nothing touched;
#   - links planted where the command lock lives: the command fails with
#     STORE_IO ("not safe"), it never runs without its lock;
#   - a hostile OVA (a disk named template.properties): INVALID_COMMAND on
#     delivery and on redelivery, nothing committed;
#   - SSRF: internal addresses outside [download] allow are refused;
#   - credential binding: a vCenter URL the credential set is not bound to
#     is VCENTER_AUTH and its host is never connected to;
#   - secrets: a FIFO as password_file is refused at once.
# Then the worker still serves, and stops cleanly; when SW_BUILD is the
# sanitizer build (make asan-hostile), its log must hold no sanitizer report
# and its exit status says whether LeakSanitizer found leaks.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

e2e_start_vcsim
e2e_broker
conf=$tmp/w.conf
e2e_conf "$conf" 2
# Only 127.0.0.1 may be downloaded from: the rest of loopback is "internal".
printf '[download]\nallow = 127.0.0.1/32\n' >>"$conf"
check "event log bound to the event exchange" evlog_start "$conf"
e2e_worker "$conf" w1
w1=$wpid
check "worker consumes" e2e_wait_consumers "$conf" 2
dead() { queue_line "$conf" "$prefix.dead" | awk '{print $2}'; }
wait_dead() { # N SECONDS
	local i
	for i in $(seq $(($2 * 5))); do [ "$(dead)" = "$1" ] && return 0; sleep 0.2; done
	return 1
}
publish() { "$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate "$1" >/dev/null 2>>"$tmp/submit.err"; }
# code_of ID: the error code of ID's final event.
code_of() { finals "$1" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["error"]["code"])' 2>/dev/null; }
# expect_code ID CODE: the command ID ends failed with CODE (bounded wait).
expect_code() { wait_final "$1" 60 && [ "$(code_of "$1")" = "$2" ]; }
ndead=0

# --- malformed and duplicated messages --------------------------------------------
ida=$(uuid)
idb=$(uuid)
printf '{"version":1,"id":"%s","id":"%s","type":"DeleteSnapshot","store":{"url":"%s"},"args":{"path":"snapshots/1/2/x/x"}}' \
    "$ida" "$idb" "$STORE_URL" >"$tmp/dupid.json"
idc=$(uuid)
idd=$(uuid)
printf '{"version":1,"id":"%s","type":"DeleteSnapshot","store":{"url":"%s"},"args":{"path":"snapshots/1/2/x/x"},"\\u0069d":"%s"}' \
    "$idc" "$STORE_URL" "$idd" >"$tmp/dupid2.json"
ide=$(uuid)
printf '{"version":1,"id":"%s","type":"DeleteSnapshot","type":"DeleteTemplate","store":{"url":"%s"},"args":{"path":"snapshots/1/2/x/x"}}' \
    "$ide" "$STORE_URL" >"$tmp/duptype.json"
idf=$(uuid)
printf '{"version":1,"id":"%s","type":"DeleteSnapshot","store":{"url":"%s"},"args":{"path":"a\0b"}}' \
    "$idf" "$STORE_URL" >"$tmp/nul.json"
idg=$(uuid)
printf '{"version":1,"id":"%s","type":"DeleteSnapshot","store":{"url":"%s"},"args":{"path":"a\xc0\xafb"}}' \
    "$idg" "$STORE_URL" >"$tmp/utf8.json"
for f in dupid dupid2 duptype nul utf8; do publish "$tmp/$f.json"; done
ndead=$((ndead + 5))
check "malformed messages are dead-lettered ($ndead)" wait_dead $ndead 60
check "duplicate type: answered for the one id, without a type" \
    bash -c "$(declare -f finals); EVLOG='$EVLOG'; finals '$ide' | grep -q '\"status\":\"failed\"' && ! finals '$ide' | grep -q '\"type\"'"
check "two ids: neither is answered (no guess)" \
    bash -c "! grep -qF -e '$ida' -e '$idb' -e '$idc' -e '$idd' '$EVLOG'"
check "NUL and invalid UTF-8: no answer for an id read past them" \
    bash -c "! grep -qF -e '$idf' -e '$idg' '$EVLOG'"
check "the worker survived them" alive "$w1"

# --- path fields of every store command -----------------------------------------------
mkdir -p "$tmp/outside" "$STORE/template/tmpl/2/201/g"
echo "outside" >"$tmp/outside/secret"
before_outside=$(find "$tmp/outside" -printf '%p %s %T@\n' | sort)
bad_paths=("../../outside/secret" "/etc/passwd" ".snapworker/journal/x" "template/tmpl/2/201/template.properties"
    "template/tmpl/2/201/g/g.ova.meta" "a/./b")
ids=()
for p in "${bad_paths[@]}"; do
	for ty in DeleteSnapshot DeleteTemplate ExtractTemplate; do
		id=$(uuid)
		ids+=("$id")
		cmd_path "$id" "$ty" "$p" >"$tmp/p.json"
		publish "$tmp/p.json"
	done
	id=$(uuid)
	ids+=("$id")
	cmd_template_snap "$id" "$p" 301 >"$tmp/p.json"
	publish "$tmp/p.json"
	id=$(uuid)
	ids+=("$id")
	cmd_volume "$id" "$p" v1 >"$tmp/p.json"
	publish "$tmp/p.json"
done
all_invalid() { local id; for id in "${ids[@]}"; do expect_code "$id" INVALID_COMMAND || { echo "  $id: $(finals "$id")"; return 1; }; done; }
check "every hostile path field: INVALID_COMMAND (${#ids[@]} commands)" all_invalid
check "nothing outside the store changed" \
    bash -c "[ \"\$(find '$tmp/outside' -printf '%p %s %T@\n' | sort)\" = '$before_outside' ]"
check "nothing was written into the store for them" \
    bash -c "[ -z \"\$(find '$STORE' -type f ! -path '*/.snapworker/*')\" ]"

# --- links planted where the command lock lives ----------------------------------------
mk_obj() { # DIR NAME: a committed new-format object
	mkdir -p "$STORE/$1"
	head -c 4096 /dev/urandom >"$STORE/$1/$2-disk0.vmdk"
	cat >"$STORE/$1/$2.ovf" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="$2-disk0.vmdk" ovf:id="file1" ovf:size="4096"/></References>
  <DiskSection><Info>Disks</Info><Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"/></DiskSection>
</Envelope>
EOF
	"$OVASTORE" -C "$STORE" commit "$1/$2" >/dev/null
}
mk_obj snapshots/2/13/lk lk
mkdir -p "$STORE/.snapworker"
rm -rf "$STORE/.snapworker/running"
ln -s "$tmp/outside" "$STORE/.snapworker/running"
id=$(uuid)
cmd_path "$id" DeleteSnapshot snapshots/2/13/lk/lk >"$tmp/lk.json"
publish "$tmp/lk.json"
check "lock directory a link: STORE_IO" expect_code "$id" STORE_IO
check "...saying the store is not safe" bash -c "$(declare -f finals); EVLOG='$EVLOG'; finals '$id' | grep -q 'not safe'"
check "...and the command did not run" "$OVASTORE" -C "$STORE" verify snapshots/2/13/lk/lk
rm "$STORE/.snapworker/running"
mkdir "$STORE/.snapworker/running"
id=$(uuid)
ln -s "$tmp/outside/secret" "$STORE/.snapworker/running/$id.lock"
cmd_path "$id" DeleteSnapshot snapshots/2/13/lk/lk >"$tmp/lk2.json"
publish "$tmp/lk2.json"
check "lock file a link: STORE_IO" expect_code "$id" STORE_IO
check "...the command did not run" "$OVASTORE" -C "$STORE" verify snapshots/2/13/lk/lk
check "...and the link's target is untouched" bash -c "[ \"\$(cat '$tmp/outside/secret')\" = outside ]"
rm "$STORE/.snapworker/running/$id.lock"
id=$(uuid)
cmd_path "$id" DeleteSnapshot snapshots/2/13/lk/lk >"$tmp/lk3.json"
submit "$conf" "$tmp/lk3.json" "$tmp/lk3.out" 60
check "with the plant gone the command runs" evtrue "$tmp/lk3.out" "e['status']=='succeeded'"

# --- a hostile OVA: a disk named template.properties -----------------------------------
mkdir -p "$tmp/www" "$tmp/ova"
cat >"$tmp/ova/t.ovf" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="template.properties" ovf:id="file1"/></References>
  <DiskSection><Info>Disks</Info><Disk ovf:capacity="1" ovf:diskId="vmdisk1" ovf:fileRef="file1"/></DiskSection>
</Envelope>
EOF
printf 'filename=other.ova\nuniquename=other\nid=999\n' >"$tmp/ova/template.properties"
tar --format=ustar -cf "$tmp/www/tprops.ova" -C "$tmp/ova" t.ovf template.properties
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
python3 -m http.server --bind 127.0.0.1 --directory "$tmp/www" "$port" >/dev/null 2>&1 &
evpids+=("$!")
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/tprops.ova" && break; sleep 0.1; done
reg() { # ID URL TEMPLATE_ID
	printf '{"version":1,"id":"%s","type":"RegisterTemplate","store":{"url":"%s"},"args":{"url":"%s","account_id":2,"template_id":%s}}' \
	    "$1" "$STORE_URL" "$2" "$3"
}
id=$(uuid)
reg "$id" "http://127.0.0.1:$port/tprops.ova" 401 >"$tmp/tp.json"
publish "$tmp/tp.json"
check "disk named template.properties: INVALID_COMMAND" expect_code "$id" INVALID_COMMAND
publish "$tmp/tp.json"
check "...and again on redelivery" bash -c "for i in \$(seq 300); do [ \"\$(grep -F '$id' '$EVLOG' | grep -c '\"status\":\"failed\"')\" = 2 ] && exit 0; sleep 0.2; done; exit 1"
check "...nothing committed, no template.properties" bash -c "[ -z \"\$(find '$STORE/template/tmpl/2/401' -type f 2>/dev/null)\" ]"

# --- SSRF ---------------------------------------------------------------------------------
ssrf_ids=()
for u in "http://127.0.0.2:$port/tprops.ova" "http://[::1]:$port/tprops.ova" "http://0.0.0.0:$port/tprops.ova" \
    "http://2130706434:$port/tprops.ova" "http://169.254.169.254/latest/meta-data" "http://10.0.0.1/x.ova" \
    "file:///etc/passwd" "gopher://127.0.0.1:$port/x"; do
	id=$(uuid)
	ssrf_ids+=("$id")
	reg "$id" "$u" 402 >"$tmp/s.json"
	publish "$tmp/s.json"
done
all_ssrf() { local id; for id in "${ssrf_ids[@]}"; do expect_code "$id" INVALID_COMMAND || { echo "  $id: $(finals "$id")"; return 1; }; done; }
check "internal addresses and other schemes refused (${#ssrf_ids[@]})" all_ssrf

# --- credential binding ------------------------------------------------------------------
# A listener that counts connections: the password must never be offered to it.
cat >"$tmp/count.py" <<'PY'
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
n = 0
while True:
    c, _ = s.accept(); n += 1
    open(sys.argv[2], "w").write(str(n)); c.close()
PY
python3 "$tmp/count.py" "$tmp/count.port" "$tmp/count.n" &
evpids+=("$!")
for _ in $(seq 50); do [ -s "$tmp/count.port" ] && break; sleep 0.1; done
cport=$(cat "$tmp/count.port")
vcport=${VCSIM_URL#https://127.0.0.1:}
vcport=${vcport%%/*}
cred_ids=()
for u in "https://127.0.0.1:$cport/sdk" "https://localhost:$vcport/sdk" "https://127.0.0.1:$vcport/sdk/../sdk" \
    "http://127.0.0.1:$vcport/sdk"; do
	id=$(uuid)
	cred_ids+=("$id")
	printf '{"version":1,"id":"%s","type":"CreateSnapshot","vcenter":{"url":"%s","credentials":"vc1"},"store":{"url":"%s"},"args":{"vm":{"uuid":"%s"},"disk":"[%s] x/x.vmdk","account_id":2,"volume_id":13}}' \
	    "$id" "$u" "$STORE_URL" "$VCSIM_VM_UUID" "$VCSIM_DATASTORE" >"$tmp/c.json"
	publish "$tmp/c.json"
done
all_auth() { local id; for id in "${cred_ids[@]}"; do expect_code "$id" VCENTER_AUTH || { echo "  $id: $(finals "$id")"; return 1; }; done; }
check "a URL the credential set is not bound to: VCENTER_AUTH" all_auth
check "nothing connected to the unbound URL's host" [ ! -s "$tmp/count.n" ]

# --- secrets --------------------------------------------------------------------------
mkfifo "$tmp/fifo.secret"
sed "s#^password_file = .*#password_file = $tmp/fifo.secret#" "$conf" >"$tmp/fifo.conf"
timeout 20 "$SW" check -c "$tmp/fifo.conf" >"$tmp/fifo.out" 2>&1
rc=$?
check "a FIFO as password_file: refused at once (not waited on)" \
    bash -c "[ $rc != 124 ] && [ $rc != 0 ] && grep -q 'not a regular file' '$tmp/fifo.out'"

# --- the worker after all that -----------------------------------------------------------
check "the worker is alive" alive "$w1"
id=$(uuid)
cmd_path "$id" DeleteSnapshot "snapshots/1/2/$id/$id" >"$tmp/after.json"
submit "$conf" "$tmp/after.json" "$tmp/after.out" 60
check "and still serves a valid command" evtrue "$tmp/after.out" "e['status']=='succeeded'"
check "no secret in its log" bash -c "! grep -qF -e 'vc-password' -e \"\$(cat '$PW_FILE')\" '$tmp/w1.log'"
kill -TERM "$w1"
wait_exit 120 "$w1"
rc=$?
check "SIGTERM: it exits 0 (under the sanitizers: no leak either)" [ $rc -eq 0 ]
check "no sanitizer report in its log" \
    bash -c "! grep -qE 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' '$tmp/w1.log'"
evlog_stop
e2e_done
