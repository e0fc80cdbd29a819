"""``pct move-volume``: copy a volume to another storage, or hand it to another container.

Both work on stopped containers only, because a mounted volume could change
while it is copied or renamed.
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from pct.clone import copy_volume
from pct.config.format import ContainerConfig, load_config, write_config
from pct.config.model import parse_mount
from pct.errors import LockError, ParameterError, PctError
from pct.locks import config_lock
from pct.paths import Paths
from pct.runtime.state import is_running
from pct.storage import get_storage, parse_volume_id
from pct.volumes import ConfigVolume, free_unused_key, mount_volumes, replace_volume, storage_of, volume_of, with_size

_MOVABLE_KEY = re.compile(r"rootfs|mp\d+|unused\d+")
_TARGET_KEY = re.compile(r"mp\d+|unused\d+")


def move_volume(paths: Paths, vmid: int, disk: str, storage_id: str, delete: bool = False) -> str:
    """Copy volume *disk* of *vmid* to storage *storage_id* and point the config at the copy.

    The old volume is removed with *delete*, and otherwise kept as
    ``unused[n]``. Returns the new volume id.
    """
    with config_lock(paths, vmid):
        config = _stopped_config(paths, vmid)
        volume = _config_volume(config, disk, vmid)
        if volume.storage_id == storage_id:
            raise PctError(f"CT {vmid}: {disk} is already on storage '{storage_id}'", vmid)
        in_snapshots = _used_by_snapshots(config, volume.volid)
        if delete and in_snapshots:
            raise PctError(f"CT {vmid}: {disk} is used by snapshots ({', '.join(in_snapshots)}); "
                           "move it without --delete, or remove the snapshots first", vmid)

        source = storage_of(paths, volume)
        target = get_storage(paths, storage_id)
        value = config.main.get(disk)
        size = _size_of(disk, value, source, volume)
        unprivileged = config.main.get("unprivileged") == "1"
        volname = copy_volume(paths, volume, source, target, vmid, size, unprivileged)
        new_volid = f"{storage_id}:{volname}"

        new_value = replace_volume(value, new_volid)
        if not disk.startswith("unused"):
            new_value = with_size(new_value, target.volume_size(volname))
        config.main.set(disk, new_value)
        if not delete:
            config.main.set(free_unused_key(config.main), volume.volid)
        write_config(paths, vmid, config)

        if delete:
            source.free_volume(volume.volname)
        return new_volid


def reassign_volume(paths: Paths, vmid: int, disk: str, target_vmid: int, target_key: str) -> str:
    """Give volume *disk* of *vmid* to container *target_vmid* as *target_key*; return its new id.

    The volume is renamed to a disk name of the target container on the same
    storage, without copying. The root file system cannot be reassigned.
    """
    if target_vmid == vmid:
        raise ParameterError("target-vmid", "the target container must differ from the source", vmid)
    if disk == "rootfs":
        raise PctError(f"CT {vmid}: the root file system cannot be reassigned", vmid)
    if not _TARGET_KEY.fullmatch(target_key):
        raise ParameterError("target-volume", f"invalid key '{target_key}' (expected mp0 to mp255 or "
                             "unused0 to unused255)", vmid)

    with _both_locked(paths, vmid, target_vmid):
        config = _stopped_config(paths, vmid)
        target_config = _stopped_config(paths, target_vmid)
        volume = _config_volume(config, disk, vmid)
        if target_key in target_config.main:
            raise PctError(f"CT {target_vmid}: {target_key} is already in use", target_vmid)
        in_snapshots = _used_by_snapshots(config, volume.volid)
        if in_snapshots:
            raise PctError(f"CT {vmid}: {disk} is used by snapshots ({', '.join(in_snapshots)}); "
                           "remove them before reassigning it", vmid)
        value = config.main.get(disk)
        if target_key.startswith("mp") and disk.startswith("unused"):
            raise PctError(f"CT {vmid}: {disk} has no mount point path; reassign it as unused[n] "
                           "and attach it with 'pct set'", vmid)

        storage = storage_of(paths, volume)
        storage.require("rename", volume.volname, vmid)
        new_volid = f"{volume.storage_id}:{storage.rename_volume(volume.volname, target_vmid)}"
        target_value = new_volid if target_key.startswith("unused") else replace_volume(value, new_volid)
        target_config.main.set(target_key, target_value)
        write_config(paths, target_vmid, target_config)
        config.main.delete(disk)
        write_config(paths, vmid, config)
        return new_volid


def _stopped_config(paths: Paths, vmid: int) -> ContainerConfig:
    config = load_config(paths, vmid)
    lock = config.main.get("lock")
    if lock:
        raise LockError(f"CT {vmid} is locked ({lock})", vmid)
    if is_running(paths, vmid):
        raise PctError(f"CT {vmid} is running; stop it before moving its volumes", vmid)
    return config


def _config_volume(config: ContainerConfig, disk: str, vmid: int) -> ConfigVolume:
    if not _MOVABLE_KEY.fullmatch(disk) or disk not in config.main:
        raise ParameterError("volume", f"CT {vmid} has no volume '{disk}' (expected rootfs, mp[n] or unused[n])",
                             vmid)
    volid = volume_of(config.main.get(disk))
    if volid.startswith("/"):
        raise PctError(f"CT {vmid}: {disk} is a bind or device mount, not a storage volume", vmid)
    storage_id, volname = parse_volume_id(volid)
    return ConfigVolume(disk, volid, storage_id, volname)


def _used_by_snapshots(config: ContainerConfig, volid: str) -> list[str]:
    return [name for name, section in config.snapshots.items()
            if any(volume.volid == volid for volume in mount_volumes(section))]


def _size_of(disk: str, value: str, source, volume: ConfigVolume) -> int:
    size = parse_mount(disk, value).size if not disk.startswith("unused") else None
    return source.volume_size(volume.volname) if size is None else size


@contextlib.contextmanager
def _both_locked(paths: Paths, first: int, second: int) -> Iterator[None]:
    """Hold the flocks of two containers, taken in id order so two moves cannot deadlock."""
    low, high = sorted((first, second))
    with config_lock(paths, low), config_lock(paths, high):
        yield
