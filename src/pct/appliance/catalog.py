"""The templates ``available`` and ``download`` see: every source's copy plus local builds.

Templates built on this host with ``pveam build`` are entered into a local
index, ``var/lib/pve-manager/local-templates``, whose ``Location`` fields are
absolute ``file://`` URLs of the built archives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pct.appliance.index import IndexEntry, format_index, parse_index
from pct.appliance.sources import _write_atomically, index_copy_path, load_sources, read_copy
from pct.errors import TemplateError
from pct.paths import Paths

LOCAL_INDEX = "var/lib/pve-manager/local-templates"


@dataclass(frozen=True)
class AvailableTemplate:
    """One index entry and the absolute URL its ``Location`` resolves to."""

    entry: IndexEntry
    url: str
    source_id: str

    @property
    def name(self) -> str:
        return self.entry.template


def available_templates(paths: Paths) -> list[AvailableTemplate]:
    """Return every known template, sources in config order, then local builds.

    # Limitation: when two sources list the same template file name, the first
    # one wins and the others are not shown.
    """
    from urllib.parse import urljoin

    found: dict[str, AvailableTemplate] = {}
    for source in load_sources(paths):
        if not index_copy_path(paths, source.source_id).exists():
            continue
        for entry in read_copy(paths, source):
            found.setdefault(entry.template, AvailableTemplate(entry, urljoin(source.url, entry.location),
                                                               source.source_id))
    for entry in read_local_index(paths):
        found.setdefault(entry.template, AvailableTemplate(entry, entry.location, "local-builds"))
    return sorted(found.values(), key=lambda item: (item.entry.section, item.name))


def find_template(paths: Paths, name: str) -> AvailableTemplate:
    """Return the template named *name*, or raise TemplateError when no index lists it."""
    for template in available_templates(paths):
        if template.name == name:
            return template
    raise TemplateError(f"template '{name}' not found in the index; "
                        "run 'pveam update', then 'pveam available' for the names")


def local_index_path(paths: Paths) -> Path:
    return paths.under_root(LOCAL_INDEX)


def read_local_index(paths: Paths) -> list[IndexEntry]:
    path = local_index_path(paths)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return parse_index(text, str(path))


def register_build(paths: Paths, archive: Path, fields: dict[str, str]) -> IndexEntry:
    """Enter the built *archive* into the local index, replacing an entry of the same package."""
    digest = hashlib.sha512()
    with open(archive, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    entry = IndexEntry(fields={**fields, "Location": archive.resolve().as_uri(),
                               "sha512sum": digest.hexdigest()})
    entries = [old for old in read_local_index(paths) if old.package != entry.package]
    _write_atomically(local_index_path(paths), format_index(entries + [entry]))
    return entry


def forget_build(paths: Paths, archive: Path) -> None:
    """Drop the local index entries whose location is *archive*, a template file being removed."""
    location = archive.resolve().as_uri()
    entries = read_local_index(paths)
    kept = [entry for entry in entries if entry.fields.get("Location") != location]
    if len(kept) != len(entries):
        _write_atomically(local_index_path(paths), format_index(kept))
