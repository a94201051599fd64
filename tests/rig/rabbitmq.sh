#!/bin/bash
# Private RabbitMQ node for snapworker tests (see tests/rig/README.md).
#
#   tests/rig/rabbitmq.sh start DIR     start a node with its state in DIR, wait until ready
#   tests/rig/rabbitmq.sh stop DIR      clean shutdown (then kill by PID if needed)
#   tests/rig/rabbitmq.sh restart DIR   kill -9, then start again on the same ports and data
#
# With RIG_TLS=1 at the first start the node also serves AMQPS on a second loopback port with a
# certificate for DNS name "localhost" signed by a CA generated in DIR/tls; rabbitmq.env then
# also has AMQPS_PORT, AMQPS_URL and AMQP_CACERT.
#
# Cluster members (tests/rig/rabbitmq-cluster.sh) share what a cluster needs through the
# environment at the first start: RIG_NODE (node name), RIG_EPMD_PORT (one epmd for all),
# RIG_COOKIE_FILE (one Erlang cookie) and RIG_SECRET_FILE (one broker password).
#
# Leaves DIR/rabbitmq.env (RABBITMQ_NODENAME, AMQP_PORT, AMQP_URL, AMQP_PASSWORD_FILE,
# RABBITMQCTL, RABBITMQ_PID) and DIR/amqp.secret (mode 0600). Loopback only. Each node has
# its own cookie (HOME=DIR), ports and epmd (on its own port, so two rigs, a system broker
# or another user's epmd never meet); the script started that epmd and stops it.
set -euo pipefail

RIG_RMQ_BIN=${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin} # not /usr/sbin: those wrappers switch user and cookie
# The broker's own scripts and Erlang's programs run with the caller's full PATH
# (tests/run.sh gives the tests a PATH of the listed tools only): they are the
# rabbitmq-server package's business, not commands of ours.
RIG_PATH=${SW_PEER_PATH:-$PATH}

die() { echo "rabbitmq.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop|restart DIR"; }

[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
STATE=$DIR/rabbitmq.state

# free_port prints a loopback TCP port nobody listens on (the broker binds it
# seconds later: a race, but a harmless one on a test machine).
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$(( (RANDOM * 32768 + RANDOM) % 25000 + 30000 ))
		case " ${RIG_TAKEN:-} " in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			RIG_TAKEN="${RIG_TAKEN:-} $p"
			echo "$p"
			return 0
		fi
	done
	return 1
}

