"""Read ``storage.cfg``: one stanza per storage, ``<type>: <id>`` then indented keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pct.errors import StorageError
from pct.paths import Paths

DEFAULT_STORAGE_CFG = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,backup,rootdir,images,iso
"""

_HEADER = re.compile(r"^([a-z][a-z0-9]*):\s+([A-Za-z][A-Za-z0-9_.-]*)\s*$")
_PROPERTY = re.compile(r"^\s+([a-z][a-z0-9_-]*)(?:\s+(.*?))?\s*$")


@dataclass
class StorageDefinition:
    """One stanza of storage.cfg, with its keys kept as written."""

    type: str
    storage_id: str
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> set[str]:
        return {c.strip() for c in self.properties.get("content", "").split(",") if c.strip()}

    @property
    def disabled(self) -> bool:
        return self.properties.get("disable", "0") not in ("", "0")


def parse_storage_config(text: str) -> dict[str, StorageDefinition]:
    """Parse storage.cfg text; raise StorageError naming the line on bad syntax."""
    storages: dict[str, StorageDefinition] = {}
    current: StorageDefinition | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue

        header = _HEADER.match(line)
        if header:
            storage_type, storage_id = header.groups()
            if storage_id in storages:
                raise StorageError(f"storage.cfg line {lineno}: duplicate storage id '{storage_id}'")
            current = StorageDefinition(storage_type, storage_id)
            storages[storage_id] = current
            continue

        prop = _PROPERTY.match(line)
        if prop and current is not None:
            current.properties[prop.group(1)] = prop.group(2) or "1"
            continue

        raise StorageError(f"storage.cfg line {lineno}: unable to parse '{line.strip()}'")
    return storages


def load_storage_config(paths: Paths) -> dict[str, StorageDefinition]:
    """Load the node's storage.cfg, or the default ``local`` dir storage when it is absent."""
    try:
        text = paths.storage_cfg.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = DEFAULT_STORAGE_CFG
    return parse_storage_config(text)
