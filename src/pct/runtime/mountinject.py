"""Add a mount point to a running container.

The volume is mounted on the host in a staging directory, cloned into a
detached mount tree with open_tree(2), and the clone is attached inside the
container's mount namespace with move_mount(2) by a child process that has
joined that namespace. The target directory is resolved there without
following symlinks, as at start.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import shutil
from typing import Callable

from pct.errors import PctError
from pct.paths import Paths
from pct.run import run
from pct.runtime.mountpoints import check_bind_source, mount_kind, mount_one, open_target

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
CLONE_NEWNS = 0x00020000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return result


def open_tree(path: str) -> int:
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | AT_RECURSIVE
    return _check(_libc.syscall(SYS_OPEN_TREE, -100, path.encode(), flags), "open_tree")


def move_mount(tree_fd: int, target_fd: int) -> None:
    flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
    _check(_libc.syscall(SYS_MOVE_MOUNT, tree_fd, b"", target_fd, b"", flags), "move_mount")


def inject_mount(paths: Paths, vmid: int, pid: int, mount, uid_base: int) -> None:
    """Mount *mount* (an ``mp[n]``) inside the running container whose init is *pid*."""
    if mount_kind(mount.volume) == "bind":
        check_bind_source(mount, vmid)
    staging = paths.lxc_dir(vmid) / "hotplug"
    staging.mkdir(parents=True, exist_ok=True)
    staged = dataclasses.replace(mount, mountpoint=f"/{mount.key}")
    try:
        mount_one(paths, vmid, staged, staging, 0)
    except BaseException:
        _remove_empty(staging / mount.key, staging)
        raise
    try:
        tree_fd = open_tree(str(staging / mount.key))
    finally:
        run(["umount", str(staging / mount.key)])
        shutil.rmtree(staging, ignore_errors=True)
    try:
        _attach_in_namespace(pid, tree_fd, mount, uid_base, vmid)
    finally:
        os.close(tree_fd)


def _remove_empty(*directories) -> None:
    """Remove *directories* that are empty; one that is still a mount point stays (rmdir fails)."""
    for directory in directories:
        try:
            os.rmdir(directory)
        except OSError:
            pass


def _attach_in_namespace(pid: int, tree_fd: int, mount, uid_base: int, vmid: int) -> None:
    def attach() -> None:
        with open_target(os.path.sep, mount.mountpoint, uid_base, vmid, mount.key) as target_fd:
            move_mount(tree_fd, target_fd)

    detail = run_in_mount_namespace(pid, attach)
    if detail is not None:
        # The child's own errors already start with "CT <vmid>: ".
        detail = detail.removeprefix(f"CT {vmid}: ")
        raise PctError(f"CT {vmid}: unable to mount {mount.key} in the running container: {detail}", vmid)


def run_in_mount_namespace(pid: int, action: Callable[[], None]) -> str | None:
    """Run *action* in a child process that joined the mount namespace of *pid*.

    After setns(2) the child's root and working directory are the root of
    that namespace, so absolute paths resolve inside the container. Returns
    None on success, else the error message of the child.
    """
    namespace = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        os.close(reader)
        status = 0
        try:
            _check(_libc.setns(namespace, CLONE_NEWNS), "setns")
            action()
        except BaseException as exc:  # report any failure to the parent, then leave
            os.write(writer, str(getattr(exc, "message", None) or exc).encode()[:4000])
            status = 1
        os._exit(status)

    os.close(writer)
    os.close(namespace)
    message = b""
    while chunk := os.read(reader, 4096):
        message += chunk
    os.close(reader)
    _, status = os.waitpid(child, 0)
    if status == 0:
        return None
    return message.decode(errors="replace") or "unknown error"
