"""Add and remove ``dev[n]`` devices of a running container.

Hot plug does what a start does for a device: a private node below the
container's LXC directory, a bind mount of it at the device path inside the
container, and a devices cgroup rule. The rule goes through ``lxc-cgroup``.
With cgroup v1 it writes ``devices.allow`` and ``devices.deny``. With the
unified v2 layout, LXC 5 turns the same request into an update of the
container's BPF device program through its command socket (``cgfsng_set``
in LXC's cgroups/cgfsng.c).

NOTE: the v2 path is not exercised by the tests, because this project's test
host runs the hybrid v1 layout.

The bind mount is made by a child process that joined the container's mount
namespace. It resolves the device path without following symlinks, so a
symlink the guest planted (``/dev/x -> /etc/shadow``) cannot redirect it.

With cgroup v1 an allow rule on the container's cgroup does not reach the
child cgroups the guest already made (systemd's slices), so pct writes the
rules to each of them too. A deny rule reaches them through the kernel.

# Limitation: a process that opened the device before its removal keeps its
# open file: the cgroup checks access at open(2), and the node is detached
# lazily.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import stat
from pathlib import Path

from pct.errors import PctError
from pct.paths import Paths
from pct.runtime.devices import device_number, device_rules, host_device, make_node
from pct.runtime.hotplug import set_cgroup
from pct.runtime.mountinject import move_mount, open_tree, run_in_mount_namespace
from pct.runtime.mountpoints import open_target

V1_DEVICES_ROOT = Path("/sys/fs/cgroup/devices")
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8
# Maximum nesting depth of lxc.include files searched for device rules.
MAX_INCLUDE_DEPTH = 4

_libc = ctypes.CDLL(None, use_errno=True)
log = logging.getLogger(__name__)


def add_device(paths: Paths, vmid: int, pid: int, device, uid_base: int, unified: bool,
               remaining=()) -> None:
    """Pass *device* into the running container whose init is *pid*.

    *remaining* are the container's other devices, whose rules a failed
    attempt keeps.
    """
    info = host_device(device, vmid)
    directory = paths.lxc_dir(vmid) / "devices"
    directory.mkdir(parents=True, exist_ok=True)
    node = directory / device.key
    make_node(node, info, device, uid_base)
    try:
        tree_fd = open_tree(str(node))
    except OSError as exc:
        node.unlink(missing_ok=True)
        raise PctError(f"CT {vmid}: {device.key}: unable to prepare the device node: {exc}", vmid) from exc

    try:
        _write_rules(paths, vmid, pid, device_rules(device, info), unified)
        detail = run_in_mount_namespace(pid, lambda: _attach_node(tree_fd, device, uid_base, vmid))
    finally:
        os.close(tree_fd)
    if detail is not None:
        _reset_rules(paths, vmid, pid, device, info, remaining, unified)
        node.unlink(missing_ok=True)
        # The child's own errors already start with "CT <vmid>: ".
        detail = detail.removeprefix(f"CT {vmid}: ")
        raise PctError(f"CT {vmid}: unable to add {device.key} to the running container: {detail}", vmid)


def remove_device(paths: Paths, vmid: int, pid: int, device, remaining, unified: bool) -> None:
    """Take *device* out of the running container and deny it in the devices cgroup again.

    *remaining* are the devices the container keeps: one of them with the
    same device number keeps its rules.
    """
    node = paths.lxc_dir(vmid) / "devices" / device.key
    info = _known_device(node, device.path)
    detail = run_in_mount_namespace(pid, lambda: _detach_node(device, vmid))
    if detail is not None:
        raise PctError(f"CT {vmid}: unable to remove {device.key} from the running container: {detail}", vmid)

    if info is not None:
        _reset_rules(paths, vmid, pid, device, info, remaining, unified)
    node.unlink(missing_ok=True)


def _reset_rules(paths: Paths, vmid: int, pid: int, device, info: os.stat_result, remaining,
                 unified: bool) -> None:
    """Take back the cgroup rules of *device*, leaving its number as a fresh start would have it.

    A container whose cgroup denies every device by default (privileged)
    gets the number denied, then the rules of LXC's configs and of
    *remaining* devices with the same number written again. A container
    that allows every device (unprivileged) only loses the exceptions, such
    as ``deny-write``, so its own ``/dev/null`` keeps working.
    """
    number = device_number(info)
    config_file = paths.lxc_config(vmid)
    if denies_all_by_default(config_file, unified):
        set_cgroup(paths, vmid, "devices.deny", f"{number} rwm")
        own = {rule for _, rule in device_rules(device, info)}
        configured = configured_allow_rules(config_file, unified)
        restore = [("devices.allow", rule) for rule in rules_to_restore(number, configured, own)]
    else:
        restore = [("devices.allow", f"{number} rwm")]
    for other in remaining:
        other_info = _known_device(paths.lxc_dir(vmid) / "devices" / other.key, other.path)
        if other_info is not None and device_number(other_info) == number:
            restore += device_rules(other, other_info)
    _write_rules(paths, vmid, pid, restore, unified)


def _write_rules(paths: Paths, vmid: int, pid: int, rules: list[tuple[str, str]], unified: bool) -> None:
    """Write devices cgroup rules to the container's cgroup and, with cgroup v1, to its child cgroups."""
    for name, rule in rules:
        set_cgroup(paths, vmid, name, rule)
    if unified:
        return
    for child in v1_child_cgroups(pid, vmid):
        for name, rule in rules:
            try:
                (child / name).write_text(rule)
            except OSError as exc:  # a child cgroup the guest removed meanwhile
                log.warning("CT %s: unable to write '%s' to %s: %s", vmid, rule, child / name, exc.strerror)


