"""Rescue access to a container's volumes: mount, unmount, df, fsck and fstrim.

``pct mount`` mounts the root volume and every mount point of a stopped
container at ``var/lib/lxc/<vmid>/rootfs`` (below the root) and records
``lock: mounted``, so ``pct start`` refuses until ``pct unmount`` clears it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from pct.config.format import ContainerConfig, load_config, write_config
from pct.config.model import ContainerSettings, MountConfig, settings_from_config
from pct.errors import LockError, ParameterError, PctError, StorageError
from pct.locks import config_lock
from pct.paths import Paths
from pct.run import run
from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP
from pct.runtime.mountpoints import mount_all, mount_kind, mount_points_in_order
from pct.runtime.mounts import is_mountpoint, mount_rootfs, unmount_all
from pct.runtime.state import is_running
from pct.storage import get_storage, parse_volume_id
from pct.storage.image import loop_devices_of
from pct.transfer import GuestFiles, running_guest

log = logging.getLogger(__name__)

_DISK_KEY = re.compile(r"rootfs|mp\d+")

# FITRIM from linux/fs.h: _IOWR('X', 121, struct fstrim_range), and that
# struct's fields start, len and minlen, each a 64-bit byte count. On return
# the kernel sets len to the number of bytes it trimmed.
_FITRIM = 0xC0185879
_FSTRIM_RANGE = struct.Struct("=QQQ")
_ALL_BYTES = (1 << 64) - 1


# -- mount and unmount -------------------------------------------------------------------

def mount_container(paths: Paths, vmid: int) -> Path:
    """Mount the volumes of stopped container *vmid* on the host and lock it ``mounted``; return the rootfs path."""
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        settings = settings_from_config(config, vmid)
        _check_unlocked(settings)
        _check_stopped(paths, vmid, "mounting its volumes")
        target = paths.rootfs_mount(vmid)
        if is_mountpoint(target):
            raise PctError(f"CT {vmid}: '{target}' is already mounted; run 'pct unmount {vmid}' first", vmid)

        _set_lock(paths, vmid, config, "mounted")
        try:
            _mount_volumes(paths, settings)
        except BaseException:
            unmount_all(paths, vmid)
            _clear_lock(paths, vmid, "mounted")
            raise
        return target


def unmount_container(paths: Paths, vmid: int) -> None:
    """Unmount what ``pct mount`` mounted and clear the ``mounted`` lock."""
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        lock = config.main.get("lock")
        _check_stopped(paths, vmid, "unmounting its volumes")
        if lock not in (None, "mounted"):
            raise LockError(f"CT {vmid} is locked ({lock})", vmid)
        if lock is None and not is_mountpoint(paths.rootfs_mount(vmid)):
            raise PctError(f"CT {vmid} is not mounted", vmid)

        unmount_all(paths, vmid)
        if lock is not None:
            config.main.delete("lock")
            write_config(paths, vmid, config)


def _mount_volumes(paths: Paths, settings: ContainerSettings) -> Path:
    rootfs = mount_rootfs(paths, settings)
    uid_base = UNPRIVILEGED_ID_MAP[0] if settings.unprivileged else 0
    mount_all(paths, settings, rootfs, uid_base)
    return rootfs


# -- df -------------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeUsage:
    """The capacity of one mounted volume in bytes, as ``pct df`` shows it."""

    key: str
    volume: str
    path: str
    total: int
    used: int
    available: int

    @property
    def percent(self) -> float:
        """Return the used share of the space that users can fill, as ``df`` counts it."""
        usable = self.used + self.available
        return 100.0 * self.used / usable if usable else 0.0


def disk_usage(paths: Paths, vmid: int) -> list[VolumeUsage]:
    """Return the usage of the root volume and every mount point of *vmid*.

    A running container is read through its own mount namespace; a mounted
    one where ``pct mount`` put it. A stopped container is mounted for the
    moment of the reading, under its flock, and unmounted again.
    """
    with config_lock(paths, vmid):
        settings = settings_from_config(load_config(paths, vmid), vmid)
        if is_running(paths, vmid):
            return _usage(settings, running_guest(paths, vmid))
        rootfs = paths.rootfs_mount(vmid)
        if is_mountpoint(rootfs):
            return _usage(settings, GuestFiles(rootfs, vmid=vmid))
        _check_unlocked(settings)
        try:
            _mount_volumes(paths, settings)
            return _usage(settings, GuestFiles(rootfs, vmid=vmid))
        finally:
            unmount_all(paths, vmid)


# Limitation: a directory volume reports the file system that contains it,
# so a btrfs subvolume shows the whole btrfs file system, not its qgroup limit.
def _usage(settings: ContainerSettings, guest: GuestFiles) -> list[VolumeUsage]:
    rows = []
    for mount in _mounts(settings):
        with guest.open_path(mount.mountpoint, "read") as fd:
            info = os.fstatvfs(fd)
        total = info.f_blocks * info.f_frsize
        rows.append(VolumeUsage(key=mount.key, volume=mount.volume, path=mount.mountpoint, total=total,
                                used=total - info.f_bfree * info.f_frsize,
                                available=info.f_bavail * info.f_frsize))
    return rows


def _mounts(settings: ContainerSettings) -> list[MountConfig]:
    mounts = [settings.rootfs] if settings.rootfs is not None else []
    return mounts + mount_points_in_order(settings)


def format_usage(rows: list[VolumeUsage]) -> str:
    """Return *rows* as the ``pct df`` table: MP Volume Size Used Avail Use% Path."""
    header = ("MP", "Volume", "Size", "Used", "Avail", "Use%", "Path")
    table = [header] + [(row.key, row.volume, human_size(row.total), human_size(row.used),
                         human_size(row.available), f"{row.percent:.1f}%", row.path) for row in rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    lines = []
    for line in table:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [line[column].rjust(widths[column]) for column in range(2, 6)]
        lines.append(" ".join(cells + [line[6]]))
    return "\n".join(lines)


def human_size(size: int) -> str:
    """Return *size* bytes with a binary unit and one decimal, as ``df -h`` prints it."""
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("not reached")


# -- fsck -----------------------------------------------------------------------------

def check_filesystem(paths: Paths, vmid: int, device: str = "rootfs", force: bool = False) -> str:
    """Run ``e2fsck -p`` (and ``-f`` with *force*) on the ext4 image of *device*; return its output.

    The container must be stopped and not mounted. Directory volumes and
    subvolumes have no file system of their own and are rejected.
    """
    if not _DISK_KEY.fullmatch(device):
        raise ParameterError("device", f"invalid device '{device}' (expected rootfs or mp0 to mp255)", vmid)
    with config_lock(paths, vmid):
        settings = settings_from_config(load_config(paths, vmid), vmid)
        _check_stopped(paths, vmid, "checking its file systems")
        _check_unlocked(settings)
        mount = next((mount for mount in _mounts(settings) if mount.key == device), None)
        if mount is None:
            raise ParameterError("device", f"CT {vmid} has no volume '{device}'", vmid)
        image = _image_of(paths, vmid, mount)
        return _run_e2fsck(image, vmid, device, force)


def _image_of(paths: Paths, vmid: int, mount: MountConfig) -> Path:
    """Return the raw image file behind *mount*, or raise naming why it has none."""
    kind = mount_kind(mount.volume)
    if kind != "volume":
        raise PctError(f"CT {vmid}: cannot check {mount.key}: '{mount.volume}' is a {kind} mount, "
                       "not a storage volume", vmid)
    storage_id, volname = parse_volume_id(mount.volume)
    storage = get_storage(paths, storage_id)
    if storage.volume_format(volname) != "raw":
        raise StorageError(f"CT {vmid}: cannot check {mount.key}: volume '{mount.volume}' is a directory "
                           "(subvolume) without a file system image of its own", vmid)
    image = storage.volume_path(volname)
    if not image.is_file():
        raise StorageError(f"CT {vmid}: volume '{mount.volume}' does not exist", vmid)
    devices = loop_devices_of(image)
    if devices:
        raise StorageError(f"CT {vmid}: cannot check {mount.key}: its image is in use by {', '.join(devices)}; "
                           f"run 'pct unmount {vmid}' first", vmid)
    return image


def _run_e2fsck(image: Path, vmid: int, device: str, force: bool) -> str:
    argv = ["e2fsck", "-p"] + (["-f"] if force else []) + [str(image)]
    result = run(argv, check=False)
    output = ((result.stdout or "") + (result.stderr or "")).strip()
    # e2fsck exit status: bit 1 errors corrected, bit 2 reboot advised (no meaning
    # for an unmounted image), bit 4 errors left, 8 and above the check itself failed.
    if result.returncode & ~0b11:
        last = output.splitlines()[-1] if output else f"exit status {result.returncode}"
        raise StorageError(f"CT {vmid}: file system check of {device} failed: {last}; "
                           f"run 'e2fsck -f {image}' by hand to repair it", vmid)
    return output


# -- fstrim ---------------------------------------------------------------------------

def trim_container(paths: Paths, vmid: int, ignore_mountpoints: bool = False) -> list[str]:
    """Discard unused blocks of each mounted ext4 volume of running container *vmid*.

    Returns one line per volume. The container is locked ``fstrim`` while
    the trims run. Directory volumes, bind and device mounts are skipped:
    trimming them would trim the host file system that contains them.
    """
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        settings = settings_from_config(config, vmid)
        _check_unlocked(settings)
        guest = running_guest(paths, vmid)
        _set_lock(paths, vmid, config, "fstrim")
    try:
        mounts = [settings.rootfs] if ignore_mountpoints else _mounts(settings)
        return [_trim_one(paths, guest, mount) for mount in mounts if mount is not None]
    finally:
        with config_lock(paths, vmid):
            _clear_lock(paths, vmid, "fstrim")


def _trim_one(paths: Paths, guest: GuestFiles, mount: MountConfig) -> str:
    if mount_kind(mount.volume) != "volume":
        return f"{mount.key} ({mount.mountpoint}): skipped, not a storage volume"
    storage_id, volname = parse_volume_id(mount.volume)
    if get_storage(paths, storage_id).volume_format(volname) != "raw":
        return f"{mount.key} ({mount.mountpoint}): skipped, a directory volume has no file system of its own"
    with guest.open_path(mount.mountpoint, "trim") as path_fd:
        trimmed = _fitrim(path_fd, mount, guest.vmid)
    return f"{mount.key} ({mount.mountpoint}): {human_size(trimmed)} ({trimmed} bytes) trimmed"


def _fitrim(path_fd: int, mount: MountConfig, vmid: int | None) -> int:
    """Discard the unused blocks of the file system of *path_fd*; return the bytes the kernel reports.

    The ioctl runs here, on the descriptor, rather than through fstrim(8),
    because fstrim resolves its path again on the host, where the guest's
    mount point does not exist.
    """
    fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    request = bytearray(_FSTRIM_RANGE.pack(0, _ALL_BYTES, 0))
    try:
        fcntl.ioctl(fd, _FITRIM, request)
    except OSError as exc:
        raise StorageError(f"CT {vmid}: trimming {mount.key} ({mount.mountpoint}) failed: {exc.strerror}",
                           vmid) from exc
    finally:
        os.close(fd)
    return _FSTRIM_RANGE.unpack(request)[1]


# -- locks and states -------------------------------------------------------------------

def _check_unlocked(settings: ContainerSettings) -> None:
    if settings.lock:
        raise LockError(f"CT {settings.vmid} is locked ({settings.lock})", settings.vmid)


def _check_stopped(paths: Paths, vmid: int, action: str) -> None:
    if is_running(paths, vmid):
        raise PctError(f"CT {vmid} is running; stop it before {action}", vmid)


def _set_lock(paths: Paths, vmid: int, config: ContainerConfig, kind: str) -> None:
    config.main.set("lock", kind)
    write_config(paths, vmid, config)


def _clear_lock(paths: Paths, vmid: int, kind: str) -> None:
    """Remove ``lock: <kind>`` from the config, leaving any other lock alone."""
    config = load_config(paths, vmid)
    if config.main.get("lock") == kind:
        config.main.delete("lock")
        write_config(paths, vmid, config)
