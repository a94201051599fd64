#!/bin/bash
# Self-test of the test rig: builds the simulator, starts it and a private
# RabbitMQ node in a temporary directory, talks plain SOAP (curl + heredocs)
# and AMQP (amqp-tools) to them, stops both and checks nothing is left.
# Prints the figures of README.md ("figures:" lines), then "N passed, N failed".
#
#   tests/rig/selftest.sh            (KEEP=1 keeps the temporary directory)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RIG=$ROOT/tests/rig
T=$(mktemp -d "${TMPDIR:-/tmp}/snapworker-rig-selftest.XXXXXX")
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
nok() { fail=$((fail + 1)); echo "FAIL - $1${2:+: $2}"; }
check() { # check NAME COMMAND...: the command's success is the check
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$name"; else nok "$name"; fi
}
same() { # same NAME GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else nok "$1" "got '$2', want '$3'"; fi
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

cleanup() {
	"$RIG/vcsim.sh" stop "$T/vc" >/dev/null 2>&1
	"$RIG/vcsim.sh" stop "$T/vc2" >/dev/null 2>&1
	"$RIG/rabbitmq.sh" stop "$T/mq" >/dev/null 2>&1
	if [ -z "${KEEP:-}" ]; then rm -rf "$T"; else echo "kept $T"; fi
}
trap cleanup EXIT

# xp XPATH < xml: the string value (namespaces ignored via local-name()).
xp() { xmllint --xpath "string($1)" - 2>/dev/null; }
el() { printf '//*[local-name()="%s"]' "$1"; }

# soap BASE JAR < body-elements: one call, answer on stdout, HTTP code in $T/code.
soap() {
	{
		printf '<?xml version="1.0" encoding="UTF-8"?>\n'
		printf '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soapenv:Body>'
		cat
		printf '</soapenv:Body></soapenv:Envelope>\n'
	} | curl -sS $TLS -b "$2" -c "$2" -o "$T/answer" -w '%{http_code}' \
		-H 'Content-Type: text/xml; charset=utf-8' -H 'SOAPAction: "urn:vim25/7.0"' \
		--data-binary @- "$1" >"$T/code"
	cat "$T/answer"
}

props() { # props OBJTYPE MOREF PATH...: RetrievePropertiesEx
	local type=$1 ref=$2 paths="" p
	shift 2
	for p in "$@"; do paths="$paths<pathSet>$p</pathSet>"; done
	soap "$URL" "$JAR" <<EOF
<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>$type</type>$paths</propSet><objectSet><obj type="$type">$ref</obj></objectSet></specSet><options/></RetrievePropertiesEx>
EOF
}

task_state() { props Task "$1" info.state | xp "$(el val)"; }

# wait_task TASK: poll until success/error (at most 60 s), print the final state.
wait_task() {
	local s i
	for i in $(seq 1 600); do
		s=$(task_state "$1")
		case $s in success | error) echo "$s"; return ;; esac
		sleep 0.1
	done
	echo "timeout"
}

