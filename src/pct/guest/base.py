"""The base class of the per-distribution guest setup plugins.

A family subclasses GuestSetup and implements the distribution-specific
steps. Steps every family shares (hosts, DNS, password, ssh, crontab) are
implemented here. A family that leaves a step out raises "not supported"
instead of guessing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

from pct.errors import GuestError
from pct.guest import common
from pct.guest.credentials import HostKey, hash_password
from pct.guest.model import GuestConfig
from pct.guest.rootfs import GuestRoot
from pct.guest.versions import Release

PHASES = ("create", "start")


@dataclass(frozen=True)
class HostFiles:
    """Host files that guest setup copies settings from; tests point them at their own files."""

    resolv_conf: Path = Path("/etc/resolv.conf")
    localtime: Path = Path("/etc/localtime")


@dataclass
class CreateInput:
    """Input used only by the create phase: root's password, ssh keys and the crontab random source."""

    password: str | None = None
    ssh_public_keys: str | None = None
    rng: random.Random = field(default_factory=random.SystemRandom)
    host_keys: Callable[[], list[HostKey]] | None = None


class GuestSetup:
    """Guest setup for one distribution family, bound to one rootfs and config."""

    ostype: ClassVar[str] = "unknown"
    # The system crontab whose run-parts times are randomised at create.
    crontab: ClassVar[str] = "/etc/crontab"

    def __init__(self, root: GuestRoot, conf: GuestConfig, host: HostFiles, release: Release | None = None):
        self.root = root
        self.conf = conf
        self.host = host
        self.release = release or Release(self.ostype)
        self.timezone: str | None = None
        self.password_hash: str | None = None

    def run(self, phase: str, create: CreateInput) -> None:
        """Check everything that can fail on input first, then edit the guest's files."""
        self.prepare(phase, create)
        self.set_hostname()
        common.update_hosts(self.root, self.conf)
        self.set_network()
        common.update_resolv_conf(self.root, self.conf, self.host.resolv_conf)
        self.set_gettys()
        if self.timezone is not None:
            self.set_timezone(self.timezone)
        if phase == "create":
            self.run_create_steps(create)

    def prepare(self, phase: str, create: CreateInput) -> None:
        """Validate what depends on the guest's files and hash the password, before any write."""
        self.check_nets()
        for path in ("/etc", *self.directories()):
            common.check_directory(self.root, path)
        for path in ("/etc/hosts", *self.edited_files()):
            common.check_text_file(self.root, path)
        self.timezone = common.resolve_timezone(self.conf, self.host.localtime)
        if self.timezone is not None:
            common.check_timezone(self.root, self.timezone)
        if phase == "create" and create.password is not None:
            common.check_shadow(self.root)
            self.password_hash = hash_password(create.password, vmid=self.conf.vmid)

    def run_create_steps(self, create: CreateInput) -> None:
        if self.password_hash is not None:
            common.set_root_password(self.root, self.password_hash)
        if create.ssh_public_keys:
            common.add_authorized_keys(self.root, create.ssh_public_keys)
        common.replace_host_keys(self.root, self.conf, create.host_keys)
        common.randomize_crontab(self.root, create.rng, self.crontab)

    # Checks a family extends; they run before the first write.

    def check_nets(self) -> None:
        """Raise GuestError for a network setting this family cannot write."""

    def directories(self) -> tuple[str, ...]:
        """Return the guest directories this family writes into; each must be a directory or missing."""
        return ()

    def edited_files(self) -> tuple[str, ...]:
        """Return the guest files this family edits in place; each must be a text file or missing."""
        return ()

    def net_error(self, net, message: str) -> GuestError:
        return GuestError(f"invalid network setting of {net.name} for the {self.ostype} guest: {message}", vmid=self.conf.vmid)

    # Distribution-specific steps; a family overrides each one it supports.

    def set_hostname(self) -> None:
        raise self.unsupported()

    def set_network(self) -> None:
        raise self.unsupported()

    def set_gettys(self) -> None:
        raise self.unsupported()

    def set_timezone(self, timezone: str) -> None:
        raise self.unsupported()

    def unsupported(self) -> GuestError:
        return GuestError(f"guest setup for {self.ostype} is not supported yet", vmid=self.conf.vmid)
