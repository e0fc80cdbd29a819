"""Defaults for ``vzdump`` from ``etc/vzdump.conf``: one ``key: value`` per line, ``#`` starts a comment."""

from __future__ import annotations

from pct.errors import ConfigError
from pct.paths import Paths

KNOWN_KEYS = frozenset({"mode", "compress", "zstd", "storage", "dumpdir", "tmpdir", "bwlimit", "exclude-path",
                        "prune-backups", "notes-template", "remove"})


def load_vzdump_defaults(paths: Paths) -> dict[str, str | list[str]]:
    """Return the settings of ``vzdump.conf``; ``exclude-path`` is a list of patterns split at spaces."""
    path = paths.under_root("etc/vzdump.conf")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    defaults: dict[str, str | list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not separator or key not in KNOWN_KEYS:
            raise ConfigError(f"{path}: line {number}: unknown setting '{line}' "
                              f"(known: {', '.join(sorted(KNOWN_KEYS))})")
        defaults[key] = value.split() if key == "exclude-path" else value
    return defaults