nfc_url() { # the lease's device URL n, "*" replaced by the vCenter host
	local host=${URL#*://}
	host=${host%%/*}
	props HttpNfcLease "$1" info | xp "($(el url))[$2]" | sed "s#\*#$host#"
}

echo "== build"
t0=$(now)
cold=no
[ -d "$ROOT/build/gocache" ] || cold=yes
if [ -f "$ROOT/Makefile" ] && make -C "$ROOT" -n rig >/dev/null 2>&1; then
	make -C "$ROOT" rig >"$T/build.log" 2>&1
else
	make -C "$ROOT" -f rig.mk rig >"$T/build.log" 2>&1
fi
rc=$?
build_s=$(secs "$t0" "$(now)")
if [ $rc -eq 0 ]; then ok "build ($build_s s, cold cache: $cold)"; else nok build "$(tail -5 "$T/build.log")"; exit 1; fi

echo "== start"
t0=$(now)
"$RIG/vcsim.sh" start "$T/vc" -seed-mib 256 -vm-disks 2 >/dev/null
rc=$?
vc_start=$(secs "$t0" "$(now)")
[ $rc -eq 0 ] && ok "simulator started ($vc_start s, 2 disks x 256 MiB seeded)" || { nok "simulator start"; exit 1; }
# shellcheck disable=SC1091
. "$T/vc/vcsim.env"
URL=$VCSIM_URL
JAR=$T/cookies
TLS="--cacert $VCSIM_CACERT"
BASE=${URL%/sdk}
VC_PID=$VCSIM_PID

t0=$(now)
"$RIG/rabbitmq.sh" start "$T/mq" >/dev/null
rc=$?
mq_start=$(secs "$t0" "$(now)")
[ $rc -eq 0 ] && ok "broker started ($mq_start s)" || nok "broker start"
# shellcheck disable=SC1091
[ -f "$T/mq/rabbitmq.env" ] && . "$T/mq/rabbitmq.env"

echo "== TLS"
fp=$(openssl s_client -connect "${BASE#https://}" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2)
same "certificate SHA-256 is VCSIM_THUMBPRINT" "$fp" "$VCSIM_THUMBPRINT"
check "certificate verifies for 127.0.0.1 with VCSIM_CACERT" curl -sSf $TLS "$BASE/sdk/vimServiceVersions.xml"

echo "== SOAP"
soap "$URL" "$JAR" <<'EOF' >/dev/null
<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>administrator@vsphere.local</userName><password>any</password></Login>
EOF
same "Login" "$(cat "$T/code")" 200
VM=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<FindByUuid xmlns="urn:vim25"><_this type="SearchIndex">SearchIndex</_this><uuid>$VCSIM_VM_UUID</uuid><vmSearch>true</vmSearch></FindByUuid>
EOF
)
[ -n "$VM" ] && ok "FindByUuid -> $VM" || nok "FindByUuid"

export_vm() {
	soap "$URL" "$JAR" <<EOF
<ExportVm xmlns="urn:vim25"><_this type="VirtualMachine">$1</_this></ExportVm>
EOF
}
fault=$(export_vm "$VM" | xp "local-name($(el detail)/*)")
same "ExportVm of a powered-on VM is refused" "$fault" InvalidPowerStateFault

task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<PowerOffVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">$VM</_this></PowerOffVM_Task>
EOF
)
same "PowerOffVM_Task" "$(wait_task "$task")" success

LEASE=$(export_vm "$VM" | xp "$(el returnval)")
same "ExportVm lease is ready" "$(props HttpNfcLease "$LEASE" state | xp "$(el val)")" ready
info=$(props HttpNfcLease "$LEASE" info)
KEY0=$(echo "$info" | xp "($(el key))[1]")
KEY1=$(echo "$info" | xp "($(el key))[2]")
same "device URL keeps the * host" "$(echo "$info" | xp "($(el url))[1]" | cut -d/ -f3)" "*"
same "deviceUrl sslThumbprint is the server's SHA-1" "$(echo "$info" | xp "($(el sslThumbprint))[1]")" "$VCSIM_THUMBPRINT_SHA1"
same "deviceUrl fileSize" "$(echo "$info" | xp "($(el fileSize))[1]")" "$VCSIM_SEED_BYTES"
D0=$(nfc_url "$LEASE" 1)
D1=$(nfc_url "$LEASE" 2)

speed=$(curl -sSf $TLS -o /dev/null -w '%{speed_download}' "$D0")
mibs=$(awk -v s="$speed" 'BEGIN { printf "%.0f", s / 1048576 }')
echo "figures: NFC GET of 256 MiB over HTTPS with curl -o /dev/null: $mibs MiB/s ($(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
same "NFC GET disk 0 = VCSIM_SEED_SHA256_0" "$(curl -sSf $TLS "$D0" | sha256sum | cut -c1-64)" "$VCSIM_SEED_SHA256_0"
same "NFC GET disk 1 = VCSIM_SEED_SHA256_1" "$(curl -sSf $TLS "$D1" | sha256sum | cut -c1-64)" "$VCSIM_SEED_SHA256_1"

code=$(curl -sS $TLS -o "$T/range" -w '%{http_code}' -r 1000-1999 "$D0")
want=$(tail -c +1001 "$VCSIM_DATASTORE_DIR/DC0_H0_VM0/disk1.vmdk" | head -c 1000 | sha256sum)
same "Range request answers 206" "$code" 206
same "Range request bytes" "$(sha256sum <"$T/range")" "$want"
same "HEAD gives the length" "$(curl -sSI $TLS "$D0" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')" "$VCSIM_SEED_BYTES"

soap "$URL" "$JAR" <<EOF >/dev/null
<HttpNfcLeaseProgress xmlns="urn:vim25"><_this type="HttpNfcLease">$LEASE</_this><percent>50</percent></HttpNfcLeaseProgress>
EOF
same "HttpNfcLeaseProgress" "$(cat "$T/code")" 200
sha1=$(soap "$URL" "$JAR" <<EOF | xp "($(el sha1))[1]"
<HttpNfcLeaseGetManifest xmlns="urn:vim25"><_this type="HttpNfcLease">$LEASE</_this></HttpNfcLeaseGetManifest>
EOF
)
same "HttpNfcLeaseGetManifest sha1" "$sha1" "$(sha1sum <"$VCSIM_DATASTORE_DIR/DC0_H0_VM0/disk1.vmdk" | cut -c1-40)"

descriptor() {
	soap "$URL" "$JAR" <<EOF | xp "$(el ovfDescriptor)"
<CreateDescriptor xmlns="urn:vim25"><_this type="OvfManager">OvfManager</_this><obj type="VirtualMachine">$VM</obj><cdp><ovfFiles><deviceId>$KEY0</deviceId><path>snap-disk0.vmdk</path><size>$VCSIM_SEED_BYTES</size></ovfFiles><ovfFiles><deviceId>$KEY1</deviceId><path>snap-disk1.vmdk</path><size>$VCSIM_SEED_BYTES</size></ovfFiles><name>snap</name><includeImageFiles>false</includeImageFiles></cdp></CreateDescriptor>
EOF
}
descriptor >"$T/snap.ovf"
check "CreateDescriptor: xmllint accepts the OVF" xmllint --noout "$T/snap.ovf"
same "CreateDescriptor: both disks have a fileRef" "$(xp "count(//*[local-name()='Disk'][@*[local-name()='fileRef']])" <"$T/snap.ovf")" 2
same "CreateDescriptor is deterministic" "$(descriptor | sha256sum)" "$(sha256sum <"$T/snap.ovf")"

soap "$URL" "$JAR" <<EOF >/dev/null
<HttpNfcLeaseComplete xmlns="urn:vim25"><_this type="HttpNfcLease">$LEASE</_this></HttpNfcLeaseComplete>
EOF
same "HttpNfcLeaseComplete" "$(cat "$T/code")" 200
same "URL is 404 after complete" "$(curl -sS $TLS -o /dev/null -w '%{http_code}' "$D0")" 404

echo "== failure injection"
LEASE=$(export_vm "$VM" | xp "$(el returnval)")
D0=$(nfc_url "$LEASE" 1)
curl -sSf $TLS -X POST "$BASE/rig/inject?nfc_fail_after=1048576" >/dev/null
curl -sS $TLS "$D0" -o "$T/cut" 2>/dev/null
rc=$?
same "nfc_fail_after cuts the download (curl exit 18)" "$rc:$(stat -c %s "$T/cut")" "18:1048576"
same "the next download is whole" "$(curl -sSf $TLS "$D0" | sha256sum | cut -c1-64)" "$VCSIM_SEED_SHA256_0"
soap "$URL" "$JAR" <<EOF >/dev/null
<HttpNfcLeaseAbort xmlns="urn:vim25"><_this type="HttpNfcLease">$LEASE</_this></HttpNfcLeaseAbort>
EOF
same "URL is 404 after abort" "$(curl -sS $TLS -o /dev/null -w '%{http_code}' "$D0")" 404

snapshot() {
	soap "$URL" "$JAR" <<EOF
<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">$VM</_this><name>$1</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>
EOF
}
curl -sSf $TLS -X POST "$BASE/rig/inject?fault=CreateSnapshot_Task&fault_type=TaskInProgress" >/dev/null
same "injected fault answers TaskInProgress" "$(snapshot s0 | xp "local-name($(el detail)/*)")" TaskInProgressFault

echo "== snapshots and worker VM"
task=$(snapshot s1 | xp "$(el returnval)")
same "CreateSnapshot_Task" "$(wait_task "$task")" success
SNAP=$(props Task "$task" info.result | xp "$(el val)")
check "delta file disk1-000001.vmdk created" test -f "$VCSIM_DATASTORE_DIR/DC0_H0_VM0/disk1-000001.vmdk"
dev=$(props VirtualMachine "$VM" config.hardware.device)
same "VM runs on the delta" "$(echo "$dev" | xp "($(el backing)$(el fileName))[1]" | sed 's/.*\///')" disk1-000001.vmdk
same "delta's parent is the base disk" "$(echo "$dev" | xp "($(el backing)$(el parent)$(el fileName))[1]")" "[LocalDS_0] DC0_H0_VM0/disk1.vmdk"
BASE0=$(props VirtualMachineSnapshot "$SNAP" config.hardware.device | xp "($(el backing)$(el fileName))[1]")
same "snapshot config keeps the base disk" "$BASE0" "[LocalDS_0] DC0_H0_VM0/disk1.vmdk"

vmprops=$(props VirtualMachine "$VM" parent resourcePool)
FOLDER=$(echo "$vmprops" | xp "($(el val))[1]")
POOL=$(echo "$vmprops" | xp "($(el val))[2]")
task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<CreateVM_Task xmlns="urn:vim25"><_this type="Folder">$FOLDER</_this><config><name>worker-1</name><guestId>otherGuest</guestId><files><vmPathName>[LocalDS_0]</vmPathName></files><numCPUs>1</numCPUs><memoryMB>32</memoryMB><deviceChange><operation>add</operation><device xsi:type="ParaVirtualSCSIController"><key>1000</key><busNumber>0</busNumber><sharedBus>noSharing</sharedBus></device></deviceChange><deviceChange><operation>add</operation><device xsi:type="VirtualDisk"><key>-1</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>$BASE0</fileName><diskMode>persistent</diskMode></backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>$((VCSIM_SEED_BYTES / 1024))</capacityInKB></device></deviceChange></config><pool type="ResourcePool">$POOL</pool></CreateVM_Task>
EOF
)
same "CreateVM_Task worker VM on the snapshot's disk" "$(wait_task "$task")" success
WORKER=$(props Task "$task" info.result | xp "$(el val)")
LEASE=$(export_vm "$WORKER" | xp "$(el returnval)")
same "worker VM export = seeded bytes" "$(curl -sSf $TLS "$(nfc_url "$LEASE" 1)" | sha256sum | cut -c1-64)" "$VCSIM_SEED_SHA256_0"
soap "$URL" "$JAR" <<EOF >/dev/null
<HttpNfcLeaseComplete xmlns="urn:vim25"><_this type="HttpNfcLease">$LEASE</_this></HttpNfcLeaseComplete>
EOF
dkey=$(props VirtualMachine "$WORKER" config.hardware.device | xp "//*[local-name()='val']/*[@*[local-name()='type']='VirtualDisk']/*[local-name()='key']")
task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">$WORKER</_this><spec><deviceChange><operation>remove</operation><device xsi:type="VirtualDisk"><key>$dkey</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>$BASE0</fileName><diskMode>persistent</diskMode></backing><controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>0</capacityInKB></device></deviceChange></spec></ReconfigVM_Task>
EOF
)
same "ReconfigVM_Task detaches the disk" "$(wait_task "$task")" success
task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<Destroy_Task xmlns="urn:vim25"><_this type="VirtualMachine">$WORKER</_this></Destroy_Task>
EOF
)
same "Destroy_Task worker VM" "$(wait_task "$task")" success
check "base disk survives the worker VM" test -s "$VCSIM_DATASTORE_DIR/DC0_H0_VM0/disk1.vmdk"

task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">$SNAP</_this><removeChildren>false</removeChildren></RemoveSnapshot_Task>
EOF
)
same "RemoveSnapshot_Task" "$(wait_task "$task")" success
check "delta file consolidated away" test ! -e "$VCSIM_DATASTORE_DIR/DC0_H0_VM0/disk1-000001.vmdk"
same "VM back on the base disk" "$(props VirtualMachine "$VM" config.hardware.device | xp "($(el backing)$(el fileName))[1]")" "[LocalDS_0] DC0_H0_VM0/disk1.vmdk"
same "base disk intact" "$(sha256sum <"$VCSIM_DATASTORE_DIR/DC0_H0_VM0/disk1.vmdk" | cut -c1-64)" "$VCSIM_SEED_SHA256_0"
for s in s2 s3; do
	task=$(snapshot $s | xp "$(el returnval)")
	[ "$(wait_task "$task")" = success ] || nok "CreateSnapshot_Task $s"
done
same "two snapshots: chain of 3 files" "$(props VirtualMachine "$VM" config.hardware.device | xp "count((//*[@*[local-name()='type']='VirtualDisk'])[1]$(el fileName))")" 3
task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<RemoveAllSnapshots_Task xmlns="urn:vim25"><_this type="VirtualMachine">$VM</_this></RemoveAllSnapshots_Task>
EOF
)
same "RemoveAllSnapshots_Task" "$(wait_task "$task")" success
same "no delta or .vmsn file left" "$(ls "$VCSIM_DATASTORE_DIR/DC0_H0_VM0" | grep -cE -- '-0000[0-9]{2}|\.vmsn$')" 0
same "base disk still intact" "$(sha256sum <"$VCSIM_DATASTORE_DIR/DC0_H0_VM0/disk1.vmdk" | cut -c1-64)" "$VCSIM_SEED_SHA256_0"
state=$(curl -sSf $TLS "$BASE/rig/state")
check "/rig/state answers JSON with the VM" grep -q '"name": "DC0_H0_VM0"' <<<"$state"

echo "== import"
DS=$(props VirtualMachine "$VM" datastore | xp "($(el ManagedObjectReference))[1]")
spec=$(soap "$URL" "$JAR" <<EOF | xmllint --xpath "$(el importSpec)" - 2>/dev/null
<CreateImportSpec xmlns="urn:vim25"><_this type="OvfManager">OvfManager</_this><ovfDescriptor>$(sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g' "$T/snap.ovf")</ovfDescriptor><resourcePool type="ResourcePool">$POOL</resourcePool><datastore type="Datastore">$DS</datastore><cisp><locale></locale><deploymentOption></deploymentOption><entityName>imported</entityName></cisp></CreateImportSpec>
EOF
)
spec=${spec/<importSpec/<spec}
spec=${spec%</importSpec>}"</spec>"
LEASE=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<ImportVApp xmlns="urn:vim25"><_this type="ResourcePool">$POOL</_this>$spec<folder type="Folder">$FOLDER</folder></ImportVApp>
EOF
)
[ -n "$LEASE" ] && ok "CreateImportSpec + ImportVApp -> $LEASE" || nok "ImportVApp" "$(head -c 400 "$T/answer")"
head -c 3145728 /dev/urandom >"$T/upload"
code=$(curl -sS $TLS -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/upload" -H 'Content-Type: application/x-vnd.vmware-streamVmdk' "$(nfc_url "$LEASE" 1)")
same "NFC PUT upload" "$code" 200
soap "$URL" "$JAR" <<EOF >/dev/null
<HttpNfcLeaseComplete xmlns="urn:vim25"><_this type="HttpNfcLease">$LEASE</_this></HttpNfcLeaseComplete>
EOF
got=$(curl -sSf $TLS -b "$JAR" "$BASE/folder/imported/disk-0.vmdk?dcPath=DC0&dsName=LocalDS_0" | sha256sum)
same "upload persisted (datastore GET)" "$got" "$(sha256sum <"$T/upload")"

echo "== second simulator: -http, -task-delay, -user"
printf 'S3cret\n' >"$T/vc2.pw"
t0=$(now)
"$RIG/vcsim.sh" start "$T/vc2" -http -task-delay 2s -user alice -password-file "$T/vc2.pw" >/dev/null
rc=$?
vc2_start=$(secs "$t0" "$(now)")
[ $rc -eq 0 ] && ok "second simulator started side by side ($vc2_start s, no seed)" || nok "second simulator start"
URL2=$(. "$T/vc2/vcsim.env" && echo "$VCSIM_URL")
VC2_PID=$(. "$T/vc2/vcsim.env" && echo "$VCSIM_PID")
check "the password is not printed" bash -c "! grep -q S3cret '$T/vc2/vcsim.env' '$T/vc2/vcsim.log' '$T/vc2/vcsim.out'"
login2() {
	soap "$URL2" "$T/jar2" <<EOF >/dev/null
<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>$1</userName><password>$2</password></Login>
EOF
	cat "$T/code"
}
same "wrong password refused" "$(login2 alice wrong)" 500
same "-user/-password-file login" "$(login2 alice S3cret)" 200
saveURL=$URL saveJAR=$JAR
URL=$URL2 JAR=$T/jar2
VM2=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<FindByUuid xmlns="urn:vim25"><_this type="SearchIndex">SearchIndex</_this><uuid>$VCSIM_VM_UUID</uuid><vmSearch>true</vmSearch></FindByUuid>
EOF
)
t0=$(now)
task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<PowerOffVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">$VM2</_this></PowerOffVM_Task>
EOF
)
same "delayed task starts queued" "$(task_state "$task")" queued
sleep 1
same "then runs" "$(task_state "$task")" running
same "and succeeds" "$(wait_task "$task")" success
took=$(secs "$t0" "$(now)")
check "after about -task-delay ($took s)" awk -v t="$took" 'BEGIN { exit !(t >= 1.8 && t < 5) }'
curl -sSf -X POST "${URL%/sdk}/rig/inject?fault=PowerOnVM_Task&fault_type=InsufficientResourcesFault&in_task=1" >/dev/null
task=$(soap "$URL" "$JAR" <<EOF | xp "$(el returnval)"
<PowerOnVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">$VM2</_this></PowerOnVM_Task>
EOF
)
same "in_task fault: the task ends in error" "$(wait_task "$task")" error
same "with the injected fault" "$(props Task "$task" info.error | xp "$(el fault)/@*[local-name()='type']")" InsufficientResourcesFault
URL=$saveURL JAR=$saveJAR

echo "== broker"
if [ -n "${AMQP_URL:-}" ]; then
	pw=$(cat "$AMQP_PASSWORD_FILE")
	amqp=${AMQP_URL/snapworker@/snapworker:$pw@}
	check "amqp.secret is mode 0600" test "$(stat -c %a "$AMQP_PASSWORD_FILE")" = 600
	check "amqp-declare-queue" amqp-declare-queue --url="$amqp" -q rig.selftest -d
	check "amqp-publish" bash -c "echo -n hello-rig | amqp-publish --url='$amqp' -r rig.selftest -p"
	same "amqp-get" "$(amqp-get --url="$amqp" -q rig.selftest 2>&1)" hello-rig
	check "wrong password refused" bash -c "! amqp-get --url='${AMQP_URL/snapworker@/snapworker:wrong@}' -q rig.selftest"
	check "RABBITMQCTL works" bash -c "$RABBITMQCTL list_queues name | grep -q rig.selftest"
	MQ_PID=$RABBITMQ_PID
	EPMD_PORT=$(. "$T/mq/rabbitmq.state" && echo "$EPMD_PORT")
fi

echo "== stop"
alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
gone() { ! alive "$1"; }
"$RIG/vcsim.sh" stop "$T/vc"
"$RIG/vcsim.sh" stop "$T/vc2"
"$RIG/rabbitmq.sh" stop "$T/mq"
check "simulator process gone" gone "$VC_PID"
check "second simulator process gone" gone "$VC2_PID"
if [ -n "${MQ_PID:-}" ]; then
	check "broker process gone" gone "$MQ_PID"
	check "its epmd gone" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$EPMD_PORT)"
fi
left=$(for p in /proc/[0-9]*; do
	alive "${p#/proc/}" && tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$T" && echo "${p#/proc/}"
done)
same "no process left that refers to the test dir" "$left" ""

echo "figures: build $build_s s (cold cache: $cold); simulator start-up $vc_start s with 2x256 MiB seeded, $vc2_start s unseeded; broker start-up $mq_start s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
