#!/usr/bin/env bash
# Runs a Docker engine of the test rig's own, in the foreground (exec: the
# caller's PID is dockerd's, and it stops it by that PID):
#   tests/rig/dockerd.sh DIR DATA_ROOT [DOCKERD_ARGS...]
# DIR (empty, the caller's) gets the socket DIR/docker.sock, the pidfile, the
# exec-root DIR/run and an empty daemon.json; DATA_ROOT holds the images.  No
# iptables, no bridge: the rig runs with host networking.
#
# Where the engine cannot run as it is, it gets what it needs in a mount
# namespace of its own, where every mount is private (nothing propagates out,
# and all of it goes with the daemon):
# - no cgroup hierarchy under /sys/fs/cgroup (a chroot whose /sys is a plain
#   bind): the hierarchies of /proc/cgroups (cgroup v1), or cgroup2, are mounted;
# - / is not a mount point (a chroot, such as a fresh-machine check's): a
#   container's init can be set up (runc pivots into its root from any mount
#   point), but `docker exec`, and so every HEALTHCHECK, enters a container by
#   joining its mount namespace, which puts the process at that namespace's
#   root: the machine's real /, not the chroot.  So the daemon's namespace gets
#   the chroot's tree mounted on top of its real root (the chroot is left
#   through "..", as root may, only inside this namespace; then the tree is
#   moved onto / as switch_root does), and docker exec lands in the container.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 DIR DATA_ROOT [DOCKERD_ARGS...]" >&2; exit 2; }
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
dir=$(cd "$1" && pwd)
data=$2
shift 2
echo '{}' >"$dir/daemon.json"
args=(--config-file "$dir/daemon.json" --data-root "$data" --exec-root "$dir/run"
      --pidfile "$dir/dockerd.pid" -H "unix://$dir/docker.sock"
      --iptables=false --ip-masq=false --bridge=none "$@")

cgroups_mounted() { # ROOT
	[ -e "$1/sys/fs/cgroup/cgroup.controllers" ] || [ -e "$1/sys/fs/cgroup/devices/devices.list" ]
}
mount_cgroups() { # ROOT: the hierarchies, when none is mounted there
	cgroups_mounted "$1" && return 0
	mount -t tmpfs -o mode=755 cgroup "$1/sys/fs/cgroup"
	if grep -q cgroup2 /proc/filesystems && ! awk 'NR > 1 && $2 != 0' /proc/cgroups | grep -q .; then
		mount -t cgroup2 cgroup2 "$1/sys/fs/cgroup"
		return
	fi
	# One mount per v1 hierarchy, its controllers together where the kernel joined them.
	awk 'NR > 1 && $2 != 0 && $4 == 1 { h[$2] = h[$2] ? h[$2] "," $1 : $1 } END { for (i in h) print h[i] }' \
	    /proc/cgroups | while read -r c; do
		mkdir -p "$1/sys/fs/cgroup/$c"
		mount -t cgroup -o "$c" cgroup "$1/sys/fs/cgroup/$c"
	done
}

case "${SW_DOCKERD_STAGE:-}" in
"")
	if mountpoint -q / && cgroups_mounted ""; then
		exec dockerd "${args[@]}"
	fi
	if mountpoint -q /; then
		SW_DOCKERD_STAGE=cgroups exec unshare --mount --propagation private "$self" "$dir" "$data" "$@"
	fi
	mkdir -p "$dir/root"
	SW_DOCKERD_STAGE=chroot exec unshare --mount --propagation unchanged "$self" "$dir" "$data" "$@"
	;;
cgroups | inroot)
	mount_cgroups ""
	exec dockerd "${args[@]}"
	;;
chroot)
	# In the new namespace, still in the chroot.  python3 (the runner's): out of the
	# chroot, every mount made private, the chroot's tree bound onto $dir/root and
	# moved onto the namespace's real root, chroot into it; then this script again.
	exec python3 - "$dir/root" "$self" "$dir" "$data" "$@" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
MS_MOVE, MS_BIND, MS_REC, MS_PRIVATE = 0x2000, 0x1000, 0x4000, 0x40000
def mount(src, tgt, flags):
    if libc.mount(src.encode() if src else None, tgt.encode(), None, flags, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), "mount %s %s" % (src, tgt))
chroot_fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
# A chroot into a subdirectory leaves the working directory outside the new root, from
# where ".." climbs to the namespace's real root.
os.chdir("/")
os.chroot(sys.argv[1])
for _ in range(256):
    os.chdir("..")
os.chroot(".")
# Nothing made from here on may reach the machine's namespace.
mount(None, "/", MS_REC | MS_PRIVATE)
chroot_path = os.readlink("/proc/self/fd/%d" % chroot_fd)   # the chroot's path from the real root
if chroot_path == "/":
    sys.exit("dockerd.sh: / is not a mount point, but no chroot was found")
new = chroot_path + sys.argv[1]
mount(chroot_path, new, MS_BIND | MS_REC)
os.chdir(new)
mount(".", "/", MS_MOVE)
os.chroot(".")
os.chdir("/")
# This script again, in the new root, past this stage.
os.environ["SW_DOCKERD_STAGE"] = "inroot"
os.execv("/bin/bash", ["bash"] + sys.argv[2:])
EOF
	;;
esac
