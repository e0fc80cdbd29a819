"""Mount and unmount a container's volumes at its rootfs mount point."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Iterable, Iterator

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

log = logging.getLogger(__name__)

# A storage with less than this many bytes available counts as full when a
# write-back fails. NOTE: an estimate from one measurement: after a loop image
# on a 40 MiB ext4 ran out of space, statvfs reported 0 bytes available
# (Linux 6.18). Other file systems may keep more space back.
FULL_STORAGE_BYTES = 1 << 20


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
    for mount_point in sorted(mounts_below(path), key=len, reverse=True):
        _unmount(mount_point)


def mounts_below(path: Path) -> list[str]:
    """Return *path* if it is a mount point and every mount point below it, each once, in mount table order."""
    target = os.path.realpath(path)
    mounted: list[str] = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = _unescape(line.split()[4])
            if (mount_point == target or mount_point.startswith(target + "/")) and mount_point not in mounted:
                mounted.append(mount_point)
    return mounted


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


@contextlib.contextmanager
def checked_write_back(paths: Paths, vmid: int, directory: Path, storage_ids: Iterable[str]) -> Iterator[None]:
    """Raise StorageError when files written inside the block fail to reach the volumes mounted at *directory*.

    Files written to a raw image stay in the page cache, and a full storage
    fails their write-back after the writing command (tar, cp) has exited 0.
    syncfs() reports a write-back error only to descriptors opened before the
    error, so *directory* and every mount below it are opened on entry and
    flushed on exit. When the block raises, the flush still runs, and a
    write-back error replaces the block's own error, which is usually only a
    consequence of it. *storage_ids* are the storages of the mounted volumes,
    whose free space the error message reports.
    """
    descriptors = _open_mount_points(directory)
    try:
        try:
            yield
        except Exception as exc:
            failure = _flush(descriptors)
            if failure is not None:
                raise write_back_error(vmid, failure, _storage_space(paths, vmid, storage_ids)) from exc
            raise
        failure = _flush(descriptors)
        if failure is not None:
            raise write_back_error(vmid, failure, _storage_space(paths, vmid, storage_ids)) from failure
    finally:
        for _, descriptor in descriptors:
            os.close(descriptor)


def write_back_error(vmid: int, failure: OSError, available: dict[str, int | None]) -> StorageError:
    """Return the error for a failed write-back, naming a full storage when one is the likely cause.

    *available* maps each storage of the container's volumes to its available
    bytes, or to None when its capacity could not be read.
    """
    prefix = f"CT {vmid}: writing the container's files failed"
    reason = failure.strerror or str(failure)
    for storage_id, free in available.items():
        if free is not None and free < FULL_STORAGE_BYTES:
            return StorageError(f"{prefix}: No space left on device on storage '{storage_id}' "
                                f"({free} bytes available, syncfs: {reason}); "
                                "free space there or use another storage", vmid)
    if any(free is None for free in available.values()):
        return StorageError(f"{prefix}: {reason} (is the storage full?)", vmid)
    return StorageError(f"{prefix}: {reason} on {failure.filename}; the kernel log (dmesg) names the cause", vmid)


def _open_mount_points(path: Path) -> list[tuple[str, int]]:
    descriptors: list[tuple[str, int]] = []
    try:
        for mount_point in mounts_below(path):
            descriptors.append((mount_point, os.open(mount_point, os.O_RDONLY | os.O_DIRECTORY)))
    except BaseException:
        for _, descriptor in descriptors:
            os.close(descriptor)
        raise
    return descriptors


def _flush(descriptors: list[tuple[str, int]]) -> OSError | None:
    """Call syncfs() on every descriptor and return the first failure, or None when all succeed."""
    # Imported here because ctypes costs about 2.5 ms, and a backup never flushes.
    import ctypes

    syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    failure = None
    for mount_point, descriptor in descriptors:
        log.debug("syncfs %s", mount_point)
        if syncfs(descriptor) != 0:
            number = ctypes.get_errno()
            log.debug("syncfs %s failed: %s", mount_point, os.strerror(number))
            failure = failure or OSError(number, os.strerror(number), mount_point)
    return failure


def _storage_space(paths: Paths, vmid: int, storage_ids: Iterable[str]) -> dict[str, int | None]:
    """Return the available bytes of each storage in *storage_ids*, None where that cannot be read."""
    available: dict[str, int | None] = {}
    for storage_id in storage_ids:
        if storage_id in available:
            continue
        try:
            available[storage_id] = get_storage(paths, storage_id).status().available
        except (PctError, OSError) as exc:
            log.warning("CT %s: unable to read the capacity of storage '%s': %s", vmid, storage_id, exc)
            available[storage_id] = None
    return available
