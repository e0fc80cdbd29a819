"""Mount ``mp[n]`` volumes inside a container's rootfs, safely.

The target directory is resolved component by component below the rootfs
with ``O_NOFOLLOW``, so a symlink the guest planted (``/data -> /etc`` on the
host, say) makes the start fail instead of mounting onto the host. The mount
then goes onto the opened directory through ``/proc/self/fd/<n>``, which the
kernel does not resolve again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from pathlib import Path
from typing import Iterator

from pct.errors import CommandError, PctError
from pct.paths import Paths
from pct.run import run
from pct.runtime.fsoptions import (
    check_noacl_failure,
    check_quota_support,
    enable_quotas,
    filesystem_options,
    mount_kind,
    wants_quotas,
)
from pct.storage import get_storage, parse_volume_id

log = logging.getLogger(__name__)

# Host directories that a bind mount would expose the whole system through.
SYSTEM_DIRECTORIES = frozenset({"/", "/etc", "/var", "/usr", "/proc", "/sys", "/dev", "/boot", "/root",
                                "/bin", "/sbin", "/lib", "/lib64", "/run"})
_SAFE_OPTIONS = {"noatime", "nodev", "noexec", "nosuid", "discard", "lazytime"}


def mount_points_in_order(settings) -> list:
    """Return the mount points of *settings* so that parents are mounted before children."""
    return sorted(settings.mounts, key=lambda mount: (mount.mountpoint.rstrip("/").count("/"), mount.mountpoint))


def mount_all(paths: Paths, settings, rootfs: Path, uid_base: int, volumes_only: bool = False) -> None:
    """Mount every ``mp[n]`` of *settings* below the mounted *rootfs*.

    With *volumes_only*, as while a template unpacks, bind and device mounts
    are checked but not mounted, so no template file lands on the host.
    """
    for mount in mount_points_in_order(settings):
        kind = mount_kind(mount.volume)
        if kind == "bind":
            check_bind_source(mount, settings.vmid)
        if volumes_only and kind != "volume":
            continue
        mount_one(paths, settings.vmid, mount, rootfs, uid_base)


def mount_one(paths: Paths, vmid: int, mount, rootfs: Path, uid_base: int) -> None:
    """Mount *mount* at its mount point below *rootfs*, with its ``acl`` and ``quota`` applied."""
    kind = mount_kind(mount.volume)
    check_quota_support(paths, vmid, mount, kind)
    options = _mount_options(mount, vmid)
    with open_target(rootfs, mount.mountpoint, uid_base, vmid, mount.key) as target_fd:
        target = f"/proc/self/fd/{target_fd}"
        if kind == "bind":
            _mount_bind(mount, vmid, target, target_fd, options)
        else:
            options += filesystem_options(paths, mount, kind)
            try:
                _mount_file_system(paths, mount, kind, target, target_fd, options)
            except CommandError as exc:
                check_noacl_failure(exc, options, vmid, mount.key)
                raise
        if wants_quotas(mount):
            # The opened directory is now covered by the mount, so its path is the mount point's.
            _enable_or_unmount(os.readlink(target), vmid, mount.key)


def _mount_bind(mount, vmid: int, target: str, target_fd: int, options: list[str]) -> None:
    check_bind_source(mount, vmid)
    if is_system_directory(mount.volume):
        log.warning("CT %s: %s: bind-mounting the host system directory '%s', which was added with --force",
                    vmid, mount.key, os.path.normpath(mount.volume))
    run(["mount", "--bind", mount.volume, target], pass_fds=(target_fd,))
    if mount.ro or options:
        flags = ",".join(["remount", "bind", "ro" if mount.ro else "rw"] + options)
        run(["mount", "-o", flags, target], pass_fds=(target_fd,))


def _mount_file_system(paths: Paths, mount, kind: str, target: str, target_fd: int, options: list[str]) -> None:
    """Mount a storage volume or a device at *target*."""
    if kind == "volume":
        storage_id, volname = parse_volume_id(mount.volume)
        get_storage(paths, storage_id).mount_volume(volname, target, read_only=mount.ro,
                                                    options=options, pass_fds=(target_fd,))
    else:
        flags = ",".join(["ro" if mount.ro else "rw"] + options)
        run(["mount", "-o", flags, mount.volume, target], pass_fds=(target_fd,))


def _enable_or_unmount(mount_path: str, vmid: int, key: str) -> None:
    try:
        enable_quotas(mount_path, vmid, key)
    except PctError:
        run(["umount", mount_path])
        raise


def _mount_options(mount, vmid: int) -> list[str]:
    text = mount.options.get("mountoptions", "")
    options = [option for option in text.split(";") if option]
    unknown = [option for option in options if option not in _SAFE_OPTIONS]
    if unknown:
        raise PctError(f"CT {vmid}: {mount.key}: mount option '{unknown[0]}' is not allowed "
                       f"(allowed: {', '.join(sorted(_SAFE_OPTIONS))})", vmid)
    return options


def check_bind_source(mount, vmid: int) -> None:
    """Raise PctError unless the bind mount source is an existing path without symlinks.

    A host system directory passes, because ``pct set`` and ``pct create``
    accept one only with ``--force`` (see ``check_new_bind_mounts``).
    """
    source = os.path.normpath(mount.volume)
    if os.path.exists(source) and not os.path.isdir(source) and not os.path.isfile(source):
        raise PctError(f"CT {vmid}: {mount.key}: '{source}' is not a block device, a directory or a file", vmid)
    if not os.path.isdir(source) and not os.path.isfile(source):
        raise PctError(f"CT {vmid}: {mount.key}: bind mount source '{source}' does not exist", vmid)
    if os.path.realpath(source) != source:
        raise PctError(f"CT {vmid}: {mount.key}: bind mount source '{source}' contains a symlink", vmid)


def check_new_bind_mounts(values: dict[str, str], vmid: int, force: bool) -> None:
    """Raise PctError for a new ``mp[n]`` value that bind-mounts a host system directory, unless *force*."""
    from pct.config.model import parse_mount

    for key, value in values.items():
        if not re.fullmatch(r"mp\d+", key):
            continue
        mount = parse_mount(key, value, vmid)
        if not force and mount_kind(mount.volume) == "bind" and is_system_directory(mount.volume):
            raise PctError(f"CT {vmid}: {key}: bind mounting the host system directory "
                           f"'{os.path.normpath(mount.volume)}' is not allowed without --force", vmid)


def is_system_directory(path: str) -> bool:
    return os.path.normpath(path) in SYSTEM_DIRECTORIES


@contextlib.contextmanager
def open_target(rootfs: Path, mountpoint: str, uid_base: int, vmid: int, key: str) -> Iterator[int]:
    """Open (creating as needed) the directory *mountpoint* below *rootfs* without following symlinks."""
    parts = [part for part in mountpoint.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise PctError(f"CT {vmid}: {key}: mount point path '{mountpoint}' must not contain '.' or '..'", vmid)

    fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for part in parts:
            child = _step_into(fd, part, uid_base, vmid, key, mountpoint)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _step_into(parent: int, name: str, uid_base: int, vmid: int, key: str, mountpoint: str) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        child = os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        os.mkdir(name, 0o755, dir_fd=parent)
        os.chown(name, uid_base, uid_base, dir_fd=parent, follow_symlinks=False)
        child = os.open(name, flags, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PctError(f"CT {vmid}: {key}: mount point path '{mountpoint}' leads through a symlink "
                           f"or a file inside the container ('{name}')", vmid) from None
        raise
    return child
