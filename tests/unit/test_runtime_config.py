"""LXC config generation and cgroup keys for both cgroup layouts."""

from pathlib import Path

from pct.config.format import parse_config
from pct.config.model import settings_from_config
from pct.paths import Paths
from pct.runtime.cgroups import CgroupLayout, cpuset_for, detect_layout, limit_keys
from pct.runtime.lxcconf import generate_lxc_config

CONFIG = """arch: amd64
cores: 2
cpulimit: 0.5
cpuunits: 512
hostname: web
memory: 256
net0: name=eth0,bridge=vmbr9,hwaddr=BC:24:11:00:00:01,ip=10.0.0.2/24,gw=10.0.0.1,mtu=1400,type=veth
net1: name=eth1,bridge=vmbr9,hwaddr=BC:24:11:00:00:02,ip=dhcp,link_down=1,type=veth
ostype: debian
rootfs: local:100/vm-100-disk-0.raw,size=4G
swap: 128
unprivileged: 1
lxc.cgroup.memory.limit_in_bytes = 1
lxc.mount.entry: /srv srv none bind 0 0
"""


def settings():
    return settings_from_config(parse_config(CONFIG, 100), 100)


def test_v1_limits():
    keys = dict(limit_keys(settings(), CgroupLayout(unified=False, has_memsw=True), host_cpus=4))
    assert keys["lxc.cgroup.memory.limit_in_bytes"] == str(256 << 20)
    assert keys["lxc.cgroup.memory.memsw.limit_in_bytes"] == str((256 + 128) << 20)
    assert keys["lxc.cgroup.cpu.cfs_quota_us"] == "50000"
    assert keys["lxc.cgroup.cpu.cfs_period_us"] == "100000"
    assert keys["lxc.cgroup.cpu.shares"] == "512"
    assert keys["lxc.cgroup.cpuset.cpus"] == "0-1"


def test_v1_without_swap_accounting_sets_no_memsw():
    keys = dict(limit_keys(settings(), CgroupLayout(unified=False, has_memsw=False), host_cpus=4))
    assert "lxc.cgroup.memory.memsw.limit_in_bytes" not in keys


def test_v2_limits():
    keys = dict(limit_keys(settings(), CgroupLayout(unified=True), host_cpus=4))
    assert keys["lxc.cgroup2.memory.max"] == str(256 << 20)
    assert keys["lxc.cgroup2.memory.swap.max"] == str(128 << 20)
    assert keys["lxc.cgroup2.cpu.max"] == "50000 100000"
    assert keys["lxc.cgroup2.cpu.weight"] == "512"
    assert keys["lxc.cgroup2.cpuset.cpus"] == "0-1"


def test_cpuset_uses_all_cpus_when_cores_exceed_host():
    assert cpuset_for(8, 2) is None
    assert cpuset_for(1, 2) == "0"
    assert cpuset_for(None, 2) is None


def test_detect_layout_from_kernel_tree(tmp_path):
    unified = tmp_path / "v2"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpu memory pids\n")
    assert detect_layout(unified).unified

    hybrid = tmp_path / "v1"
    (hybrid / "memory").mkdir(parents=True)
    (hybrid / "memory/memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    layout = detect_layout(hybrid)
    assert not layout.unified
    assert layout.has_memsw


def test_generated_config(tmp_path):
    text = generate_lxc_config(settings(), Paths(tmp_path), CgroupLayout(unified=False, has_memsw=True), "debian")
    lines = text.splitlines()
    assert "lxc.uts.name = web" in lines
    assert f"lxc.rootfs.path = {tmp_path}/var/lib/lxc/100/rootfs" in lines
    assert "lxc.idmap = u 0 100000 65536" in lines
    assert "lxc.net.0.veth.pair = veth100i0" in lines
    assert "lxc.net.0.link = vmbr9" in lines
    assert "lxc.net.0.hwaddr = BC:24:11:00:00:01" in lines
    assert "lxc.net.0.mtu = 1400" in lines
    assert "lxc.net.0.flags = up" in lines
    assert "lxc.net.1.flags = up" not in lines
    assert "lxc.tty.max = 2" in lines
    assert any(line.startswith("lxc.hook.post-stop = ") for line in lines)


def test_raw_keys_come_last_in_order(tmp_path):
    text = generate_lxc_config(settings(), Paths(tmp_path), CgroupLayout(unified=False), "debian")
    lines = text.splitlines()
    assert lines[-2:] == ["lxc.cgroup.memory.limit_in_bytes = 1", "lxc.mount.entry = /srv srv none bind 0 0"]
    assert lines.index(f"lxc.cgroup.memory.limit_in_bytes = {256 << 20}") < len(lines) - 2


def test_privileged_has_no_idmap(tmp_path):
    config = parse_config(CONFIG.replace("unprivileged: 1", "unprivileged: 0"), 100)
    text = generate_lxc_config(settings_from_config(config, 100), Paths(tmp_path), CgroupLayout(False), None)
    assert "lxc.idmap" not in text
    assert "userns.conf" not in text


def test_raw_key_override_warns(tmp_path, caplog):
    generate_lxc_config(settings(), Paths(tmp_path), CgroupLayout(unified=False), "debian")
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warnings == ["CT 100: raw key 'lxc.cgroup.memory.limit_in_bytes' overrides a generated value"]
