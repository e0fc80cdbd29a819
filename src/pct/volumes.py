"""The storage volumes a container config refers to, and lookups of their plugins."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pct.config.format import Section
from pct.config.propstring import format_size
from pct.paths import Paths
from pct.storage import Storage, get_storage, parse_volume_id

_MOUNT_KEY = re.compile(r"rootfs|mp\d+")
_UNUSED_KEY = re.compile(r"unused(\d+)")


@dataclass(frozen=True)
class ConfigVolume:
    """A storage volume named by one key of a config section."""

    key: str
    volid: str
    storage_id: str
    volname: str


def volume_of(value: str) -> str:
    """Return the volume part of a ``rootfs``, ``mp[n]`` or ``unused[n]`` value."""
    parts = value.split(",")
    for part in parts:
        if part.startswith("volume="):
            return part.removeprefix("volume=")
    return parts[0]


def mount_volumes(section: Section) -> list[ConfigVolume]:
    """Return the storage volumes of ``rootfs`` and ``mp[n]``, in that order; bind and device mounts are left out."""
    volumes = []
    for key in sorted(section.keys(), key=_mount_order):
        if not _MOUNT_KEY.fullmatch(key):
            continue
        volid = volume_of(section.get(key))
        if volid.startswith("/"):
            continue
        storage_id, volname = parse_volume_id(volid)
        volumes.append(ConfigVolume(key, volid, storage_id, volname))
    return volumes


def _mount_order(key: str) -> int:
    if key == "rootfs":
        return -1
    if _MOUNT_KEY.fullmatch(key):
        return int(key[2:])
    return 0


def storage_of(paths: Paths, volume: ConfigVolume, cache: dict[str, Storage] | None = None) -> Storage:
    """Return the plugin of *volume*'s storage, reusing *cache* across calls."""
    if cache is None:
        return get_storage(paths, volume.storage_id)
    if volume.storage_id not in cache:
        cache[volume.storage_id] = get_storage(paths, volume.storage_id)
    return cache[volume.storage_id]


def free_unused_key(section: Section) -> str:
    """Return the first ``unused[n]`` key not in *section*."""
    taken = {int(match.group(1)) for key in section.keys() if (match := _UNUSED_KEY.fullmatch(key))}
    number = 0
    while number in taken:
        number += 1
    return f"unused{number}"


def replace_volume(value: str, volid: str) -> str:
    """Return a mount or unused value with its volume replaced by *volid*, other keys kept."""
    parts = value.split(",")
    for position, part in enumerate(parts):
        if part.startswith("volume="):
            parts[position] = f"volume={volid}"
            return ",".join(parts)
    parts[0] = volid
    return ",".join(parts)


def with_size(value: str, size: int) -> str:
    """Return a mount value with ``size=`` set to *size* bytes, or without it when *size* is 0."""
    parts = [part for part in value.split(",") if not part.startswith("size=")]
    if size:
        parts.append(f"size={format_size(size)}")
    return ",".join(parts)


def volume_users(paths: Paths, volid: str) -> list[str]:
    """Return ``CT <vmid> (<key>)`` for every config key, snapshots included, that names *volid*."""
    from pct.config.format import parse_config

    users = []
    directory = paths.lxc_conf_dir
    if not directory.is_dir():
        return users
    for conf in sorted(directory.glob("*.conf")):
        config = parse_config(conf.read_text(encoding="utf-8"))
        sections = [("", config.main)] + [(f" [{name}]", section) for name, section in config.snapshots.items()]
        for label, section in sections:
            for key in section.keys():
                if (_MOUNT_KEY.fullmatch(key) or _UNUSED_KEY.fullmatch(key)) and volume_of(section.get(key)) == volid:
                    users.append(f"CT {conf.stem} ({key}{label})")
    return users
