"""Rendering of ifupdown's /etc/network/interfaces for the configured interfaces.

The file has no PVE markers. An interface named in the config is managed as a
whole: every ``iface <name>`` stanza with its option lines and its name on
``auto``/``allow-*`` lines are removed, and the new stanzas go where the first
removed line was (at the end for a new interface). Stanzas of other
interfaces, ``source`` lines and comments stay as the guest has them.
An interface with neither ``ip`` nor ``ip6`` is not managed, so a stanza the
guest wrote for it by hand survives.

The busybox style is for busybox's ``ifup`` (Alpine before ifupdown-ng, and
the busybox test template). It supports only the ``static`` and ``manual``
methods for inet6, expects the IPv6 prefix length as ``netmask``, and its
``manual`` method does not bring the link up (busybox 1.35, checked with
``ifup -n``).
"""

from __future__ import annotations

import ipaddress
from typing import Sequence

from pct.guest.model import GuestNet

_LOOPBACK = ["auto lo", "iface lo inet loopback", ""]


def render_interfaces(text: str | None, nets: Sequence[GuestNet], busybox: bool = False) -> str:
    """Return the interfaces file *text* with stanzas for *nets* in place of the old ones."""
    managed = {net.name for net in nets if net.ip is not None or net.ip6 is not None}
    lines = (text or "").splitlines()
    kept, position = _remove_managed(lines, managed)

    if not any(line.split()[:2] == ["iface", "lo"] for line in kept):
        kept[0:0] = _LOOPBACK
        position = None if position is None else position + len(_LOOPBACK)
    if position is None:
        position = len(kept)

    block = _stanza_block([net for net in nets if net.name in managed], busybox)
    if block:
        if position > 0 and kept[position - 1].strip():
            block.insert(0, "")
        if position < len(kept) and kept[position].strip():
            block.append("")
    kept[position:position] = block
    return "\n".join(kept) + "\n"


def _remove_managed(lines: list[str], managed: set[str]) -> tuple[list[str], int | None]:
    """Drop the lines that belong to managed interfaces.

    Return the remaining lines and the index among them where the first
    dropped line was, or None when nothing was dropped. Blank lines right
    after a dropped line go too, so repeated runs do not pile them up.
    """
    kept: list[str] = []
    position: int | None = None
    owner: str | None = None
    dropping = False
    for line in lines:
        fields = line.split()
        keyword = fields[0] if fields else ""
        drop = False
        if not fields:
            drop = dropping
        elif keyword.startswith("#"):
            pass
        elif keyword == "iface" and len(fields) >= 2:
            owner = fields[1]
            drop = owner in managed
        elif keyword == "auto" or keyword.startswith("allow-"):
            owner = None
            remaining = [name for name in fields[1:] if name not in managed]
            if len(remaining) < len(fields) - 1:
                drop = not remaining
                line = " ".join([keyword, *remaining])
        elif keyword in ("mapping", "source", "source-directory", "rename", "no-auto-down", "no-scripts", "template"):
            owner = None
        else:
            drop = owner in managed
        if drop and position is None:
            position = len(kept)
        if not drop:
            kept.append(line)
        dropping = drop
    return kept, position


def _stanza_block(nets: Sequence[GuestNet], busybox: bool) -> list[str]:
    stanzas: list[list[str]] = []
    for net in nets:
        stanzas.append([f"auto {net.name}"])
        if net.ip is not None:
            stanzas[-1].extend(_busybox_inet_stanza(net) if busybox else _inet_stanza(net))
        if net.ip6 is not None:
            if net.ip is not None:
                stanzas.append([])
            stanzas[-1].extend(_busybox_inet6_stanza(net) if busybox else _inet6_stanza(net))
    block: list[str] = []
    for stanza in stanzas:
        if block:
            block.append("")
        block.extend(stanza)
    return block


def _inet_stanza(net: GuestNet) -> list[str]:
    address = net.static_ipv4()
    if address is None:
        return [f"iface {net.name} inet {net.ip}"]
    # address plus netmask, rather than CIDR alone, is read by Debian's ifupdown
    # and by busybox's ifup alike.
    return [f"iface {net.name} inet static", f"\taddress {address.ip}", f"\tnetmask {address.netmask}",
            *_gateway_lines(net.name, address, net.gw, "ip")]


def _inet6_stanza(net: GuestNet) -> list[str]:
    address = net.static_ipv6()
    if address is None:
        return [f"iface {net.name} inet6 {net.ip6}"]
    return [f"iface {net.name} inet6 static", f"\taddress {address.with_prefixlen}", *_gateway_lines(net.name, address, net.gw6, "ip -6")]


def _busybox_inet_stanza(net: GuestNet) -> list[str]:
    if net.ip == "manual":
        return [f"iface {net.name} inet manual", f"\tup ip link set {net.name} up"]
    return _inet_stanza(net)


def _busybox_inet6_stanza(net: GuestNet) -> list[str]:
    """Return an inet6 stanza that busybox ifup accepts.

    For ``auto`` (and ``dhcp``, which the Alpine setup rejects beforehand)
    the link is only brought up: the kernel then configures addresses from
    router advertisements (SLAAC).
    """
    address = net.static_ipv6()
    if address is None:
        return [f"iface {net.name} inet6 manual", f"\tup ip link set {net.name} up"]
    return [f"iface {net.name} inet6 static", f"\taddress {address.ip}", f"\tnetmask {address.network.prefixlen}",
            *_gateway_lines(net.name, address, net.gw6, "ip -6")]


def _gateway_lines(name: str, address: ipaddress.IPv4Interface | ipaddress.IPv6Interface, gateway: str | None, ip_command: str) -> list[str]:
    """Return the gateway option, or explicit routes when the gateway is outside the subnet.

    ifupdown adds the default route of a ``gateway`` line before it runs
    ``post-up`` commands, and the kernel rejects a default route via an
    address it cannot reach. So a gateway outside the subnet first gets a
    host route on the interface, then the default route. An IPv6 link-local
    gateway is always on the link and needs no extra route.
    """
    if gateway is None:
        return []
    gateway_address = ipaddress.ip_address(gateway)
    if gateway_address in address.network or gateway_address.is_link_local:
        return [f"\tgateway {gateway}"]
    return [
        f"\tpost-up {ip_command} route add {gateway} dev {name}",
        f"\tpost-up {ip_command} route add default via {gateway} dev {name}",
        f"\tpre-down {ip_command} route del default via {gateway} dev {name}",
        f"\tpre-down {ip_command} route del {gateway} dev {name}",
    ]
