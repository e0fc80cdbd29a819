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
    lzop rsync \
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
if ! mountpoint -q /var/lib/lxcfs; then
    if [ -d /run/systemd/system ]; then
        systemctl start lxcfs
    else
        mkdir -p /var/lib/lxcfs
        lxcfs --enable-cfs /var/lib/lxcfs >/dev/null 2>&1
    fi
fi