# node_env sets RIG_ENV: the node's environment, as env(1) arguments.
node_env() {
	RIG_ENV=(HOME="$DIR"
		PATH="$RIG_PATH"
		RABBITMQ_NODENAME="$NODE"
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		RABBITMQ_NODE_PORT="$AMQP_PORT"
		RABBITMQ_DIST_PORT="$DIST_PORT"
		RABBITMQ_MNESIA_BASE="$DIR/mnesia"
		RABBITMQ_LOG_BASE="$DIR/log"
		RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
		RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
		RABBITMQ_PID_FILE="$DIR/rabbitmq.pid"
		RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
		# A node that fails to start leaves its crash dump here, not in the caller's directory.
		ERL_CRASH_DUMP="$DIR/erl_crash.dump"
		ERL_EPMD_ADDRESS=127.0.0.1
		ERL_EPMD_PORT="$EPMD_PORT"
		# +sbwt none: Erlang's schedulers spin while idle by default; on a
		# 2-core machine shared with the workers that spinning took the CPU
		# they needed and cut end-to-end throughput from ~520 to ~210 cmd/s.
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none")
}

ctl() { node_env; env "${RIG_ENV[@]}" "$RIG_RMQ_BIN/rabbitmqctl" -n "$NODE" "$@"; }

# hash_password prints RabbitMQ's rabbit_password_hashing_sha256 form of $1:
# base64(salt || sha256(salt || password)) with a 4-byte salt. It lets the
# user be created from a definitions file, never with the password on argv.
hex_to_bin() { printf '%b' "$(sed 's/../\\x&/g')"; }
hash_password() {
	local salt digest
	salt=$(openssl rand -hex 4)
	digest=$({ printf '%s' "$salt" | hex_to_bin; printf '%s' "$1"; } | openssl dgst -sha256 -r | cut -c1-64)
	printf '%s%s' "$salt" "$digest" | hex_to_bin | base64 -w0
}

load_state() {
	[ -f "$STATE" ] || die "$DIR: no broker state (not started?)"
	# shellcheck disable=SC1090
	. "$STATE"
}

write_env() {
	local pid
	pid=$(cat "$DIR/rabbitmq.pid")
	cat >"$DIR/rabbitmq.env.tmp" <<EOF
RABBITMQ_NODENAME=$NODE
AMQP_PORT=$AMQP_PORT
AMQP_URL=amqp://snapworker@127.0.0.1:$AMQP_PORT/%2f
AMQP_PASSWORD_FILE=$DIR/amqp.secret
RABBITMQCTL="env HOME=$DIR PATH=$RIG_PATH ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$EPMD_PORT RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf $RIG_RMQ_BIN/rabbitmqctl -n $NODE"
RABBITMQ_PID=$pid
EOF
	if [ -n "${AMQPS_PORT:-}" ]; then
		cat >>"$DIR/rabbitmq.env.tmp" <<EOF
AMQPS_PORT=$AMQPS_PORT
AMQPS_URL=amqps://snapworker@localhost:$AMQPS_PORT/%2f
AMQP_CACERT=$DIR/tls/ca.pem
EOF
	fi
	mv "$DIR/rabbitmq.env.tmp" "$DIR/rabbitmq.env"
}

# make_tls creates (once) a CA and a server certificate for "localhost" in DIR/tls.
make_tls() {
	local t=$DIR/tls
	[ -s "$t/server.pem" ] && return 0
	mkdir -p "$t"
	(
		umask 077
		openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=snapworker test CA" \
			-keyout "$t/ca.key" -out "$t/ca.pem" 2>/dev/null &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
			-keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null &&
		printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$t/ext" &&
		openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
			-days 30 -extfile "$t/ext" -out "$t/server.pem" 2>/dev/null
	) || die "could not create the TLS certificates"
	chmod 0644 "$t/ca.pem" "$t/server.pem"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

node_pid() { [ -s "$DIR/rabbitmq.pid" ] && cat "$DIR/rabbitmq.pid" || true; }

# launch starts the node in the background and waits until it serves AMQP.
launch() {
	rm -f "$DIR/rabbitmq.pid"
	# The server must not die with the caller's session: own session, no stdin.
	node_env
	setsid env "${RIG_ENV[@]}" "$RIG_RMQ_BIN/rabbitmq-server" </dev/null >>"$DIR/log/server.out" 2>&1 &
	# `wait` needs the pid file, await_startup a registered node (TESTRIG.md).
	local i
	for i in $(seq 1 300); do
		[ -s "$DIR/rabbitmq.pid" ] && break
		sleep 0.2
	done
	[ -s "$DIR/rabbitmq.pid" ] || { tail -20 "$DIR/log/server.out" >&2; die "broker wrote no pid file"; }
	ctl wait --timeout 60 "$DIR/rabbitmq.pid" >/dev/null ||
		{ tail -20 "$DIR/log/server.out" >&2; die "broker did not come up"; }
	ctl await_startup --timeout 60 >/dev/null || die "broker did not finish booting"
}

start() {
	if [ -f "$STATE" ]; then
		. "$STATE"
		if alive "$(node_pid)"; then die "$DIR: broker already running (pid $(node_pid))"; fi
	else
		NODE=${RIG_NODE:-"swtest-$(printf '%s' "$DIR" | sha256sum | cut -c1-12)@localhost"}
		AMQP_PORT=$(free_port) && DIST_PORT=$(free_port) || die "no free port"
		EPMD_PORT=${RIG_EPMD_PORT:-$(free_port)} || die "no free port"
		AMQPS_PORT=""
		if [ "${RIG_TLS:-0}" = 1 ]; then AMQPS_PORT=$(free_port) || die "no free port"; fi
		cat >"$STATE" <<EOF
NODE=$NODE
AMQP_PORT=$AMQP_PORT
DIST_PORT=$DIST_PORT
EPMD_PORT=$EPMD_PORT
AMQPS_PORT=$AMQPS_PORT
EOF
	fi
	[ -z "${AMQPS_PORT:-}" ] || make_tls
	mkdir -p "$DIR/mnesia" "$DIR/log"
	umask 077
	if [ ! -f "$DIR/.erlang.cookie" ]; then
		if [ -n "${RIG_COOKIE_FILE:-}" ]; then
			cat "$RIG_COOKIE_FILE" >"$DIR/.erlang.cookie"
		else
			openssl rand -hex 20 | tr -d '\n' >"$DIR/.erlang.cookie"
		fi
		chmod 0400 "$DIR/.erlang.cookie"
	fi
	if [ ! -f "$DIR/amqp.secret" ]; then
		if [ -n "${RIG_SECRET_FILE:-}" ]; then
			cat "$RIG_SECRET_FILE" >"$DIR/amqp.secret"
		else
			openssl rand -hex 24 >"$DIR/amqp.secret"
		fi
		chmod 0600 "$DIR/amqp.secret"
	fi
	local pass
	pass=$(head -n1 "$DIR/amqp.secret")
	cat >"$DIR/definitions.json" <<EOF
{
  "vhosts": [{"name": "/"}],
  "users": [{"name": "snapworker", "password_hash": "$(hash_password "$pass")",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
  "permissions": [{"user": "snapworker", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
}
EOF
	cat >"$DIR/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
loopback_users.guest = true
load_definitions = $DIR/definitions.json
# Explicit: the relative default misjudges small CI machines and containers.
vm_memory_high_watermark.absolute = 1GB
disk_free_limit.absolute = 50MB
# Deliveries may stay un-acked for a whole export: 6 h instead of 30 min.
consumer_timeout = 21600000
log.file.level = info
log.console = false
EOF
	if [ -n "${AMQPS_PORT:-}" ]; then
		cat >>"$DIR/rabbitmq.conf" <<EOF
listeners.ssl.default = 127.0.0.1:$AMQPS_PORT
ssl_options.cacertfile = $DIR/tls/ca.pem
ssl_options.certfile = $DIR/tls/server.pem
ssl_options.keyfile = $DIR/tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOF
	fi
	echo "[]." >"$DIR/enabled_plugins"
	: >"$DIR/rabbitmq-env.conf" # keep /etc/rabbitmq/rabbitmq-env.conf out
	umask 022

	# This node's own epmd, on its own port; recorded so stop kills only it.
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$EPMD_PORT") 2>/dev/null; then
		env PATH="$RIG_PATH" ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT" -daemon
		sed -i '/^EPMD_STARTED=/d' "$STATE"
		echo "EPMD_STARTED=1" >>"$STATE"
	fi

	launch
	# guest exists on a fresh node; it is of no use here.
	ctl delete_user guest >/dev/null 2>&1 || true
	write_env
	cat "$DIR/rabbitmq.env"
}

stop() {
	load_state
	local pid i
	pid=$(node_pid)
	if alive "$pid"; then
		ctl shutdown >/dev/null 2>&1 || true
		for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
		if alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null || true
			for i in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
			alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	if [ "${EPMD_STARTED:-0}" = 1 ]; then
		env PATH="$RIG_PATH" ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
		sed -i 's/^EPMD_STARTED=1$/EPMD_STARTED=0/' "$STATE"
	fi
	rm -f "$DIR/rabbitmq.pid"
}

restart() {
	load_state
	local pid
	pid=$(node_pid)
	if alive "$pid"; then
		kill -KILL "$pid"
		local i
		for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && die "broker pid $pid survived SIGKILL for 10 s"
	fi
	start
}

case $cmd in
start) start ;;
stop) stop ;;
restart) restart ;;
*) usage ;;
esac
