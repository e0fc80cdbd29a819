"""Guest setup for Alpine Linux: busybox-style interfaces file and busybox init gettys."""

from __future__ import annotations

from pct.guest import common
from pct.guest.base import GuestSetup
from pct.guest.edits import render_busybox_inittab
from pct.guest.ifupdown import render_interfaces
from pct.guest.model import managed_nets


class AlpineSetup(GuestSetup):
    """/etc/hostname, /etc/network/interfaces in busybox style, /etc/inittab gettys, /etc/localtime.

    Newer Alpine releases may read the file with ifupdown-ng, whose README
    calls it largely compatible with busybox ifupdown, so one style is
    written for every release.
    """

    # NOTE: the file is tested with busybox ifup only, not with ifupdown-ng.

    ostype = "alpine"
    crontab = "/etc/crontabs/root"

    def check_nets(self) -> None:
        for net in self.conf.nets:
            if net.ip6 == "dhcp":
                raise self.net_error(net, "ip6=dhcp is not supported, because busybox ifup has no DHCPv6 client;"
                                            " use ip6=auto or a static address")

    def directories(self) -> tuple[str, ...]:
        return ("/etc/network",)

    def edited_files(self) -> tuple[str, ...]:
        return ("/etc/network/interfaces", "/etc/inittab")

    def set_hostname(self) -> None:
        common.write_file(self.root, "/etc/hostname", self.conf.short_hostname() + "\n")

    def set_network(self) -> None:
        if not managed_nets(self.conf.nets):
            return
        if not self.root.ignored("/etc/network/interfaces"):
            self.root.makedirs("/etc/network")
        common.edit_file(self.root, "/etc/network/interfaces",
                         lambda text: render_interfaces(text, self.conf.nets, busybox=True))

    def set_gettys(self) -> None:
        if self.root.is_file("/etc/inittab"):
            common.edit_file(self.root, "/etc/inittab",
                             lambda text: render_busybox_inittab(text or "", self.conf.tty, self.conf.console))

    def set_timezone(self, timezone: str) -> None:
        common.set_localtime(self.root, timezone)
