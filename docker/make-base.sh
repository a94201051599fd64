#!/usr/bin/env bash
# Makes a Debian 12 (bookworm) base image without a registry: a minbase root
# from debootstrap, packed as a tarball, then `docker import`ed.  The rig's
# Dockerfiles take it through their build argument BASE, in place of the
# registry's debian:bookworm-slim:
#   docker/make-base.sh TARBALL                  # only makes TARBALL (when missing)
#   docker/make-base.sh TARBALL IMAGE [DOCKER..] # and imports it as IMAGE (when missing)
#   docker build --build-arg BASE=IMAGE --network host -f docker/Dockerfile .
# DOCKER is the docker command to import with (default: docker).  MIRROR
# (default http://deb.debian.org/debian) is where debootstrap and the
# image's apt-get fetch from.  Must run as root.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 TARBALL [IMAGE [DOCKER...]]" >&2; exit 2; }
tarball=$1
image=${2:-}
shift $(($# >= 2 ? 2 : 1))
[ $# -gt 0 ] || set -- docker
mirror=${MIRROR:-http://deb.debian.org/debian}

if [ ! -s "$tarball" ]; then
	mkdir -p "$(dirname "$tarball")"
	root=$(mktemp -d "$(dirname "$tarball")/root.XXXXXX")
	trap 'rm -rf "$root" "$tarball.tmp"' EXIT
	debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
		{ tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
	rm -f "$root.log"
	# The sources of the registry's image: the release, its updates and security.
	rm -f "$root/etc/apt/sources.list"
	cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
	# As the registry's image: no package lists or caches; /tmp for apt-get.
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
	install -d -m 1777 "$root/tmp"
	tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
fi

if [ -n "$image" ] && ! "$@" image inspect "$image" >/dev/null 2>&1; then
	"$@" import --change 'CMD ["bash"]' - "$image" <"$tarball" >/dev/null
fi
