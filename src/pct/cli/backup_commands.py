"""``pct`` commands for backups (``pct restore``), merged into pct's command table.

Each entry maps a command name to (summary, handler, argument adder), like
``COMMANDS`` in ``pct.cli.pct``.
"""

from __future__ import annotations

BACKUP_COMMANDS: dict = {}
