#!/bin/bash
# Boots a real systemd as PID 1 of a throwaway machine, for test/systemd/live.test.ts:
#
#   unshare --mount --pid --fork --net --uts --ipc test/systemd/container.sh DIR CHECKOUT
#
# The machine's root is an overlay of this host's / with a tmpfs on top (mounted at DIR), so
# whatever is installed or written inside lands in memory and vanishes with the mount namespace
# when PID 1 dies; the host's files are never touched. Its network is only its own loopback.
# systemd starts netboot-live.target: the basic system (journald, D-Bus) and nothing else, so
# none of the host's own services (getty, databases, TFTP servers) run inside.
set -euo pipefail
dir=${1:?usage: container.sh DIR CHECKOUT}
checkout=${2:?usage: container.sh DIR CHECKOUT}

mount --make-rprivate /
mount -t tmpfs -o size=4g,mode=0755 tmpfs "$dir"
mkdir -p "$dir/upper" "$dir/work" "$dir/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
root=$dir/root

mount -t proc proc "$root/proc"
# /sys read-only, as systemd expects of a container; the cgroup mounts below it stay writable.
mount --rbind /sys "$root/sys"
mount -o remount,bind,ro "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
# The checkout to install from, read-only at the same path (it may sit under /tmp, or on another
# file system than /, which the overlay does not show).
mkdir -p "$root$checkout"
mount --bind "$checkout" "$root$checkout"
mount -o remount,bind,ro "$root$checkout"
ip link set lo up

cat > "$root/etc/systemd/system/netboot-live.target" <<'EOF'
[Unit]
Description=netboot live test machine
Requires=basic.target
After=basic.target
AllowIsolate=yes
EOF
# Timers of the host's packages (apt, man-db, ...) have no business in a test machine.
ln -sf /dev/null "$root/etc/systemd/system/timers.target"

exec chroot "$root" /usr/bin/env container=netboot-live /lib/systemd/systemd --unit=netboot-live.target --log-target=console --log-level=notice
