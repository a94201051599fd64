#!/usr/bin/env bash
# Operations: the logs of a full run.  A worker at log_level = debug runs a
# command sequence through the broker against a simulator that accepts only
# the vCenter password of this run (CreateSnapshot, CreateTemplate from it,
# ExtractTemplate, a credential refused, a bad path, a poison message,
# DeleteTemplate, DeleteSnapshot).  Then: every line is a JSON object with
# ts/level/worker/msg; every job's final line carries cmd_id, type and its
# duration; neither the AMQP nor the vCenter password appears anywhere (logs,
# events, snapctl output, the share).  Also: text on a terminal and with -v,
# levels filter.  Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

VC_PW=vcpw-$(openssl rand -hex 12)
printf '%s\n' "$VC_PW" >"$tmp/vcsim.secret"
e2e_start_vcsim -seed-mib 2 -user snap -password-file "$tmp/vcsim.secret"
# e2e_start_vcsim wrote a default secret for the workers: ours is the only one the simulator takes.
printf '%s\n' "$VC_PW" >"$tmp/vc.secret"
chmod 600 "$tmp/vc.secret"
e2e_broker
AMQP_PW=$(head -n1 "$PW_FILE")
check "the broker password is not empty (the grep below means something)" [ ${#AMQP_PW} -ge 8 ]

conf=$tmp/w.conf
e2e_conf "$conf" 2
sed -i 's/^\[worker\]$/[worker]\nlog_level = debug\nname = logw/' "$conf"
# A second credential set bound to the same URL, with a wrong password: a refused login.
printf 'wrong-%s\n' "$(openssl rand -hex 8)" >"$tmp/bad.secret"
chmod 600 "$tmp/bad.secret"
printf '[vcenter bad]\nurl = %s\nuser = snap\npassword_file = %s\nthumbprint = %s\n' \
    "$VCSIM_URL" "$tmp/bad.secret" "$VCSIM_THUMBPRINT" >>"$conf"
e2e_worker "$conf" logw
w1=$wpid
check "worker consumes" e2e_wait_consumers "$conf" 2

ids=()
run() { # NAME JSON-printing command...
	local name=$1
	shift
	"$@" >"$tmp/$name.json"
	submit "$conf" "$tmp/$name.json" "$tmp/$name.out"
	ids+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/$name.json")")
}
disk="[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk"
sid=$(uuid)
run snap cmd_snapshot "$sid" "$disk"
check "CreateSnapshot succeeds (the simulator took this run's password)" evtrue "$tmp/snap.out" "e['status']=='succeeded'"
run tmpl cmd_template_snap "$(uuid)" "snapshots/2/13/$sid/$sid" 77
check "CreateTemplate from it succeeds" evtrue "$tmp/tmpl.out" "e['status']=='succeeded'"
tpath=$(evpy "$tmp/tmpl.out" "e['result']['install_path']")
run extract cmd_path "$(uuid)" ExtractTemplate "$tpath"
check "ExtractTemplate succeeds" evtrue "$tmp/extract.out" "e['status']=='succeeded'"
badcred_cmd() { cmd_snapshot "$(uuid)" "$disk" | sed 's/"credentials":"vc1"/"credentials":"bad"/'; }
run badcred badcred_cmd
check "a refused vCenter login fails the command" evtrue "$tmp/badcred.out" "e['status']=='failed'"
run badpath cmd_path "$(uuid)" DeleteSnapshot "../escape"
check "a path outside the store fails the command" evtrue "$tmp/badpath.out" "e['status']=='failed'"
printf '{"version":1,"id":"poison-%s","type":' "$(openssl rand -hex 4)" >"$tmp/poison.json"
"$CTL" -c "$conf" --password-file "$PW_FILE" submit --no-validate "$tmp/poison.json" >/dev/null 2>&1
run deltmpl cmd_path "$(uuid)" DeleteTemplate "$tpath"
run delsnap cmd_path "$(uuid)" DeleteSnapshot "snapshots/2/13/$sid/$sid"
check "DeleteSnapshot succeeds" evtrue "$tmp/delsnap.out" "e['status']=='succeeded'"
for _ in $(seq 50); do grep -q 'poison message' "$tmp/logw.log" && break; sleep 0.1; done
kill -TERM "$w1"
wait_exit 120 "$w1"
check "worker stops cleanly" [ $? -eq 0 ]

# --- secrets ------------------------------------------------------------------------------
where_secrets() { # prints every file that holds either password
	grep -rlF -e "$AMQP_PW" -e "$VC_PW" "$tmp"/*.log "$tmp"/*.out "$tmp"/*.err "$STORE" "$tmp/extract" 2>/dev/null
}
check "no password in the worker log, events, snapctl output or the share" [ -z "$(where_secrets)" ] ||
    where_secrets | sed 's/^/  leaked in: /'
check "not even the wrong password of the refused login" bash -c "! grep -qF -f '$tmp/bad.secret' '$tmp/logw.log'"
check "the debug log is substantial (the check above saw the libraries' lines)" \
    [ "$(grep -c '"level":"debug"' "$tmp/logw.log")" -ge 20 ]

# --- JSON lines, fields, job lines -----------------------------------------------------
cat >"$tmp/logcheck.py" <<'EOF'
import json, re, sys
log, ids = sys.argv[1], set(sys.argv[2].split())
bad, jobs, seen, with_id_no_type = [], [], set(), []
final = re.compile(r"^(succeeded in (\d+) ms|failed after (\d+) ms: .*|poison message \(delivery attempt \d+\) after (\d+) ms: .*)$")
for n, line in enumerate(open(log, encoding="utf-8"), 1):
    try:
        o = json.loads(line)
    except ValueError:
        bad.append("line %d is not JSON: %r" % (n, line[:120]))
        continue
    if not isinstance(o, dict) or not all(isinstance(o.get(k), str) for k in ("ts", "level", "worker", "msg")):
        bad.append("line %d lacks ts/level/worker/msg" % n)
        continue
    if o["worker"] != "logw":
        bad.append("line %d: worker %r" % (n, o["worker"]))
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["ts"]):
        bad.append("line %d: ts %r" % (n, o["ts"]))
    if o["level"] not in ("error", "warn", "info", "debug"):
        bad.append("line %d: level %r" % (n, o["level"]))
    if "cmd_id" in o and o["cmd_id"] in ids and "type" not in o:
        with_id_no_type.append(n)
    m = final.match(o["msg"])
    if m:
        jobs.append(o)
        if "cmd_id" in o:
            seen.add(o["cmd_id"])
        if not m.group(0).startswith("poison") and ("cmd_id" not in o or "type" not in o):
            bad.append("job line %d without cmd_id/type: %s" % (n, line.strip()))
for b in bad[:10]:
    print("  " + b)
print("  %d job lines; commands without one: %s" % (len(jobs), sorted(ids - seen)))
ok = not bad and not with_id_no_type and ids <= seen and any(j["msg"].startswith("poison") for j in jobs)
sys.exit(0 if ok else 1)
EOF
check "every line is JSON with ts/level/worker/msg; every command's final line has cmd_id, type and its duration (poison too)" \
    python3 "$tmp/logcheck.py" "$tmp/logw.log" "${ids[*]}"
check "the checker refuses a job line without its duration" bash -c \
    "printf '{\"ts\":\"2026-01-01T00:00:00.000Z\",\"level\":\"info\",\"worker\":\"logw\",\"cmd_id\":\"x\",\"msg\":\"succeeded\"}\n' >'$tmp/fake.log'; ! python3 '$tmp/logcheck.py' '$tmp/fake.log' x >/dev/null"
check "a failed job's line names its error code" grep -q '"type":"CreateSnapshot","msg":"failed after [0-9]* ms: VCENTER_AUTH' "$tmp/logw.log"

# --- text on a terminal, -v, levels (run-once: no broker needed) ---------------------------
once=$tmp/once.conf
printf '[store]\n%s = %s\n' "$STORE_URL" "$STORE" >"$once"
cmd_path "$(uuid)" DeleteSnapshot "snapshots/9/9/none/none" >"$tmp/d.json"
"$SW" run-once -c "$once" "$tmp/d.json" >/dev/null 2>"$tmp/once-json.log"
check "not a terminal: JSON lines" python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$tmp/once-json.log"
"$SW" -v run-once -c "$once" "$tmp/d.json" >/dev/null 2>"$tmp/once-v.log"
check "-v: text lines '<ts> info [<id> <type>]: succeeded in N ms'" \
    grep -qE '^[0-9T:.-]+Z info \[[0-9a-f-]+ DeleteSnapshot\]: succeeded in [0-9]+ ms$' "$tmp/once-v.log"
script -qec "'$SW' run-once -c '$once' '$tmp/d.json' >/dev/null" /dev/null >"$tmp/once-tty.log" 2>&1
check "on a terminal (log_format = auto): text, not JSON" bash -c \
    "tr -d '\r' <'$tmp/once-tty.log' | grep -qE ' info \[[0-9a-f-]+ DeleteSnapshot\]: succeeded in [0-9]+ ms$' && ! grep -q '^{' '$tmp/once-tty.log'"
cmd_path "$(uuid)" DeleteSnapshot "/abs/path" >"$tmp/bad.json"
SNAPWORKER_WORKER_LOG_LEVEL=warn "$SW" run-once -c "$once" "$tmp/d.json" >/dev/null 2>"$tmp/once-warn-ok.log"
SNAPWORKER_WORKER_LOG_LEVEL=warn "$SW" run-once -c "$once" "$tmp/bad.json" >/dev/null 2>"$tmp/once-warn-bad.log"
check "log_level = warn: no info line" [ ! -s "$tmp/once-warn-ok.log" ]
check "log_level = warn: the failure is still logged" grep -q '"level":"warn".*failed' "$tmp/once-warn-bad.log"

# --- under systemd: stderr is the journal stream (JOURNAL_STREAM names it): syslog priorities
: >"$tmp/journal.log"
js=$(stat -c '%d:%i' "$tmp/journal.log")
JOURNAL_STREAM=$js "$SW" run-once -c "$once" "$tmp/d.json" >/dev/null 2>>"$tmp/journal.log"
JOURNAL_STREAM=$js "$SW" run-once -c "$once" "$tmp/bad.json" >/dev/null 2>>"$tmp/journal.log"
check "to the journal: every line starts with its priority, <6> for info, <4> for warnings" bash -c \
    "! grep -qv '^<[3467]>{' '$tmp/journal.log' && grep -q '^<6>{.*\"level\":\"info\"' '$tmp/journal.log' &&
        grep -q '^<4>{.*\"level\":\"warn\"' '$tmp/journal.log'"
JOURNAL_STREAM=1:1 "$SW" run-once -c "$once" "$tmp/d.json" >/dev/null 2>"$tmp/notjournal.log"
check "a JOURNAL_STREAM that is not stderr (a redirection): no prefix" grep -q '^{' "$tmp/notjournal.log"

e2e_done
