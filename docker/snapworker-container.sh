#!/bin/sh
# snapworker-container ARGS...: the worker image's entrypoint and health check
# (installed as /usr/local/bin/snapworker-container); runs `snapworker ARGS...`
# after two settings that must differ between the replicas of one service:
#
# - SNAPWORKER_WORKER_NAME, unless set: the container's id (12 hex digits).
#   In a bridge network that is the hostname anyway; under host networking
#   every replica has the host's hostname and pid 1, so the default name
#   (hostname:pid) would be the same for all of them.
# - METRICS_LOOPBACK_PORT=PORT (host networking; not a SNAPWORKER_ variable,
#   which snapworker would refuse as an unknown key): the metrics and
#   /health endpoint listen on 127.A.B.C:PORT, an address of the loopback
#   network derived from the container's id, so that the replicas share one
#   port and no two bind the same address.  `snapworker-container health`
#   derives the same address.  Unset: [metrics] listen of the configuration
#   (one address per container in a bridge network).
set -eu
id=$(sed -n 's#.*/containers/\([0-9a-f]\{64\}\)/hostname /etc/hostname .*#\1#p' /proc/self/mountinfo | head -n 1)
if [ -z "${SNAPWORKER_WORKER_NAME:-}" ] && [ -n "$id" ]; then
	SNAPWORKER_WORKER_NAME=$(printf '%s' "$id" | cut -c1-12)
	export SNAPWORKER_WORKER_NAME
fi
if [ -n "${METRICS_LOOPBACK_PORT:-}" ]; then
	[ -n "$id" ] || { echo "snapworker-container: no container id in /proc/self/mountinfo" >&2; exit 1; }
	a=$((0x$(printf '%s' "$id" | cut -c1-2)))
	b=$((0x$(printf '%s' "$id" | cut -c3-4)))
	c=$((0x$(printf '%s' "$id" | cut -c5-6) % 254 + 1))
	SNAPWORKER_METRICS_LISTEN=127.$a.$b.$c:$METRICS_LOOPBACK_PORT
	export SNAPWORKER_METRICS_LISTEN
fi
exec snapworker "$@"
