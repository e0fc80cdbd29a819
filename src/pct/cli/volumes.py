"""``pct`` commands that work on a container's volumes (snapshots, clones, resize, ...).

Each entry maps a command name to (summary, handler, argument adder), like
``COMMANDS`` in ``pct.cli.pct``, which merges this table into its own.
"""

from __future__ import annotations

VOLUME_COMMANDS: dict = {}
