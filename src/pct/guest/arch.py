"""Guest setup for Arch Linux: systemd-networkd and systemd gettys."""

from __future__ import annotations

from pct.guest import common, networkd, systemd
from pct.guest.base import GuestSetup
from pct.guest.model import managed_nets


class ArchSetup(GuestSetup):
    """/etc/hostname, one systemd-networkd file per interface, systemd gettys, /etc/localtime."""

    ostype = "archlinux"

    def directories(self) -> tuple[str, ...]:
        return (networkd.NETWORK_DIR,)

    def set_hostname(self) -> None:
        common.write_file(self.root, "/etc/hostname", self.conf.short_hostname() + "\n")

    def set_network(self) -> None:
        nets = managed_nets(self.conf.nets)
        if not nets:
            return
        self.root.makedirs(networkd.NETWORK_DIR)
        for net in nets:
            common.write_generated(self.root, networkd.network_file(net), networkd.render_network(net))
        systemd.enable_service(self.root, "systemd-networkd.service")

    def set_gettys(self) -> None:
        if systemd.uses_systemd(self.root):
            systemd.set_gettys(self.root, self.conf)
            systemd.mask_failing_units(self.root)

    def set_timezone(self, timezone: str) -> None:
        common.set_localtime(self.root, timezone)
