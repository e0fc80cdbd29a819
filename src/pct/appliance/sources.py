"""Index sources: the config that lists them, fetching, signatures, local copies.

``etc/pve/pveam-sources.cfg`` (below the root) lists the sources in the
layout of ``storage.cfg``::

    source: example
    	url https://example.org/templates/aplinfo.dat
    	signature https://example.org/templates/aplinfo.dat.asc
    	keyring /etc/pve/pveam-trusted.gpg

``url`` is required and may be ``http``, ``https`` or ``file``. ``signature``
is the URL of a detached GPG signature of the index, checked with ``gpgv``
against ``keyring`` (a path read below the root). ``pveam update`` keeps one
copy of each source's index in ``var/lib/pve-manager/apl-info/<source>``.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pct.appliance.index import IndexEntry, parse_index
from pct.errors import TemplateError
from pct.paths import Paths

SOURCES_FILE = "etc/pve/pveam-sources.cfg"
INDEX_DIR = "var/lib/pve-manager/apl-info"
URL_SCHEMES = ("http", "https", "file")
MAX_INDEX_BYTES = 64 * 1024 * 1024
FETCH_TIMEOUT = 30.0
_SOURCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


@dataclass
class Source:
    """One index source of the sources config."""

    source_id: str
    url: str
    signature: str | None = None
    keyring: str | None = None


@dataclass
class UpdateReport:
    """Changes and failures of one ``update`` run, one line per package or failed source."""

    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def sources_path(paths: Paths) -> Path:
    return paths.under_root(SOURCES_FILE)


def index_copy_path(paths: Paths, source_id: str) -> Path:
    return paths.under_root(INDEX_DIR) / source_id


def load_sources(paths: Paths) -> list[Source]:
    """Read the sources config. A missing file means no sources."""
    path = sources_path(paths)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return parse_sources(text, str(path))


def parse_sources(text: str, origin: str) -> list[Source]:
    """Parse the sources config, raising TemplateError at the first invalid line."""
    sources: list[Source] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            sources.append(_parse_header(line, origin, number))
            continue
        if not sources:
            raise TemplateError(f"{origin}: line {number}: option outside a 'source:' section")
        key, _, value = line.strip().partition(" ")
        if key not in ("url", "signature", "keyring"):
            raise TemplateError(f"{origin}: line {number}: unknown option '{key}'")
        setattr(sources[-1], key, value.strip())
    for source in sources:
        _check_source(source, origin)
    return sources


def _parse_header(line: str, origin: str, number: int) -> Source:
    kind, colon, source_id = line.partition(":")
    source_id = source_id.strip()
    if kind.strip() != "source" or not colon or not _SOURCE_ID.match(source_id):
        raise TemplateError(f"{origin}: line {number}: expected 'source: <id>', got '{line.strip()}'")
    return Source(source_id, url="")


def _check_source(source: Source, origin: str) -> None:
    where = f"{origin}: source '{source.source_id}'"
    for name in ("url", "signature"):
        value = getattr(source, name)
        if name == "url" and not value:
            raise TemplateError(f"{where}: missing url")
        if value and value.partition(":")[0] not in URL_SCHEMES:
            raise TemplateError(f"{where}: {name} '{value}' must be an http, https or file URL")
    if source.signature and not source.keyring:
        raise TemplateError(f"{where}: a signature needs a keyring to check it against")


def fetch_bytes(url: str, limit: int = MAX_INDEX_BYTES) -> bytes:
    """Return the body at *url*, or raise TemplateError when it cannot be fetched."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
            data = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise TemplateError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise TemplateError(f"cannot fetch {url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise TemplateError(f"cannot fetch {url}: {exc}") from exc
    if len(data) > limit:
        raise TemplateError(f"cannot fetch {url}: larger than {limit} bytes")
    return data


def verify_signature(paths: Paths, source: Source, data: bytes, signature: bytes) -> None:
    """Check *signature* over *data* with gpgv and the source's keyring."""
    from pct.errors import CommandError
    from pct.run import run

    keyring = paths.under_root(source.keyring or "")
    if not keyring.is_file():
        raise TemplateError(f"keyring '{keyring}' not found")
    with tempfile.TemporaryDirectory(prefix="pct-gpgv-") as workdir:
        data_file, signature_file = Path(workdir) / "index", Path(workdir) / "index.sig"
        data_file.write_bytes(data)
        signature_file.write_bytes(signature)
        try:
            run(["gpgv", "--homedir", workdir, "--keyring", str(keyring), str(signature_file), str(data_file)])
        except CommandError as exc:
            raise TemplateError(f"bad signature on {source.url} (checked with gpgv against {keyring})") from exc


def fetch_source(paths: Paths, source: Source) -> tuple[str, list[IndexEntry]]:
    """Fetch, verify and parse one source, and return its text and entries."""
    data = fetch_bytes(source.url)
    if source.signature:
        verify_signature(paths, source, data, fetch_bytes(source.signature))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{source.url}: index is not UTF-8 text") from exc
    return text, parse_index(text, source.url)


def update_sources(paths: Paths) -> UpdateReport:
    """Refresh every source's local copy. A source that fails keeps its old copy."""
    sources = load_sources(paths)
    if not sources:
        raise TemplateError(f"no index sources configured; add a 'source:' section to {sources_path(paths)}")
    report = UpdateReport()
    for source in sources:
        try:
            text, entries = fetch_source(paths, source)
        except TemplateError as exc:
            report.errors.append(f"update failed for source '{source.source_id}': {exc}")
            continue
        old = read_copy(paths, source)
        _write_atomically(index_copy_path(paths, source.source_id), text)
        report.changes += describe_changes(source.source_id, old, entries)
    return report


def read_copy(paths: Paths, source: Source) -> list[IndexEntry]:
    """Return the entries of the source's local copy, none when it is absent or damaged."""
    path = index_copy_path(paths, source.source_id)
    try:
        return parse_index(path.read_text(), str(path))
    except (OSError, UnicodeDecodeError, TemplateError):
        return []


def describe_changes(source_id: str, old: list[IndexEntry], new: list[IndexEntry]) -> list[str]:
    before = {entry.package: entry.version for entry in old}
    after = {entry.package: entry.version for entry in new}
    changes = []
    for package in sorted(before.keys() | after.keys()):
        if package not in before:
            changes.append(f"{source_id}: added {package} {after[package]}")
        elif package not in after:
            changes.append(f"{source_id}: removed {package} {before[package]}")
        elif before[package] != after[package]:
            changes.append(f"{source_id}: updated {package} {before[package]} -> {after[package]}")
    return changes


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)
