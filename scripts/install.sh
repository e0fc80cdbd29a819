#!/bin/bash
# Install what pct and its tests need on a Debian 12 host, as root:
# Debian packages, the delegated id range for unprivileged containers, and
# pct itself in a virtual environment at .venv in this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: must be run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    lxc uidmap debootstrap busybox-static \
    tar zstd xz-utils gzip e2fsprogs btrfs-progs util-linux mount \
    iproute2 iputils-ping openssl openssh-client tmux lxcfs \
    gpgv gnupg \
    lzop rsync quota acl \
    python3 python3-venv python3-pip ca-certificates

# Unprivileged containers map container ids 0-65535 to host ids 100000-165535.
for file in /etc/subuid /etc/subgid; do
    touch "$file"
    grep -q '^root:100000:65536$' "$file" || echo 'root:100000:65536' >> "$file"
done

if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'

# Start onboot containers at host boot, where systemd runs the host.
if [ -d /run/systemd/system ]; then
    sed "s|@PCT@|$PWD/.venv/bin/pct|" contrib/pct-guests.service > /etc/systemd/system/pct-guests.service
    systemctl daemon-reload
    systemctl enable pct-guests.service
fi

# lxcfs gives each container its own /proc/meminfo, /proc/cpuinfo and uptime;
# LXC's mount hook uses it whenever /var/lib/lxcfs is mounted.
# A lxcfs that died leaves its FUSE mount behind, and every stat of it then
# fails with "Transport endpoint is not connected", so detach such a mount first.
if findmnt -n /var/lib/lxcfs >/dev/null 2>&1 && ! stat /var/lib/lxcfs >/dev/null 2>&1; then
    umount -l /var/lib/lxcfs
fi
if ! mountpoint -q /var/lib/lxcfs; then
    if [ -d /run/systemd/system ]; then
        systemctl start lxcfs
    else
        # Debian's lxcfs stays in the foreground, so detach it from this
        # script and its output, then wait for its mount.
        mkdir -p /var/lib/lxcfs
        setsid lxcfs --enable-cfs /var/lib/lxcfs </dev/null >/dev/null 2>&1 &
        for _ in $(seq 50); do
            mountpoint -q /var/lib/lxcfs && break
            sleep 0.1
        done
        mountpoint -q /var/lib/lxcfs || echo "install.sh: lxcfs did not mount; containers see the host's /proc values" >&2
    fi
fi
