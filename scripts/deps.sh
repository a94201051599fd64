#!/bin/sh
# Installs every Debian package snapworker needs to build, test and demo.
# Idempotent and quick when everything is present: it only calls apt-get when
# a package is missing.  Must run as root (or with sudo available) on Debian 12.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev
librabbitmq-dev libjson-c-dev libcurl4-openssl-dev libxml2-dev libssl-dev
libcmocka-dev libarchive-dev libinih-dev libsystemd-dev libmicrohttpd-dev uuid-dev
rabbitmq-server amqp-tools golang-go golang-github-vmware-govmomi-dev
qemu-utils libxml2-utils valgrind tar curl openssl ca-certificates python3 iproute2
bc time docker-compose"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi

echo "deps: installing:$missing"
# Keep the packages from starting a system-wide broker on 0.0.0.0:5672:
# tests and the demo start their own loopback-only node.
prc=/usr/sbin/policy-rc.d
created_prc=0
if [ ! -e "$prc" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$prc" >/dev/null
	$SUDO chmod 755 "$prc"
	created_prc=1
fi
cleanup() { [ "$created_prc" = 1 ] && $SUDO rm -f "$prc"; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
echo "deps: done"
