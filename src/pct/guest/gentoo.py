"""Guest setup for Gentoo: netifrc with OpenRC, or systemd-networkd with systemd."""

from __future__ import annotations

from typing import Sequence

from pct.guest import common, edits, networkd, systemd
from pct.guest.base import GuestSetup
from pct.guest.model import GuestNet, is_off_link, managed_nets

NET_CONF = "/etc/conf.d/net"


class GentooSetup(GuestSetup):
    """/etc/hostname and /etc/conf.d/hostname, netifrc or networkd, inittab or systemd gettys, timezone.

    A guest without /etc/init.d/net.lo (the netifrc script) is taken to boot
    with systemd and gets systemd-networkd files.
    """

    ostype = "gentoo"

    def uses_netifrc(self) -> bool:
        return self.root.exists("/etc/init.d/net.lo")

    def check_nets(self) -> None:
        if not self.uses_netifrc():
            return
        for net in self.conf.nets:
            if net.ip6 == "dhcp" and net.ip != "dhcp":
                raise self.net_error(net, "netifrc runs one DHCP client for both families,"
                                          " so ip6=dhcp needs ip=dhcp; use ip6=auto or a static address")

    def directories(self) -> tuple[str, ...]:
        return ("/etc/conf.d", "/etc/runlevels/default") if self.uses_netifrc() else (networkd.NETWORK_DIR,)

    def edited_files(self) -> tuple[str, ...]:
        return ("/etc/conf.d/hostname", NET_CONF, "/etc/inittab")

    def set_hostname(self) -> None:
        hostname = self.conf.short_hostname()
        common.write_file(self.root, "/etc/hostname", hostname + "\n")
        # OpenRC's hostname service reads this file on releases before 0.45.
        if self.root.is_file("/etc/conf.d/hostname"):
            common.write_shell_variables(self.root, "/etc/conf.d/hostname", {"hostname": hostname})

    def set_network(self) -> None:
        nets = managed_nets(self.conf.nets)
        if not nets:
            return
        if not self.uses_netifrc():
            self.root.makedirs(networkd.NETWORK_DIR)
            for net in nets:
                common.write_generated(self.root, networkd.network_file(net), networkd.render_network(net))
            systemd.enable_service(self.root, "systemd-networkd.service")
            return
        self.root.makedirs("/etc/conf.d")
        common.edit_file(self.root, NET_CONF, lambda text: edits.replace_marked_section(text or "", render_netifrc(nets), len))
        for net in nets:
            self._enable_net_script(net.name)

    def _enable_net_script(self, name: str) -> None:
        """Link net.<name> to net.lo and add it to the default runlevel, as the netifrc handbook does by hand."""
        script = f"/etc/init.d/net.{name}"
        if not self.root.ignored(script) and not self.root.exists(script):
            self.root.symlink("net.lo", script)
        runlevel_link = f"/etc/runlevels/default/net.{name}"
        if not self.root.ignored(runlevel_link):
            self.root.makedirs("/etc/runlevels/default")
            self.root.symlink(script, runlevel_link)

    def set_gettys(self) -> None:
        if self.root.is_file("/etc/inittab"):
            common.edit_file(self.root, "/etc/inittab", lambda text: edits.render_inittab(
                text or "", self.conf.tty, self.conf.console, getty="/sbin/agetty --noclear 38400"))
        elif systemd.uses_systemd(self.root):
            systemd.set_gettys(self.root, self.conf)
            systemd.mask_failing_units(self.root)

    def set_timezone(self, timezone: str) -> None:
        # OpenRC and sys-libs/timezone-data read /etc/timezone; glibc reads /etc/localtime.
        common.write_file(self.root, "/etc/timezone", timezone + "\n")
        common.set_localtime(self.root, timezone)


def render_netifrc(nets: Sequence[GuestNet]) -> list[str]:
    """Return ``config_<name>`` and ``routes_<name>`` lines for /etc/conf.d/net.

    ``dhcp`` makes netifrc start its DHCP client. ``null`` brings the link
    up without an address, for ``manual`` and for ``auto``, where the kernel
    configures IPv6 from router advertisements.
    """
    lines = []
    for net in nets:
        variable = net.name.replace(".", "_").replace("-", "_")
        config = [str(a) for a in (net.static_ipv4(), net.static_ipv6()) if a is not None]
        if net.ip == "dhcp":
            config.insert(0, "dhcp")
        lines.append(f'config_{variable}="{" ".join(config) or "null"}"')
        routes = _routes(net)
        if routes:
            lines.append(f'routes_{variable}="' + "\n".join(routes) + '"')
    return lines


def _routes(net: GuestNet) -> list[str]:
    routes = []
    for address, gateway in ((net.static_ipv4(), net.gw), (net.static_ipv6(), net.gw6)):
        if address is None or gateway is None:
            continue
        if is_off_link(address, gateway):
            routes.append(f"{gateway} dev {net.name}")
        routes.append(f"default via {gateway}")
    return routes
