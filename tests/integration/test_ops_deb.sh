#!/usr/bin/env bash
# Operations: the Debian package.  Builds it with the standard tooling
# (dpkg-buildpackage -us -uc -b, debhelper) from a copy of the tree, so the
# work tree stays clean; runs lintian on the result (no error, no warning, and
# a package spoilt on purpose is noticed); inspects the contents (programs,
# man pages, units pointed at /usr/bin, sysusers entry, sample configuration
# marked as a conffile, no test program) and that Depends covers every shared
# library the programs load; installs the package into a throw-away root
# without snapworker (below), checks what its maintainer scripts did (service
# user, /etc/snapworker ownership, unit not enabled), runs the installed
# `snapworker check` there, as the service user, with the sample configuration
# edited to point at the test rig (the runner's broker and vCenter simulator),
# then removes and purges it.
#
# The clean root: a copy-on-write view of this machine's own root file system
# (overlayfs: the host's / as the read-only lower layer, a tmpfs as the upper
# one) in a private mount namespace (unshare), entered with chroot.  dpkg
# there resolves the package's Depends against the host's installed packages
# and runs the real maintainer scripts; whatever they write (users, dpkg
# database, statoverrides) lands in the tmpfs and vanishes with the
# namespace, so the host is never touched and nothing is left behind even
# when the test is killed.  It takes seconds and needs no network.  A
# debootstrap'd minimal root would also prove that the package installs
# where only its Depends are present, but it must be downloaded (minutes,
# and the tests talk to nothing but loopback) and cached; instead the
# Depends field is checked against the NEEDED entries of every program
# (each library's package must be in it), which is what such a root would
# catch.  The packaging toolchain (dpkg-buildpackage, debhelper and the
# commands they run) gets the system PATH: its own tools come with its
# packages, installed by scripts/deps.sh from scripts/tools.list.
#
# Needs root (mount namespaces, overlayfs, chroot).  About 80 s on two CPUs:
# about 60 s of package build (mostly compiling), lintian (~20 s, beside the
# rest) and ~6 s in the root.  Prints "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
SYS_PATH=/usr/sbin:/usr/bin:/sbin:/bin
pass=0
fail=0

ok() { echo "ok   - $*"; pass=$((pass + 1)); }
nok() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

# inroot CMD...: CMD in the clean root $R, as root, with a plain environment.
inroot() { chroot "$R" /usr/bin/env -i PATH=$SYS_PATH LC_ALL=C.UTF-8 "$@"; }
no_user() { [ -z "$(inroot getent passwd snapworker)" ]; }
conffile_recorded() {
	inroot dpkg-query -W -f='${Conffiles}' snapworker | grep -q '^ /etc/snapworker/snapworker.conf [0-9a-f]\{32\}$'
}

