"""Container snapshots: take, list, roll back and delete them.

A snapshot is a read-only copy of every storage volume of the container plus
a ``[name]`` section in its config that keeps the config as it was, with
``snaptime`` and an optional ``description``. ``parent:`` in the main section
and in each snapshot section links the snapshots into a tree. Bind and device
mounts are not snapshotted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from pct.config.checks import check_snapshot_name
from pct.config.format import ContainerConfig, Section, load_config, write_config
from pct.errors import LockError, ParameterError, PctError, StorageError
from pct.locks import config_lock
from pct.paths import Paths
from pct.runtime.freeze import frozen
from pct.runtime.state import is_running
from pct.storage import Storage
from pct.volumes import ConfigVolume, free_unused_key, mount_volumes, storage_of

log = logging.getLogger(__name__)

CURRENT = "current"
# Keys of the main section that a snapshot section does not copy.
_NOT_COPIED = ("lock",)
# Keys of a snapshot section that a rollback does not copy back.
_SNAPSHOT_ONLY = ("snaptime", "snapstate", "description")


@dataclass(frozen=True)
class SnapshotInfo:
    """One node of the snapshot tree; ``current`` is the running state."""

    name: str
    parent: str | None
    snaptime: int | None
    description: str


def check_new_name(name: str, vmid: int) -> None:
    """Raise ParameterError unless *name* is a valid name for a new snapshot."""
    try:
        check_snapshot_name(name)
    except ValueError:
        raise ParameterError("snapname", f"invalid snapshot name '{name}' (a letter first, then letters, "
                             "digits, '_' or '-', at most 40 characters)", vmid) from None
    if name == CURRENT:
        raise ParameterError("snapname", f"'{CURRENT}' is reserved for the current state", vmid)


# -- take -----------------------------------------------------------------------------

def create_snapshot(paths: Paths, vmid: int, name: str, description: str = "") -> None:
    """Snapshot every storage volume of *vmid* and record the config as ``[name]``.

    A running container is frozen for the moment the volumes are snapshotted.
    On failure, the snapshots already taken are removed and the config is
    left as it was.
    """
    check_new_name(name, vmid)
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        _check_unlocked(config, vmid)
        if name in config.snapshots:
            raise PctError(f"snapshot name '{name}' is already used by CT {vmid}", vmid)
        volumes = _snapshot_capable(paths, config.main, vmid)

        section = _snapshot_section(config.main, description)
        _set_lock(paths, vmid, config, "snapshot")
        try:
            _snapshot_volumes(paths, vmid, volumes, name)
        except BaseException:
            _clear_lock(paths, vmid, config)
            raise

        config.snapshots[name] = section
        config.main.set("parent", name)
        _clear_lock(paths, vmid, config)


def _snapshot_section(main: Section, description: str) -> Section:
    entries = [(key, value) for key, value in main.entries if key not in _NOT_COPIED]
    section = Section(entries=entries)
    if description:
        section.entries.insert(0, ("description", description))
    section.set("snaptime", str(int(time.time())))
    return section


def _snapshot_volumes(paths: Paths, vmid: int, volumes: list[tuple[ConfigVolume, Storage]], name: str) -> None:
    undo: list[Callable[[], None]] = []
    try:
        with frozen(paths, vmid):
            for volume, storage in volumes:
                storage.snapshot_volume(volume.volname, name)
                undo.append(lambda storage=storage, volume=volume: storage.delete_volume_snapshot(volume.volname, name))
    except BaseException:
        for step in reversed(undo):
            try:
                step()
            except PctError as exc:
                log.error("CT %s: removing a partial snapshot failed: %s", vmid, exc)
        raise


# -- list ----------------------------------------------------------------------------

def list_snapshots(paths: Paths, vmid: int) -> list[SnapshotInfo]:
    """Return every snapshot, oldest first, then ``current``."""
    config = load_config(paths, vmid)
    snapshots = [
        SnapshotInfo(name, section.get("parent"), int(section.get("snaptime") or 0),
                     section.get("description") or "")
        for name, section in config.snapshots.items()
    ]
    snapshots.sort(key=lambda info: (info.snaptime or 0, info.name))
    snapshots.append(SnapshotInfo(CURRENT, config.main.get("parent"), None, "You are here!"))
    return snapshots


def format_tree(snapshots: list[SnapshotInfo]) -> str:
    """Return the snapshot tree as text: children indented below parents, ``current`` last."""
    children: dict[str | None, list[SnapshotInfo]] = {}
    names = {info.name for info in snapshots}
    for info in snapshots:
        parent = info.parent if info.parent in names else None
        children.setdefault(parent, []).append(info)

    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for info in sorted(children.get(parent, []), key=lambda item: item.name == CURRENT):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.snaptime)) if info.snaptime else ""
            label = f"{'  ' * depth}`-> {info.name}"
            description = info.description.replace("\n", " ")
            lines.append(f"{label:<40} {stamp:<19} {description}".rstrip())
            walk(info.name, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


# -- roll back ----------------------------------------------------------------------

def rollback_snapshot(paths: Paths, vmid: int, name: str, start: bool = False) -> None:
    """Return the volumes and config of *vmid* to snapshot *name*; stop a running container first.

    Volumes added after the snapshot are kept as ``unused[n]``. With
    *start*, the container starts again afterwards.
    """
    from pct.runtime.lifecycle import start_container, stop_container

    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        _check_unlocked(config, vmid)
        section = _existing_snapshot(config, name, vmid)
        volumes = _snapshot_capable(paths, section, vmid)
        for volume, storage in volumes:
            if not storage.has_volume_snapshot(volume.volname, name):
                raise StorageError(f"CT {vmid}: snapshot '{name}' of volume '{volume.volid}' does not exist", vmid)

        if is_running(paths, vmid):
            stop_container(paths, vmid)
        _set_lock(paths, vmid, config, "rollback")
        for volume, storage in volumes:
            storage.rollback_volume(volume.volname, name)

        _restore_config(config, section, name)
        write_config(paths, vmid, config)

    if start:
        start_container(paths, vmid)


def _restore_config(config: ContainerConfig, section: Section, name: str) -> None:
    """Make the main section the snapshot's config, keeping newer volumes as ``unused[n]``."""
    kept = {volume.volid for volume in mount_volumes(section)}
    newer = [volume for volume in mount_volumes(config.main) if volume.volid not in kept]
    unused = [(key, value) for key, value in config.main.entries if key.startswith("unused")]

    config.main = Section(entries=[(key, value) for key, value in section.entries
                                   if key not in _SNAPSHOT_ONLY])
    for key, value in unused:
        config.main.set(key, value)
    for volume in newer:
        config.main.set(free_unused_key(config.main), volume.volid)
    config.main.set("parent", name)
    config.pending = None


