"""The input of guest setup, independent of the container config parser.

The caller builds a GuestConfig from the parsed container config. Guest setup
checks it once with validate_guest_config() before it changes any file, because
every value ends up in a file that the guest parses at boot.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pct.errors import GuestError

# Every ostype that detection can return, plus 'unmanaged', which skips guest setup.
KNOWN_OSTYPES = (
    "debian",
    "devuan",
    "ubuntu",
    "fedora",
    "centos",
    "archlinux",
    "alpine",
    "gentoo",
    "opensuse",
    "nixos",
    "unmanaged",
)

MAX_TTY = 6

_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")


@dataclass(frozen=True)
class GuestNet:
    """One network interface inside the guest.

    ``ip`` is an IPv4 CIDR, ``'dhcp'``, ``'manual'`` or None (not configured);
    ``ip6`` is an IPv6 CIDR, ``'auto'``, ``'dhcp'``, ``'manual'`` or None.
    """

    name: str
    ip: str | None = None
    gw: str | None = None
    ip6: str | None = None
    gw6: str | None = None

    def static_ipv4(self) -> ipaddress.IPv4Interface | None:
        if self.ip is None or self.ip in ("dhcp", "manual"):
            return None
        return ipaddress.IPv4Interface(self.ip)

    def static_ipv6(self) -> ipaddress.IPv6Interface | None:
        if self.ip6 is None or self.ip6 in ("auto", "dhcp", "manual"):
            return None
        return ipaddress.IPv6Interface(self.ip6)


@dataclass(frozen=True)
class GuestConfig:
    """Container settings that guest setup writes into the guest.

    ``nets`` are in ``net[n]`` order. ``nameserver`` and ``searchdomain`` are
    space-separated lists. ``timezone`` is a zoneinfo name such as
    ``Europe/Vienna`` or ``'host'`` for the host's timezone.
    """

    vmid: int
    hostname: str
    nets: tuple[GuestNet, ...] = ()
    nameserver: str | None = None
    searchdomain: str | None = None
    tty: int = 2
    console: bool = True
    ostype: str | None = None
    timezone: str | None = None

    def short_hostname(self) -> str:
        return self.hostname.split(".", 1)[0]

    def fqdn(self) -> str:
        """Return the hostname with the first search domain, unless it already has a domain."""
        if "." in self.hostname or not self.searchdomain:
            return self.hostname
        return f"{self.hostname}.{self.searchdomain.split()[0]}"

    def nameservers(self) -> list[str]:
        return self.nameserver.split() if self.nameserver else []

    def searchdomains(self) -> list[str]:
        return self.searchdomain.split() if self.searchdomain else []


def validate_guest_config(conf: GuestConfig) -> None:
    """Raise GuestError naming the first invalid value in *conf*."""

    def fail(message: str) -> GuestError:
        return GuestError(f"invalid guest setup input: {message}", vmid=conf.vmid)

    if not _is_domain_name(conf.hostname):
        raise fail(f"hostname {conf.hostname!r} is not a valid DNS name")
    if conf.ostype is not None and conf.ostype not in KNOWN_OSTYPES:
        raise fail(f"unknown ostype {conf.ostype!r}; expected one of {', '.join(KNOWN_OSTYPES)}")
    if not isinstance(conf.tty, int) or not 0 <= conf.tty <= MAX_TTY:
        raise fail(f"tty {conf.tty!r} is out of range 0 to {MAX_TTY}")
    if conf.timezone is not None and (conf.timezone != "host" and not _TIMEZONE.match(conf.timezone)):
        raise fail(f"timezone {conf.timezone!r} is not a zoneinfo name such as Europe/Vienna")
    for server in conf.nameservers():
        if not _is_ip_address(server):
            raise fail(f"nameserver {server!r} is not an IP address")
    for domain in conf.searchdomains():
        if not _is_domain_name(domain):
            raise fail(f"searchdomain {domain!r} is not a valid DNS name")
    _validate_nets(conf.nets, fail)


def _validate_nets(nets: tuple[GuestNet, ...], fail) -> None:
    names = [net.name for net in nets]
    for net in nets:
        if not _INTERFACE_NAME.match(net.name) or net.name == "lo":
            raise fail(f"interface name {net.name!r} is invalid (1 to 15 of A-Z a-z 0-9 _ . -, not 'lo')")
        if names.count(net.name) > 1:
            raise fail(f"interface name {net.name!r} is used by more than one network device")
        _validate_family(net.name, net.ip, net.gw, ("dhcp", "manual"), ipaddress.IPv4Interface, ipaddress.IPv4Address, "ip", fail)
        _validate_family(net.name, net.ip6, net.gw6, ("auto", "dhcp", "manual"), ipaddress.IPv6Interface, ipaddress.IPv6Address, "ip6", fail)
    for key in ("gw", "gw6"):
        claimants = [net.name for net in nets if getattr(net, key) is not None]
        if len(claimants) > 1:
            raise fail(f"{key} is set on {' and '.join(claimants)}, but only one interface can have the default gateway")


def _validate_family(name, ip, gw, keywords, interface_type, address_type, key, fail) -> None:
    gw_key = "gw" if key == "ip" else "gw6"
    if ip is not None and ip not in keywords:
        try:
            if "/" not in ip:
                raise ValueError
            interface_type(ip)
        except ValueError:
            choices = ", ".join(repr(k) for k in keywords)
            raise fail(f"{key} {ip!r} of {name} is not an address with prefix length (CIDR) or one of {choices}") from None
    if gw is None:
        return
    if ip is None or ip in keywords:
        raise fail(f"{gw_key} {gw!r} of {name} needs a static {key}")
    try:
        address_type(gw)
    except ValueError:
        raise fail(f"{gw_key} {gw!r} of {name} is not a valid address") from None


def _is_domain_name(name: str) -> bool:
    if not isinstance(name, str) or not name or len(name) > 253:
        return False
    return all(_LABEL.match(label) for label in name.split("."))


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_off_link(address: ipaddress.IPv4Interface | ipaddress.IPv6Interface, gateway: str) -> bool:
    """Return whether *gateway* lies outside the subnet of *address*, so it needs its own route.

    An IPv6 link-local gateway is always on the link.
    """
    gateway_address = ipaddress.ip_address(gateway)
    return gateway_address not in address.network and not gateway_address.is_link_local


def managed_nets(nets: tuple[GuestNet, ...]) -> list[GuestNet]:
    """Return the interfaces guest setup configures: those with ``ip`` or ``ip6`` set."""
    return [net for net in nets if net.ip is not None or net.ip6 is not None]
