"""Names of backup archives and the files kept beside them.

An archive is named ``vzdump-lxc-<vmid>-<YYYY_MM_DD-HH_MM_SS>.tar[.gz|.zst|.lzo]``
after the local time the backup started. Its log is the same name with
``.log`` in place of the ``.tar...`` suffix, and its notes are the archive
name plus ``.notes``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from pct.errors import ParameterError

# ``--compress`` value -> (file name suffix, compressor command)
COMPRESSORS: dict[str, tuple[str, list[str] | None]] = {
    "0": ("", None),
    "gzip": (".gz", ["gzip", "-c"]),
    "zstd": (".zst", ["zstd", "-q", "-c"]),
    "lzo": (".lzo", ["lzop", "-c"]),
}
COMPRESS_ALIASES = {"1": "lzo", "none": "0"}

_ARCHIVE_NAME = re.compile(
    r"^vzdump-lxc-(\d+)-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2})\.tar(\.gz|\.zst|\.lzo)?$")
_TIME_FORMAT = "%Y_%m_%d-%H_%M_%S"


@dataclass(frozen=True)
class ArchiveName:
    """The parts of a backup archive's file name; ``ctime`` is seconds since the epoch."""

    name: str
    vmid: int
    ctime: int

    @property
    def log_name(self) -> str:
        return re.sub(r"\.tar(\.gz|\.zst|\.lzo)?$", ".log", self.name)

    @property
    def notes_name(self) -> str:
        return f"{self.name}.notes"

    @property
    def protected_name(self) -> str:
        return f"{self.name}.protected"


def normalise_compress(value: str) -> str:
    """Return the canonical ``--compress`` value; raise ParameterError for an unknown one."""
    value = COMPRESS_ALIASES.get(value, value)
    if value not in COMPRESSORS:
        raise ParameterError("compress", f"value '{value}' does not have a value in the enumeration "
                             f"'{', '.join(COMPRESSORS)}'")
    return value


def archive_name(vmid: int, started: float, compress: str) -> ArchiveName:
    """Return the archive name for a backup of *vmid* that started at *started*."""
    stamp = time.strftime(_TIME_FORMAT, time.localtime(started))
    suffix = COMPRESSORS[normalise_compress(compress)][0]
    return ArchiveName(f"vzdump-lxc-{vmid}-{stamp}.tar{suffix}", vmid, int(started))


def parse_archive_name(name: str) -> ArchiveName | None:
    """Return the parts of a container backup's file name, or None for any other name."""
    match = _ARCHIVE_NAME.match(name)
    if not match:
        return None
    stamp = "_".join(match.group(i) for i in range(2, 5)) + "-" + "_".join(match.group(i) for i in range(5, 8))
    ctime = int(time.mktime(time.strptime(stamp, _TIME_FORMAT)))
    return ArchiveName(name, int(match.group(1)), ctime)
