"""Task logs of long-running actions, and their progress lines on a terminal.

Each task gets an id shaped like Proxmox VE's UPID
(``UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:``, numbers in
hex) and a log file ``var/log/pve/tasks/<last hex digit>/<UPID>``. The log
ends with ``TASK OK`` or ``TASK ERROR: <message>``, and a finished task is
appended to ``var/log/pve/tasks/index``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterator, TextIO

from pct.paths import Paths


class Task:
    """One running task: its id, its log file, and an optional terminal."""

    def __init__(self, paths: Paths, kind: str, vmid: int | None, terminal: TextIO | None):
        self.started = int(time.time())
        # os.uname() returns the same name as socket.gethostname(), without importing socket.
        node = os.uname().nodename.split(".")[0]
        pid = os.getpid()
        self.upid = (f"UPID:{node}:{pid:08X}:{_process_start(pid):08X}:{self.started:08X}:"
                     f"{kind}:{vmid if vmid is not None else ''}:root@pam:")
        self.paths = paths
        self.log_path = paths.task_dir / self.upid[-2:-1].lower() / self.upid
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8")
        self._terminal = terminal

    def log(self, message: str) -> None:
        """Append *message* to the task log, and show it on the terminal if there is one."""
        self._log.write(message + "\n")
        self._log.flush()
        if self._terminal is not None:
            print(message, file=self._terminal, flush=True)

    def finish(self, error: str | None) -> None:
        status = "OK" if error is None else f"ERROR: {error}"
        self._log.write(f"TASK {status}\n")
        self._log.close()
        with open(self.paths.task_dir / "index", "a", encoding="utf-8") as index:
            index.write(f"{self.upid} {int(time.time()):08X} {status}\n")


def _process_start(pid: int) -> int:
    """Return the start time of *pid* in clock ticks since boot, as UPIDs record it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def task(paths: Paths, kind: str, vmid: int | None = None) -> Iterator[Task]:
    """Run the block as a task; its exception, if any, is recorded and re-raised."""
    terminal = sys.stderr if sys.stderr.isatty() else None
    current = Task(paths, kind, vmid, terminal)
    try:
        yield current
    except BaseException as exc:
        current.finish(str(exc) or type(exc).__name__)
        raise
    current.finish(None)
