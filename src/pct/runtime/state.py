"""Whether containers run, read without spawning a process per container.

A running container's LXC monitor listens on the abstract unix socket
``@<lxcpath>/<name>/command``; one read of ``/proc/net/unix`` tells the state
of every container at once.

# Limitation: LXC hashes the socket name when lxcpath plus name exceed the
# abstract socket length (about 100 bytes); such roots fall back to lxc-info.
"""

from __future__ import annotations

from pct.paths import Paths
from pct.run import run

_MAX_SOCKET_NAME = 100


def running_vmids(paths: Paths) -> set[int]:
    """Return the ids of the containers of *paths* whose LXC monitor is up."""
    prefix = f"@{paths.lxc_path}/"
    running = set()
    with open("/proc/net/unix") as table:
        for line in table:
            name = line.rstrip("\n").rsplit(" ", 1)[-1]
            if name.startswith(prefix) and name.endswith("/command"):
                middle = name[len(prefix):-len("/command")]
                if middle.isdigit():
                    running.add(int(middle))
    return running


def is_running(paths: Paths, vmid: int) -> bool:
    if len(f"{paths.lxc_path}/{vmid}/command") >= _MAX_SOCKET_NAME:
        result = run(["lxc-info", "-P", paths.lxc_path, "-n", str(vmid), "-s", "-H"], check=False)
        return "RUNNING" in (result.stdout or "") or "FROZEN" in (result.stdout or "")
    return vmid in running_vmids(paths)


def init_pid(paths: Paths, vmid: int) -> int | None:
    """Return the host PID of the container's init, None when it is not running."""
    result = run(["lxc-info", "-P", paths.lxc_path, "-n", str(vmid), "-p", "-H"], check=False)
    text = (result.stdout or "").strip()
    return int(text) if text.isdigit() else None
