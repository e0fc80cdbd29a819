"""A forked process that cleans up after a backup process that died without doing so itself.

``vzdump`` undoes a failed backup itself, also on SIGTERM, SIGHUP and SIGINT.
SIGKILL (or the OOM killer) gives it no chance, so each backup forks a
watchdog before it locks the container. The backup writes one line to a pipe
for each step that must be undone if it dies (an event such as ``mounted`` or
``frozen``), and ``done`` when it has finished and cleaned up. The watchdog
reads the pipe until end of file. End of file without ``done`` means that
the backup process is gone, because only that process has the write end
open. Then the watchdog ends the backup's child processes and calls the
clean-up function with the events it received.

The pipe is used instead of ``PR_SET_PDEATHSIG`` because the kernel sends the
death signal when the thread that forked ends, not the process. The watchdog
leads a process group of its own, and the backup starts tar, the compressor
and rsync in that group. Orphaned children are re-parented to init, so the
group is what still finds them, and it stays unique while its leader lives.
Because that group is not the terminal's foreground process group, neither
the watchdog nor those children receive the terminal's SIGINT. The backup
process receives it and ends its children itself.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Callable

Events = list[tuple[str, str]]

DONE = "done"
# How long the watchdog waits for the killed children to exit.
KILL_TIMEOUT = 10.0


class Watchdog:
    """The backup side of a watchdog process: start it, send it events, dismiss it."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._pipe: int | None = None

    def start(self, clean_up: Callable[[Events], None]) -> None:
        """Fork the watchdog; it calls *clean_up* with the events if this process dies before ``dismiss``.

        Call it while no other thread runs and no flock is held, because the
        child keeps a copy of every open file descriptor until it exits.
        """
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            status = 0
            try:
                _watch(read_end, clean_up)
            except BaseException as exc:
                print(f"vzdump: the backup watchdog failed: {exc or type(exc).__name__}", file=sys.stderr)
                status = 1
            finally:
                os._exit(status)
        os.close(read_end)
        # The child calls setpgid too. Whichever call comes first creates the
        # group, so children started right after this already find it.
        try:
            os.setpgid(pid, pid)
        except PermissionError:
            pass  # the child has already made itself the group leader
        self.pid = pid
        self._pipe = write_end

    @property
    def process_group(self) -> int | None:
        """The process group that the backup's child processes join, None without a watchdog."""
        return self.pid

    def note(self, event: str, value: str = "") -> None:
        """Tell the watchdog about a step that it must undo if this process dies."""
        if self._pipe is None:
            return
        line = f"{event} {value}".rstrip() + "\n"
        try:
            # One write of less than PIPE_BUF bytes reaches the reader whole.
            os.write(self._pipe, line.encode("utf-8", "surrogateescape"))
        except BrokenPipeError:
            # The watchdog was killed too, so a later kill of this process leaves its steps undone.
            self._pipe = None

    def dismiss(self) -> None:
        """Tell the watchdog that the backup finished and cleaned up, and wait for it to exit."""
        if self.pid is None:
            return
        self.note(DONE)
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.pid = None


def _watch(read_end: int, clean_up: Callable[[Events], None]) -> None:
    os.setpgid(0, 0)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    # The backup process turns SIGTERM into an exception, which must not
    # unwind the backup's code in this copy of it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _detach_standard_streams()
    events = _read_events(read_end)
    if events and events[-1][0] == DONE:
        return
    kill_group(os.getpid())
    clean_up(events)


def _detach_standard_streams() -> None:
    """Point stdin and stdout at /dev/null, so a reader of ``vzdump --stdout`` gets end of file when vzdump exits.

    stderr stays, for the message about the clean-up.
    """
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


def _read_events(read_end: int) -> Events:
    data = b""
    while True:
        chunk = os.read(read_end, 4096)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    events = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        event, _, value = line.partition(" ")
        events.append((event, value))
    return events


def kill_group(pgid: int, timeout: float = KILL_TIMEOUT) -> None:
    """Send SIGKILL to every process of group *pgid* except this one, and wait until they are gone."""
    own = os.getpid()
    deadline = time.monotonic() + timeout
    while True:
        members = [pid for pid in group_members(pgid) if pid != own]
        if not members or time.monotonic() >= deadline:
            return
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def group_members(pgid: int) -> list[int]:
    """Return the live processes (not zombies) of process group *pgid*, read from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members
