#!/usr/bin/env bash
# Runs a Docker engine of the test rig's own, in the foreground (exec: the
# caller's PID is dockerd's, and it stops it by that PID):
#   tests/rig/dockerd.sh DIR DATA_ROOT [DOCKERD_ARGS...]
# DIR (empty, the caller's) gets the socket DIR/docker.sock, the pidfile, the
# exec-root DIR/run and an empty daemon.json; DATA_ROOT holds the images.  No
# iptables, no bridge: the rig runs with host networking.
#
# Where the engine cannot run as it is, it gets what it needs in a mount
# namespace of its own (gone with the daemon; nothing is left mounted):
# - / is not a mount point (a chroot, such as a fresh-machine check's):
#   runc cannot make the containers' mounts private there ("cannot change root
#   filesystem propagation"), so the daemon runs chrooted into a recursive
#   bind of / that is a mount point, made under DIR/ns, itself bound onto
#   itself and made private first so that none of these mounts propagates out;
# - /sys/fs/cgroup has no cgroup hierarchy (a chroot whose /sys is a plain
#   bind): the hierarchies of /proc/cgroups (cgroup v1) or cgroup2 are mounted
#   there, in that namespace only.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 DIR DATA_ROOT [DOCKERD_ARGS...]" >&2; exit 2; }
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

if mountpoint -q / && cgroups_mounted ""; then
	exec dockerd "${args[@]}"
fi

# --- the namespace: this script again, past this point, under unshare ---------------
if [ -z "${SW_DOCKERD_NS:-}" ]; then
	mkdir -p "$dir/ns"
	mount --bind "$dir/ns" "$dir/ns"
	mount --make-private "$dir/ns"
	SW_DOCKERD_NS=$dir/ns exec unshare --mount --propagation unchanged "$0" "$dir" "$data" "$@"
fi
# Here: a mount namespace of our own, whose mounts under $SW_DOCKERD_NS stay in it.
root=$SW_DOCKERD_NS/root
mkdir -p "$root"
mount --rbind / "$root"
mount --make-rprivate "$root"
if ! cgroups_mounted "$root"; then
	mount -t tmpfs -o mode=755 cgroup "$root/sys/fs/cgroup"
	if grep -q cgroup2 /proc/filesystems && ! awk 'NR > 1 && $2 != 0' /proc/cgroups | grep -q .; then
		mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup"
	else
		# One mount per v1 hierarchy, its controllers together (cpu,cpuacct where joined).
		awk 'NR > 1 && $2 != 0 && $4 == 1 { h[$2] = h[$2] ? h[$2] "," $1 : $1 } END { for (i in h) print h[i] }' \
		    /proc/cgroups | while read -r c; do
			mkdir -p "$root/sys/fs/cgroup/$c"
			mount -t cgroup -o "$c" cgroup "$root/sys/fs/cgroup/$c"
		done
	fi
fi
cd "$root"
exec chroot "$root" /bin/sh -c 'cd / && exec dockerd "$@"' dockerd "${args[@]}"
