"""Undo lists for multi-step operations (create, clone, restore)."""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)


def roll_back(undo: list[Callable[[], None]], vmid: int) -> None:
    """Run the undo steps in reverse order; a failing step is logged and the rest still run."""
    for step in reversed(undo):
        try:
            step()
        except Exception as exc:  # keep undoing; report each failure once
            log.error("CT %s: rollback step failed: %s", vmid, exc)
