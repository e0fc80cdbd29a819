"""CPU placement: give each container with ``cores`` the least used host CPUs.

A container that starts gets the CPUs the fewest running containers use.
Proxmox VE's status daemon then rebalances running containers periodically.
pct has no daemon, so it rebalances when a container starts or stops, and
on ``pct cpusets --rebalance 1``. A stop of a container with ``cores`` also
runs ``python -m pct.runtime.cpusets --after-stop VMID`` from the post-stop
hook, which covers a guest that powers itself off. Containers without ``cores``, or with at
least as many cores as the host has CPUs, use every CPU and are left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from typing import Iterator

from pct.errors import PctError
from pct.paths import Paths
from pct.run import run
from pct.runtime.state import running_vmids

log = logging.getLogger(__name__)

BALANCER_LOCK = "pct-cpusets.lock"
STOP_WAIT_SECONDS = 30
STOP_POLL_SECONDS = 0.1


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


def read_cpuset(paths: Paths, vmid: int) -> list[int] | None:
    """Return the CPUs in the running container's ``cpuset.cpus``, None when it cannot be read."""
    result = run(["lxc-cgroup", "-P", paths.lxc_path, "-n", str(vmid), "cpuset.cpus"], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    return parse_cpu_list(result.stdout)


def running_cpusets(paths: Paths, exclude: int | None = None) -> dict[int, list[int]]:
    """Return the CPUs of each running container of *paths*, read from its cgroup."""
    cpusets = {}
    for vmid in sorted(running_vmids(paths)):
        if vmid == exclude:
            continue
        cpus = read_cpuset(paths, vmid)
        if cpus is not None:
            cpusets[vmid] = cpus
    return cpusets


def choose_cpus(cores: int, host_cpus: int, busy: dict[int, list[int]]) -> list[int] | None:
    """Return the *cores* least used CPUs (lowest number first on ties), None for all of them."""
    if not cores or cores >= host_cpus:
        return None
    load = _cpu_load(host_cpus, busy.values())
    ranked = sorted(load, key=lambda cpu: (load[cpu], cpu))
    return sorted(ranked[:cores])


def _cpu_load(host_cpus: int, cpusets) -> dict[int, int]:
    """Count the containers on each CPU; a container on every CPU counts on none."""
    load = {cpu: 0 for cpu in range(host_cpus)}
    for cpus in cpusets:
        if len(cpus) < host_cpus:
            for cpu in cpus:
                if cpu in load:
                    load[cpu] += 1
    return load


def plan_rebalance(cores: dict[int, int], current: dict[int, list[int]], host_cpus: int) -> dict[int, list[int]]:
    """Return the CPUs each container of *cores* should use, moving as few as possible.

    Containers are visited in id order. Each one in turn is taken off its
    CPUs and given the *cores* least used CPUs, its current CPUs first on
    ties, so a placement that is already even stays as it is.
    """
    placement = {vmid: list(current.get(vmid, [])) for vmid in cores}
    for vmid in sorted(cores):
        mine = set(placement[vmid])
        others = [cpus for other, cpus in placement.items() if other != vmid]
        load = _cpu_load(host_cpus, others)
        ranked = sorted(load, key=lambda cpu: (load[cpu], cpu not in mine, cpu))
        placement[vmid] = sorted(ranked[:cores[vmid]])
    return placement


def place(paths: Paths, vmid: int, cores: int | None) -> str | None:
    """Return the cpuset for a container about to start, as a kernel CPU list."""
    host_cpus = os.cpu_count() or 1
    if not cores or cores >= host_cpus:
        return None
    busy = {other: cpus for other, cpus in _restricted_cpusets(paths, host_cpus).items() if other != vmid}
    cpus = choose_cpus(cores, host_cpus, busy)
    return format_cpu_list(cpus) if cpus else None


def restricted_cores(paths: Paths, vmids, host_cpus: int) -> dict[int, int]:
    """Return ``cores`` of each container in *vmids* that is limited to fewer CPUs than the host has."""
    from pct.config.format import load_config
    from pct.config.model import settings_from_config

    cores = {}
    for vmid in vmids:
        try:
            settings = settings_from_config(load_config(paths, vmid), vmid)
        except PctError:
            continue  # a config removed or broken meanwhile has nothing to place
        if settings.cores and settings.cores < host_cpus:
            cores[vmid] = settings.cores
    return cores


def _restricted_cpusets(paths: Paths, host_cpus: int) -> dict[int, list[int]]:
    cpusets = {}
    for vmid in restricted_cores(paths, running_vmids(paths), host_cpus):
        cpus = read_cpuset(paths, vmid)
        if cpus is not None:
            cpusets[vmid] = cpus
    return cpusets


def rebalance(paths: Paths) -> dict[int, list[int]]:
    """Move running containers with ``cores`` onto the least used CPUs; return the moves made.

    Each new cpuset is written to the container's ``cpuset.cpus`` at once. A
    write the kernel rejects is logged and the other containers still move.
    """
    host_cpus = os.cpu_count() or 1
    with _balancer_lock(paths):
        cores = restricted_cores(paths, running_vmids(paths), host_cpus)
        current = {vmid: cpus for vmid in cores if (cpus := read_cpuset(paths, vmid)) is not None}
        cores = {vmid: count for vmid, count in cores.items() if vmid in current}
        moves = {}
        for vmid, cpus in plan_rebalance(cores, current, host_cpus).items():
            if cpus == sorted(current[vmid]):
                continue
            if _write_cpuset(paths, vmid, format_cpu_list(cpus)):
                moves[vmid] = cpus
        return moves


def _write_cpuset(paths: Paths, vmid: int, cpu_list: str) -> bool:
    result = run(["lxc-cgroup", "-P", paths.lxc_path, "-n", str(vmid), "cpuset.cpus", cpu_list], check=False)
    if result.returncode != 0:
        # A container that stopped meanwhile, or child cgroups of the guest
        # on CPUs outside the new set (cgroup v1 rejects that with EBUSY).
        log.warning("CT %s: unable to move to CPUs %s: %s", vmid, cpu_list, (result.stderr or "").strip())
        return False
    log.info("CT %s: moved to CPUs %s", vmid, cpu_list)
    return True


def rebalance_quietly(paths: Paths) -> None:
    """Rebalance, logging instead of raising: a start or stop must not fail because of it."""
    try:
        rebalance(paths)
    except PctError as exc:
        log.warning("CPU rebalancing failed: %s", exc.message)


@contextlib.contextmanager
def _balancer_lock(paths: Paths) -> Iterator[None]:
    """Hold an exclusive flock so that two rebalancing runs of one root do not interleave."""
    lock_path = paths.lock_dir / BALANCER_LOCK
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rebalance_after_stop(paths: Paths, vmid: int, timeout: float = STOP_WAIT_SECONDS) -> None:
    """Wait until the LXC monitor of *vmid* is gone, then rebalance the others.

    The post-stop hook starts this in the background, because the monitor
    waits for the hook and the stopped container must not count.
    """
    deadline = time.monotonic() + timeout
    while vmid in running_vmids(paths) and time.monotonic() < deadline:
        time.sleep(STOP_POLL_SECONDS)
    # A root removed meanwhile (a test's root, say) has nothing to place,
    # and taking the lock would create its directories again.
    if not paths.lxc_conf_dir.is_dir():
        return
    rebalance_quietly(paths)


def main(argv: list[str]) -> int:
    """Run ``python -m pct.runtime.cpusets --after-stop VMID``, as the post-stop hook does."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if len(argv) != 2 or argv[0] != "--after-stop" or not argv[1].isdigit():
        print("usage: python -m pct.runtime.cpusets --after-stop VMID", file=sys.stderr)
        return 2
    rebalance_after_stop(Paths(), int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
