"""Edits for guests that boot with systemd: gettys, masked units and enabled services."""

from __future__ import annotations

import re

from pct.guest.model import GuestConfig
from pct.guest.rootfs import GuestRoot

WANTS = "/etc/systemd/system/getty.target.wants"
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
# Units that fail in every container, because the kernel does not let a
# container mount the file system they mount; masking them keeps
# `systemctl is-system-running` from reporting "degraded" for nothing.
_CONTAINER_FAILING_UNITS = ("sys-kernel-debug.mount", "sys-kernel-tracing.mount")
_CONTAINER_GETTY = re.compile(r"^container-getty@(\d+)\.service$")


def uses_systemd(root: GuestRoot) -> bool:
    return root.is_dir("/etc/systemd/system")


def set_gettys(root: GuestRoot, conf: GuestConfig) -> None:
    """Enable container-getty@N for N up to ``tty``, disable higher ones, and handle console-getty."""
    if not root.is_dir(WANTS):
        root.makedirs(WANTS)
    for name in root.listdir(WANTS):
        match = _CONTAINER_GETTY.match(name)
        if match and int(match[1]) > conf.tty and not root.ignored(f"{WANTS}/{name}"):
            root.unlink(f"{WANTS}/{name}")
    for number in range(1, conf.tty + 1):
        _link_wanted_unit(root, WANTS, "container-getty@.service", f"container-getty@{number}.service")
    # Limitation: console=0 only removes this link. systemd's getty
    # generator still starts console-getty.service in a container.
    if conf.console:
        _link_wanted_unit(root, WANTS, "console-getty.service", "console-getty.service")
    elif not root.ignored(f"{WANTS}/console-getty.service"):
        root.unlink(f"{WANTS}/console-getty.service")


def mask_failing_units(root: GuestRoot) -> None:
    """Mask the shipped units that cannot work in a container, unless the guest configured them."""
    for unit in _CONTAINER_FAILING_UNITS:
        path = f"/etc/systemd/system/{unit}"
        shipped = any(root.is_file(f"{d}/{unit}") for d in UNIT_DIRS)
        configured = root.exists(path) or root.is_symlink(path)
        if shipped and not configured and not root.ignored(path):
            root.symlink("/dev/null", path)


def enable_service(root: GuestRoot, unit: str, target: str = "multi-user.target") -> None:
    """Link *unit* into *target*'s wants directory if the guest ships it and has not masked it."""
    if root.readlink(f"/etc/systemd/system/{unit}") == "/dev/null":
        return
    wants = f"/etc/systemd/system/{target}.wants"
    if _unit_path(root, unit) is None or root.ignored(f"{wants}/{unit}"):
        return
    root.makedirs(wants)
    _link_wanted_unit(root, wants, unit, unit)


def _link_wanted_unit(root: GuestRoot, wants: str, unit: str, instance: str) -> None:
    """Link *instance* in *wants* to *unit*, if the guest ships that unit."""
    path = f"{wants}/{instance}"
    unit_path = _unit_path(root, unit)
    if unit_path is None or root.ignored(path):
        return
    root.symlink(unit_path, path)


def _unit_path(root: GuestRoot, unit: str) -> str | None:
    return next((f"{d}/{unit}" for d in UNIT_DIRS if root.is_file(f"{d}/{unit}")), None)
