"""Live cgroup writes for both layouts, in an order the kernel accepts."""

from types import SimpleNamespace

from pct.runtime.cgroups import CgroupLayout
from pct.runtime.hotplug import limit_writes

MIB = 1 << 20


def limits(memory=512, swap=512, cores=None, cpulimit=0.0, cpuunits=None):
    return SimpleNamespace(memory=memory, swap=swap, cores=cores, cpulimit=cpulimit, cpuunits=cpuunits)


def test_v1_growing_memory_raises_memsw_first():
    writes = limit_writes(limits(), limits(memory=1024), CgroupLayout(False, has_memsw=True), host_cpus=4)
    names = [name for name, _ in writes]
    assert names.index("memory.memsw.limit_in_bytes") < names.index("memory.limit_in_bytes")
    assert dict(writes)["memory.memsw.limit_in_bytes"] == str(1536 * MIB)


def test_v1_shrinking_memory_lowers_memsw_last():
    writes = limit_writes(limits(memory=1024), limits(memory=256, swap=0), CgroupLayout(False, has_memsw=True),
                          host_cpus=4)
    names = [name for name, _ in writes]
    assert names.index("memory.limit_in_bytes") < names.index("memory.memsw.limit_in_bytes")
    assert dict(writes)["memory.memsw.limit_in_bytes"] == str(256 * MIB)


def test_v1_removed_limits_are_reset():
    values = dict(limit_writes(limits(cpulimit=1), limits(), CgroupLayout(False, has_memsw=False), host_cpus=4))
    assert values["cpu.cfs_quota_us"] == "-1"
    assert values["cpu.shares"] == "1024"
    assert values["cpuset.cpus"] == "0-3"
    assert "memory.memsw.limit_in_bytes" not in values


def test_v2_values():
    values = dict(limit_writes(limits(), limits(memory=300, swap=20, cores=2, cpulimit=1.5, cpuunits=50),
                               CgroupLayout(True), host_cpus=4))
    assert values["memory.max"] == str(300 * MIB)
    assert values["memory.swap.max"] == str(20 * MIB)
    assert values["cpu.max"] == "150000 100000"
    assert values["cpu.weight"] == "50"
    assert values["cpuset.cpus"] == "0-1"


def test_v2_unlimited_cpu():
    values = dict(limit_writes(limits(cpulimit=2), limits(), CgroupLayout(True), host_cpus=2))
    assert values["cpu.max"] == "max 100000"
    assert values["cpu.weight"] == "100"
