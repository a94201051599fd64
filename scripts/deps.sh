#!/bin/sh
# Installs every Debian package snapworker needs to build, test and demo, then
# checks that every command the scripts call (scripts/tools.list, with its
# package) is on PATH, naming command and package when one is not.
# Idempotent and quick when everything is present: it only calls apt-get when
# a package is missing.  Must run as root (or with sudo available) on Debian 12.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

# Libraries, headers, peers and the python3 modules the tests import
# (python3-jsonschema: tests/integration/proto_schema.py validates with it);
# the packages of the commands come from tools.list (among them the packaging
# tools: debhelper, dpkg-dev, fakeroot, lintian; xfsprogs, whose mkfs.xfs makes
# the reflink file system of test_copy_reflink and bench_copy).  The libraries' -dev packages
# are also the Build-Depends of debian/control, so dpkg-buildpackage finds its
# build dependencies here.
PKGS="build-essential clang libclang-rt-14-dev
librabbitmq-dev libjson-c-dev libcurl4-openssl-dev libxml2-dev libssl-dev
libcmocka-dev libarchive-dev libsystemd-dev libmicrohttpd-dev uuid-dev
rabbitmq-server golang-github-vmware-govmomi-dev ca-certificates python3-jsonschema
openjdk-17-jdk-headless
$("$here/tools.sh" packages | tr '\n' ' ')"

# One dpkg-query for all: the packages not installed ("ii") are missing.
# shellcheck disable=SC2086
missing=$(dpkg-query -W -f='${binary:Package} ${db:Status-Abbrev}\n' $PKGS 2>/dev/null |
    awk '$2 == "ii" { ok[$1] = 1; sub(/:.*/, "", $1); ok[$1] = 1 }
         END { n = split(pkgs, p, " "); for (i = 1; i <= n; i++) if (!(p[i] in ok)) printf " %s", p[i] }' \
         pkgs="$(echo $PKGS)")

if [ -z "$missing" ]; then
	"$here/tools.sh" check >/dev/null || exit 1
	echo "deps: all packages present"
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps: need root to install:$missing" >&2; exit 1; }
	SUDO=sudo
fi

echo "deps: installing:$missing"
# Keep the packages from starting system-wide services (a broker on 0.0.0.0:5672,
# dockerd):
# tests and the demo start their own loopback-only broker and their own dockerd.
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
"$here/tools.sh" check || { echo "deps: a command is missing after the install" >&2; exit 1; }
echo "deps: done"
