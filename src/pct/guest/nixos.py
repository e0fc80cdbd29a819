"""Guest setup for NixOS, whose /etc is generated from the system configuration.

NixOS builds /etc at each activation: files it manages are symlinks into
/etc/static, and activation puts them back. So guest setup writes a file
only where NixOS does not manage it, and leaves the network, gettys and
timezone to configuration.nix.
"""

from __future__ import annotations

import logging

from pct.guest import common
from pct.guest.base import CreateInput, GuestSetup
from pct.guest.credentials import hash_password

log = logging.getLogger("pct.guest")


class NixOSSetup(GuestSetup):
    """/etc/hostname, /etc/hosts and /etc/resolv.conf where NixOS leaves them unmanaged."""

    ostype = "nixos"

    def run(self, phase: str, create: CreateInput) -> None:
        self.prepare(phase, create)
        if self._unmanaged("/etc/hostname"):
            self.set_hostname()
        if self._unmanaged("/etc/hosts"):
            common.update_hosts(self.root, self.conf)
        if self._unmanaged("/etc/resolv.conf"):
            common.update_resolv_conf(self.root, self.conf, self.host.resolv_conf)
        # Limitation: the network, gettys and timezone are not written,
        # because NixOS generates them from networking.interfaces,
        # systemd units and time.timeZone in configuration.nix.
        if any(net.ip is not None or net.ip6 is not None for net in self.conf.nets):
            log.info("CT %s: NixOS guest: set the network in configuration.nix, pct does not write it", self.conf.vmid)
        if phase == "create":
            self.run_create_steps(create)

    def prepare(self, phase: str, create: CreateInput) -> None:
        """Check /etc and /etc/hosts and hash the password; the timezone is left to configuration.nix."""
        common.check_directory(self.root, "/etc")
        if self._unmanaged("/etc/hosts"):
            common.check_text_file(self.root, "/etc/hosts")
        if phase == "create" and create.password is not None:
            common.check_shadow(self.root)
            self.password_hash = hash_password(create.password, vmid=self.conf.vmid)

    def set_hostname(self) -> None:
        common.write_file(self.root, "/etc/hostname", self.conf.short_hostname() + "\n")

    def _unmanaged(self, path: str) -> bool:
        target = self.root.readlink(path)
        if target is not None and target.startswith(("/etc/static/", "static/")):
            log.debug("CT %s: %s is managed by NixOS and left alone", self.conf.vmid, path)
            return False
        return True
