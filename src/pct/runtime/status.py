"""Status of one container: state, and for ``--verbose`` the kernel's counters."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pct.paths import Paths
from pct.run import run
from pct.runtime.lxcconf import veth_name
from pct.runtime.state import init_pid, is_running

MIB = 1024 * 1024


def container_status(paths: Paths, settings, verbose: bool = False) -> dict:
    """Return the status fields of a container as Proxmox VE's API names them."""
    vmid = settings.vmid
    running = is_running(paths, vmid)
    status: dict = {"vmid": vmid, "name": settings.hostname,
                    "status": "running" if running else "stopped"}
    if settings.lock:
        status["lock"] = settings.lock
    if not verbose:
        return status

    status.update({"maxmem": settings.memory * MIB, "maxswap": settings.swap * MIB,
                   "cpus": settings.cores or os.cpu_count(), "uptime": 0})
    if settings.rootfs is not None and settings.rootfs.size:
        status["maxdisk"] = settings.rootfs.size
    if not running:
        return status

    pid = init_pid(paths, vmid)
    if pid is None:
        return status
    status["pid"] = pid
    status["uptime"] = _uptime(pid)
    status.update(_usage_from_cgroup(paths, vmid))
    status.update(_disk(paths.rootfs_mount(vmid)))
    status.update(_network(settings))
    return status


def _usage_from_cgroup(paths: Paths, vmid: int) -> dict:
    """Return memory and CPU time used, read from the container's own cgroup.

    LXC returns that cgroup's values. The init's own cgroup can be a child of
    it (systemd moves PID 1 into init.scope), which would count only a part.
    """
    usage = {}
    memory = _lxc_cgroup(paths, vmid, "memory.usage_in_bytes") or _lxc_cgroup(paths, vmid, "memory.current")
    if memory is not None:
        usage["mem"] = memory
    nanoseconds = _lxc_cgroup(paths, vmid, "cpuacct.usage")
    if nanoseconds is not None:
        usage["cputime"] = nanoseconds / 1e9
    else:
        stat = run(["lxc-cgroup", "-P", paths.lxc_path, "-n", str(vmid), "cpu.stat"], check=False).stdout or ""
        for line in stat.splitlines():
            if line.startswith("usage_usec "):
                usage["cputime"] = int(line.split()[1]) / 1e6
    return usage


def _lxc_cgroup(paths: Paths, vmid: int, name: str) -> int | None:
    result = run(["lxc-cgroup", "-P", paths.lxc_path, "-n", str(vmid), name], check=False)
    text = (result.stdout or "").strip()
    return int(text) if result.returncode == 0 and text.isdigit() else None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _uptime(pid: int) -> int:
    """Return seconds since *pid* started, from its start time in clock ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as uptime:
        host_uptime = float(uptime.read().split()[0])
    return max(0, int(host_uptime - start_ticks / os.sysconf("SC_CLK_TCK")))


def _disk(rootfs: Path) -> dict:
    try:
        fs = os.statvfs(rootfs)
    except OSError:
        return {}
    return {"disk": (fs.f_blocks - fs.f_bfree) * fs.f_frsize, "maxdisk": fs.f_blocks * fs.f_frsize}


def _network(settings) -> dict:
    """Return bytes received and sent by the guest, summed over its veths."""
    netin = netout = 0
    for net in settings.nets:
        statistics = Path("/sys/class/net") / veth_name(settings.vmid, net.index) / "statistics"
        # The host side sends what the guest receives, and the other way round.
        netin += _read_int(statistics / "tx_bytes") or 0
        netout += _read_int(statistics / "rx_bytes") or 0
    return {"netin": netin, "netout": netout, "time": int(time.time())}
