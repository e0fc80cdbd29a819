"""Cgroup limits as LXC keys, for the unified (v2) and the legacy (v1) layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
CFS_PERIOD_US = 100000
# cpu.shares of cgroup v1 accepts 2 to 262144 (MAX_SHARES in the kernel).
V1_MAX_SHARES = 262144


@dataclass(frozen=True)
class CgroupLayout:
    """The cgroup hierarchy the host uses, read from the mounted tree."""

    unified: bool
    has_memsw: bool = False
    cgroup_root: Path = Path("/sys/fs/cgroup")


def detect_layout(cgroup_root: Path = Path("/sys/fs/cgroup")) -> CgroupLayout:
    """Return the unified layout when the root is cgroup2, else the v1 (hybrid) layout."""
    if (cgroup_root / "cgroup.controllers").exists():
        return CgroupLayout(unified=True, cgroup_root=cgroup_root)
    has_memsw = (cgroup_root / "memory" / "memory.memsw.limit_in_bytes").exists()
    return CgroupLayout(unified=False, has_memsw=has_memsw, cgroup_root=cgroup_root)


def limit_keys(settings, layout: CgroupLayout, host_cpus: int | None = None,
               cpuset: str | None = None) -> list[tuple[str, str]]:
    """Return the LXC keys that set memory, swap and CPU limits of *settings*.

    *cpuset* is the CPU list the balancer chose; without it the first CPUs
    are taken.
    """
    host_cpus = host_cpus or os.cpu_count() or 1
    memory = settings.memory * MIB
    swap = settings.swap * MIB
    cpuset = cpuset or cpuset_for(settings.cores, host_cpus)

    if layout.unified:
        keys = [
            ("lxc.cgroup2.memory.max", str(memory)),
            ("lxc.cgroup2.memory.swap.max", str(swap)),
        ]
        keys.append(("lxc.cgroup2.cpu.max", _cpu_max(settings.cpulimit)))
        if settings.cpuunits is not None:
            keys.append(("lxc.cgroup2.cpu.weight", str(_v2_weight(settings.cpuunits))))
        if cpuset:
            keys.append(("lxc.cgroup2.cpuset.cpus", cpuset))
        return keys

    keys = [("lxc.cgroup.memory.limit_in_bytes", str(memory))]
    if layout.has_memsw:
        keys.append(("lxc.cgroup.memory.memsw.limit_in_bytes", str(memory + swap)))
    if settings.cpulimit:
        keys.append(("lxc.cgroup.cpu.cfs_period_us", str(CFS_PERIOD_US)))
        keys.append(("lxc.cgroup.cpu.cfs_quota_us", str(round(settings.cpulimit * CFS_PERIOD_US))))
    if settings.cpuunits is not None:
        keys.append(("lxc.cgroup.cpu.shares", str(v1_shares(settings.cpuunits))))
    if cpuset:
        keys.append(("lxc.cgroup.cpuset.cpus", cpuset))
    return keys


def cpuset_for(cores: int | None, host_cpus: int) -> str | None:
    """Return the first *cores* CPUs as a CPU list, None when the container may use all."""
    if not cores or cores >= host_cpus:
        return None
    return "0" if cores == 1 else f"0-{cores - 1}"


def v1_shares(cpuunits: int) -> int:
    return min(max(cpuunits, 2), V1_MAX_SHARES)


def _cpu_max(cpulimit: float) -> str:
    if not cpulimit:
        return f"max {CFS_PERIOD_US}"
    return f"{round(cpulimit * CFS_PERIOD_US)} {CFS_PERIOD_US}"


def _v2_weight(cpuunits: int) -> int:
    # cpu.weight accepts 1-10000; cpuunits allows 0-500000.
    return min(max(cpuunits, 1), 10000)
