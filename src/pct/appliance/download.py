"""Download a template into a storage, verifying its checksum before it appears there.

The archive streams in chunks to a hidden temporary file in the storage's
``template/cache`` folder and is renamed to its final name only after its
size and checksum match. On any failure the temporary file is deleted.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, TextIO

from pct.appliance.catalog import AvailableTemplate, find_template
from pct.appliance.index import check_location
from pct.errors import TemplateError
from pct.paths import Paths

CHUNK_BYTES = 1 << 16
FETCH_TIMEOUT = 60.0
LOG_STEP_PERCENT = 10


def template_storage(paths: Paths, storage_id: str):
    """Return the storage *storage_id*, or raise TemplateError unless it accepts templates (``vztmpl``)."""
    from pct.storage import get_storage

    storage = get_storage(paths, storage_id)
    if "vztmpl" not in storage.definition.content:
        raise TemplateError(f"storage '{storage_id}' does not allow templates: add 'vztmpl' to its "
                            "content list in storage.cfg, or pick another storage")
    return storage


def download_template(paths: Paths, storage_id: str, name: str) -> tuple[str, bool]:
    """Download template *name* into *storage_id* as a task.

    Returns the volume id, and False when a file with the right checksum was
    already there, so nothing was downloaded.
    """
    storage = template_storage(paths, storage_id)
    template = find_template(paths, name)
    check_location(template.entry.location, f"template '{name}'")
    target = storage.template_path(f"vztmpl/{template.name}")
    cache = target.parent
    if target.resolve().parent != cache.resolve():
        raise TemplateError(f"template '{name}' would be written outside {cache}")
    volid = f"{storage_id}:vztmpl/{template.name}"
    if target.exists() and _matches(target, template):
        return volid, False

    from pct.tasks import Task

    cache.mkdir(parents=True, exist_ok=True)
    task = Task(paths, "download", None, terminal=None)
    try:
        task.log(f"downloading {template.url} to {target}")
        size = _fetch_verified(template, target, task.log, sys.stderr if sys.stderr.isatty() else None)
        task.log(f"download of {template.name} finished: {size} bytes, checksum verified")
    except BaseException as exc:
        task.finish(str(exc) or type(exc).__name__)
        raise
    task.finish(None)
    return volid, True


def _fetch_verified(template: AvailableTemplate, target: Path, log: Callable[[str], None],
                    terminal: TextIO | None) -> int:
    algorithm, expected = _expected_checksum(template)
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".partial",
                                         delete=False)
    partial = Path(handle.name)
    try:
        with handle:
            digest, size = _stream(template, handle, algorithm, log, terminal)
            handle.flush()
            os.fsync(handle.fileno())
        if digest != expected:
            raise TemplateError(f"{algorithm} checksum mismatch for {template.name}: expected {expected}, "
                                f"got {digest}; the downloaded file was deleted")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return size


def _expected_checksum(template: AvailableTemplate) -> tuple[str, str]:
    sha512 = template.entry.get("sha512sum").lower()
    if sha512:
        return "sha512", sha512
    # Older index entries carry only an MD5 checksum.
    return "md5", template.entry.get("md5sum").lower()


def _stream(template: AvailableTemplate, out: BinaryIO, algorithm: str, log: Callable[[str], None],
            terminal: TextIO | None) -> tuple[str, int]:
    import urllib.error
    import urllib.request

    digest = hashlib.new(algorithm)
    received = 0
    try:
        with urllib.request.urlopen(template.url, timeout=FETCH_TIMEOUT) as response:
            total = _content_length(response)
            progress = Progress(total, log, terminal)
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.update(received)
            progress.close()
    except urllib.error.HTTPError as exc:
        raise TemplateError(f"download of {template.url} failed: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise TemplateError(f"download of {template.url} failed: {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise TemplateError(f"download of {template.url} failed after {received} bytes: {exc}") from exc
    if total is not None and received != total:
        raise TemplateError(f"download of {template.url} stopped after {received} of {total} bytes; "
                            "the partial file was deleted")
    return digest.hexdigest(), received


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _matches(path: Path, template: AvailableTemplate) -> bool:
    algorithm, expected = _expected_checksum(template)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == expected


class Progress:
    """A bar redrawn on a terminal, and a plain line in the task log every 10 %."""

    def __init__(self, total: int | None, log: Callable[[str], None], terminal: TextIO | None):
        self.total = total
        self.log = log
        self.terminal = terminal
        self.next_percent = LOG_STEP_PERCENT
        self.drawn = 0.0

    def update(self, received: int) -> None:
        if not self.total:
            return
        percent = received * 100 // self.total
        while percent >= self.next_percent:
            self.log(f"{self.next_percent}% ({received} of {self.total} bytes)")
            self.next_percent += LOG_STEP_PERCENT
        if self.terminal is not None and time.monotonic() - self.drawn > 0.1:
            self.drawn = time.monotonic()
            bar = "#" * (percent * 40 // 100)
            self.terminal.write(f"\r[{bar:<40}] {percent:3d}% {received >> 20} MiB")
            self.terminal.flush()

    def close(self) -> None:
        if self.terminal is not None and self.total:
            self.terminal.write(f"\r[{'#' * 40}] 100% {self.total >> 20} MiB\n")
            self.terminal.flush()
