#!/bin/bash
# A private 3-node RabbitMQ cluster on loopback for snapworker's fault tests.
#
#   tests/rig/rabbitmq-cluster.sh start DIR          start nodes n0..n2 in DIR/n0..n2, join n1, n2 to n0
#   tests/rig/rabbitmq-cluster.sh stop DIR           stop every node, then the cluster's epmd
#   tests/rig/rabbitmq-cluster.sh kill DIR K         kill -9 node K (0..2)
#   tests/rig/rabbitmq-cluster.sh revive DIR K       start node K again on its data: it rejoins by itself
#   tests/rig/rabbitmq-cluster.sh running DIR [K]    prints how many nodes node K (default 0) lists as running
#
# Each node is a tests/rig/rabbitmq.sh node with its own ports and data; they share one Erlang
# cookie, one epmd (on a free port, started and stopped here) and one broker password. Leaves
# DIR/cluster.env: AMQP_URLS (every node's URL, space-separated, the order of the nodes),
# AMQP_URL (node 0), AMQP_PASSWORD_FILE, RABBITMQCTL (talks to node 0) and NODE<K>_PORT/_PID.
# Loopback only; everything it starts it stops by PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
RIG_RMQ_BIN=${RABBITMQ_BIN_DIR:-/usr/lib/rabbitmq/bin}
NODES=3

die() { echo "rabbitmq-cluster.sh: $*" >&2; exit 1; }
usage() { die "usage: $0 start|stop|running DIR | kill|revive DIR K"; }

[ $# -ge 2 ] || usage
cmd=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
STATE=$DIR/cluster.state

free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$(( (RANDOM * 32768 + RANDOM) % 25000 + 30000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}

node_name() { echo "n$1-$(printf '%s' "$DIR" | sha256sum | cut -c1-8)@localhost"; }

# ctl K ARGS...: rabbitmqctl against node K through its own environment file.
ctl() {
	local k=$1; shift
	# shellcheck disable=SC1090
	( . "$DIR/n$k/rabbitmq.env" && $RABBITMQCTL "$@" )
}

write_env() {
	local k urls="" pid
	for k in $(seq 0 $((NODES - 1))); do
		# shellcheck disable=SC1090
		. "$DIR/n$k/rabbitmq.state"
		urls="$urls amqp://snapworker@127.0.0.1:$AMQP_PORT/%2f"
	done
	{
		echo "AMQP_URLS=\"${urls# }\""
		echo "AMQP_URL=${urls# }" | cut -d' ' -f1
		echo "AMQP_PASSWORD_FILE=$DIR/amqp.secret"
		grep '^RABBITMQCTL=' "$DIR/n0/rabbitmq.env"
		for k in $(seq 0 $((NODES - 1))); do
			# shellcheck disable=SC1090
			. "$DIR/n$k/rabbitmq.state"
			pid=$(cat "$DIR/n$k/rabbitmq.pid" 2>/dev/null || echo 0)
			echo "NODE${k}_PORT=$AMQP_PORT"
			echo "NODE${k}_PID=$pid"
		done
	} >"$DIR/cluster.env.tmp"
	mv "$DIR/cluster.env.tmp" "$DIR/cluster.env"
}

start_node() {
	local k=$1
	RIG_NODE=$(node_name "$k") RIG_EPMD_PORT=$EPMD_PORT RIG_COOKIE_FILE=$DIR/cookie \
		RIG_SECRET_FILE=$DIR/amqp.secret "$here/rabbitmq.sh" start "$DIR/n$k" >/dev/null
}

start() {
	[ ! -f "$STATE" ] || die "$DIR: a cluster was started here already"
	EPMD_PORT=$(free_port) || die "no free port"
	echo "EPMD_PORT=$EPMD_PORT" >"$STATE"
	( umask 077
	  openssl rand -hex 20 | tr -d '\n' >"$DIR/cookie"
	  openssl rand -hex 24 >"$DIR/amqp.secret" )
	env ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT" -daemon
	# Nodes boot in parallel (each takes 7-15 s on a loaded 2-core machine).
	local k pids=()
	for k in $(seq 0 $((NODES - 1))); do
		start_node "$k" &
		pids+=($!)
	done
	for k in "${pids[@]}"; do wait "$k" || die "a node did not start (see $DIR/n*/log)"; done
	for k in $(seq 1 $((NODES - 1))); do
		ctl "$k" stop_app >/dev/null
		ctl "$k" join_cluster "$(node_name 0)" >/dev/null
		ctl "$k" start_app >/dev/null
	done
	ctl 0 await_online_nodes "$NODES" --timeout 60 >/dev/null 2>&1 ||
		[ "$(running)" = "$NODES" ] || die "the cluster did not form"
	write_env
	cat "$DIR/cluster.env"
}

# running [K]: the running-node count as node K (default 0) sees it; ask another
# node when node 0 is the dead one.
running() {
	ctl "${1:-0}" cluster_status --formatter json 2>/dev/null |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("running_nodes", [])))' 2>/dev/null ||
		echo 0
}

kill_node() {
	local k=$1 pid
	pid=$(cat "$DIR/n$k/rabbitmq.pid" 2>/dev/null || true)
	[ -n "$pid" ] || die "node $k has no pid"
	kill -KILL "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	rm -f "$DIR/n$k/rabbitmq.pid"
	write_env
}

revive() {
	local k=$1
	# shellcheck disable=SC1090
	. "$STATE"
	RIG_EPMD_PORT=$EPMD_PORT "$here/rabbitmq.sh" start "$DIR/n$k" >/dev/null
	write_env
}

stop() {
	[ -f "$STATE" ] || return 0
	# shellcheck disable=SC1090
	. "$STATE"
	local k
	# Followers first, so the last node to stop is the one that knows the cluster best.
	for k in $(seq $((NODES - 1)) -1 0); do
		[ -d "$DIR/n$k" ] && "$here/rabbitmq.sh" stop "$DIR/n$k" >/dev/null 2>&1 || true
	done
	env ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
}

case $cmd in
start) start ;;
stop) stop ;;
running) running "${3:-0}" ;;
kill) [ $# -eq 3 ] || usage; kill_node "$3" ;;
revive) [ $# -eq 3 ] || usage; revive "$3" ;;
*) usage ;;
esac
