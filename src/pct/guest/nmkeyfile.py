"""NetworkManager keyfiles in /etc/NetworkManager/system-connections.

NetworkManager reads keyfiles on every distribution that runs it. RHEL 9
and its rebuilds and Fedora 33 and later write new connections in this
format by default. NetworkManager ignores a keyfile that others than root
can read, so the file mode is 0600.
"""

from __future__ import annotations

import uuid

from pct.guest.model import GuestNet, is_off_link

CONNECTIONS_DIR = "/etc/NetworkManager/system-connections"

# A fixed namespace makes the connection UUID depend on the interface name
# only, so the file is the same at every start.
_UUID_NAMESPACE = uuid.UUID("6f0c2c2e-5c4e-4c1a-9a57-2f1f3d1a7c10")


def keyfile_path(net: GuestNet) -> str:
    return f"{CONNECTIONS_DIR}/{net.name}.nmconnection"


def render_keyfile(net: GuestNet) -> list[str]:
    """Return the lines of the keyfile for *net*."""
    return [
        "[connection]",
        f"id={net.name}",
        f"uuid={uuid.uuid5(_UUID_NAMESPACE, net.name)}",
        "type=ethernet",
        f"interface-name={net.name}",
        "autoconnect=true",
        "",
        "[ipv4]",
        *_ipv4_lines(net),
        "",
        "[ipv6]",
        *_ipv6_lines(net),
    ]


def _ipv4_lines(net: GuestNet) -> list[str]:
    if net.ip == "dhcp":
        return ["method=auto"]
    address = net.static_ipv4()
    if address is None:
        return ["method=disabled"]
    return ["method=manual", f"address1={address}", *_gateway_lines(address, net.gw, "0.0.0.0/0")]


def _ipv6_lines(net: GuestNet) -> list[str]:
    methods = {None: "ignore", "auto": "auto", "dhcp": "dhcp", "manual": "link-local"}
    address = net.static_ipv6()
    if address is None:
        return [f"method={methods[net.ip6]}"]
    return ["method=manual", f"address1={address}", *_gateway_lines(address, net.gw6, "::/0")]


def _gateway_lines(address, gateway: str | None, default: str) -> list[str]:
    """Return ``gateway=``, or an on-link default route for a gateway outside the subnet."""
    if gateway is None:
        return []
    if not is_off_link(address, gateway):
        return [f"gateway={gateway}"]
    return [f"route1={default},{gateway}", "route1_options=onlink=true"]
