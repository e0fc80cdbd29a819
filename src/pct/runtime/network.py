"""Host-side network checks and settings: bridges, VLAN tags and traffic limits."""

from __future__ import annotations

import os
from pathlib import Path

from pct.errors import PctError
from pct.run import run
from pct.runtime.lxcconf import veth_name

MEGABYTE = 1000 * 1000


def check_bridges(settings) -> None:
    """Raise PctError for a missing bridge, or a VLAN tag on a bridge without VLAN filtering."""
    for net in settings.nets:
        check_bridge(settings.vmid, net)


def check_bridge(vmid: int, net) -> None:
    if not net.bridge:
        return
    bridge = Path(f"/sys/class/net/{net.bridge}/bridge")
    if not bridge.is_dir():
        raise PctError(f"CT {vmid}: net{net.index}: bridge '{net.bridge}' does not exist", vmid)
    if not net.tag:
        return
    filtering = bridge / "vlan_filtering"
    if not filtering.exists():
        raise PctError(f"CT {vmid}: net{net.index}: tag={net.tag} needs bridge VLAN filtering, which this "
                       "kernel lacks (CONFIG_BRIDGE_VLAN_FILTERING)", vmid)
    if filtering.read_text().strip() != "1":
        raise PctError(f"CT {vmid}: net{net.index}: tag={net.tag} needs a VLAN-aware bridge, but "
                       f"'{net.bridge}' has VLAN filtering off (ip link set {net.bridge} type bridge "
                       "vlan_filtering 1)", vmid)


def apply_rate_limits(settings, pid: int | None = None) -> None:
    """Limit each NIC with ``rate`` to that many megabytes per second, both ways."""
    for net in settings.nets:
        set_rate_limit(settings.vmid, net, pid)


def set_rate_limit(vmid: int, net, pid: int | None = None) -> None:
    """Set or clear the traffic limit of one NIC.

    Traffic to the guest leaves the host-side veth, so a token bucket there
    limits it. Traffic from the guest enters the host side and is policed
    there. On a kernel without traffic classifiers it is shaped on the guest
    side instead, inside the network namespace of the init *pid*.
    """
    device = veth_name(vmid, net.index)
    if not os.path.exists(f"/sys/class/net/{device}"):
        return
    run(["tc", "qdisc", "del", "dev", device, "root"], check=False)
    run(["tc", "qdisc", "del", "dev", device, "ingress"], check=False)
    if pid is not None:
        _in_netns(pid, ["tc", "qdisc", "del", "dev", net.name, "root"], check=False)
    if not net.rate:
        return

    rate = f"{int(net.rate * MEGABYTE)}bps"
    burst = str(max(int(net.rate * MEGABYTE / 10), 16 * 1024))
    run(["tc", "qdisc", "add", "dev", device, "root", "tbf", "rate", rate, "burst", burst, "latency", "50ms"])
    run(["tc", "qdisc", "add", "dev", device, "handle", "ffff:", "ingress"])
    policed = run(["tc", "filter", "add", "dev", device, "parent", "ffff:", "matchall",
                   "action", "police", "rate", rate, "burst", burst, "drop"], check=False)
    if policed.returncode == 0 or pid is None:
        return
    # Limitation: without classifiers the limit on traffic from the guest sits
    # in the guest's own namespace, where the guest's root could remove it.
    run(["tc", "qdisc", "del", "dev", device, "ingress"], check=False)
    _in_netns(pid, ["tc", "qdisc", "add", "dev", net.name, "root", "tbf", "rate", rate, "burst", burst,
                    "latency", "50ms"])


def _in_netns(pid: int, argv: list[str], check: bool = True) -> None:
    run(["nsenter", f"--target={pid}", "--net", "--", *argv], check=check)
