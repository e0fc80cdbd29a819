"""Guest setup for the Debian family: Debian, Devuan and, for now, Ubuntu."""

from __future__ import annotations

import re

from pct.guest import common
from pct.guest.base import GuestSetup
from pct.guest.edits import render_inittab
from pct.guest.ifupdown import render_interfaces

_WANTS = "/etc/systemd/system/getty.target.wants"
_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
# Units that fail in every container, because the kernel does not let a
# container mount the file system they mount; masking them keeps
# `systemctl is-system-running` from reporting "degraded" for nothing.
_CONTAINER_FAILING_UNITS = ("sys-kernel-debug.mount", "sys-kernel-tracing.mount")
_CONTAINER_GETTY = re.compile(r"^container-getty@(\d+)\.service$")


class DebianSetup(GuestSetup):
    """Debian: /etc/hostname, ifupdown, systemd or sysvinit gettys, /etc/timezone."""

    ostype = "debian"

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
        elif self.root.is_dir("/etc/systemd/system"):
            self._set_systemd_gettys()
            self._mask_failing_units()

    def set_timezone(self, timezone: str) -> None:
        common.write_file(self.root, "/etc/timezone", timezone + "\n")
        common.set_localtime(self.root, timezone)

    def _set_systemd_gettys(self) -> None:
        if not self.root.is_dir(_WANTS):
            self.root.makedirs(_WANTS)
        for name in self.root.listdir(_WANTS):
            match = _CONTAINER_GETTY.match(name)
            if match and int(match[1]) > self.conf.tty and not self.root.ignored(f"{_WANTS}/{name}"):
                self.root.unlink(f"{_WANTS}/{name}")
        for number in range(1, self.conf.tty + 1):
            self._enable_unit("container-getty@.service", f"container-getty@{number}.service")
        # Limitation: console=0 only removes this link. systemd's getty
        # generator still starts console-getty.service in a container.
        if self.conf.console:
            self._enable_unit("console-getty.service", "console-getty.service")
        elif not self.root.ignored(f"{_WANTS}/console-getty.service"):
            self.root.unlink(f"{_WANTS}/console-getty.service")

    def _mask_failing_units(self) -> None:
        """Mask the shipped units that cannot work in a container, unless the guest configured them."""
        for unit in _CONTAINER_FAILING_UNITS:
            path = f"/etc/systemd/system/{unit}"
            shipped = any(self.root.is_file(f"{d}/{unit}") for d in _UNIT_DIRS)
            configured = self.root.exists(path) or self.root.is_symlink(path)
            if shipped and not configured and not self.root.ignored(path):
                self.root.symlink("/dev/null", path)

    def _enable_unit(self, unit: str, instance: str) -> None:
        """Link *instance* in getty.target.wants to *unit*, if the guest ships that unit."""
        path = f"{_WANTS}/{instance}"
        unit_path = next((f"{d}/{unit}" for d in _UNIT_DIRS if self.root.is_file(f"{d}/{unit}")), None)
        if unit_path is None or self.root.ignored(path):
            return
        self.root.symlink(unit_path, path)


class DevuanSetup(DebianSetup):
    """Devuan: Debian without systemd, so gettys come from /etc/inittab."""

    ostype = "devuan"


class UbuntuSetup(DebianSetup):
    """Ubuntu, set up like Debian."""

    # Limitation: Ubuntu 17.10 and later configure the network with netplan.
    # This writes /etc/network/interfaces, which such a guest ignores unless
    # ifupdown is installed in it.
    ostype = "ubuntu"
