"""``pct rescan``: add volumes that belong to a container but that its config does not name.

A volume belongs to the container whose id starts its name
(``local:100/vm-100-disk-1.raw``). One that no config refers to, in any
section of any container, is added to its owner's config as ``unused[n]``,
so that it can be attached again or removed on purpose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pct.config.format import ContainerConfig, load_config, write_config
from pct.errors import StorageError
from pct.locks import config_lock
from pct.paths import Paths
from pct.storage import load_storage_config
from pct.storage.plugins import make_storage
from pct.volumes import free_unused_key, volume_of, volume_users

log = logging.getLogger(__name__)

_VOLUME_CONTENT = ("images", "rootdir")


@dataclass(frozen=True)
class FoundVolume:
    """A volume that ``pct rescan`` added (or, in a dry run, would add) as *key*."""

    vmid: int
    volid: str
    key: str


def rescan(paths: Paths, vmid: int | None = None, dryrun: bool = False) -> list[FoundVolume]:
    """Add every unreferenced volume of *vmid* (default: of every container) as ``unused[n]``.

    With *dryrun* the configs stay as they are. Volumes whose owner has no
    config are left alone, because no container could take them.
    """
    if vmid is not None:
        load_config(paths, vmid)
    candidates = _volumes_by_owner(paths, vmid)
    found: list[FoundVolume] = []
    for owner in sorted(candidates):
        if not paths.conf(owner).exists():
            log.info("volumes of CT %s have no config to join: %s", owner, ", ".join(candidates[owner]))
            continue
        found += _add_unreferenced(paths, owner, candidates[owner], dryrun)
    return found


def _volumes_by_owner(paths: Paths, vmid: int | None) -> dict[int, list[str]]:
    """Return the container volume ids on all enabled storages, by the id that owns them."""
    owners: dict[int, list[str]] = {}
    for storage_id, definition in load_storage_config(paths).items():
        if definition.disabled:
            continue
        storage = make_storage(paths, definition)
        if not any(content in storage.capabilities for content in _VOLUME_CONTENT):
            continue
        try:
            volnames = storage.list_volumes(vmid)
        except StorageError as exc:
            log.warning("skipping storage '%s': %s", storage_id, exc.message)
            continue
        for volname in volnames:
            owner = storage.owner_of(volname)
            if owner is not None:
                owners.setdefault(owner, []).append(f"{storage_id}:{volname}")
    return owners


def _add_unreferenced(paths: Paths, vmid: int, volids: list[str], dryrun: bool) -> list[FoundVolume]:
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        referenced = _referenced_volumes(config)
        found = []
        for volid in volids:
            if volid in referenced or volume_users(paths, volid):
                continue
            key = free_unused_key(config.main)
            config.main.set(key, volid)
            found.append(FoundVolume(vmid, volid, key))
        if found and not dryrun:
            write_config(paths, vmid, config)
        return found


def _referenced_volumes(config: ContainerConfig) -> set[str]:
    """Return the volumes that any section of *config* names, pending changes included."""
    sections = [config.main, *config.snapshots.values()]
    if config.pending is not None:
        sections.append(config.pending)
    return {volume_of(section.get(key)) for section in sections for key in section.keys()
            if key == "rootfs" or key.startswith(("mp", "unused"))}
