"""Read and write container config files (``etc/pve/lxc/<vmid>.conf``).

The file contains ``key: value`` lines in sections: the main (current) section
first, then ``[pve:pending]``, then one ``[name]`` section per snapshot. Raw
LXC keys (``lxc.*``) may also be written ``key = value``, may repeat and keep
their order.

Descriptions are ``#`` comment lines. As Proxmox VE does, every section stores
its description that way: the main section's description is
``ContainerConfig.description``, while a snapshot's or the pending section's
description is the ``description`` entry of that ``Section``. Comment lines
anywhere in a section, and ``description:`` key lines, are read into that
section's description; writing puts the description at the top of the section.

A file written by ``format_config`` parses and formats back byte for byte.
Other valid files keep their meaning but are rewritten in the canonical
spelling (``key: value``, one space after the colon).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass, field

from pct.config.checks import check_snapshot_name
from pct.config.propstring import one_line
from pct.config.schema import lookup_option
from pct.errors import ConfigError
from pct.paths import Paths

log = logging.getLogger(__name__)

PENDING_SECTION = "pve:pending"
CONFIG_MODE = 0o640

_KEY_RE = re.compile(r"([a-z][a-z0-9_-]*):(.*)")
_RAW_LXC_RE = re.compile(r"(lxc(?:\.[A-Za-z0-9_-]+)+)\s*[:=](.*)")
_HEADER_RE = re.compile(r"\[([^\]]*)\]")
# Characters that a comment line cannot keep literally: '%' itself, control
# characters, the characters Unicode treats as line breaks, and whitespace at
# the end of the line, because reading strips it.
_UNSAFE_COMMENT_RE = re.compile(r"[%\x00-\x1f\x7f\x85\u2028\u2029]|\s+$")


def is_raw_lxc_key(key: str) -> bool:
    """Return whether *key* is a raw LXC key (``lxc.*``), passed to LXC unchanged."""
    return key.startswith("lxc.")


@dataclass
class Section:
    """The ordered ``(key, value)`` lines of one section, raw ``lxc.*`` keys included."""

    entries: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        for entry_key, value in self.entries:
            if entry_key == key and not is_raw_lxc_key(entry_key):
                return value
        return default

    def set(self, key: str, value: str) -> None:
        """Replace the value of *key* in place, or add it before the raw ``lxc.*`` keys."""
        if is_raw_lxc_key(key):
            raise ValueError(f"raw LXC key '{key}' may repeat; use add_raw_lxc()")
        for position, (entry_key, _) in enumerate(self.entries):
            if entry_key == key:
                self.entries[position] = (key, value)
                return
        position = next(
            (i for i, (entry_key, _) in enumerate(self.entries) if is_raw_lxc_key(entry_key)),
            len(self.entries),
        )
        self.entries.insert(position, (key, value))

    def delete(self, key: str) -> bool:
        """Remove *key* and return whether it was present. Raw ``lxc.*`` lines are left alone."""
        remaining = [entry for entry in self.entries if entry[0] != key or is_raw_lxc_key(key)]
        removed = len(remaining) != len(self.entries)
        self.entries[:] = remaining
        return removed

    def keys(self) -> list[str]:
        return [key for key, _ in self.entries if not is_raw_lxc_key(key)]

    def raw_lxc(self) -> list[tuple[str, str]]:
        return [(key, value) for key, value in self.entries if is_raw_lxc_key(key)]

    def add_raw_lxc(self, key: str, value: str) -> None:
        """Append a raw ``lxc.*`` line after the existing ones."""
        if not _RAW_LXC_RE.fullmatch(f"{key}:"):
            raise ValueError(f"'{key}' is not a raw LXC key")
        self.entries.append((key, value))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.keys()

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in self.entries if not is_raw_lxc_key(key)}


@dataclass
class ContainerConfig:
    """A parsed config file: main section, pending changes and snapshots."""

    description: str = ""
    main: Section = field(default_factory=Section)
    snapshots: dict[str, Section] = field(default_factory=dict)
    pending: Section | None = None
    warnings: list[str] = field(default_factory=list)


def parse_config(text: str, vmid: int | None = None) -> ContainerConfig:
    """Parse config file *text*. A malformed line raises ``ConfigError`` with its line number."""
    parser = _Parser(vmid)
    for number, line in enumerate(text.split("\n"), start=1):
        parser.feed(number, line)
    return parser.finish()


def format_config(cfg: ContainerConfig) -> str:
    """Return the file text of *cfg*: main section, pending changes, then snapshots."""
    lines = _format_section(cfg.main, cfg.description, main=True)

    sections: list[tuple[str, Section]] = []
    if cfg.pending is not None and cfg.pending.entries:
        sections.append((PENDING_SECTION, cfg.pending))
    for name, snapshot in cfg.snapshots.items():
        if not _is_snapshot_name(name):
            raise ConfigError(one_line(f"invalid snapshot name '{name}'"))
        sections.append((name, snapshot))

    for name, section in sections:
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        lines.extend(_format_section(section, section.get("description") or "", main=False))
    return "".join(f"{line}\n" for line in lines)


def load_config(paths: Paths, vmid: int) -> ContainerConfig:
    """Read and parse the config file of container *vmid*, logging its warnings."""
    path = paths.conf(vmid)
    display_path = _display_path(paths, vmid)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Configuration file '{display_path}' does not exist", vmid) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Configuration file '{display_path}' is not valid UTF-8: {exc.reason} "
                          f"at byte {exc.start}", vmid) from None
    except OSError as exc:
        raise ConfigError(f"unable to read '{display_path}': {exc.strerror or exc}", vmid) from exc

    try:
        cfg = parse_config(text, vmid)
    except ConfigError as exc:
        raise ConfigError(f"{display_path}: {exc.message}", vmid) from exc
    for warning in cfg.warnings:
        log.warning("%s: %s", display_path, warning)
    return cfg


def write_config(paths: Paths, vmid: int, cfg: ContainerConfig) -> None:
    """Write *cfg* atomically: a temporary file in the same directory, fsync, rename, fsync the directory."""
    text = format_config(cfg)
    path = paths.conf(vmid)
    display_path = _display_path(paths, vmid)
    temp_path = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(prefix=f".{vmid}.conf.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), CONFIG_MODE)
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, path)
        temp_path = None
        _fsync_directory(path.parent)
    except OSError as exc:
        raise ConfigError(f"unable to write '{display_path}': {exc.strerror or exc}", vmid) from exc
    finally:
        if temp_path is not None:
            _remove_quietly(temp_path)


def config_digest(text: str) -> str:
    """Return the SHA-1 hex digest of config file text, used to detect concurrent edits."""
    # Imported here: loading OpenSSL costs about 3 ms, and most commands never need a digest.
    import hashlib

    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def encode_comment(line: str) -> str:
    """Percent-encode the characters of one description line that a comment cannot hold."""
    return _UNSAFE_COMMENT_RE.sub(lambda match: _percent_encode(match.group(0)), line)


def decode_comment(text: str) -> str:
    """Decode one comment line written by ``encode_comment``."""
    # Limitation: a hand-written '%' followed by two hex digits is decoded too,
    # as Proxmox VE does, so such text changes on the first rewrite.
    return urllib.parse.unquote(text, errors="replace")


class _Parser:
    """Line-by-line reader that fills a ``ContainerConfig``."""

    def __init__(self, vmid: int | None):
        self.vmid = vmid
        self.cfg = ContainerConfig()
        self.section = self.cfg.main
        self.section_name: str | None = None
        self.description: list[str] = []

    def feed(self, number: int, line: str) -> None:
        line = line.rstrip()
        if not line:
            return
        if line.startswith("#"):
            comment = line[1:]
            self.description.append(decode_comment(comment[1:] if comment.startswith(" ") else comment))
            return
        if line.startswith("["):
            self._start_section(number, line)
            return
        raw = _RAW_LXC_RE.fullmatch(line)
        if raw:
            self.section.entries.append((raw.group(1), raw.group(2).strip()))
            return
        entry = _KEY_RE.fullmatch(line)
        if not entry:
            raise self._error(number, f"unable to parse config line: {line}")
        self._add_entry(number, entry.group(1), entry.group(2).strip())

    def finish(self) -> ContainerConfig:
        self._close_section()
        return self.cfg

    def _start_section(self, number: int, line: str) -> None:
        header = _HEADER_RE.fullmatch(line)
        if not header:
            raise self._error(number, f"unable to parse section header: {line}")
        name = header.group(1)
        self._close_section()

        if name == PENDING_SECTION:
            if self.cfg.pending is not None:
                raise self._error(number, "duplicate [pve:pending] section")
            self.cfg.pending = self.section = Section()
        else:
            if not _is_snapshot_name(name):
                raise self._error(number, f"invalid snapshot name '{name}' (a letter first, then "
                                  "letters, digits, '_' or '-', at most 40 characters)")
            if name in self.cfg.snapshots:
                raise self._error(number, f"duplicate snapshot section [{name}]")
            self.cfg.snapshots[name] = self.section = Section()
        self.section_name = name

    def _add_entry(self, number: int, key: str, value: str) -> None:
        if not value:
            raise self._error(number, f"missing value for '{key}'")
        if key == "description":
            self.description.append(decode_comment(value))
            return
        if key == "delete" and self.section_name != PENDING_SECTION:
            self._warn(number, "property 'delete' is only allowed in [pve:pending], line ignored")
            return
        if key != "delete" and lookup_option(key) is None:
            self._warn(number, f"unknown key '{key}' kept as it is")
        if key in self.section:
            self._warn(number, f"duplicate key '{key}', the last value is used")
        self.section.set(key, value)

    def _close_section(self) -> None:
        if not self.description:
            return
        text = "\n".join(self.description)
        self.description = []
        if self.section is self.cfg.main:
            self.cfg.description = text
        else:
            self.section.entries.insert(0, ("description", text))

    def _warn(self, number: int, message: str) -> None:
        self.cfg.warnings.append(f"line {number}: {message}")

    def _error(self, number: int, message: str) -> ConfigError:
        return ConfigError(f"line {number}: {one_line(message)}", self.vmid)


def _format_section(section: Section, description: str, main: bool) -> list[str]:
    lines = [_comment_line(line) for line in description.split("\n")] if description else []
    for key, value in section.entries:
        if key == "description":
            if main:
                raise ValueError("the main section's description belongs in ContainerConfig.description")
            continue
        lines.append(_entry_line(key, value))
    return lines


def _comment_line(line: str) -> str:
    return f"# {encode_comment(line)}" if line else "#"


def _entry_line(key: str, value: str) -> str:
    value = value.strip()
    if "\n" in value or "\r" in value:
        raise ConfigError(one_line(f"invalid newline inside the value of '{key}'"))
    if is_raw_lxc_key(key):
        if not _RAW_LXC_RE.fullmatch(f"{key}:"):
            raise ConfigError(one_line(f"invalid raw LXC key '{key}'"))
        return f"{key}: {value}" if value else f"{key}:"
    if not _KEY_RE.fullmatch(f"{key}:"):
        raise ConfigError(one_line(f"invalid config key '{key}'"))
    if not value:
        raise ConfigError(one_line(f"empty value for '{key}'"))
    return f"{key}: {value}"


def _is_snapshot_name(name: str) -> bool:
    try:
        check_snapshot_name(name)
    except ValueError:
        return False
    return True


def _percent_encode(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


def _display_path(paths: Paths, vmid: int) -> str:
    path = paths.conf(vmid)
    try:
        return str(path.relative_to(paths.root))
    except ValueError:
        return str(path)


def _fsync_directory(directory: os.PathLike) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
