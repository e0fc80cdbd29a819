"""Netplan configuration (Ubuntu 17.10 and later) for the configured interfaces.

Netplan merges every file in /etc/netplan in name order, so each setting the
container config decides (dhcp4, dhcp6, accept-ra) is written explicitly: an
older file of the template cannot switch DHCP back on. Netplan turns the file
into systemd-networkd or NetworkManager configuration at boot.
"""

from __future__ import annotations

from typing import Sequence

from pct.guest.model import GuestNet, is_off_link

# The Ubuntu images of linuxcontainers.org ship their own eth0 settings under
# this name; writing the same name replaces them instead of merging with them.
NETPLAN_FILE = "/etc/netplan/10-lxc.yaml"


def render_netplan(nets: Sequence[GuestNet]) -> list[str]:
    """Return the lines of a netplan file for *nets*, which must all have ``ip`` or ``ip6`` set."""
    lines = ["network:", "  version: 2", "  ethernets:"]
    for net in nets:
        # Interface names are checked to be [A-Za-z0-9_.-]; quoting keeps
        # names such as "yes" or "1e5" strings for the YAML parser.
        lines.append(f'    "{net.name}":')
        lines.extend(f"      {line}" for line in _interface_lines(net))
    return lines


def _interface_lines(net: GuestNet) -> list[str]:
    lines = [f"dhcp4: {_bool(net.ip == 'dhcp')}", f"dhcp6: {_bool(net.ip6 == 'dhcp')}"]
    if net.ip6 is not None:
        lines.append(f"accept-ra: {_bool(net.ip6 in ('auto', 'dhcp'))}")

    addresses = [str(a) for a in (net.static_ipv4(), net.static_ipv6()) if a is not None]
    if addresses:
        lines.append("addresses:")
        lines.extend(f"  - {address}" for address in addresses)

    routes = _default_routes(net)
    if routes:
        lines.append("routes:")
        lines.extend(routes)
    return lines


def _default_routes(net: GuestNet) -> list[str]:
    routes = []
    for address, gateway, default in ((net.static_ipv4(), net.gw, "0.0.0.0/0"), (net.static_ipv6(), net.gw6, "\"::/0\"")):
        if address is None or gateway is None:
            continue
        # "to: default" needs netplan 0.103 (Ubuntu 22.04); the explicit
        # prefix works with every netplan release. "::/0" is quoted because
        # a YAML plain scalar should not start with a colon.
        routes.extend([f"  - to: {default}", f"    via: {gateway}"])
        if is_off_link(address, gateway):
            routes.append("    on-link: true")
    return routes


def _bool(value: bool) -> str:
    return "true" if value else "false"
