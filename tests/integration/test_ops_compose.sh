#!/usr/bin/env bash
# Operations: the docker compose rig (docker/), checked and then run for real.
#
# Without an engine: `docker-compose config` validates docker-compose.yml
# alone and with docker-compose.host.yml; the resolved topology is checked
# (broker, simulator, N scalable workers sharing one named volume as the
# store, config and secrets read-only, every image built from a BASE build
# argument, the addresses and secret paths of the worker config pointing at
# the compose services, host networking only on loopback); the worker config
# has the keys of the config the tests generate; consumer_timeout is the same
# in both brokers' configs; the compose's simulator command and worker
# config/entrypoint run here as processes against the runner's broker.
#
# On an engine of its own: starts dockerd (data-root cached in
# $SW_DOCKER_CACHE, default /var/cache/snapworker-test, with the debootstrap
# base tarball; exec-root, pidfile and socket in a temporary directory;
# --iptables=false --bridge=none; stopped by PID), imports the Debian 12 base,
# builds the three images with BuildKit (its cache in the data-root makes a
# second run fast), runs the rig with host networking on free loopback ports
# (docker-compose up), runs a CreateSnapshot and an ExtractTemplate through
# it, scales to 3 workers and shows each consuming, kills a worker container
# mid-export (the command still ends exactly once), checks the healthchecks,
# then removes what it made: containers, volumes, the images it built, the
# daemon.  Prints "N passed, N failed".
# The images take the programs the host built (PROGRAMS=context; SW_DOCKER_PROGRAMS=source
# compiles them in the images instead, as an operator's build does).  Measured here:
# the first run on a machine (debootstrap of the base, three image builds) 3.5 minutes,
# later runs 1.5 minutes.  Where / is not a mount point (a chroot) or no cgroup
# hierarchy is mounted, tests/rig/dockerd.sh gives the daemon a mount namespace that has both.
# test-timeout: 1800
# shellcheck disable=SC1091
. "$(dirname "$0")/fault_lib.sh"

D=$here/docker
check "docker-compose is installed (scripts/deps.sh)" command -v docker-compose
if ! command -v docker-compose >/dev/null; then
	e2e_done
	exit 1
fi
docker-compose -f "$D/docker-compose.yml" config >"$tmp/compose.yml" 2>"$tmp/compose.err"
check "docker-compose config accepts the file" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/compose.err"
RIG_AMQP_PORT=1001 RIG_DIST_PORT=1002 RIG_EPMD_PORT=1003 RIG_VCSIM_PORT=1004 RIG_METRICS_PORT=1005 \
    docker-compose -f "$D/docker-compose.yml" -f "$D/docker-compose.host.yml" config >"$tmp/host.yml" 2>"$tmp/host.err"
check "... and with docker-compose.host.yml" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/host.err"

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
need(mq.get("build", {}).get("dockerfile") == "docker/Dockerfile.rabbitmq" and
     "apt-get install -y --no-install-recommends rabbitmq-server" in open(docker + "/Dockerfile.rabbitmq").read(),
     "the broker is built by docker/Dockerfile.rabbitmq from Debian's rabbitmq-server")
for name, svc in (("rabbitmq", mq), ("vcsim", vc), ("worker", w)):
    f = svc.get("build", {}).get("dockerfile", "")
    text = open(docker + "/../" + f).read() if f else ""
    # A stage starts from BASE, or is a scratch stage of copied files, or names another stage.
    froms = [l.split()[1] for l in text.splitlines() if l.startswith("FROM ")]
    stages = [l.split()[3] for l in text.splitlines() if l.startswith("FROM ") and len(l.split()) == 4]
    need(svc.get("build", {}).get("args", {}).get("BASE") == "debian:bookworm-slim" and "ARG BASE=debian:bookworm-slim" in text and
         "${BASE}" in froms and
         all(f == "${BASE}" or f == "scratch" or f.replace("${PROGRAMS}", "source") in stages for f in froms),
         "%s: every image stage FROM the BASE build argument (default debian:bookworm-slim)" % name)
    if name != "rabbitmq":
        need(svc.get("build", {}).get("args", {}).get("PROGRAMS") == "source" and "ARG PROGRAMS=source" in text and
             "FROM programs-${PROGRAMS} AS programs" in text and "AS programs-source" in text and "AS programs-context" in text,
             "%s: PROGRAMS selects compiling in the image (source, default) or the host's build (context)" % name)
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

