"""Apply option changes to a running container: cgroup limits, NICs, guest files.

Each function takes the settings before and after the change; the caller
writes the config only once the change is in effect.
"""

from __future__ import annotations

import logging
import os

from pct.errors import CommandError, PctError
from pct.paths import Paths
from pct.run import run
from pct.runtime.cgroups import CFS_PERIOD_US, MIB, CgroupLayout, cpuset_for, detect_layout, v1_shares
from pct.runtime.lxcconf import veth_name
from pct.runtime.network import check_bridge, set_rate_limit
from pct.runtime.state import init_pid

log = logging.getLogger(__name__)

LIMIT_KEYS = frozenset({"memory", "swap", "cores", "cpulimit", "cpuunits"})
GUEST_FILE_KEYS = frozenset({"hostname", "nameserver", "searchdomain"})


def apply_limits(paths: Paths, old, new, layout: CgroupLayout | None = None) -> None:
    """Write the memory and CPU limits of *new* to the running container's cgroups."""
    from pct.runtime.cpusets import place

    layout = layout or detect_layout()
    cores_changed = new.cores != old.cores
    cpuset = place(paths, new.vmid, new.cores) if cores_changed else None
    for name, value in limit_writes(old, new, layout, cpuset_override=cpuset):
        if name == "cpuset.cpus" and not cores_changed:
            continue  # keep the CPUs the balancer chose
        set_cgroup(paths, new.vmid, name, value)


def limit_writes(old, new, layout: CgroupLayout, host_cpus: int | None = None,
                 cpuset_override: str | None = None) -> list[tuple[str, str]]:
    """Return (cgroup file, value) pairs to write, in an order the kernel accepts.

    With cgroup v1 the memory+swap limit may never be below the memory limit,
    so when memory grows the memsw limit is raised first, and lowered last
    when it shrinks.
    """
    host_cpus = host_cpus or os.cpu_count() or 1
    cpuset = cpuset_for(new.cores, host_cpus) or f"0-{host_cpus - 1}"
    if cpuset_override is not None:
        cpuset = cpuset_override
    memory = new.memory * MIB
    swap = new.swap * MIB

    if layout.unified:
        quota = "max" if not new.cpulimit else str(round(new.cpulimit * CFS_PERIOD_US))
        weight = min(max(new.cpuunits if new.cpuunits is not None else 100, 1), 10000)
        return [("memory.max", str(memory)), ("memory.swap.max", str(swap)),
                ("cpu.max", f"{quota} {CFS_PERIOD_US}"), ("cpu.weight", str(weight)),
                ("cpuset.cpus", cpuset)]

    memory_writes = [("memory.limit_in_bytes", str(memory))]
    if layout.has_memsw:
        memsw = ("memory.memsw.limit_in_bytes", str(memory + swap))
        growing = (new.memory + new.swap) > (old.memory + old.swap)
        memory_writes = [memsw] + memory_writes if growing else memory_writes + [memsw]
    quota = "-1" if not new.cpulimit else str(round(new.cpulimit * CFS_PERIOD_US))
    shares = v1_shares(new.cpuunits if new.cpuunits is not None else 1024)
    return memory_writes + [("cpu.cfs_period_us", str(CFS_PERIOD_US)), ("cpu.cfs_quota_us", quota),
                            ("cpu.shares", str(shares)), ("cpuset.cpus", cpuset)]


def set_cgroup(paths: Paths, vmid: int, name: str, value: str) -> None:
    """Write *value* to the cgroup file *name* of the running container through ``lxc-cgroup``."""
    try:
        run(["lxc-cgroup", "-P", paths.lxc_path, "-n", str(vmid), "--", name, value])
    except CommandError as exc:
        raise PctError(f"CT {vmid}: unable to set {name} to {value}: {exc.message}", vmid) from exc


def read_cgroup(paths: Paths, vmid: int, name: str) -> str:
    """Return the value of one cgroup file of the running container, as the kernel reports it."""
    return run(["lxc-cgroup", "-P", paths.lxc_path, "-n", str(vmid), name]).stdout.strip()


# -- network devices ---------------------------------------------------------

def _container_pid(paths: Paths, vmid: int) -> int:
    pid = init_pid(paths, vmid)
    if pid is None:
        raise PctError(f"CT {vmid} not running", vmid)
    return pid


