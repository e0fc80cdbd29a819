"""``pct resize``: grow a container's volume, online when it is mounted."""

from __future__ import annotations

import re

from pct.config.format import load_config, write_config
from pct.config.model import parse_mount
from pct.config.propstring import SIZE_UNITS, format_size
from pct.errors import LockError, ParameterError, PctError
from pct.locks import config_lock
from pct.paths import Paths
from pct.volumes import mount_volumes, storage_of, with_size

_SIZE_REQUEST = re.compile(r"(\+)?(\d+(?:\.\d+)?)([KMGT])?")


def parse_size_request(text: str, vmid: int) -> tuple[bool, int]:
    """Parse ``[+]<number>[K|M|G|T]``; return (grow by, bytes). A bare number is bytes."""
    match = _SIZE_REQUEST.fullmatch(text.strip())
    if re.fullmatch(r"-\d+(\.\d+)?[KMGT]?", text.strip()):
        raise PctError(f"CT {vmid}: shrinking a volume is not supported ('{text}'); sizes can only grow", vmid)
    if not match:
        raise ParameterError("size", f"invalid size '{text}' (expected [+]<number>[K|M|G|T], e.g. +1G or 8G)",
                             vmid)
    relative, number, unit = match.groups()
    factor = SIZE_UNITS[unit] if unit else 1
    return relative is not None, int(float(number) * factor)


def resize_disk(paths: Paths, vmid: int, disk: str, size_text: str) -> int:
    """Grow volume *disk* (``rootfs`` or ``mp[n]``) of *vmid* to the requested size; return it in bytes.

    Shrinking is rejected. A raw image mounted by a running container grows
    online: the loop device learns the new capacity and ``resize2fs`` grows
    the mounted file system.
    """
    relative, amount = parse_size_request(size_text, vmid)
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        lock = config.main.get("lock")
        if lock:
            raise LockError(f"CT {vmid} is locked ({lock})", vmid)
        value = config.main.get(disk)
        if value is None or not re.fullmatch(r"rootfs|mp\d+", disk):
            raise ParameterError("disk", f"CT {vmid} has no volume '{disk}' (expected rootfs or mp0 to mp255)", vmid)
        volumes = [volume for volume in mount_volumes(config.main) if volume.key == disk]
        if not volumes:
            raise PctError(f"CT {vmid}: {disk} is a bind or device mount, which has no size to change", vmid)

        volume = volumes[0]
        storage = storage_of(paths, volume)
        storage.require("resize", volume.volname, vmid)
        current = parse_mount(disk, value).size
        if current is None:
            current = storage.volume_size(volume.volname)
        new_size = current + amount if relative else amount
        if new_size < current:
            raise PctError(f"CT {vmid}: {disk} is {format_size(current)}; shrinking to "
                           f"{format_size(new_size)} is not supported", vmid)
        if new_size == current:
            return current

        storage.resize_volume(volume.volname, new_size)
        config.main.set(disk, with_size(value, new_size))
        write_config(paths, vmid, config)
        return new_size