# The installation, in a private mount namespace (the script runs itself with
# --in-root there, as root); prints ok/FAIL lines that the caller counts.
in_root() {
	local deb=$1 ns=$tmp/ns u g out
	R=$ns/root
	mount -t tmpfs -o mode=0755 tmpfs "$ns" || { nok "a tmpfs for the root"; return; }
	mkdir -p "$ns/upper" "$ns/work" "$R"
	if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$ns/upper,workdir=$ns/work" "$R"; then
		nok "an overlay of / for the clean root"
		return
	fi
	mount -t proc proc "$R/proc" && mount --rbind /dev "$R/dev" && mount -t tmpfs tmpfs "$R/run" ||
	    { nok "/proc, /dev and /run in the root"; return; }

	# A root without snapworker: no package, no user, no group.  man-db's
	# trigger would rebuild the whole index database (slow, and not ours).
	inroot dpkg --purge snapworker >/dev/null 2>&1
	inroot userdel snapworker >/dev/null 2>&1
	inroot groupdel snapworker >/dev/null 2>&1
	rm -f "$R/var/lib/man-db/auto-update"
	check "the root starts without a snapworker user" no_user

	# Into the root's own /tmp: the host's /tmp may be a mount the overlay does not show.
	cp "$deb" "$R/tmp/" || nok "the package copied into the root"
	inroot dpkg -i "/tmp/${deb##*/}" >"$tmp/dpkg-i.out" 2>&1
	check "dpkg -i installs the package (Depends met, maintainer scripts succeed)" [ $? -eq 0 ] ||
	    sed 's/^/  | /' "$tmp/dpkg-i.out"
	check "dpkg says: install ok installed" \
	    [ "$(inroot dpkg-query -W -f='${Status}' snapworker 2>/dev/null)" = "install ok installed" ]
	check "dpkg records /etc/snapworker/snapworker.conf as a conffile" conffile_recorded
	for b in snapworker snapctl ovastore vmwctl; do
		check "$b is on the root's PATH at /usr/bin/$b" [ "$(inroot sh -c "command -v $b")" = "/usr/bin/$b" ]
	done
	out=$(inroot snapworker --version 2>&1)
	check "the installed snapworker runs (--version: $out)" bash -c "[[ '$out' =~ [0-9]+\.[0-9]+ ]]"
	check "  and its version is the package's ($PKG_VERSION, debian/changelog)" bash -c "[[ '$out' == 'snapworker $PKG_VERSION '* ]]"
	check "man finds snapworker(8) and snapworker.conf(5)" [ "$(inroot man -w snapworker.conf snapworker 2>/dev/null | tr '\n' ' ')" = \
	    "/usr/share/man/man5/snapworker.conf.5.gz /usr/share/man/man8/snapworker.8.gz " ]
	check "the package wrote no program but its four in /usr/bin" \
	    [ "$(ls "$ns/upper/usr/bin" 2>/dev/null | tr '\n' ' ')" = "ovastore snapctl snapworker vmwctl " ]
	check "and nothing under /usr/local" [ ! -e "$ns/upper/usr/local" ]

	# The maintainer scripts: the user (sysusers), the ownership of /etc/snapworker.
	out=$(inroot getent passwd snapworker)
	check "postinst made the system user snapworker ($out)" bash -c \
	    "echo '$out' | awk -F: '\$3 > 0 && \$3 < 1000 && \$6 == \"/nonexistent\" && \$7 == \"/usr/sbin/nologin\" {f=1} END {exit !f}'"
	check "and its group" [ -n "$(inroot getent group snapworker)" ]
	check "/etc/snapworker is root:snapworker 0750" \
	    [ "$(inroot stat -c '%U:%G %a' /etc/snapworker 2>/dev/null)" = "root:snapworker 750" ]
	check "the configuration is root:snapworker 0640" \
	    [ "$(inroot stat -c '%U:%G %a' /etc/snapworker/snapworker.conf 2>/dev/null)" = "root:snapworker 640" ]
	check "both recorded as dpkg-statoverride entries" [ "$(inroot dpkg-statoverride --list | grep -c ' /etc/snapworker')" = 2 ]
	check "the unit is installed but not enabled (it needs a configuration first)" bash -c \
	    "[ -f '$R/lib/systemd/system/snapworker.service' ] && ! ls '$R'/etc/systemd/system/*.wants/snapworker.service >/dev/null 2>&1"

	# The operator's part: the sample configuration pointed at the test rig.
	u=$(inroot id -u snapworker) g=$(inroot id -g snapworker)
	# shellcheck disable=SC1090
	. "$SW_RABBITMQ_ENV"
	# shellcheck disable=SC1090
	. "$SW_VCSIM_ENV"
	install -m 0600 -o "$u" -g "$g" "$AMQP_PASSWORD_FILE" "$R/etc/snapworker/amqp.secret"
	printf 'vc-password\n' >"$R/etc/snapworker/vc1.secret"
	chown "$u:$g" "$R/etc/snapworker/vc1.secret" && chmod 0600 "$R/etc/snapworker/vc1.secret"
	install -d -o "$u" -g "$g" -m 0750 "$R/mnt/secondary/1"
	# Broker objects of this run only (other tests share the broker).
	sed -i -e "s#^url = amqp://.*#url = $AMQP_URL#" \
	    -e "s#^url = https://vc1.example.org/sdk#url = $VCSIM_URL#" \
	    -e "s#^thumbprint = .*#thumbprint = $VCSIM_THUMBPRINT#" \
	    -e "s#^listen = 127.0.0.1:[0-9]*#listen = 127.0.0.1:$METRICS_PORT#" \
	    -e "s#^\[amqp\]\$#[amqp]\nexchange = deb$$.commands\nevents_exchange = deb$$.events\ndead_letter_exchange = deb$$.dlx\ndead_letter_queue = deb$$.dead#" \
	    "$R/etc/snapworker/snapworker.conf"
	check "the edited configuration keeps its ownership" \
	    [ "$(inroot stat -c '%U:%G %a' /etc/snapworker/snapworker.conf 2>/dev/null)" = "root:snapworker 640" ]
	timeout 90 chroot --userspec="$u:$g" "$R" /usr/bin/env -i PATH=$SYS_PATH LC_ALL=C.UTF-8 \
	    snapworker check -c /etc/snapworker/snapworker.conf >"$tmp/check.out" 2>&1
	check "the installed snapworker check, as the service user, exits 0" [ $? -eq 0 ] ||
	    sed 's/^/  | /' "$tmp/check.out"
	check "  it loads /etc/snapworker/snapworker.conf" grep -q '^config /etc/snapworker/snapworker.conf: ok' "$tmp/check.out"
	check "  logs into the rig's broker and declares the topology" bash -c \
	    "grep -q ': login: ok' '$tmp/check.out' && grep -q 'topology: ok' '$tmp/check.out'"
	check "  writes to the store mount" grep -q 'mount /mnt/secondary/1: ok' "$tmp/check.out"
	check "  logs into the vCenter simulator" grep -q '^  \[vcenter vc1\] .* logged in' "$tmp/check.out"
	check "  says check: ok" grep -q '^check: ok$' "$tmp/check.out"
	# The ownership matters: a user outside the group cannot read the configuration.
	timeout 30 chroot --userspec=65534:65534 "$R" /usr/bin/env -i PATH=$SYS_PATH \
	    snapworker check -c /etc/snapworker/snapworker.conf >"$tmp/check-nobody.out" 2>&1
	check "the same check as nobody fails with a configuration error (2)" [ $? -eq 2 ] ||
	    sed 's/^/  | /' "$tmp/check-nobody.out"

	# Remove keeps the configuration, purge takes it and the statoverrides away.
	inroot dpkg --remove snapworker >"$tmp/dpkg-r.out" 2>&1
	check "dpkg --remove succeeds" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/dpkg-r.out"
	check "  the programs are gone" [ ! -e "$R/usr/bin/snapworker" ]
	check "  the configuration stays" [ -f "$R/etc/snapworker/snapworker.conf" ]
	inroot dpkg --purge snapworker >"$tmp/dpkg-p.out" 2>&1
	check "dpkg --purge succeeds" [ $? -eq 0 ] || sed 's/^/  | /' "$tmp/dpkg-p.out"
	check "  the configuration is gone" [ ! -e "$R/etc/snapworker/snapworker.conf" ]
	check "  and the statoverride entries" [ "$(inroot dpkg-statoverride --list | grep -c ' /etc/snapworker')" = 0 ]
	check "  the user stays (files on the stores belong to it)" [ -n "$(inroot getent passwd snapworker)" ]
}

