"""The ``pct`` entry point, with a short path for ``pct exec``.

``pct exec`` is run often and in loops, so it skips building the full
argument parser when its arguments have the plain form
``exec <vmid> -- <command> [args...]``. Anything else goes to the full parser.
"""

from __future__ import annotations

import sys

from pct.cli.common import run_tool


def main(argv: list[str] | None = None) -> int:
    if _plain_exec(sys.argv[1:] if argv is None else argv):
        return run_tool("pct", argv, _exec)
    from pct.cli.pct import main as full_main

    return full_main(argv)


def _plain_exec(argv: list[str]) -> bool:
    return len(argv) >= 4 and argv[0] == "exec" and argv[1].isdigit() and argv[2] == "--"


def _exec(argv: list[str]) -> int:
    from pct.paths import Paths
    from pct.runtime.attach import exec_in_container

    return exec_in_container(Paths(), int(argv[1]), argv[3:])
