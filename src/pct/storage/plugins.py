"""Storage plugins: a base that rejects every operation, and a registry of types.

A plugin implements only what its type can do and declares what it can do as
data: ``capabilities`` lists the content types it stores, ``volume_features``
maps each volume operation (snapshot, linked clone, resize, ...) to the volume
formats that support it. Callers ask ``supports()`` instead of comparing type
names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pct.errors import StorageError
from pct.paths import Paths
from pct.storage.cfg import StorageDefinition, load_storage_config

_VOLUME_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*):(.+)$")

# Volume operations a plugin may declare in ``volume_features``.
FEATURE_NAMES = {
    "snapshot": "taking snapshots",
    "linked-clone": "linked clones",
    "copy": "full copies",
    "resize": "resizing",
    "template": "converting to a template",
    "rename": "renaming",
    "acl": "the acl mount option",
    "quota": "user quotas",
}


def parse_volume_id(volid: str) -> tuple[str, str]:
    """Split ``storage:volname``; raise StorageError when it is not a volume id."""
    match = _VOLUME_ID.match(volid)
    if not match:
        raise StorageError(f"unable to parse volume ID '{volid}'")
    return match.group(1), match.group(2)


def local_file(argument: str) -> Path | None:
    """Return *argument* as an absolute path when it names a file rather than a volume id, else None.

    An absolute path, a name without ``:`` and an existing file count as
    files, so ``archive.tar.zst`` in the working directory works as it does
    in Proxmox VE.
    """
    if argument.startswith("/") or ":" not in argument or os.path.isfile(argument):
        return Path(argument).absolute()
    return None


@dataclass(frozen=True)
class StorageStatus:
    """Capacity of a storage in bytes, as ``pvesm status`` shows it."""

    total: int
    used: int
    available: int


@dataclass(frozen=True)
class VolumeInfo:
    """One volume of a storage, as ``pvesm list`` shows it. ``size`` is in bytes."""

    volname: str
    content: str
    format: str
    size: int
    vmid: int | None = None


class Storage:
    """A storage of a type this host cannot operate: every operation is rejected."""

    capabilities: frozenset[str] = frozenset()
    volume_features: Mapping[str, frozenset[str]] = {}

    def __init__(self, paths: Paths, definition: StorageDefinition):
        self.paths = paths
        self.definition = definition
        self.storage_id = definition.storage_id

    def _unsupported(self, operation: str) -> StorageError:
        return StorageError(
            f"storage '{self.storage_id}': {operation} is not supported on this host "
            f"for storage type '{self.definition.type}'"
        )

    # -- features ------------------------------------------------------------------

    def supports(self, feature: str, volname: str) -> bool:
        """Return whether *feature* (a key of ``FEATURE_NAMES``) works on volume *volname*."""
        formats = self.volume_features.get(feature, frozenset())
        if not formats:
            return False
        try:
            return self.volume_format(volname) in formats
        except StorageError:
            return False

    def require(self, feature: str, volname: str, vmid: int | None = None) -> None:
        """Raise StorageError naming the volume and the storage unless *feature* works on it."""
        if not self.supports(feature, volname):
            raise StorageError(
                f"{FEATURE_NAMES[feature]} is not available for volume '{self.storage_id}:{volname}' "
                f"on storage '{self.storage_id}' (type {self.definition.type})", vmid)

    def check_container_content(self, vmid: int | None = None) -> None:
        """Raise StorageError unless this storage may contain container volumes.

        The type must be able to store them, and the ``content`` line of
        storage.cfg must include ``rootdir``. A stanza without a ``content``
        line is accepted, so that storage.cfg files written without one keep working.
        """
        if "rootdir" not in self.capabilities:
            raise StorageError(f"storage '{self.storage_id}' (type {self.definition.type}) cannot hold "
                               "container volumes", vmid)
        if "content" in self.definition.properties and "rootdir" not in self.definition.content:
            content = ",".join(sorted(self.definition.content)) or "none"
            raise StorageError(f"storage '{self.storage_id}' does not allow container volumes (content: {content}); "
                               "add 'rootdir' to its content in storage.cfg or use another storage", vmid)

    def owner_of(self, volname: str) -> int | None:
        """Return the id of the container that owns volume *volname*, or None for shared content."""
        owner = volname.split("/", 1)[0]
        return int(owner) if owner.isdigit() else None

    def linked_clones(self, volname: str) -> list[str]:
        """Return the volume names of linked clones made from the template volume *volname*."""
        return []

    def check_no_linked_clones(self, volname: str, vmid: int | None = None) -> None:
        """Raise StorageError naming a linked clone of the template volume *volname*, if one exists."""
        clones = self.linked_clones(volname)
        if clones:
            raise StorageError(f"volume '{self.storage_id}:{volname}' is the base of linked clone "
                               f"'{self.storage_id}:{clones[0]}'; remove the clone first", vmid)

    def volume_format(self, volname: str) -> str:
        """Return ``raw`` for an image file, ``subvol`` for a directory tree."""
        raise self._unsupported("reading volume names")

    # -- allocation --------------------------------------------------------------

    def alloc_volume(self, vmid: int, size_bytes: int, unprivileged: bool, name: str | None = None) -> str:
        raise self._unsupported("allocating a volume")

    def free_volume(self, volname: str) -> None:
        raise self._unsupported("removing a volume")

    def volume_path(self, volname: str) -> Path:
        raise self._unsupported("resolving a volume path")

    def volume_size(self, volname: str) -> int:
        raise self._unsupported("reading a volume's size")

    def mount_volume(self, volname: str, target: Path | str, read_only: bool = False,
                     options: list[str] | None = None, pass_fds: tuple[int, ...] = (),
                     snapshot: str | None = None) -> None:
        raise self._unsupported("mounting a volume")

    def template_path(self, volname: str) -> Path:
        raise self._unsupported("reading templates")

    def list_volumes(self, vmid: int | None = None) -> list[str]:
        raise self._unsupported("listing volumes")

    def list_content(self, vmid: int | None = None) -> list[VolumeInfo]:
        raise self._unsupported("listing volumes")

    def status(self) -> StorageStatus:
        raise self._unsupported("reading the capacity")

    # -- volume operations, each declared in ``volume_features`` ---------------------

    def snapshot_volume(self, volname: str, snapshot: str) -> None:
        raise self._unsupported("taking snapshots")

    def delete_volume_snapshot(self, volname: str, snapshot: str) -> None:
        raise self._unsupported("removing snapshots")

    def rollback_volume(self, volname: str, snapshot: str) -> None:
        raise self._unsupported("rolling back snapshots")

    def has_volume_snapshot(self, volname: str, snapshot: str) -> bool:
        return False

    def linked_clone(self, volname: str, target_vmid: int, snapshot: str | None = None) -> str:
        raise self._unsupported("linked clones")

    def create_base(self, volname: str) -> str:
        raise self._unsupported("converting volumes to templates")

    def rename_volume(self, volname: str, target_vmid: int) -> str:
        raise self._unsupported("renaming volumes")

    def resize_volume(self, volname: str, size_bytes: int) -> None:
        raise self._unsupported("resizing volumes")


def _registry() -> dict[str, type[Storage]]:
    from pct.storage.btrfs import BtrfsStorage
    from pct.storage.dir import DirStorage

    return {"dir": DirStorage, "btrfs": BtrfsStorage}


def get_storage(paths: Paths, storage_id: str) -> Storage:
    """Return the plugin instance for *storage_id*, as defined in storage.cfg."""
    storages = load_storage_config(paths)
    definition = storages.get(storage_id)
    if definition is None:
        raise StorageError(f"storage '{storage_id}' does not exist")
    if definition.disabled:
        raise StorageError(f"storage '{storage_id}' is disabled")
    return make_storage(paths, definition)


def make_storage(paths: Paths, definition: StorageDefinition) -> Storage:
    """Return the plugin instance for one storage.cfg stanza."""
    plugin = _registry().get(definition.type, Storage)
    return plugin(paths, definition)


def statvfs_status(path: Path) -> StorageStatus:
    """Return the capacity of the file system that contains *path*."""
    info = os.statvfs(path)
    total = info.f_blocks * info.f_frsize
    available = info.f_bavail * info.f_frsize
    return StorageStatus(total=total, used=total - info.f_bfree * info.f_frsize, available=available)
