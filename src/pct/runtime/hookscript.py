"""The container's ``hookscript``: a script called as ``<script> <vmid> <phase>``.

Phases are pre-start, post-start, pre-stop and post-stop. A failing
pre-start aborts the start; failures in later phases are reported and the
action goes on.
"""

from __future__ import annotations

import os
from pathlib import Path

from pct.errors import CommandError, PctError
from pct.paths import Paths
from pct.run import run
from pct.storage import get_storage, parse_volume_id

PHASES = ("pre-start", "post-start", "pre-stop", "post-stop")


def hookscript_path(paths: Paths, settings) -> Path | None:
    """Return the host path of the container's hookscript, checking it can run."""
    if not settings.hookscript:
        return None
    vmid = settings.vmid
    storage_id, volname = parse_volume_id(settings.hookscript)
    path = get_storage(paths, storage_id).volume_path(volname)
    if not path.is_file():
        raise PctError(f"CT {vmid}: hookscript '{settings.hookscript}' does not exist ({path})", vmid)
    if not os.access(path, os.X_OK):
        raise PctError(f"CT {vmid}: hookscript '{settings.hookscript}' is not executable; "
                       f"run 'chmod +x {path}'", vmid)
    return path


def call_hookscript(paths: Paths, settings, phase: str) -> None:
    """Run the hookscript for *phase*; raise PctError when it fails."""
    path = hookscript_path(paths, settings)
    if path is None:
        return
    try:
        run([str(path), str(settings.vmid), phase], capture=False, env=_hook_environment(paths))
    except CommandError as exc:
        raise PctError(f"CT {settings.vmid}: hookscript {phase} failed: {exc.message}", settings.vmid) from exc


def _hook_environment(paths: Paths) -> dict[str, str]:
    environment = dict(os.environ)
    environment["PCT_ROOT"] = str(paths.root)
    return environment
