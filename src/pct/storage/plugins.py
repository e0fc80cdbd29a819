"""Storage plugins: a base that rejects every operation, and a registry of types.

A plugin implements only what its type can do and declares its capabilities as
data; callers check ``capabilities`` instead of comparing type names.
"""

from __future__ import annotations

import re
from pathlib import Path

from pct.errors import StorageError
from pct.paths import Paths
from pct.storage.cfg import StorageDefinition, load_storage_config

_VOLUME_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*):(.+)$")


def parse_volume_id(volid: str) -> tuple[str, str]:
    """Split ``storage:volname``; raise StorageError when it is not a volume id."""
    match = _VOLUME_ID.match(volid)
    if not match:
        raise StorageError(f"unable to parse volume ID '{volid}'")
    return match.group(1), match.group(2)


class Storage:
    """A storage of a type this host cannot operate: every operation is rejected."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, paths: Paths, definition: StorageDefinition):
        self.paths = paths
        self.definition = definition
        self.storage_id = definition.storage_id

    def _unsupported(self, operation: str) -> StorageError:
        return StorageError(
            f"storage '{self.storage_id}': {operation} is not supported on this host "
            f"for storage type '{self.definition.type}'"
        )

    def alloc_volume(self, vmid: int, size_bytes: int, unprivileged: bool) -> str:
        raise self._unsupported("allocating a volume")

    def free_volume(self, volname: str) -> None:
        raise self._unsupported("removing a volume")

    def volume_path(self, volname: str) -> Path:
        raise self._unsupported("resolving a volume path")

    def mount_volume(self, volname: str, target: Path | str, read_only: bool = False,
                     options: list[str] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
        raise self._unsupported("mounting a volume")

    def template_path(self, volname: str) -> Path:
        raise self._unsupported("reading templates")

    def list_volumes(self, vmid: int | None = None) -> list[str]:
        raise self._unsupported("listing volumes")


def _registry() -> dict[str, type[Storage]]:
    from pct.storage.dir import DirStorage

    return {"dir": DirStorage}


def get_storage(paths: Paths, storage_id: str) -> Storage:
    """Return the plugin instance for *storage_id*, as defined in storage.cfg."""
    storages = load_storage_config(paths)
    definition = storages.get(storage_id)
    if definition is None:
        raise StorageError(f"storage '{storage_id}' does not exist")
    if definition.disabled:
        raise StorageError(f"storage '{storage_id}' is disabled")
    plugin = _registry().get(definition.type, Storage)
    return plugin(paths, definition)