if [ "${1:-}" = --in-root ]; then
	tmp=$2
	in_root "$3"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "FAIL - needs root (mount namespaces, overlayfs, chroot)"
	echo "0 passed, 1 failed"
	exit 1
fi
for v in SW_RABBITMQ_ENV SW_VCSIM_ENV; do
	if [ -z "${!v:-}" ] || [ ! -f "${!v}" ]; then
		echo "no test rig ($v unset): run through tests/run.sh"
		echo "0 passed, 1 failed"
		exit 1
	fi
done
tmp=$(mktemp -d /tmp/swdeb.XXXXXX)
lint_pid="" lint_bad_pid=""
cleanup() {
	[ -n "$lint_pid" ] && kill "$lint_pid" 2>/dev/null
	[ -n "$lint_bad_pid" ] && kill "$lint_bad_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- the build, from a copy of the tree --------------------------------------------
mkdir -p "$tmp/src"
tar -C "$here" --exclude=./build --exclude=./.git --exclude=./debian/snapworker \
    --exclude=./debian/.debhelper -cf - . | tar -C "$tmp/src" -xf -
start=$(date +%s)
(cd "$tmp/src" && env PATH=$SYS_PATH DEB_BUILD_OPTIONS=parallel=2 \
    dpkg-buildpackage -rfakeroot -us -uc -b) >"$tmp/build.out" 2>&1
rc=$?
check "dpkg-buildpackage -us -uc -b succeeds ($(($(date +%s) - start)) s)" [ $rc -eq 0 ] ||
    tail -40 "$tmp/build.out" | sed 's/^/  | /'
ver=$(sed -n '1s/^snapworker (\([^)]*\)).*/\1/p' "$here/debian/changelog")
arch=$(dpkg --print-architecture)
deb=$tmp/snapworker_${ver}_$arch.deb
changes=$tmp/snapworker_${ver}_$arch.changes
check "it made snapworker_${ver}_$arch.deb and the .changes" test -f "$deb" -a -f "$changes"
if [ ! -f "$deb" ]; then
	echo "$pass passed, $fail failed"
	exit 1
fi
check "the work tree is left as it was" bash -c \
    "[ ! -e '$here/debian/snapworker' ] && [ ! -e '$here/debian/files' ] && [ ! -e '$here/debian/.debhelper' ] && ! ls '$here'/../snapworker_*.deb >/dev/null 2>&1"
check "built with the hardening flags of dpkg-buildflags" grep -q -- '-Wl,-z,now' "$tmp/build.out"

# --- lintian (in the background while the rest runs: it takes a while) ----------
# A copy of the package with a world-writable man page must be noticed, or the
# clean result proves nothing.
mkdir -p "$tmp/bad"
dpkg-deb -R "$deb" "$tmp/bad/tree" && chmod 0666 "$tmp/bad/tree/usr/share/man/man1/snapctl.1.gz" &&
    dpkg-deb --root-owner-group -b "$tmp/bad/tree" "$tmp/bad/snapworker_${ver}_$arch.deb" >/dev/null 2>&1
env PATH=$SYS_PATH lintian --fail-on error,warning "$changes" >"$tmp/lint.out" 2>&1 &
lint_pid=$!
env PATH=$SYS_PATH lintian "$tmp/bad/snapworker_${ver}_$arch.deb" >"$tmp/lint-bad.out" 2>&1 &
lint_bad_pid=$!

# --- the contents ---------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $1, $2, $NF}' >"$tmp/contents"
has() { grep -qE "^$1 root/root \./$2\$" "$tmp/contents"; }
for b in snapworker snapctl ovastore vmwctl; do
	check "usr/bin/$b, root 0755" has -rwxr-xr-x "usr/bin/$b"
done
for m in man1/snapctl.1 man1/ovastore.1 man1/vmwctl.1 man5/snapworker.conf.5 man8/snapworker.8; do
	check "usr/share/man/$m.gz, 0644" has -rw-r--r-- "usr/share/man/$m.gz"
done
for u in snapworker.service snapworker@.service; do
	check "lib/systemd/system/$u" has -rw-r--r-- "lib/systemd/system/$u"
done
check "usr/lib/sysusers.d/snapworker.conf" has -rw-r--r-- usr/lib/sysusers.d/snapworker.conf
check "etc/snapworker/snapworker.conf (the sample, as the configuration)" has -rw-r--r-- etc/snapworker/snapworker.conf
check "usr/share/doc/snapworker/snapworker.conf.sample" has -rw-r--r-- usr/share/doc/snapworker/snapworker.conf.sample
check "usr/share/doc/snapworker/copyright" has -rw-r--r-- usr/share/doc/snapworker/copyright
check "no test program, simulator or static library" bash -c \
    "! grep -qE 'vcsim|/test_|\.a\$|/usr/local' '$tmp/contents'"
check "nothing but regular files and directories" bash -c "! grep -qvE '^[-d]' '$tmp/contents'"
check "control: /etc/snapworker/snapworker.conf is a conffile" \
    [ "$(dpkg-deb -I "$deb" conffiles 2>/dev/null)" = /etc/snapworker/snapworker.conf ]
mkdir -p "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
for u in snapworker.service snapworker@.service; do
	check "$u runs /usr/bin/snapworker" grep -q '^ExecStart=/usr/bin/snapworker run -c /etc/snapworker/' \
	    "$tmp/x/lib/systemd/system/$u"
done
check "the shipped configuration is the sample" cmp -s "$here/systemd/snapworker.conf" "$tmp/x/etc/snapworker/snapworker.conf"
check "the copyright file is machine-readable (DEP-5), Apache-2.0" bash -c \
    "head -1 '$tmp/x/usr/share/doc/snapworker/copyright' | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' && grep -q '^License: Apache-2.0' '$tmp/x/usr/share/doc/snapworker/copyright'"
depends=$(dpkg-deb -f "$deb" Depends)
check "Depends names a sysusers provider (for the postinst)" bash -c "[[ '$depends' == *systemd-sysusers* ]]"
# covers FILE: the package of every library FILE needs (NEEDED) is in Depends.
covers() {
	local lib pkgs p found missing=""
	for lib in $(objdump -p "$1" | awk '$1 == "NEEDED" {print $2}'); do
		pkgs=$(dpkg -S "*/$lib" 2>/dev/null | sed 's/: .*//; s/:[a-z0-9]*$//' | tr ', ' '\n\n' | sort -u)
		found=0
		for p in $pkgs; do
			[[ ", $depends," =~ ,\ $p[\ ,] ]] && found=1
		done
		[ $found = 1 ] || missing="$missing $lib($pkgs)"
	done
	[ -z "$missing" ] || echo "  $(basename "$1") needs, not in Depends:$missing"
	[ -z "$missing" ]
}
for b in snapworker snapctl ovastore vmwctl; do
	check "Depends covers every library $b loads" covers "$tmp/x/usr/bin/$b"
done
check "(and a library missing from Depends is noticed)" bash -c \
    "$(declare -f covers); depends='libc6 (>= 2.34)'; ! covers '$tmp/x/usr/bin/snapworker' >/dev/null"

# --- the installation in a clean root --------------------------------------------
METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PKG_VERSION=$ver
export SW_RABBITMQ_ENV SW_VCSIM_ENV METRICS_PORT PKG_VERSION
mkdir -p "$tmp/ns"
start=$(date +%s)
# A namespace whose mounts are all private cannot be had where / is not a mount point
# (a chroot: "cannot change root filesystem propagation"); there the namespace keeps the
# propagation it inherits and $tmp/ns, bound onto itself and made private first in this
# namespace, is where every mount of the clean root is made, so none propagates out.
if unshare --mount --propagation private true 2>/dev/null; then
	unshare --mount --propagation private bash "$0" --in-root "$tmp" "$deb" >"$tmp/root.out" 2>&1
elif mount --bind "$tmp/ns" "$tmp/ns" && mount --make-private "$tmp/ns"; then
	echo "  (/ is not a mount point here: the clean root's mounts live under a private $tmp/ns)"
	unshare --mount --propagation unchanged bash "$0" --in-root "$tmp" "$deb" >"$tmp/root.out" 2>&1
	umount "$tmp/ns"
else
	echo "FAIL - a private mount for the clean root" >"$tmp/root.out"
fi
echo "  (the clean-root part took $(($(date +%s) - start)) s)"
cat "$tmp/root.out"
pass=$((pass + $(grep -c '^ok ' "$tmp/root.out")))
fail=$((fail + $(grep -c '^FAIL ' "$tmp/root.out")))
check "the clean-root part ran its checks" [ "$(grep -c '^ok \|^FAIL ' "$tmp/root.out")" -ge 30 ]
check "its mounts went with the namespace" bash -c "! grep -q ' $tmp/' /proc/mounts"

wait "$lint_pid"
rc=$?
wait "$lint_bad_pid"
lint_pid="" lint_bad_pid=""
lint_clean() { [ "$rc" -eq 0 ] && ! grep -qE '^[EW]: ' "$tmp/lint.out"; }
check "lintian on the .changes: no error, no warning (exit 0)" lint_clean ||
    sed 's/^/  | /' "$tmp/lint.out"
check "lintian notices the spoilt copy (non-standard-file-perm)" grep -q '^W: snapworker: non-standard-file-perm' "$tmp/lint-bad.out" ||
    sed 's/^/  | /' "$tmp/lint-bad.out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