def v1_child_cgroups(pid: int, vmid: int, devices_root: Path = V1_DEVICES_ROOT) -> list[Path]:
    """Return the devices cgroups below the container's own, parents first.

    The container's cgroup is the ``lxc.payload.<vmid>`` directory on the
    path of its init in ``/proc/<pid>/cgroup``, which is where LXC 4.0 and
    later put a container without ``lxc.cgroup.dir`` settings.
    """
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "devices" not in controllers.split(","):
            continue
        parts = [part for part in path.split("/") if part]
        marker = f"lxc.payload.{vmid}"
        if marker not in parts:
            return []
        base = devices_root.joinpath(*parts[:parts.index(marker) + 1])
        children = []
        for directory, subdirectories, _ in os.walk(base):
            subdirectories.sort()
            if directory != str(base):
                children.append(Path(directory))
        return children
    return []


def _known_device(node: Path, host_path: str) -> os.stat_result | None:
    """Return the device of the private node, or of the host path when the node is gone."""
    for candidate in (node, Path(host_path)):
        try:
            info = os.stat(candidate, follow_symlinks=candidate == Path(host_path))
        except OSError:
            continue
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            return info
    return None


def configured_allow_rules(config_file: Path, unified: bool) -> list[tuple[str, bool]]:
    """Return the devices cgroup allow rules of a generated LXC config and the files it includes.

    Each rule comes with whether it was read from an included file (LXC's
    common configs) rather than from the generated file itself. An empty
    value clears the rules before it, as LXC does.
    """
    key = "lxc.cgroup2.devices.allow" if unified else "lxc.cgroup.devices.allow"
    rules: list[tuple[str, bool]] = []
    _collect_rules(config_file, key, rules, 0)
    return rules


def denies_all_by_default(config_file: Path, unified: bool) -> bool:
    """Return whether the LXC config (with its includes) denies every device unless allowed.

    LXC's common config writes ``devices.deny = a``, and its userns config
    clears that again with an empty value, so an unprivileged container
    allows every device.
    """
    key = "lxc.cgroup2.devices.deny" if unified else "lxc.cgroup.devices.deny"
    rules: list[tuple[str, bool]] = []
    _collect_rules(config_file, key, rules, 0)
    return any(rule == "a" for rule, _ in rules)