# --- host networking (docker-compose.host.yml): every service on loopback, on its own port --
cat >"$tmp/host.py" <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c.get("services", {})
fails = []
def need(cond, what):
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        fails.append(what)
need(all(v.get("network_mode") == "host" and not v.get("ports") for v in s.values()),
     "host: every service on the host's network, nothing published")
mq, vc, w = s.get("rabbitmq", {}), s.get("vcsim", {}), s.get("worker", {})
# docker-compose config resolves extra_hosts to a mapping; the file has a list.
hosts = lambda h: dict(h) if isinstance(h, dict) else dict(x.split(":", 1) for x in h)
e = mq.get("environment", {})
need(e.get("RABBITMQ_NODE_IP_ADDRESS") == "127.0.0.1" and e.get("RABBITMQ_NODE_PORT") == "1001" and
     e.get("RABBITMQ_DIST_PORT") == "1002" and e.get("ERL_EPMD_ADDRESS") == "127.0.0.1" and e.get("ERL_EPMD_PORT") == "1003" and
     "inet_dist_use_interface {127,0,0,1}" in e.get("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", ""),
     "host: the broker's AMQP, distribution and epmd ports on 127.0.0.1, from RIG_*_PORT")
cmd = vc.get("command", [])
need("-listen" in cmd and cmd[cmd.index("-listen") + 1] == "127.0.0.1:1004", "host: the simulator on 127.0.0.1:RIG_VCSIM_PORT")
we = w.get("environment", {})
need(we.get("SNAPWORKER_AMQP_URL") == "amqp://snapworker@rabbitmq:1001/%2f" and
     we.get("SNAPWORKER_VCENTER_VC1_URL") == "https://vcsim:1004/sdk" and we.get("METRICS_LOOPBACK_PORT") == "1005" and
     hosts(w.get("extra_hosts", [])) == {"rabbitmq": "127.0.0.1", "vcsim": "127.0.0.1"},
     "host: the workers reach rabbitmq and vcsim by name at 127.0.0.1, metrics on RIG_METRICS_PORT")
sys.exit(1 if fails else 0)
EOF
python3 "$tmp/host.py" "$tmp/host.yml" >"$tmp/host.out" 2>&1
cat "$tmp/host.out"
pass=$((pass + $(grep -c '^ok ' "$tmp/host.out")))
fail=$((fail + $(grep -c '^FAIL ' "$tmp/host.out")))
grep -q Traceback "$tmp/host.out" && nok "host networking checker crashed"

# --- the image's source stage copies everything `make install` reads ---------------------
# (an operator's build compiles in the image from only the COPYed paths; the engine part
# below takes the host's build, so this is where a missing COPY shows).  The host's
# objects are reused (mtimes kept): make only installs.
srcctx=$tmp/srcctx
mkdir -p "$srcctx"
awk '/AS programs-source/ { f = 1; next } f && /^FROM / { f = 0 }
     f && /^COPY / { $1 = ""; n = split($0, a, " "); for (i = 1; i < n; i++) print a[i] }' "$D/Dockerfile" >"$tmp/copies"
(cd "$here" && xargs cp -a --parents -t "$srcctx" <"$tmp/copies") &&
    make -s -C "$srcctx" install BUILD="$build" DESTDIR="$tmp/srcinst" PREFIX=/usr/local >"$tmp/srcinst.log" 2>&1
installed() { [ -x "$tmp/srcinst/usr/local/bin/snapworker" ] && [ -s "$tmp/srcinst/usr/local/share/snapworker/schema/command.schema.json" ]; }
check "make install works from only what docker/Dockerfile's source stage copies ($(wc -l <"$tmp/copies") paths)" installed ||
    tail -n 5 "$tmp/srcinst.log" | sed 's/^/  | /'
rm -rf "$srcctx" "$tmp/srcinst"

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
    sed "s#/vcsim/vcsim.env#$tmp/vcstate/vcsim.env#; s#exec snapworker-container#exec $SW#")
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

# The process rig's workers and simulator are done; its per-run names are not ours.
for p in "${wpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
unset SNAPWORKER_AMQP_EXCHANGE SNAPWORKER_AMQP_EVENTS_EXCHANGE SNAPWORKER_AMQP_DEAD_LETTER_EXCHANGE \
    SNAPWORKER_AMQP_DEAD_LETTER_QUEUE

