"""Per-container locks: an flock on a lock file, and the ``lock:`` config key.

The flock serialises every read-modify-write of one container's config and
volumes between processes. The ``lock:`` key marks a long-running action
(create, backup, ...) in the config itself, so that it survives the process
and a crash leaves it visible until ``pct unlock``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from typing import Iterator

from pct.errors import LockError
from pct.paths import Paths

DEFAULT_TIMEOUT = 10.0


@contextlib.contextmanager
def config_lock(paths: Paths, vmid: int, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive flock of container *vmid* for the duration of the block."""
    lock_path = paths.lock_file(vmid)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _flock_with_timeout(fd, lock_path, timeout, vmid)
        yield
    finally:
        os.close(fd)


def _flock_with_timeout(fd: int, lock_path: os.PathLike, timeout: float, vmid: int) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            raise LockError(f"can't lock file '{lock_path}' - got timeout", vmid)
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