def _in_netns(pid: int, *argv: str) -> None:
    run(["nsenter", f"--target={pid}", "--net", "--", *argv])


def add_nic(paths: Paths, vmid: int, net) -> None:
    """Create the veth pair of *net*, move its peer into the container and configure it."""
    check_bridge(vmid, net)
    pid = _container_pid(paths, vmid)
    host_side = veth_name(vmid, net.index)
    peer = f"vethtmp{vmid}i{net.index}"[:15]

    run(["ip", "link", "add", host_side, "type", "veth", "peer", "name", peer])
    try:
        if net.mtu:
            run(["ip", "link", "set", host_side, "mtu", str(net.mtu)])
            run(["ip", "link", "set", peer, "mtu", str(net.mtu)])
        if net.hwaddr:
            run(["ip", "link", "set", peer, "address", net.hwaddr])
        if net.bridge:
            run(["ip", "link", "set", host_side, "master", net.bridge])
        if net.tag:
            run(["bridge", "vlan", "del", "dev", host_side, "vid", "1"], check=False)
            run(["bridge", "vlan", "add", "dev", host_side, "vid", str(net.tag), "pvid", "untagged"])
        run(["ip", "link", "set", peer, "netns", str(pid)])
        _in_netns(pid, "ip", "link", "set", peer, "name", net.name)
        if not net.link_down:
            run(["ip", "link", "set", host_side, "up"])
            _in_netns(pid, "ip", "link", "set", net.name, "up")
        _add_addresses(pid, net)
        set_rate_limit(vmid, net, pid)
    except BaseException:
        run(["ip", "link", "del", host_side], check=False)
        raise


def _add_addresses(pid: int, net) -> None:
    if net.ip and "/" in net.ip:
        _in_netns(pid, "ip", "addr", "add", net.ip, "dev", net.name)
        if net.gw:
            _in_netns(pid, "ip", "route", "replace", "default", "via", net.gw, "dev", net.name)
    if net.ip6 and "/" in net.ip6:
        _in_netns(pid, "ip", "-6", "addr", "add", net.ip6, "dev", net.name)
        if net.gw6:
            _in_netns(pid, "ip", "-6", "route", "replace", "default", "via", net.gw6, "dev", net.name)


def remove_nic(paths: Paths, vmid: int, net) -> None:
    """Delete the veth pair of *net*; removing the host side removes the guest side too."""
    host_side = veth_name(vmid, net.index)
    if os.path.exists(f"/sys/class/net/{host_side}"):
        run(["ip", "link", "del", host_side])


def change_nic(paths: Paths, vmid: int, old, new) -> None:
    """Apply a changed ``net[n]``: move between bridges and set MTU and link state in place.

    A new name, MAC address or address recreates the device.
    """
    host_side = veth_name(vmid, new.index)
    in_place = (old.name, old.hwaddr, old.ip, old.gw, old.ip6, old.gw6, old.tag) == \
        (new.name, new.hwaddr, new.ip, new.gw, new.ip6, new.gw6, new.tag)
    if not in_place or not os.path.exists(f"/sys/class/net/{host_side}"):
        remove_nic(paths, vmid, old)
        add_nic(paths, vmid, new)
        return

    if new.bridge != old.bridge:
        check_bridge(vmid, new)
        if new.bridge:
            run(["ip", "link", "set", host_side, "master", new.bridge])
        else:
            run(["ip", "link", "set", host_side, "nomaster"])
    if new.mtu != old.mtu:
        pid = _container_pid(paths, vmid)
        mtu = str(new.mtu or 1500)
        run(["ip", "link", "set", host_side, "mtu", mtu])
        _in_netns(pid, "ip", "link", "set", new.name, "mtu", mtu)
    if new.link_down != old.link_down:
        run(["ip", "link", "set", host_side, "down" if new.link_down else "up"])
    if new.rate != old.rate:
        set_rate_limit(vmid, new, _container_pid(paths, vmid))


def set_live_hostname(paths: Paths, vmid: int, hostname: str) -> None:
    """Set the kernel host name in the container's UTS namespace."""
    pid = _container_pid(paths, vmid)
    run(["nsenter", f"--target={pid}", "--uts", "--", "hostname", hostname.split(".")[0]])
