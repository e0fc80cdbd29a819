"""The appliance index: stanzas of ``Field: value`` lines describing templates.

The format is the one Proxmox VE uses for its appliance lists (``aplinfo``):
stanzas separated by blank lines, each line ``Field: value``, and a line that
starts with a space or tab continuing the previous field (used by
``Description``). Field names are matched case-insensitively and every field
is kept, known or not, so an index written back out loses nothing.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from pct.errors import TemplateError

REQUIRED_FIELDS = ("Package", "Version", "Type", "Location")
TEMPLATE_SUFFIXES = (".tar.gz", ".tar.xz", ".tar.zst", ".tgz", ".tar")


@dataclass
class IndexEntry:
    """One template of an index, with its fields in file order."""

    fields: dict[str, str]
    line: int = 0
    origin: str = ""

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.fields.items():
            if key.lower() == name.lower():
                return value
        return default

    @property
    def package(self) -> str:
        return self.get("Package")

    @property
    def version(self) -> str:
        return self.get("Version")

    @property
    def section(self) -> str:
        return self.get("Section", "system")

    @property
    def location(self) -> str:
        return self.get("Location")

    @property
    def template(self) -> str:
        """The file name the template gets in a storage: the last part of ``Location``."""
        return posixpath.basename(self.location.rstrip("/"))


def parse_index(text: str, origin: str) -> list[IndexEntry]:
    """Parse an index, raising TemplateError with *origin* and the line of the first defect."""
    entries = [_check_entry(entry) for entry in _split_stanzas(text, origin)]
    seen: dict[str, IndexEntry] = {}
    for entry in entries:
        earlier = seen.get(entry.package)
        if earlier is not None:
            raise TemplateError(f"{origin}: line {entry.line}: duplicate package '{entry.package}' "
                                f"(first defined at line {earlier.line})")
        seen[entry.package] = entry
    return entries


def format_entry(entry: IndexEntry) -> str:
    """Return *entry* as one stanza, continuation lines indented by one space."""
    lines = []
    for key, value in entry.fields.items():
        first, *rest = value.split("\n")
        lines.append(f"{key}: {first}".rstrip())
        lines += [" " + (line if line else ".") for line in rest]
    return "\n".join(lines) + "\n"


def format_index(entries: list[IndexEntry]) -> str:
    return "\n".join(format_entry(entry) for entry in entries)


def check_location(location: str, origin: str) -> None:
    """Reject a ``Location`` that could put the template outside a storage's template folder."""
    parts = location.replace("\\", "/").split("/")
    name = parts[-1]
    if ".." in parts or name in ("", ".") or name.startswith("."):
        raise TemplateError(f"{origin}: unsafe Location '{location}': it must name a file "
                            "without '..' path components")
    if not name.endswith(TEMPLATE_SUFFIXES):
        raise TemplateError(f"{origin}: Location '{location}' is not a template archive "
                            f"(expected one of {', '.join(TEMPLATE_SUFFIXES)})")


def _split_stanzas(text: str, origin: str) -> list[IndexEntry]:
    entries: list[IndexEntry] = []
    current: IndexEntry | None = None
    last_key: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            current, last_key = None, None
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if current is None or last_key is None:
                raise TemplateError(f"{origin}: line {number}: continuation line without a field")
            continuation = line.strip()
            # A lone "." stands for an empty line inside a multi-line value.
            current.fields[last_key] += "\n" + ("" if continuation == "." else continuation)
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip() or " " in key.strip():
            raise TemplateError(f"{origin}: line {number}: expected 'Field: value', got '{line[:60]}'")
        if current is None:
            current = IndexEntry(fields={}, line=number, origin=origin)
            entries.append(current)
        last_key = key.strip()
        current.fields[last_key] = value.strip()
    return entries


def _check_entry(entry: IndexEntry) -> IndexEntry:
    where = f"{entry.origin}: stanza at line {entry.line}"
    name = entry.package or "(no Package)"
    if not entry.location:
        raise TemplateError(f"{where} ({name}): missing Location")
    missing = [key for key in REQUIRED_FIELDS if not entry.get(key)]
    if missing:
        raise TemplateError(f"{where} ({name}): truncated stanza, missing {', '.join(missing)}")
    if not entry.get("sha512sum") and not entry.get("md5sum"):
        raise TemplateError(f"{where} ({name}): truncated stanza, missing sha512sum or md5sum")
    check_location(entry.location, where)
    return entry
