"""Red Hat style ``ifcfg-<name>`` and ``route-<name>`` files in /etc/sysconfig/network-scripts.

The initscripts of CentOS 7 and the ifcfg-rh plugin of NetworkManager
(CentOS/RHEL 8, older Fedora) read them.
"""

from __future__ import annotations

from pct.guest.model import GuestNet, is_off_link

SCRIPTS_DIR = "/etc/sysconfig/network-scripts"


def ifcfg_file(net: GuestNet) -> str:
    return f"{SCRIPTS_DIR}/ifcfg-{net.name}"


def route_file(net: GuestNet, version: int) -> str:
    return f"{SCRIPTS_DIR}/{'route' if version == 4 else 'route6'}-{net.name}"


def render_ifcfg(net: GuestNet) -> list[str]:
    """Return the lines of ifcfg-<name> for *net*.

    ``ip=manual`` and an unset ``ip`` both give ``BOOTPROTO=none``: the link
    comes up without an IPv4 address. A gateway outside the subnet is left
    out here and goes into the route file instead.
    """
    lines = [f"DEVICE={net.name}", "TYPE=Ethernet", "ONBOOT=yes", f"BOOTPROTO={'dhcp' if net.ip == 'dhcp' else 'none'}"]
    ipv4 = net.static_ipv4()
    if ipv4 is not None:
        lines.extend([f"IPADDR={ipv4.ip}", f"PREFIX={ipv4.network.prefixlen}"])
        if net.gw is not None and not is_off_link(ipv4, net.gw):
            lines.append(f"GATEWAY={net.gw}")
    lines.extend(_ipv6_lines(net))
    return lines


def _ipv6_lines(net: GuestNet) -> list[str]:
    if net.ip6 is None:
        return []
    lines = ["IPV6INIT=yes", f"IPV6_AUTOCONF={'yes' if net.ip6 == 'auto' else 'no'}"]
    if net.ip6 == "dhcp":
        lines.append("DHCPV6C=yes")
    ipv6 = net.static_ipv6()
    if ipv6 is not None:
        lines.append(f"IPV6ADDR={ipv6}")
        if net.gw6 is not None and not is_off_link(ipv6, net.gw6):
            lines.append(f"IPV6_DEFAULTGW={net.gw6}")
    return lines


def render_routes(net: GuestNet, version: int) -> list[str] | None:
    """Return the lines of route-<name> (*version* 4) or route6-<name> (6), or None when not needed.

    Only a gateway outside the subnet needs the file: a host route to the
    gateway on the link first, then the default route through it.
    """
    address, gateway = (net.static_ipv4(), net.gw) if version == 4 else (net.static_ipv6(), net.gw6)
    if address is None or gateway is None or not is_off_link(address, gateway):
        return None
    return [f"{gateway} dev {net.name}", f"default via {gateway} dev {net.name}"]
