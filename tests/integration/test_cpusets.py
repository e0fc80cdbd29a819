"""CPU placement of containers with ``cores``: spread at start, rebalanced on stop, read from the kernel."""

import os
import subprocess
import time

import pytest

HOST_CPUS = os.cpu_count() or 1

pytestmark = pytest.mark.skipif(not 2 <= HOST_CPUS <= 4, reason="needs a host with 2 to 4 CPUs")


def start(host, template, cores="1"):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(template), "--memory", "64", "--cores", cores)
    host.pct("start", vmid)
    return vmid


def kernel_cpus(host, vmid):
    """Return the CPUs in the container's cpuset.cpus, as the kernel reports them."""
    text = subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "cpuset.cpus"],
                          capture_output=True, text=True, check=True).stdout.strip()
    cpus = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus += list(range(int(first), int(last or first) + 1))
    return cpus


def guest_cpus(host, vmid):
    status = host.pct("exec", vmid, "--", "cat", "/proc/self/status").stdout
    return next(line.split()[1] for line in status.splitlines() if line.startswith("Cpus_allowed_list"))


def placement(host, vmids):
    return {vmid: kernel_cpus(host, vmid) for vmid in vmids}


def spread(cpusets):
    """Return whether no CPU carries two more containers than another."""
    load = [0] * HOST_CPUS
    for cpus in cpusets.values():
        for cpu in cpus:
            load[cpu] += 1
    return max(load) - min(load) <= 1


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_containers_land_on_different_cpus(host, busybox_template):
    first = start(host, busybox_template)
    second = start(host, busybox_template)
    cpus = placement(host, [first, second])
    assert len(cpus[first]) == 1
    assert len(cpus[second]) == 1
    assert cpus[first] != cpus[second]
    assert guest_cpus(host, second) == str(cpus[second][0])

    host.pct("stop", first)
    third = start(host, busybox_template)
    after = placement(host, [second, third])
    assert after[second] == cpus[second]
    assert after[third] != after[second]


def test_stop_rebalances_shared_cpu(host, busybox_template):
    vmids = [start(host, busybox_template) for _ in range(HOST_CPUS + 1)]
    before = placement(host, vmids)
    assert spread(before)
    shared = next(cpus for cpus in before.values() if sum(other == cpus for other in before.values()) == 2)
    alone = next(vmid for vmid, cpus in before.items() if cpus != shared)

    host.pct("stop", alone)
    remaining = [vmid for vmid in vmids if vmid != alone]
    after = placement(host, remaining)
    assert sorted(cpu for cpus in after.values() for cpu in cpus) == list(range(HOST_CPUS))
    for vmid in remaining:
        assert guest_cpus(host, vmid) == str(after[vmid][0])


def test_guest_poweroff_rebalances_through_hook(host, busybox_template):
    vmids = [start(host, busybox_template) for _ in range(HOST_CPUS + 1)]
    before = placement(host, vmids)
    shared = next(cpus for cpus in before.values() if sum(other == cpus for other in before.values()) == 2)
    alone = next(vmid for vmid, cpus in before.items() if cpus != shared)

    host.pct("exec", alone, "--", "poweroff", "-f", check=False)
    assert wait_for(lambda: host.pct("status", alone).stdout == "status: stopped\n")
    remaining = [vmid for vmid in vmids if vmid != alone]
    assert wait_for(lambda: sorted(cpu for cpus in placement(host, remaining).values() for cpu in cpus)
                    == list(range(HOST_CPUS))), (host.root / f"var/lib/lxc/{alone}/cpusets.log").read_text()


def test_rebalance_command_spreads_and_prints(host, busybox_template):
    first = start(host, busybox_template)
    second = start(host, busybox_template)
    for vmid in (first, second):
        subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "cpuset.cpus", "0"],
                       check=True)
    assert placement(host, [first, second]) == {first: [0], second: [0]}

    output = host.pct("cpusets", "--rebalance", "1").stdout
    after = placement(host, [first, second])
    assert after[first] != after[second]
    assert f"{first}: {after[first][0]}" in output.splitlines()
    assert f"{second}: {after[second][0]}" in output.splitlines()
    assert host.pct("cpusets").stdout == output


def test_unrestricted_container_is_not_moved(host, busybox_template):
    unrestricted = start(host, busybox_template, cores=str(HOST_CPUS))
    pinned = start(host, busybox_template)
    host.pct("cpusets", "--rebalance", "1")
    assert kernel_cpus(host, unrestricted) == list(range(HOST_CPUS))
    assert len(kernel_cpus(host, pinned)) == 1