# -- delete -------------------------------------------------------------------------

def delete_snapshot(paths: Paths, vmid: int, name: str, force: bool = False) -> None:
    """Remove snapshot *name*: its volume snapshots and its config section.

    Children of the snapshot are re-linked to its parent. With *force*, the
    section is removed even when a volume snapshot cannot be.
    """
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        lock = config.main.get("lock")
        if lock and not (force and lock == "snapshot-delete"):
            raise LockError(f"CT {vmid} is locked ({lock})", vmid)
        section = _existing_snapshot(config, name, vmid)

        _set_lock(paths, vmid, config, "snapshot-delete")
        for volume in mount_volumes(section):
            try:
                storage = storage_of(paths, volume)
                storage.require("snapshot", volume.volname, vmid)
                storage.delete_volume_snapshot(volume.volname, name)
            except PctError as exc:
                if not force:
                    _clear_lock(paths, vmid, config)
                    raise
                log.warning("CT %s: %s (snapshot removed from the config anyway)", vmid, exc)

        _relink_children(config, name, section.get("parent"))
        del config.snapshots[name]
        _clear_lock(paths, vmid, config)


def _relink_children(config: ContainerConfig, name: str, parent: str | None) -> None:
    for child in [config.main, *config.snapshots.values()]:
        if child.get("parent") != name:
            continue
        if parent:
            child.set("parent", parent)
        else:
            child.delete("parent")


# -- helpers -----------------------------------------------------------------------

def _existing_snapshot(config: ContainerConfig, name: str, vmid: int) -> Section:
    section = config.snapshots.get(name)
    if section is None:
        raise PctError(f"snapshot '{name}' of CT {vmid} does not exist", vmid)
    return section


def _snapshot_capable(paths: Paths, section: Section, vmid: int) -> list[tuple[ConfigVolume, Storage]]:
    """Return each storage volume of *section* with its plugin; raise if one cannot be snapshotted."""
    cache: dict[str, Storage] = {}
    volumes = []
    for volume in mount_volumes(section):
        storage = storage_of(paths, volume, cache)
        storage.require("snapshot", volume.volname, vmid)
        volumes.append((volume, storage))
    return volumes


def _check_unlocked(config: ContainerConfig, vmid: int) -> None:
    lock = config.main.get("lock")
    if lock:
        raise LockError(f"CT {vmid} is locked ({lock})", vmid)


def _set_lock(paths: Paths, vmid: int, config: ContainerConfig, lock: str) -> None:
    config.main.set("lock", lock)
    write_config(paths, vmid, config)


def _clear_lock(paths: Paths, vmid: int, config: ContainerConfig) -> None:
    config.main.delete("lock")
    write_config(paths, vmid, config)
