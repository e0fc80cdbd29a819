#!/bin/bash
# The main job: install pct, build a Debian 12 template, and run a container
# with a static address on an isolated bridge, then show that it is up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

VMID=${DEMO_VMID:-100}
BRIDGE=${DEMO_BRIDGE:-pctdemo0}
HOST_IP=10.199.0.1
CT_IP=10.199.0.100
PCT=.venv/bin/pct

# A bridge with no uplink: the host reaches only the containers on it, and
# nothing is forwarded or masqueraded.
if [ ! -d "/sys/class/net/$BRIDGE" ]; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$HOST_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
fi

TEMPLATE=$(.venv/bin/pveam build debian)
echo "template: $TEMPLATE"

if [ ! -e "/etc/pve/lxc/$VMID.conf" ]; then
    $PCT create "$VMID" "$TEMPLATE" --hostname pct-demo --memory 512 --swap 256 --cores 1 \
        --net0 "name=eth0,bridge=$BRIDGE,ip=$CT_IP/24,gw=$HOST_IP" --nameserver "$HOST_IP"
fi
if [ "$($PCT status "$VMID")" != "status: running" ]; then
    $PCT start "$VMID"
fi

$PCT list
for _ in $(seq 60); do
    state=$($PCT exec "$VMID" -- systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 1
done
echo "systemctl is-system-running inside CT $VMID: $state"
.venv/bin/python - "$CT_IP" <<'PYTHON'
import socket, sys, time
for _ in range(30):
    try:
        with socket.create_connection((sys.argv[1], 22), timeout=2) as connection:
            print(f"sshd on {sys.argv[1]}:22 answers: {connection.recv(64).decode().strip()}")
            break
    except OSError:
        time.sleep(1)
else:
    sys.exit(f"sshd on {sys.argv[1]}:22 does not answer")
PYTHON
