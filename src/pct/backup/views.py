"""Read-only views of a container's files for a backup, and their clean-up.

Each mode of a backup builds a directory tree that contains the root volume and
the volumes of the ``backup=1`` mount points at their container paths, and
nothing else: no bind or device mount points, and no mount point left out of
backups. Mount point targets are opened below the tree without following
symlinks, so a symlink planted in the guest cannot redirect a mount.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path
from typing import Iterator

from pct.config.model import ContainerSettings
from pct.errors import CommandError, PctError
from pct.paths import Paths
from pct.run import run
from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP
from pct.runtime.mountpoints import mount_kind, mount_points_in_order, open_target
from pct.storage import get_storage, parse_volume_id

log = logging.getLogger(__name__)


def backed_up_mounts(settings: ContainerSettings) -> list:
    """Return the mount points whose files go into a backup: storage volumes with ``backup=1``."""
    return [mount for mount in mount_points_in_order(settings)
            if mount_kind(mount.volume) == "volume" and mount.options.get("backup") == "1"]


def backup_settings(settings: ContainerSettings) -> ContainerSettings:
    """Return *settings* with only the mount points that a backup contains."""
    return dataclasses.replace(settings, mounts=tuple(backed_up_mounts(settings)))


def uid_base(settings: ContainerSettings) -> int:
    return UNPRIVILEGED_ID_MAP[0] if settings.unprivileged else 0


def archive_members(tree: Path, settings: ContainerSettings) -> list[str]:
    """Return ``.`` and each backed-up mount point on another file system than its parent.

    tar runs with ``--one-file-system``, so it reaches a mount point on another
    file system only when it is named, and names one on the same file system
    only once.
    """
    members = ["."]
    root_device = os.lstat(tree).st_dev
    for mount in backed_up_mounts(settings):
        relative = "./" + mount.mountpoint.strip("/")
        if os.lstat(tree / relative).st_dev != root_device:
            members.append(relative)
    return members


class MountStack:
    """Mounts made for one backup, undone deepest first."""

    def __init__(self, vmid: int):
        self.vmid = vmid
        self.targets: list[str] = []

    def bind(self, source: str, target: str) -> None:
        """Bind-mount *source* (one file system, without its submounts) read-only at *target*."""
        run(["mount", "--bind", source, target])
        self.targets.append(os.path.realpath(target))
        run(["mount", "-o", "remount,bind,ro", target])

    def record(self, target: Path) -> None:
        self.targets.append(str(target))

    def unmount(self) -> None:
        for target in reversed(self.targets):
            try:
                run(["umount", target])
            except CommandError as exc:
                log.error("CT %s: unmounting the backup view '%s' failed: %s", self.vmid, target, exc)
        self.targets.clear()


def _mounted_path(view: Path, mountpoint: str) -> str:
    return os.path.realpath(view / mountpoint.strip("/"))


@contextlib.contextmanager
def running_view(paths: Paths, settings: ContainerSettings, view: Path) -> Iterator[Path]:
    """Bind the running container's root and backed-up mount points read-only below *view*."""
    stack = MountStack(settings.vmid)
    view.mkdir(mode=0o755)
    try:
        stack.bind(str(paths.rootfs_mount(settings.vmid)), str(view))
        for mount in backed_up_mounts(settings):
            _bind_mount_point(paths, settings, mount, view, stack)
        yield view
    finally:
        stack.unmount()
        view.rmdir()


def _bind_mount_point(paths: Paths, settings: ContainerSettings, mount, view: Path, stack: MountStack) -> None:
    vmid = settings.vmid
    base = uid_base(settings)
    rootfs = paths.rootfs_mount(vmid)
    with open_target(rootfs, mount.mountpoint, base, vmid, mount.key) as source_fd, \
            open_target(view, mount.mountpoint, base, vmid, mount.key) as target_fd:
        fds = (source_fd, target_fd)
        run(["mount", "--bind", f"/proc/self/fd/{source_fd}", f"/proc/self/fd/{target_fd}"], pass_fds=fds)
    stack.record(Path(_mounted_path(view, mount.mountpoint)))
    run(["mount", "-o", "remount,bind,ro", _mounted_path(view, mount.mountpoint)])


@contextlib.contextmanager
def snapshot_view(paths: Paths, settings: ContainerSettings, snapshot: str, view: Path) -> Iterator[Path]:
    """Mount the storage snapshot *snapshot* of the root and backed-up volumes read-only below *view*."""
    stack = MountStack(settings.vmid)
    view.mkdir(mode=0o755)
    try:
        storage_id, volname = parse_volume_id(settings.rootfs.volume)
        storage = get_storage(paths, storage_id)
        storage.mount_volume(volname, view, read_only=True, options=_snapshot_options(storage, volname),
                             snapshot=snapshot)
        stack.record(Path(os.path.realpath(view)))
        for mount in backed_up_mounts(settings):
            _mount_snapshot_point(paths, settings, mount, view, snapshot, stack)
        yield view
    finally:
        stack.unmount()
        view.rmdir()


def _mount_snapshot_point(paths: Paths, settings: ContainerSettings, mount, view: Path, snapshot: str,
                          stack: MountStack) -> None:
    storage_id, volname = parse_volume_id(mount.volume)
    storage = get_storage(paths, storage_id)
    try:
        with open_target(view, mount.mountpoint, uid_base(settings), settings.vmid, mount.key) as target_fd:
            storage.mount_volume(volname, f"/proc/self/fd/{target_fd}", read_only=True,
                                 options=_snapshot_options(storage, volname), pass_fds=(target_fd,),
                                 snapshot=snapshot)
    except OSError as exc:
        raise PctError(f"CT {settings.vmid}: {mount.key}: mount point '{mount.mountpoint}' is missing in the "
                       f"snapshot of the root volume ({exc.strerror})", settings.vmid) from exc
    stack.record(Path(_mounted_path(view, mount.mountpoint)))


def _snapshot_options(storage, volname: str) -> list[str]:
    # A snapshot of a mounted ext4 image has a journal that needs recovery,
    # which a read-only mount cannot replay; noload skips it.
    return ["noload"] if storage.volume_format(volname) == "raw" else []
