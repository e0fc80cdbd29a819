"""Apply changed options to a running container, key by key."""

from __future__ import annotations

import re

from pct.errors import PctError
from pct.paths import Paths
from pct.runtime import hotplug
from pct.runtime.guestprep import prepare_guest

_NET_KEY = re.compile(r"^net(\d+)$")
_MP_KEY = re.compile(r"^mp\d+$")
_DEV_KEY = re.compile(r"^dev\d+$")


def applies_live(key: str) -> bool:
    """Return whether a change of *key* can take effect in a running container now.

    A new mount point is mounted live; changing or removing one waits for
    the next start (see ``apply_live``).
    """
    from pct.config.schema import is_hotpluggable

    if key.startswith("unused"):
        return True  # a detached volume concerns no running process
    return is_hotpluggable(key)


def apply_live(paths: Paths, old, new, keys: set[str]) -> None:
    """Make the running container match *new* for *keys*; *old* is what runs now."""
    vmid = new.vmid
    if keys & hotplug.LIMIT_KEYS:
        hotplug.apply_limits(paths, old, new)

    net_indexes = sorted(int(match[1]) for key in keys if (match := _NET_KEY.match(key)))
    for index in net_indexes:
        _apply_nic(paths, vmid, _nic(old, index), _nic(new, index))

    if net_indexes or keys & hotplug.GUEST_FILE_KEYS:
        prepare_guest(new, paths.rootfs_mount(vmid), phase="start")
    if "hostname" in keys and new.hostname != old.hostname:
        hotplug.set_live_hostname(paths, vmid, new.hostname)
    for key in sorted(key for key in keys if _MP_KEY.match(key)):
        _add_mount_point(paths, new, key)
    for key in sorted(key for key in keys if _DEV_KEY.match(key)):
        _apply_device(paths, old, new, key)


def _add_mount_point(paths: Paths, settings, key: str) -> None:
    from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP
    from pct.runtime.mountinject import inject_mount
    from pct.runtime.state import init_pid

    mount = next(m for m in settings.mounts if m.key == key)
    pid = init_pid(paths, settings.vmid)
    uid_base = UNPRIVILEGED_ID_MAP[0] if settings.unprivileged else 0
    inject_mount(paths, settings.vmid, pid, mount, uid_base)


def _apply_device(paths: Paths, old, new, key: str) -> None:
    """Add, remove or replace the device *key*; a new host device is checked before anything changes."""
    from pct.runtime.cgroups import detect_layout
    from pct.runtime.devicehotplug import add_device, remove_device
    from pct.runtime.devices import host_device
    from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP
    from pct.runtime.state import init_pid

    before = next((device for device in old.devices if device.key == key), None)
    after = next((device for device in new.devices if device.key == key), None)
    if before == after:
        return
    if after is not None:
        host_device(after, new.vmid)
    pid = init_pid(paths, new.vmid)
    if pid is None:
        raise PctError(f"CT {new.vmid} not running", new.vmid)
    unified = detect_layout().unified
    remaining = [device for device in new.devices if device.key != key]
    if before is not None:
        remove_device(paths, new.vmid, pid, before, remaining, unified)
    if after is not None:
        uid_base = UNPRIVILEGED_ID_MAP[0] if new.unprivileged else 0
        add_device(paths, new.vmid, pid, after, uid_base, unified, remaining)


def _nic(settings, index: int):
    return next((net for net in settings.nets if net.index == index), None)


def _apply_nic(paths: Paths, vmid: int, old, new) -> None:
    if old is None and new is not None:
        hotplug.add_nic(paths, vmid, new)
    elif old is not None and new is None:
        hotplug.remove_nic(paths, vmid, old)
    elif old is not None and new is not None and old != new:
        hotplug.change_nic(paths, vmid, old, new)
