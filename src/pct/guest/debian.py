"""Guest setup for the Debian family: Debian, Devuan and Ubuntu."""

from __future__ import annotations

from pct.guest import common, systemd
from pct.guest.base import GuestSetup
from pct.guest.edits import render_inittab
from pct.guest.ifupdown import render_interfaces
from pct.guest.model import managed_nets
from pct.guest.netplan import NETPLAN_FILE, render_netplan


class DebianSetup(GuestSetup):
    """Debian: /etc/hostname, ifupdown, systemd or sysvinit gettys, /etc/timezone."""

    ostype = "debian"

    def directories(self) -> tuple[str, ...]:
        return ("/etc/network",)

    def edited_files(self) -> tuple[str, ...]:
        return ("/etc/network/interfaces", "/etc/inittab")

    def set_hostname(self) -> None:
        common.write_file(self.root, "/etc/hostname", self.conf.short_hostname() + "\n")

    def set_network(self) -> None:
        if not any(net.ip is not None or net.ip6 is not None for net in self.conf.nets):
            return
        if not self.root.ignored("/etc/network/interfaces"):
            self.root.makedirs("/etc/network")
        common.edit_file(self.root, "/etc/network/interfaces", lambda text: render_interfaces(text, self.conf.nets))

    def set_gettys(self) -> None:
        """Run a getty on each of the ``tty`` consoles LXC creates, and on /dev/console if enabled.

        A guest with /etc/inittab runs sysvinit, a guest with
        /etc/systemd/system runs systemd, and a guest with neither is left alone.
        """
        if self.root.is_file("/etc/inittab"):
            common.edit_file(self.root, "/etc/inittab", lambda text: render_inittab(text or "", self.conf.tty, self.conf.console))
        elif systemd.uses_systemd(self.root):
            systemd.set_gettys(self.root, self.conf)
            systemd.mask_failing_units(self.root)

    def set_timezone(self, timezone: str) -> None:
        common.write_file(self.root, "/etc/timezone", timezone + "\n")
        common.set_localtime(self.root, timezone)


class DevuanSetup(DebianSetup):
    """Devuan: Debian without systemd, so gettys come from /etc/inittab."""

    ostype = "devuan"


class UbuntuSetup(DebianSetup):
    """Ubuntu: set up like Debian, but with netplan from 17.10 on."""

    ostype = "ubuntu"

    def uses_netplan(self) -> bool:
        return self.release.at_least(17, 10)

    def directories(self) -> tuple[str, ...]:
        return ("/etc/netplan",) if self.uses_netplan() else super().directories()

    def set_network(self) -> None:
        if not self.uses_netplan():
            super().set_network()
            return
        nets = managed_nets(self.conf.nets)
        if not nets:
            return
        # Limitation: other files in /etc/netplan (cloud images ship
        # 50-cloud-init.yaml) are merged with this one by netplan. Settings
        # they make for the same interface and this file leaves open survive.
        if not self.root.ignored(NETPLAN_FILE):
            self.root.makedirs("/etc/netplan")
        common.write_generated(self.root, NETPLAN_FILE, render_netplan(nets), 0o600)
