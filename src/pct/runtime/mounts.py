"""Mount and unmount a container's volumes at its rootfs mount point."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pct.errors import CommandError, PctError, StorageError
from pct.paths import Paths
from pct.run import run
from pct.runtime.fsoptions import (
    check_noacl_failure,
    check_quota_support,
    enable_quotas,
    filesystem_options,
    wants_quotas,
)
from pct.storage import get_storage, parse_volume_id


def is_mountpoint(path: Path) -> bool:
    """Return whether *path* is a mount point, read from the mount table."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            if _unescape(fields[4]) == target:
                return True
    return False


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_rootfs(paths: Paths, settings) -> Path:
    """Mount the root volume of *settings* at the container's rootfs directory."""
    if settings.rootfs is None:
        raise StorageError(f"CT {settings.vmid}: no rootfs configured", settings.vmid)
    target = paths.rootfs_mount(settings.vmid)
    target.mkdir(parents=True, exist_ok=True)
    if is_mountpoint(target):
        return target
    rootfs = settings.rootfs
    check_quota_support(paths, settings.vmid, rootfs, "volume")
    storage_id, volname = parse_volume_id(rootfs.volume)
    options = filesystem_options(paths, rootfs, "volume")
    try:
        get_storage(paths, storage_id).mount_volume(volname, target, read_only=rootfs.ro, options=options)
    except CommandError as exc:
        check_noacl_failure(exc, options, settings.vmid, rootfs.key)
        raise
    if wants_quotas(rootfs):
        try:
            enable_quotas(os.path.realpath(target), settings.vmid, rootfs.key)
        except PctError:
            run(["umount", str(target)])
            raise
    return target


def unmount_all(paths: Paths, vmid: int) -> None:
    """Unmount everything below the container's rootfs directory, deepest first.

    Loop devices are attached with autoclear, so unmounting detaches them.
    """
    unmount_below(paths.rootfs_mount(vmid))


def unmount_below(path: Path) -> None:
    """Unmount *path* and every mount below it, deepest first."""
    target = os.path.realpath(path)
    mounted = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = _unescape(line.split()[4])
            if mount_point == target or mount_point.startswith(target + "/"):
                mounted.append(mount_point)
    for mount_point in sorted(set(mounted), key=len, reverse=True):
        _unmount(mount_point)


def _unmount(mount_point: str, attempts: int = 25) -> None:
    """Unmount, retrying while a process that is exiting still uses the mount."""
    for attempt in range(attempts):
        try:
            run(["umount", mount_point])
            return
        except CommandError as exc:
            if "busy" not in exc.stderr or attempt == attempts - 1:
                raise
            time.sleep(0.2)
