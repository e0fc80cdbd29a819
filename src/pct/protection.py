"""The ``protection`` option: a protected container keeps its disks.

``protection: 1`` forbids destroying the container and removing any of its
volumes, whether by detaching a mount point (``pct set --delete mp0``) or by
freeing the volume on its storage (``pvesm free``).
"""

from __future__ import annotations

import re

from pct.config.format import ContainerConfig, Section, load_config
from pct.errors import PctError
from pct.paths import Paths

_DISK_KEY = re.compile(r"rootfs|mp\d+|unused\d+")
_OWNER = re.compile(r"(\d+)/")
_TRUE = ("1", "yes", "on", "true")


def check_disk_removal(config: ContainerConfig | Section, key: str, vmid: int) -> None:
    """Raise PctError when *key* names a disk of a protected container.

    *config* is the container's config or its main section. Keys other than
    ``rootfs``, ``mp[n]`` and ``unused[n]`` pass.
    """
    main = config.main if isinstance(config, ContainerConfig) else config
    if not _DISK_KEY.fullmatch(key) or not _is_protected(main):
        return
    raise PctError(f"can't remove CT {vmid} disk '{key}' - protection mode enabled; "
                   f"clear it first with 'pct set {vmid} --protection 0'", vmid)


def check_volume_free(paths: Paths, volname: str, volid: str) -> None:
    """Raise PctError when the container that owns volume *volname* is protected.

    The owner is the container id that starts the volume name
    (``100/vm-100-disk-1.raw``); a volume without a config behind it passes.
    """
    match = _OWNER.match(volname)
    if match is None:
        return
    vmid = int(match.group(1))
    if not paths.conf(vmid).exists():
        return
    if _is_protected(load_config(paths, vmid).main):
        raise PctError(f"can't remove volume '{volid}' of CT {vmid} - protection mode enabled; "
                       f"clear it first with 'pct set {vmid} --protection 0'", vmid)


def _is_protected(section: Section) -> bool:
    return (section.get("protection") or "0").lower() in _TRUE
