"""systemd-networkd ``.network`` files, one per configured interface."""

from __future__ import annotations

from pct.guest.model import GuestNet, is_off_link

NETWORK_DIR = "/etc/systemd/network"


def network_file(net: GuestNet) -> str:
    return f"{NETWORK_DIR}/{net.name}.network"


def render_network(net: GuestNet) -> list[str]:
    """Return the lines of the ``.network`` file for *net*.

    A gateway outside the subnet gets a ``[Route]`` section with
    ``GatewayOnLink=yes``, which tells networkd the gateway is reachable
    directly on the link.
    """
    lines = ["[Match]", f"Name={net.name}", "", "[Network]", f"DHCP={_dhcp_mode(net)}"]
    if net.ip6 is not None:
        lines.append(f"IPv6AcceptRA={'yes' if net.ip6 in ('auto', 'dhcp') else 'no'}")
    for address in (net.static_ipv4(), net.static_ipv6()):
        if address is not None:
            lines.append(f"Address={address}")

    off_link = []
    for address, gateway in ((net.static_ipv4(), net.gw), (net.static_ipv6(), net.gw6)):
        if address is None or gateway is None:
            continue
        if is_off_link(address, gateway):
            off_link.append(gateway)
        else:
            lines.append(f"Gateway={gateway}")
    for gateway in off_link:
        lines.extend(["", "[Route]", f"Gateway={gateway}", "GatewayOnLink=yes"])
    return lines


def _dhcp_mode(net: GuestNet) -> str:
    ipv4, ipv6 = net.ip == "dhcp", net.ip6 == "dhcp"
    if ipv4 and ipv6:
        return "yes"
    if ipv4:
        return "ipv4"
    if ipv6:
        return "ipv6"
    return "no"
