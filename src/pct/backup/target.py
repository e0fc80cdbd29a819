"""Where backups live: the ``dump`` directory of a storage, or a plain directory.

A storage accepts backups when its ``content`` includes ``backup`` and its type
keeps files below a ``path`` (``dir``, ``btrfs``). Its archives are the volumes
``<storage>:backup/<archive name>`` and live in ``<path>/dump``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pct.backup.names import ArchiveName, parse_archive_name
from pct.errors import StorageError
from pct.paths import Paths
from pct.storage import get_storage, local_file, parse_volume_id

BACKUP_PREFIX = "backup/"


@dataclass(frozen=True)
class BackupTarget:
    """A directory that receives archives; ``storage_id`` is None for ``--dumpdir``."""

    directory: Path
    storage_id: str | None = None

    def volid(self, name: str) -> str | None:
        return f"{self.storage_id}:{BACKUP_PREFIX}{name}" if self.storage_id else None

    def archives(self, vmid: int | None = None) -> list[ArchiveName]:
        """Return the finished archives in the directory, of *vmid* only when given, newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for name in os.listdir(self.directory):
            parsed = parse_archive_name(name)
            if parsed and (vmid is None or parsed.vmid == vmid):
                found.append(parsed)
        return sorted(found, key=lambda archive: (archive.ctime, archive.name), reverse=True)


def storage_target(paths: Paths, storage_id: str) -> BackupTarget:
    """Return the dump directory of *storage_id*; raise StorageError unless it accepts backups."""
    storage = get_storage(paths, storage_id)
    definition = storage.definition
    if "backup" not in definition.content:
        raise StorageError(f"storage '{storage_id}' does not allow backups "
                           f"(content: {','.join(sorted(definition.content)) or 'none'}); "
                           "add 'backup' to its content or use another storage")
    path = definition.properties.get("path")
    if not path:
        raise StorageError(f"storage '{storage_id}' (type {definition.type}) has no path to keep backups in")
    return BackupTarget(paths.under_root(path) / "dump", storage_id)


def dumpdir_target(directory: str) -> BackupTarget:
    return BackupTarget(Path(directory).resolve())


def resolve_archive(paths: Paths, archive: str) -> Path:
    """Return the host path of *archive*: a file path or a ``storage:backup/<name>`` volume id."""
    path = local_file(archive)
    if path is None:
        storage_id, volname = parse_volume_id(archive)
        if not volname.startswith(BACKUP_PREFIX) or "/" in volname[len(BACKUP_PREFIX):]:
            raise StorageError(f"'{archive}' is not a backup volume (expected {storage_id}:backup/<file name>)")
        path = storage_target(paths, storage_id).directory / volname[len(BACKUP_PREFIX):]
    if not path.is_file():
        raise StorageError(f"backup archive '{archive}' does not exist")
    return path