def _collect_rules(config_file: Path, key: str, rules: list[tuple[str, bool]], depth: int) -> None:
    try:
        lines = config_file.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        name, separator, value = line.partition("=")
        if not separator:
            continue
        name, value = name.strip(), value.strip()
        if name == "lxc.include" and depth < MAX_INCLUDE_DEPTH:
            _collect_rules(Path(value), key, rules, depth + 1)
        elif name == key and value:
            rules.append((value, depth > 0))
        elif name == key:
            rules.clear()


def rules_to_restore(number: str, configured: list[tuple[str, bool]], own: set[str]) -> list[str]:
    """Return the configured allow rules for exactly *number* that the removed device did not add.

    Denying ``c 10:229 rwm`` in cgroup v1 also drops an equal rule that LXC's
    common config granted (``/dev/fuse``), so such rules are written again.
    A rule of the generated file equal to one of *own* came from the removed
    device at start and stays denied. Wildcard rules (``c 136:* rwm``) are
    separate entries that the deny does not touch.
    """
    restore = []
    for rule, included in configured:
        parts = rule.split()
        if len(parts) < 2 or f"{parts[0]} {parts[1]}" != number:
            continue
        if (included or rule not in own) and rule not in restore:
            restore.append(rule)
    return restore


# -- inside the container's mount namespace ---------------------------------------

def _split_device_path(device, vmid: int) -> tuple[str, str]:
    parent, _, name = device.path.rpartition("/")
    if not name or name in (".", ".."):
        raise PctError(f"CT {vmid}: {device.key}: invalid device path '{device.path}'", vmid)
    return parent or "/", name


def _act_as_container_root(uid_base: int) -> None:
    """Create files as the container's root from now on.

    An unprivileged container's /dev is a tmpfs mounted in its user
    namespace, where creating a file fails with EOVERFLOW for a file system
    id (host root) that the namespace does not map.
    """
    _libc.setfsgid(uid_base)
    _libc.setfsuid(uid_base)


def _attach_node(tree_fd: int, device, uid_base: int, vmid: int) -> None:
    """Bind the detached node *tree_fd* at the device path, creating an empty file to mount on."""
    parent, name = _split_device_path(device, vmid)
    _act_as_container_root(uid_base)
    with open_target(os.path.sep, parent, uid_base, vmid, device.key) as parent_fd:
        try:
            placeholder = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  0o000, dir_fd=parent_fd)
            os.close(placeholder)
        except FileExistsError:
            pass  # an existing node is mounted over, as LXC does at start
        target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            kind = stat.S_IFMT(os.fstat(target).st_mode)
            if kind in (stat.S_IFLNK, stat.S_IFDIR):
                found = "a symlink" if kind == stat.S_IFLNK else "a directory"
                raise PctError(f"CT {vmid}: {device.key}: '{device.path}' is {found} inside the container", vmid)
            move_mount(tree_fd, target)
        finally:
            os.close(target)


def _detach_node(device, vmid: int) -> None:
    """Unmount the node at the device path and remove the empty file it was mounted on."""
    parent, name = _split_device_path(device, vmid)
    try:
        parent_fd = _open_existing_directory(parent)
    except FileNotFoundError:
        return  # the guest removed the directory, and the device with it
    try:
        os.fchdir(parent_fd)
        # The relative name resolves from the directory just opened, and
        # UMOUNT_NOFOLLOW keeps a symlink in its place from being followed.
        if _libc.umount2(name.encode(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0:
            error = ctypes.get_errno()
            if error not in (errno.EINVAL, errno.ENOENT):
                raise OSError(error, f"umount {device.path}: {os.strerror(error)}")
        try:
            info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISREG(info.st_mode) and info.st_size == 0:
            os.unlink(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _open_existing_directory(path: str) -> int:
    """Open the directory *path* from the root, one component at a time, without following symlinks."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(os.path.sep, flags)
    try:
        for part in [part for part in path.split("/") if part]:
            if part in (".", ".."):
                raise FileNotFoundError(path)
            child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd
