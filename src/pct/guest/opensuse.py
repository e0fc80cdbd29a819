"""Guest setup for openSUSE: wicked's ifcfg/ifroute files on Leap 15, NetworkManager later."""

from __future__ import annotations

from pct.guest import common, nmkeyfile, systemd
from pct.guest.base import GuestSetup
from pct.guest.model import GuestNet, is_off_link, managed_nets

SYSCONFIG_DIR = "/etc/sysconfig/network"
NETCONFIG = f"{SYSCONFIG_DIR}/config"


class OpenSUSESetup(GuestSetup):
    """/etc/hostname, ifcfg or keyfiles, netconfig DNS settings, systemd gettys, /etc/localtime.

    Leap 16 and the rolling releases (Tumbleweed, Slowroll) configure the
    network with NetworkManager, Leap 15 with wicked.
    """

    # NOTE: Tumbleweed systems installed before its switch to NetworkManager
    # may still run wicked, which ignores the keyfiles written here.

    ostype = "opensuse"

    def uses_keyfiles(self) -> bool:
        return self.release.version is None or self.release.at_least(16)

    def directories(self) -> tuple[str, ...]:
        return (nmkeyfile.CONNECTIONS_DIR,) if self.uses_keyfiles() else (SYSCONFIG_DIR,)

    def edited_files(self) -> tuple[str, ...]:
        return (NETCONFIG,)

    def set_hostname(self) -> None:
        common.write_file(self.root, "/etc/hostname", self.conf.short_hostname() + "\n")

    def set_network(self) -> None:
        nets = managed_nets(self.conf.nets)
        if nets and self.uses_keyfiles():
            self.root.makedirs(nmkeyfile.CONNECTIONS_DIR)
            for net in nets:
                common.write_generated(self.root, nmkeyfile.keyfile_path(net), nmkeyfile.render_keyfile(net), 0o600)
        elif nets:
            self.root.makedirs(SYSCONFIG_DIR)
            for net in nets:
                common.write_generated(self.root, f"{SYSCONFIG_DIR}/ifcfg-{net.name}", render_ifcfg(net))
                routes = render_ifroute(net)
                if routes:
                    common.write_generated(self.root, f"{SYSCONFIG_DIR}/ifroute-{net.name}", routes)
                else:
                    common.remove_generated(self.root, f"{SYSCONFIG_DIR}/ifroute-{net.name}")
        self._set_netconfig_dns()

    def _set_netconfig_dns(self) -> None:
        """Give netconfig the configured DNS settings, so that it writes them into resolv.conf too.

        netconfig rewrites /etc/resolv.conf when the network comes up; without
        these values it would replace the file written by guest setup.
        """
        values = {}
        if self.conf.nameserver:
            values["NETCONFIG_DNS_STATIC_SERVERS"] = " ".join(self.conf.nameservers())
        if self.conf.searchdomain:
            values["NETCONFIG_DNS_STATIC_SEARCHLIST"] = " ".join(self.conf.searchdomains())
        if values and self.root.is_file(NETCONFIG):
            common.write_shell_variables(self.root, NETCONFIG, values)

    def set_gettys(self) -> None:
        if systemd.uses_systemd(self.root):
            systemd.set_gettys(self.root, self.conf)
            systemd.mask_failing_units(self.root)

    def set_timezone(self, timezone: str) -> None:
        common.set_localtime(self.root, timezone)


def render_ifcfg(net: GuestNet) -> list[str]:
    """Return the lines of wicked's ifcfg-<name> for *net*.

    BOOTPROTO names the DHCP clients to run; static addresses are added with
    any of its values.
    """
    # Limitation: for ip6=auto nothing is written; the kernel configures
    # SLAAC addresses as long as the guest accepts router advertisements.
    dhcp = {(True, True): "dhcp", (True, False): "dhcp4", (False, True): "dhcp6"}.get((net.ip == "dhcp", net.ip6 == "dhcp"))
    addresses = [str(a) for a in (net.static_ipv4(), net.static_ipv6()) if a is not None]
    lines = ["STARTMODE='auto'", f"BOOTPROTO='{dhcp or ('static' if addresses else 'none')}'"]
    for index, address in enumerate(addresses):
        suffix = "" if index == 0 else f"_{index}"
        lines.append(f"IPADDR{suffix}='{address}'")
    return lines


def render_ifroute(net: GuestNet) -> list[str]:
    """Return the lines of ifroute-<name>: destination, gateway, netmask and interface per route."""
    routes = []
    for address, gateway in ((net.static_ipv4(), net.gw), (net.static_ipv6(), net.gw6)):
        if address is None or gateway is None:
            continue
        if is_off_link(address, gateway):
            routes.append(f"{gateway}/{address.max_prefixlen} - - {net.name}")
        routes.append(f"default {gateway} - {net.name}")
    return routes
