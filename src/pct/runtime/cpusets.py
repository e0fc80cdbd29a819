"""CPU placement: give each container with ``cores`` the least used host CPUs.

The balancer runs when a container starts and looks at the CPU sets of the
containers already running.

# Limitation: there is no periodic rebalancing yet; placement is decided at
# start only.
"""

from __future__ import annotations

import os

from pct.paths import Paths
from pct.run import run
from pct.runtime.state import running_vmids


def parse_cpu_list(text: str) -> list[int]:
    """Parse a kernel CPU list such as ``0-2,5`` into ``[0, 1, 2, 5]``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-")
            cpus.extend(range(int(first), int(last) + 1))
        else:
            cpus.append(int(part))
    return cpus


def format_cpu_list(cpus: list[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def running_cpusets(paths: Paths, exclude: int | None = None) -> dict[int, list[int]]:
    """Return the CPUs of each running container of *paths*, read from its cgroup."""
    cpusets = {}
    for vmid in sorted(running_vmids(paths)):
        if vmid == exclude:
            continue
        result = run(["lxc-cgroup", "-P", paths.lxc_path, "-n", str(vmid), "cpuset.cpus"], check=False)
        if result.returncode == 0 and result.stdout.strip():
            cpusets[vmid] = parse_cpu_list(result.stdout)
    return cpusets


def choose_cpus(cores: int, host_cpus: int, busy: dict[int, list[int]]) -> list[int] | None:
    """Return the *cores* least used CPUs (lowest number first on ties), None for all of them."""
    if not cores or cores >= host_cpus:
        return None
    load = {cpu: 0 for cpu in range(host_cpus)}
    for cpus in busy.values():
        if len(cpus) < host_cpus:
            for cpu in cpus:
                if cpu in load:
                    load[cpu] += 1
    ranked = sorted(load, key=lambda cpu: (load[cpu], cpu))
    return sorted(ranked[:cores])


def place(paths: Paths, vmid: int, cores: int | None) -> str | None:
    """Return the cpuset for a container about to start, as a kernel CPU list."""
    host_cpus = os.cpu_count() or 1
    if not cores or cores >= host_cpus:
        return None
    cpus = choose_cpus(cores, host_cpus, running_cpusets(paths, exclude=vmid))
    return format_cpu_list(cpus) if cpus else None
