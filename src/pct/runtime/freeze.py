"""Freezing a running container around work that needs a still file system."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from pct.paths import Paths
from pct.run import run
from pct.runtime.state import is_running


@contextlib.contextmanager
def frozen(paths: Paths, vmid: int) -> Iterator[None]:
    """Freeze a running container's processes and flush its writes for the duration of the block.

    A stopped container is left alone.
    """
    if not is_running(paths, vmid):
        yield
        return
    run(["lxc-freeze", "-P", paths.lxc_path, "-n", str(vmid)])
    try:
        # Limitation: the guest is frozen, not asked to sync, so its own caches
        # (a database's buffers) are as consistent as after a power cut.
        os.sync()
        yield
    finally:
        unfreeze(paths, vmid)


def unfreeze(paths: Paths, vmid: int) -> None:
    """Thaw the container's processes; a running container that is not frozen stays as it is."""
    run(["lxc-unfreeze", "-P", paths.lxc_path, "-n", str(vmid)])
