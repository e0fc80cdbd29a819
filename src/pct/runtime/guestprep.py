"""Run the guest setup on a mounted rootfs, from a parsed container config."""

from __future__ import annotations

from pathlib import Path

from pct.guest.detect import check_ostype, detect_ostype
from pct.guest.model import GuestConfig, GuestNet
from pct.guest.rootfs import GuestRoot
from pct.guest.setup import setup_guest
from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP


def guest_root(settings, rootfs: Path) -> GuestRoot:
    """Return the file helper bound to *rootfs*, owning new files as the guest's root."""
    base = UNPRIVILEGED_ID_MAP[0] if settings.unprivileged else 0
    return GuestRoot(rootfs, uid_base=base, gid_base=base, vmid=settings.vmid)


def guest_config(settings) -> GuestConfig:
    nets = tuple(
        GuestNet(name=net.name, ip=net.ip, gw=net.gw, ip6=net.ip6, gw6=net.gw6)
        for net in settings.nets
    )
    return GuestConfig(
        vmid=settings.vmid,
        hostname=settings.hostname,
        nets=nets,
        nameserver=settings.nameserver,
        searchdomain=settings.searchdomain,
        tty=settings.tty,
        console=settings.console,
        ostype=settings.ostype,
        timezone=getattr(settings, "timezone", None),
    )


def prepare_guest(settings, rootfs: Path, phase: str, password: str | None = None,
                  ssh_public_keys: str | None = None, host_keys=None) -> str:
    """Detect the distribution, check it against ``ostype`` and configure the guest.

    Returns the ostype in effect; ``unmanaged`` touches no file.
    """
    if settings.ostype == "unmanaged":
        return "unmanaged"
    root = guest_root(settings, rootfs)
    detected = detect_ostype(root)
    if settings.ostype:
        check_ostype(settings.ostype, detected, settings.vmid)
    setup_guest(root, guest_config(settings), phase=phase, password=password,
                ssh_public_keys=ssh_public_keys, host_keys=host_keys)
    return detected
