"""Pass host devices (``dev[n]``) into a container.

Each device gets a node of its own below the container's LXC directory,
with the owner and mode the config sets, so the host's node keeps its
own. The node is bind-mounted at the same path inside the container, and the
devices cgroup allows it (read-only with ``deny-write=1``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pct.errors import PctError
from pct.paths import Paths


def device_keys(paths: Paths, settings, uid_base: int, unified: bool) -> list[tuple[str, str]]:
    """Create the device nodes of *settings* and return the LXC keys that pass them in."""
    if not settings.devices:
        return []
    directory = paths.lxc_dir(settings.vmid) / "devices"
    directory.mkdir(parents=True, exist_ok=True)
    prefix = "lxc.cgroup2" if unified else "lxc.cgroup"

    keys = []
    for device in settings.devices:
        info = host_device(device, settings.vmid)
        node = directory / device.key
        make_node(node, info, device, uid_base)
        keys += [(f"{prefix}.{name}", rule) for name, rule in device_rules(device, info)]
        keys.append(("lxc.mount.entry", f"{node} {device.path.lstrip('/')} none bind,create=file 0 0"))
    return keys


def device_number(info: os.stat_result) -> str:
    """Return the devices cgroup form of a node's device: ``b 7:3`` or ``c 1:3``."""
    kind = "b" if stat.S_ISBLK(info.st_mode) else "c"
    return f"{kind} {os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"


def device_rules(device, info: os.stat_result) -> list[tuple[str, str]]:
    """Return the devices cgroup writes, as (file, rule) pairs, that let the container use *device*."""
    number = device_number(info)
    rules = [("devices.allow", f"{number} {'rm' if device.deny_write else 'rwm'}")]
    if device.deny_write:
        # Unprivileged containers have no deny-all rule to fall back on,
        # so writing is denied explicitly.
        rules.append(("devices.deny", f"{number} w"))
    return rules


def host_device(device, vmid: int) -> os.stat_result:
    try:
        info = os.stat(device.path)
    except FileNotFoundError:
        raise PctError(f"CT {vmid}: {device.key}: device '{device.path}' does not exist", vmid) from None
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise PctError(f"CT {vmid}: {device.key}: '{device.path}' is not a device node", vmid)
    return info


def make_node(node: Path, info: os.stat_result, device, uid_base: int) -> None:
    node.unlink(missing_ok=True)
    mode = int(device.mode, 8) if device.mode else stat.S_IMODE(info.st_mode)
    os.mknod(node, stat.S_IFMT(info.st_mode) | mode, info.st_rdev)
    os.chmod(node, mode)
    os.chown(node, uid_base + (device.uid or 0), uid_base + (device.gid or 0))