# SW_DOCKER_ENGINE=0 leaves the engine part out (a quick local run of the checks
# above); make test and make test-docker run it.
if [ "${SW_DOCKER_ENGINE:-1}" = 0 ]; then
	echo "# the rig on a Docker engine of its own: left out (SW_DOCKER_ENGINE=0)"
	e2e_done
	exit
fi

# ===================== the rig on a Docker engine of its own =============================
# Everything below runs the compose file for real.  The cache (the debootstrap base
# tarball, and the data-root: the imported base image and BuildKit's cache) stays
# between runs on this machine; one run at a time uses it (a lock).
CACHE=${SW_DOCKER_CACHE:-/var/cache/snapworker-test}
P=swc$$
dk=""
dpid=""
t_start=$(date +%s)
# The engine's own client (docker.io: 20.10, BuildKit built in).  Another `docker`
# earlier on PATH (a newer client without the buildx plugin) cannot build with BuildKit.
DOCKER=$(dpkg-query -L docker.io 2>/dev/null | grep -m1 '/bin/docker$')
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
dc() { docker-compose "$@"; }
cids() { "$DOCKER" ps -q --filter "label=com.docker.compose.project=$P" "$@"; }

docker_cleanup() {
	local i cpid
	if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
		if [ -n "${COMPOSE_PROJECT_NAME:-}" ]; then
			dc down -v --rmi all -t 20 >"$tmp/down.log" 2>&1
			# Whatever compose did not remove (a failed up, a killed container).
			"$DOCKER" ps -aq --filter "label=com.docker.compose.project=$P" | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
		fi
		kill -TERM "$dpid" 2>/dev/null
		for i in $(seq 150); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$dpid" 2>/dev/null
		# dockerd's own containerd ends with it; after a SIGKILL, by its pidfile.
		cpid=$(cat "$dk/run/containerd/containerd.pid" 2>/dev/null)
		[ -n "$cpid" ] && kill -KILL "$cpid" 2>/dev/null
	fi
	if [ -n "$dk" ]; then
		awk -v t="$dk/" 'index($2, t) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
		rm -rf "$dk"
	fi
	fault_cleanup
}
trap docker_cleanup EXIT

# engine_skip REASON: no engine can start here (tests/run.sh allows these two skips).
engine_skip() {
	echo "SKIP: no Docker engine can start here: $1"
	e2e_done
	exit $?
}
[ "$(id -u)" = 0 ] || engine_skip "dockerd needs root"
engine_fail() { # WHAT: a failure of this machine's setup, not a missing engine
	nok "$1"
	e2e_done
	exit 1
}
mkdir -p "$CACHE/docker" || engine_fail "make the cache $CACHE"
exec 9>"$CACHE/lock"
flock -w 900 9 || engine_fail "take $CACHE/lock (held by another run for 15 minutes)"

dk=$(mktemp -d /tmp/swdk.XXXXXX)
# The caller's PATH (the runner's peers get it): dockerd runs containerd and runc.
# Not the lock's descriptor: containerd's shims could outlive the daemon.
# tests/rig/dockerd.sh gives it a mount namespace of its own where a chroot needs one.
env PATH="${SW_PEER_PATH:-$PATH}" "$here/tests/rig/dockerd.sh" "$dk" "$CACHE/docker" --log-level warn \
    >"$dk/dockerd.log" 2>&1 9>&- &
dpid=$!
export DOCKER_HOST=unix://$dk/docker.sock
for _ in $(seq 150); do "$DOCKER" version >/dev/null 2>&1 && break; kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
if ! "$DOCKER" version >/dev/null 2>&1; then
	tail -n 5 "$dk/dockerd.log" | sed 's/^/  | /'
	engine_skip "dockerd did not answer (log above)"
fi
ok "dockerd answers on its own socket (data-root $CACHE/docker, cgroup $("$DOCKER" info -f '{{.CgroupVersion}}' 2>/dev/null), $("$DOCKER" info -f '{{.Driver}}' 2>/dev/null))"
t_daemon=$(date +%s)
# The data-root is this test's alone (the lock): what an interrupted run left there goes.
"$DOCKER" ps -aq | xargs -r "$DOCKER" rm -f -v >/dev/null 2>&1
"$DOCKER" volume prune -f >/dev/null 2>&1

# --- images: the Debian 12 base (debootstrap, cached), then the rig's three ---------------
BASE=snapworker-base:bookworm
# debootstrap runs its own helpers (wget, perl, ar, ...): the caller's PATH, as dockerd.
if ! env PATH="${SW_PEER_PATH:-$PATH}" "$D/make-base.sh" "$CACHE/bookworm-minbase.tar" "$BASE" "$DOCKER" >"$tmp/base.log" 2>&1; then
	sed 's/^/  | /' "$tmp/base.log"
fi
check "the Debian 12 minbase image $BASE (debootstrap, docker import)" "$DOCKER" image inspect "$BASE" >/dev/null 2>&1
if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
	e2e_done
	exit 1
fi
t_base=$(date +%s)
# The programs, as the host built them (a Debian 12 host: the libraries they link are the
# images'): PROGRAMS=context copies them in, so no image compiles anything.
PROGRAMS=${SW_DOCKER_PROGRAMS:-context}
if [ "$PROGRAMS" = context ]; then
	ctx=$here/build/docker-programs
	rm -rf "$ctx"
	mkdir -p "$ctx/vcsim"
	make -s -C "$here" install BUILD="$build" DESTDIR="$ctx/snapworker" PREFIX=/usr/local >"$tmp/stage.log" 2>&1 &&
	    install -m 0755 "$rigbin" "$ctx/vcsim/snapworker-vcsim"
	check "the host's programs staged for PROGRAMS=context (make install)" \
	    [ -x "$ctx/snapworker/usr/local/bin/snapworker" ] && [ -x "$ctx/vcsim/snapworker-vcsim" ] ||
	    sed 's/^/  | /' "$tmp/stage.log"
fi
build_ok=1
for img in rabbitmq:docker/Dockerfile.rabbitmq vcsim:docker/Dockerfile.vcsim worker:docker/Dockerfile; do
	n=${img%%:*}
	t=$(date +%s)
	tag=snapworker-$n:latest
	[ "$n" = worker ] && tag=snapworker:latest
	if DOCKER_BUILDKIT=1 "$DOCKER" build --progress plain --network host --build-arg "BASE=$BASE" --build-arg "PROGRAMS=$PROGRAMS" \
	    -f "$here/${img#*:}" -t "$tag" "$here" >"$tmp/build-$n.log" 2>&1; then
		ok "image $tag built from $BASE, programs from $PROGRAMS ($(( $(date +%s) - t )) s)"
	else
		nok "image $tag built from $BASE"
		tail -n 15 "$tmp/build-$n.log" | sed 's/^/  | /'
		build_ok=0
	fi
done
t_build=$(date +%s)
if [ $build_ok = 0 ]; then
	e2e_done
	exit 1
fi

# --- up, with host networking, every service on its own free loopback port ----------------
free_port() {
	local p
	for _ in $(seq 200); do
		p=$(( (RANDOM * 32768 + RANDOM) % 25000 + 30000 ))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}
RIG_AMQP_PORT=$(free_port) RIG_DIST_PORT=$(free_port) RIG_EPMD_PORT=$(free_port)
RIG_VCSIM_PORT=$(free_port) RIG_METRICS_PORT=$(free_port)
export RIG_AMQP_PORT RIG_DIST_PORT RIG_EPMD_PORT RIG_VCSIM_PORT RIG_METRICS_PORT
export COMPOSE_PROJECT_NAME=$P COMPOSE_FILE="$D/docker-compose.yml:$D/docker-compose.host.yml"
export RIG_SECRETS=$tmp/secrets
"$D/make-secrets.sh" "$RIG_SECRETS" >/dev/null

# wait_healthy N: N containers of the rig, every one healthy (bounded).
wait_healthy() {
	local i all h
	for i in $(seq 120); do
		all=$(cids | wc -l)
		h=$(cids --filter health=healthy | wc -l)
		[ "$all" = "$1" ] && [ "$h" = "$1" ] && return 0
		sleep 1
	done
	"$DOCKER" ps -a --filter "label=com.docker.compose.project=$P" --format '  | {{.Names}} {{.Status}}'
	return 1
}
dc up -d --no-build >"$tmp/up.log" 2>&1
check "docker-compose up: broker, simulator and 2 workers (deploy.replicas)" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/up.log"
check "all four healthy (each image's healthcheck)" wait_healthy 4
t_up=$(date +%s)

# snapctl and the event log, from here, on the broker's loopback port.
AMQP_PORT=$RIG_AMQP_PORT
PW_FILE=$tmp/amqp.pw
install -m 0600 "$RIG_SECRETS/amqp.secret" "$PW_FILE"
prefix=snapworker
sed -e "s#^url = amqp://.*#url = amqp://snapworker@127.0.0.1:$RIG_AMQP_PORT/%2f#" \
    -e "s#/run/secrets/[a-z_]*#$PW_FILE#" "$D/snapworker.conf" >"$tmp/ctl.conf"
CONF=$tmp/ctl.conf
check "two workers consume (2 x jobs = 4 consumers)" e2e_wait_consumers "$CONF" 4
check "the event log listens" evlog_start "$CONF"
if [ $fail -gt 0 ]; then # nothing below can work
	"$CTL" -c "$CONF" --password-file "$PW_FILE" status 2>&1 | sed 's/^/  | /'
	e2e_done
	exit 1
fi
STORE=$("$DOCKER" volume inspect -f '{{.Mountpoint}}' "${P}_secondary")
VCSTATE=$("$DOCKER" volume inspect -f '{{.Mountpoint}}' "${P}_vcsim-state")
# shellcheck disable=SC1091
. "$VCSTATE/vcsim.env"
VCSIM_URL=https://vcsim:$RIG_VCSIM_PORT/sdk
VC_BASE=https://127.0.0.1:$RIG_VCSIM_PORT

# --- a CreateSnapshot and an ExtractTemplate through the rig ------------------------------
id=$(uuid)
cmd_snapshot "$id" "[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk" 2 13 >"$tmp/s.json"
submit "$CONF" "$tmp/s.json" "$tmp/s.out" 180
check "CreateSnapshot through the rig: the seeded disk" evtrue "$tmp/s.out" \
    "e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0'"
check "its object is committed on the shared volume" [ -s "$STORE/snapshots/2/13/$id/$id.ova.meta" ]
x=$(uuid)
cmd_path "$x" ExtractTemplate "snapshots/2/13/$id/$id" >"$tmp/x.json"
submit "$CONF" "$tmp/x.json" "$tmp/x.out" 180
ova=$(evpy "$tmp/x.out" "e['result']['download']['path']" 2>/dev/null)
check "ExtractTemplate through the rig: an .ova in the extract area, OVF first" bash -c \
    "[ -n '$ova' ] && tar -tf '$STORE/extract/$ova' | head -1 | grep -q '\\.ovf\$'"
check "... holding the snapshot's disk" bash -c \
    "[ \"\$(tar -xOf '$STORE/extract/$ova' '$id-disk0.vmdk' | sha256sum | cut -d' ' -f1)\" = '$VCSIM_SEED_SHA256_0' ]"

# --- three workers, each consuming ---------------------------------------------------------
dc up -d --no-build --scale worker=3 >"$tmp/scale.log" 2>&1
check "docker-compose up --scale worker=3" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/scale.log"
check "five containers healthy" wait_healthy 5
check "three workers consume (6 consumers)" e2e_wait_consumers "$CONF" 6
workers=$(cids --filter label=com.docker.compose.service=worker | cut -c1-12 | sort | tr '\n' ' ')
# Six commands at once, one per job slot (prefetch 1): every worker takes some.
# Each export is served at 8 MiB/s (64 MiB: 8 s), so all six are in flight
# together however slowly they are submitted, and no slot can take two.
for i in 1 2 3 4 5 6; do curl -sk -m 20 -X POST "$VC_BASE/rig/inject?nfc_rate=8388608" >/dev/null; done
ids=()
for i in 1 2 3 4 5 6; do
	ids+=("$(uuid)")
	cmd_snapshot "${ids[-1]}" "[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk" 3 "$i" >"$tmp/p$i.json"
	"$CTL" -c "$CONF" --password-file "$PW_FILE" submit "$tmp/p$i.json" >/dev/null 2>&1
done
for i in "${ids[@]}"; do wait_final "$i" 120 || break; done
by=$(for i in "${ids[@]}"; do finals "$i" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["worker"])'; done 2>/dev/null | sort -u | tr '\n' ' ')
check "six commands succeeded" bash -c "[ \$(for i in ${ids[*]}; do grep -F \"\\\"id\\\":\\\"\$i\\\"\" '$EVLOG' | grep -c '\"status\":\"succeeded\"'; done | grep -cx 1) = 6 ]"
check "each of the three workers ran some ($by= $workers)" [ "$by" = "$workers" ]
curl -sk -m 20 -X POST "$VC_BASE/rig/inject?clear=1" >/dev/null

# --- a worker container killed mid-export ----------------------------------------------------
# The simulator serves the next download at 8 MiB/s: the export takes seconds, and
# the worker that has it is killed (SIGKILL to the container) once bytes flow.
curl -sk -m 20 -X POST "$VC_BASE/rig/inject?nfc_rate=8388608" >/dev/null
k=$(uuid)
cmd_snapshot "$k" "[$VCSIM_DATASTORE] $VCSIM_VM/disk1.vmdk" 4 1 >"$tmp/k.json"
"$CTL" -c "$CONF" --password-file "$PW_FILE" submit "$tmp/k.json" >/dev/null 2>&1
victim=""
for _ in $(seq 200); do
	victim=$(grep -F "\"id\":\"$k\"" "$EVLOG" | grep '"status":"progress"' |
	    python3 -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e.get("progress", {}).get("bytes", 0) > 0: print(e["worker"]); break' 2>/dev/null)
	[ -n "$victim" ] && break
	sleep 0.1
done
check "the export is under way on worker $victim" [ -n "$victim" ]
# No outcome yet at the moment of the kill: the export is mid-way.
check "... not ended when its container is killed" [ "$(nfinals "$k")" = 0 ]
[ -n "$victim" ] && "$DOCKER" kill "$victim" >/dev/null 2>&1
check "... killed (SIGKILL: exit status 137)" [ "$("$DOCKER" inspect -f '{{.State.Running}} {{.State.ExitCode}}' "$victim" 2>/dev/null)" = "false 137" ]
wait_final "$k" 180
sleep 3 # a second outcome would come now
check "the command still ends exactly once" one_outcome "$k"
elsewhere() { # ID: succeeded with the seeded disk, not on $victim
	finals "$1" | tail -1 | python3 -c "import json,sys; e=json.load(sys.stdin); sys.exit(0 if e['status']=='succeeded' and e['result']['files'][0]['sha256']=='$VCSIM_SEED_SHA256_0' and e['worker']!='$victim' else 1)" 2>/dev/null
}
check "... succeeded with the seeded disk, on another worker" elsewhere "$k"
check "... one object on the share, no .part left" bash -c \
    "[ \$(find '$STORE/snapshots/4/1' -name '*.ova.meta' | wc -l) = 1 ] && [ -z \"\$(find '$STORE' -name '*.part')\" ]"
check "nothing dead-lettered" [ "$(queue_line "$CONF" snapworker.dead | awk '{print $2}')" = 0 ]
t_cmds=$(date +%s)

# --- teardown: containers, volumes, the images built here, then the daemon ----------------
evlog_stop
dc down -v --rmi all -t 20 >"$tmp/down.log" 2>&1
check "docker-compose down -v --rmi all" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/down.log"
# A killed container that compose no longer counts.
"$DOCKER" ps -aq --filter "label=com.docker.compose.project=$P" | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
# An image that a rebuild here untagged (a changed Dockerfile).
"$DOCKER" image prune -f >/dev/null 2>&1
left=$("$DOCKER" ps -a --format "{{.Names}} {{.Status}}"; "$DOCKER" volume ls -q --filter "name=$P")
check "no container, no volume of the rig left${left:+ (left: $left)}" [ -z "$left" ]
left=$("$DOCKER" images --format '{{.Repository}}:{{.Tag}}' | sort -u | tr '\n' ' ')
check "no image left but the cached base ($left)" [ "$left" = "$BASE " ]
# Keep BuildKit's cache (a second run builds in seconds), but not forever.
"$DOCKER" builder prune -f --filter until=168h >/dev/null 2>&1
kill -TERM "$dpid"
for _ in $(seq 150); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
check "dockerd stopped by its PID" bash -c "! kill -0 $dpid 2>/dev/null"
t_end=$(date +%s)
echo "# times: daemon $((t_daemon - t_start)) s, base $((t_base - t_daemon)) s, builds $((t_build - t_base)) s," \
    "up $((t_up - t_build)) s, commands $((t_cmds - t_up)) s, teardown $((t_end - t_cmds)) s, total $((t_end - t_start)) s"

e2e_done
