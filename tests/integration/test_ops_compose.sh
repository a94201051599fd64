#!/usr/bin/env bash
# Operations: docker/docker-compose.yml against the process rig the tests use.
# No Docker engine runs here, so: `docker-compose config` validates the file;
# its resolved topology is checked (broker, simulator, N scalable workers
# sharing one named volume as the store, config and secrets read-only, the
# addresses and secret paths of the worker config pointing at the compose
# services); the worker config it mounts has the keys of the config the tests
# generate; consumer_timeout is the same in both brokers' configs; and the
# compose's own simulator command and worker config/entrypoint are run here,
# on loopback, against the runner's broker: a CreateSnapshot must succeed.
# Prints "N passed, N failed".
# shellcheck disable=SC1091
. "$(dirname "$0")/test_e2e_lib.sh"

D=$here/docker
check "docker-compose is installed (scripts/deps.sh)" command -v docker-compose
if ! command -v docker-compose >/dev/null; then
	e2e_done
	exit 1
fi
docker-compose -f "$D/docker-compose.yml" config >"$tmp/compose.yml" 2>"$tmp/compose.err"
check "docker-compose config accepts the file" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/compose.err"

# --- the resolved topology ----------------------------------------------------------
cat >"$tmp/topo.py" <<'EOF'
import configparser, re, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
docker = sys.argv[2]
fails = []
def need(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        fails.append(what)

ini = configparser.ConfigParser(delimiters=("=",), inline_comment_prefixes=(";", "#"), strict=True,
                                interpolation=None)
ini.optionxform = str
ini.read(docker + "/snapworker.conf")

s = compose.get("services", {})
need(set(s) == {"rabbitmq", "vcsim", "worker"}, "services: rabbitmq, vcsim, worker (the rig's broker, simulator, workers)")
mq, vc, w = s.get("rabbitmq", {}), s.get("vcsim", {}), s.get("worker", {})
need(str(mq.get("image", "")).startswith("rabbitmq:"), "the broker is the official rabbitmq image")
need(any(v.endswith("/docker/rabbitmq.conf:/etc/rabbitmq/rabbitmq.conf:ro") for v in mq.get("volumes", [])),
     "rabbitmq.conf mounted read-only")
defs = [x for x in open(docker + "/rabbitmq.conf") if x.startswith("load_definitions")]
need(len(defs) == 1 and defs[0].split("=")[1].strip() == "/run/secrets/rabbitmq_definitions" and
     any(x.get("source") == "rabbitmq_definitions" for x in mq.get("secrets", [])),
     "the broker's user comes from a secret (definitions)")
need(vc.get("build", {}).get("dockerfile") == "docker/Dockerfile.vcsim", "the simulator is built by docker/Dockerfile.vcsim")
need("make -f rig.mk rig" in open(docker + "/Dockerfile.vcsim").read(), "... with the rig's own build (rig.mk)")
need(w.get("build", {}).get("dockerfile") == "docker/Dockerfile", "workers are built by docker/Dockerfile")

# Scalable workers: replicas, and nothing that pins one container.
need(int(w.get("deploy", {}).get("replicas", 0)) >= 2, "worker deploy.replicas >= 2")
need("container_name" not in w, "no container_name (docker compose up --scale worker=N works)")
need(not any(":" in str(p) for p in w.get("ports", [])), "no fixed host port on the workers")
need({"rabbitmq", "vcsim"} <= set(w.get("depends_on", {})), "workers depend on the broker and the simulator")

# The shared store: one named volume mounted where the config's [store] points, in every worker.
mounts = {}
for v in w.get("volumes", []):
    parts = v.split(":")
    mounts[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "rw")
store_mounts = [v for k, v in ini.items("store") if "://" in k]
need(len(store_mounts) == 1, "the worker config maps one store")
src = mounts.get(store_mounts[0], ("", ""))[0] if store_mounts else ""
need(src in compose.get("volumes", {}) and mounts[store_mounts[0]][1] == "rw",
     "the store mount point is a named volume (read-write), the NFS share's stand-in")
need(ini.get("store", "extract_dir", fallback="").startswith(store_mounts[0] + "/") if store_mounts else False,
     "extract_dir lies on the shared volume")
conf = mounts.get("/etc/snapworker/snapworker.conf", ("", ""))
need(conf[0].endswith("/docker/snapworker.conf") and conf[1] == "ro", "the worker config is mounted read-only")

# Secrets: every password_file is a compose secret of that service; nothing secret in the config.
wsec = {x.get("source") for x in w.get("secrets", [])}
for sec, key in (("amqp", "password_file"), ("vcenter vc1", "password_file")):
    p = ini.get(sec, key, fallback="")
    m = re.fullmatch(r"/run/secrets/([a-z_]+)", p)
    need(bool(m) and m.group(1) in wsec and m.group(1) in compose.get("secrets", {}),
         "[%s] %s is a compose secret of the worker (%s)" % (sec, key, p))
need(not [k for s_ in ini.sections() for k in ini[s_] if k == "password"], "no password in the worker config")

# Addresses: the config points at the compose services.
need(re.match(r"amqp://[^@]+@rabbitmq:5672/", ini.get("amqp", "url")), "[amqp] url points at the rabbitmq service")
cmd = vc.get("command", [])
arg = lambda k: cmd[cmd.index(k) + 1] if k in cmd else None
port = (arg("-listen") or ":").rsplit(":", 1)[1]
need(ini.get("vcenter vc1", "url") == "https://vcsim:%s/sdk" % port, "[vcenter vc1] url points at the vcsim service's port")
need(arg("-cert-host") == "vcsim", "the simulator's certificate names the vcsim service")
need(arg("-user") == ini.get("vcenter vc1", "user"), "the simulator accepts the config's vCenter user only")
pf = arg("-password-file") or ""
need(pf.startswith("/run/secrets/") and pf.split("/")[-1] in {x.get("source") for x in vc.get("secrets", [])},
     "the simulator's password is a compose secret")
need(compose.get("secrets", {}).get(pf.split("/")[-1], {}).get("file", "").endswith("/secrets/vcsim.secret") and
     compose["secrets"].get("vc_password", {}).get("file", "").endswith("/secrets/vc.secret"),
     "simulator and workers read the vCenter password made by make-secrets.sh")
# The resolved file keeps compose's "$$" escapes; the container sees "$".
ep = " ".join(w.get("entrypoint", [])).replace("$$", "$")
need(arg("-env") and ". " + arg("-env") in ep and "SNAPWORKER_VCENTER_VC1_THUMBPRINT=$VCSIM_THUMBPRINT" in ep,
     "the worker pins the simulator's certificate from its env file")
need(any(m_.startswith(arg("-env").rsplit("/", 1)[0]) for m_ in mounts) if arg("-env") else False,
     "the simulator's env file is on a volume the workers mount")

# Stop: a worker's running jobs get grace + 30 s before SIGKILL.
g = re.fullmatch(r"(\d+)s", str(w.get("stop_grace_period", "")))
need(bool(g) and int(g.group(1)) > ini.getint("worker", "grace") + 30, "stop_grace_period above grace + 30 s")
sys.exit(1 if fails else 0)
EOF
python3 "$tmp/topo.py" "$tmp/compose.yml" "$D" >"$tmp/topo.out" 2>&1
cat "$tmp/topo.out"
pass=$((pass + $(grep -c '^ok ' "$tmp/topo.out")))
fail=$((fail + $(grep -c '^FAIL ' "$tmp/topo.out")))
grep -q Traceback "$tmp/topo.out" && nok "topology checker crashed"

# The topology checker must notice a broken file (no shared volume, a pinned container).
sed -e 's/^      - secondary:\/mnt\/secondary\/1$/      - \/srv\/store:\/mnt\/secondary\/1/' \
    -e 's/^    image: snapworker:latest$/    image: snapworker:latest\n    container_name: worker1/' \
    "$D/docker-compose.yml" >"$D/.test-broken-$$.yml"
docker-compose -f "$D/.test-broken-$$.yml" config >"$tmp/broken.yml" 2>/dev/null
rm -f "$D/.test-broken-$$.yml"
python3 "$tmp/topo.py" "$tmp/broken.yml" "$D" >"$tmp/broken.out" 2>&1
check "a compose file without the shared volume and with a container_name is refused" \
    bash -c "grep -q '^FAIL - the store mount point is a named volume' '$tmp/broken.out' && grep -q '^FAIL - no container_name' '$tmp/broken.out'"

# --- the same broker settings -----------------------------------------------------------
ct_rig=$(sed -nE 's/^consumer_timeout = ([0-9]+)$/\1/p' "$here/tests/rig/rabbitmq.sh")
ct_compose=$(sed -nE 's/^consumer_timeout = ([0-9]+)$/\1/p' "$D/rabbitmq.conf")
check "consumer_timeout set in the process rig's broker ($ct_rig)" [ -n "$ct_rig" ]
check "consumer_timeout set in the compose broker ($ct_compose)" [ -n "$ct_compose" ]
check "the same in both, at least 6 h (the longest default deadline)" \
    bash -c "[ '$ct_rig' = '$ct_compose' ] && [ '${ct_compose:-0}' -ge 21600000 ]"

# --- the same worker configuration keys as the tests generate ---------------------------
VCSIM_URL=https://127.0.0.1:1/sdk VCSIM_THUMBPRINT=AA e2e_conf "$tmp/rig.conf" 1
keys() { # FILE: section.key lines; [store] URL keys as store.<url>
	awk '/^[ \t]*[;#]/ || /^[ \t]*$/ { next }
	     /^\[/ { sec = $0; gsub(/^\[|\].*$/, "", sec); next }
	     { k = $0; sub(/[ \t]*=.*/, "", k); print sec "." k }' "$1" | sort -u
}
keys "$tmp/rig.conf" >"$tmp/rig.keys"
keys "$D/snapworker.conf" >"$tmp/compose.keys"
missing=$(comm -23 "$tmp/rig.keys" "$tmp/compose.keys" | tr '\n' ' ')
extra=$(comm -13 "$tmp/rig.keys" "$tmp/compose.keys" | grep -vxE 'metrics\.listen|worker\.log_format' | tr '\n' ' ')
check "every key of the tests' worker config is in the compose's ($(wc -l <"$tmp/rig.keys") keys)" [ -z "$missing" ] ||
    echo "  missing: $missing"
check "the compose's adds only metrics.listen and worker.log_format" [ -z "$extra" ] || echo "  extra: $extra"

# --- run the compose's simulator command and worker here, against the runner's broker ------
e2e_broker
printf 'vc-%s\n' "$(openssl rand -hex 8)" >"$tmp/vc.secret"
chmod 600 "$tmp/vc.secret"
mkdir -p "$tmp/vcstate" "$STORE/extract"
# The compose command, with the container paths and listen address mapped to ours.
mapfile -t vcargs < <(python3 -c '
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]["vcsim"]["command"]
m = {"0.0.0.0:8989": "127.0.0.1:0", "/vcsim/state": sys.argv[2] + "/vcstate/state",
     "/vcsim/vcsim.env": sys.argv[2] + "/vcstate/vcsim.env", "/run/secrets/vcsim_password": sys.argv[2] + "/vc.secret",
     "64": "2"}
print("\n".join(m.get(a, a) for a in c))' "$tmp/compose.yml" "$tmp")
"$rigbin" "${vcargs[@]}" >"$tmp/vcsim.out" 2>"$tmp/vcsim.log" &
vpid=$!
wpids+=("$vpid")
for _ in $(seq 100); do [ -s "$tmp/vcstate/vcsim.env" ] && break; sleep 0.1; done
check "the compose's simulator command starts here" [ -s "$tmp/vcstate/vcsim.env" ]
. "$tmp/vcstate/vcsim.env"
vport=${VCSIM_URL##*:}
vport=${vport%%/*}
# The compose's worker config, with container paths and service names mapped to ours.
sed -e "s#/run/secrets/amqp_password#$PW_FILE#" -e "s#/run/secrets/vc_password#$tmp/vc.secret#" \
    -e "s#= /mnt/secondary/1/extract#= $STORE/extract#" -e "s#= /mnt/secondary/1#= $STORE#" \
    -e "s#^url = amqp://.*#url = $AMQP_URL#" -e "s#https://vcsim:8989/sdk#https://127.0.0.1:$vport/sdk#" \
    -e "s#^listen = 0.0.0.0:9464#listen = 127.0.0.1:0#" "$D/snapworker.conf" >"$tmp/compose-w.conf"
# Per-run broker objects: other tests share this broker.
export SNAPWORKER_AMQP_EXCHANGE=$prefix.commands SNAPWORKER_AMQP_EVENTS_EXCHANGE=$prefix.events \
    SNAPWORKER_AMQP_DEAD_LETTER_EXCHANGE=$prefix.dlx SNAPWORKER_AMQP_DEAD_LETTER_QUEUE=$prefix.dead
# The compose entrypoint, env file path mapped.
ep=$(python3 -c '
import sys, yaml
print(yaml.safe_load(open(sys.argv[1]))["services"]["worker"]["entrypoint"][2].replace("$$", "$"))' "$tmp/compose.yml" |
    sed "s#/vcsim/vcsim.env#$tmp/vcstate/vcsim.env#; s#exec snapworker#exec $SW#")
for i in 1 2; do
	SNAPWORKER_WORKER_NAME=cw$i /bin/sh -c "$ep" snapworker run -c "$tmp/compose-w.conf" 2>"$tmp/cw$i.log" &
	wpids+=("$!")
done
# jobs = 2 in the compose config: two consumers per worker.
check "two workers with the compose's config and entrypoint consume (2 x jobs = 4 consumers)" e2e_wait_consumers "$tmp/compose-w.conf" 4
# The simulator refuses any other password: a success proves the secrets line up.
VCSIM_URL_LOCAL=https://127.0.0.1:$vport/sdk
id=$(uuid)
printf '{"version":1,"id":"%s","type":"CreateSnapshot","vcenter":{"url":"%s","credentials":"vc1"},"store":{"url":"%s"},"args":{"vm":{"uuid":"%s"},"disk":"[%s] %s/disk1.vmdk","account_id":2,"volume_id":13}}' \
    "$id" "$VCSIM_URL_LOCAL" "$STORE_URL" "$VCSIM_VM_UUID" "$VCSIM_DATASTORE" "$VCSIM_VM" >"$tmp/c1.json"
submit "$tmp/compose-w.conf" "$tmp/c1.json" "$tmp/c1.out"
check "CreateSnapshot through the compose configuration succeeds" evtrue "$tmp/c1.out" "e['status']=='succeeded'"
check "its files are on the shared store" [ -s "$STORE/snapshots/2/13/$id/$id.ova.meta" ]

e2e_done
