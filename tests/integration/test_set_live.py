"""`pct set` on running containers: live limits and NICs, pending changes, digest."""

import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import NetworkBridge


def start_container(host, template, bridge, *extra):
    vmid = host.new_vmid()
    net = f"name=eth0,bridge={bridge.name},ip={bridge.address(2)}/24,gw={bridge.host_ip}"
    host.pct("create", vmid, str(template), "--memory", "128", "--swap", "64", "--net0", net, *extra)
    host.pct("start", vmid)
    return vmid


def cgroup(host, vmid, name):
    result = subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), name],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def guest(host, vmid, *argv):
    return host.pct("exec", vmid, "--", *argv).stdout


def ping(address):
    return subprocess.run(["ping", "-c", "1", "-W", "1", address], capture_output=True).returncode == 0


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_limits_apply_live(host, busybox_template, bridge):
    vmid = start_container(host, busybox_template, bridge)
    host.pct("set", vmid, "--memory", "256", "--swap", "32", "--cpulimit", "0.5", "--cpuunits", "300",
             "--cores", "1")

    assert int(cgroup(host, vmid, "memory.limit_in_bytes")) == 256 << 20
    assert int(cgroup(host, vmid, "memory.memsw.limit_in_bytes")) == (256 + 32) << 20
    assert cgroup(host, vmid, "cpu.cfs_quota_us") == "50000"
    assert cgroup(host, vmid, "cpu.shares") == "300"
    assert cgroup(host, vmid, "cpuset.cpus") == "0"
    assert int(guest(host, vmid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")) == 256 << 20
    text = host.conf_text(vmid)
    assert "memory: 256\n" in text
    assert "cpulimit: 0.5\n" in text
    assert "[pve:pending]" not in text

    host.pct("set", vmid, "--memory", "64", "--delete", "cpulimit")
    assert int(cgroup(host, vmid, "memory.limit_in_bytes")) == 64 << 20
    assert cgroup(host, vmid, "cpu.cfs_quota_us") == "-1"


def test_pending_change_waits_for_restart(host, busybox_template, bridge):
    vmid = start_container(host, busybox_template, bridge)
    host.pct("set", vmid, "--tty", "4", "--delete", "arch")

    text = host.conf_text(vmid)
    assert "[pve:pending]\n" in text
    assert "tty: 4\n" in text.split("[pve:pending]")[1]
    assert "delete: arch\n" in text

    rows = json.loads(host.pct("pending", vmid, "--output-format", "json").stdout)
    by_key = {row["key"]: row for row in rows}
    assert by_key["tty"] == {"key": "tty", "pending": "4"}
    assert by_key["arch"] == {"key": "arch", "value": "amd64", "delete": 1}
    assert "new tty: 4" in host.pct("pending", vmid).stdout

    assert "tty: 4" in host.pct("config", vmid).stdout
    assert "tty: 4" not in host.pct("config", vmid, "--current").stdout

    host.pct("stop", vmid)
    host.pct("start", vmid)
    text = host.conf_text(vmid)
    assert "[pve:pending]" not in text
    assert "tty: 4\n" in text
    assert "arch:" not in text
    assert "lxc.tty.max = 4" in (host.root / f"var/lib/lxc/{vmid}/config").read_text()


def test_revert_drops_pending(host, busybox_template, bridge):
    vmid = start_container(host, busybox_template, bridge)
    host.pct("set", vmid, "--tty", "3", "--console", "0")
    host.pct("set", vmid, "--revert", "tty")
    text = host.conf_text(vmid)
    assert "tty: 3" not in text
    assert "console: 0\n" in text.split("[pve:pending]")[1]
    host.pct("set", vmid, "--revert", "console")
    assert "[pve:pending]" not in host.conf_text(vmid)


def test_set_on_stopped_folds_pending(host, busybox_template, bridge):
    vmid = start_container(host, busybox_template, bridge)
    host.pct("set", vmid, "--tty", "5")
    host.pct("stop", vmid)
    host.pct("set", vmid, "--memory", "200")
    text = host.conf_text(vmid)
    assert "[pve:pending]" not in text
    assert "tty: 5\n" in text
    assert "memory: 200\n" in text


def test_hostname_changes_live(host, busybox_template, bridge):
    vmid = start_container(host, busybox_template, bridge)
    host.pct("set", vmid, "--hostname", "renamed-live")
    assert guest(host, vmid, "hostname").strip() == "renamed-live"
    assert guest(host, vmid, "cat", "/etc/hostname") == "renamed-live\n"
    assert "renamed-live" in guest(host, vmid, "cat", "/etc/hosts")


def test_nic_hotplug_add_move_remove(host, busybox_template, bridge):
    vmid = start_container(host, busybox_template, bridge)
    second = NetworkBridge(200 + os.getpid() % 40)
    subprocess.run(["ip", "link", "add", second.name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{second.host_ip}/24", "dev", second.name], check=True)
        subprocess.run(["ip", "link", "set", second.name, "up"], check=True)

        host.pct("set", vmid, "--net1", f"name=eth1,bridge={bridge.name},ip={bridge.address(3)}/24")
        assert "10.250" in guest(host, vmid, "ip", "addr", "show", "eth1")
        assert wait_for(lambda: ping(bridge.address(3)))
        assert "eth1" in guest(host, vmid, "cat", "/etc/network/interfaces")
        veth = f"/sys/class/net/veth{vmid}i1/master"
        assert os.path.basename(os.readlink(veth)) == bridge.name

        host.pct("set", vmid, "--net1", f"name=eth1,bridge={second.name},ip={bridge.address(3)}/24")
        assert os.path.basename(os.readlink(veth)) == second.name
        assert "net1: name=eth1,bridge=" + second.name in host.conf_text(vmid)

        host.pct("set", vmid, "--delete", "net1")
        assert not os.path.exists(f"/sys/class/net/veth{vmid}i1")
        result = host.pct("exec", vmid, "--", "ip", "link", "show", "eth1", check=False)
        assert result.returncode != 0
        assert "net1" not in host.conf_text(vmid)
    finally:
        subprocess.run(["ip", "link", "del", second.name], capture_output=True)


def test_nic_hotplug_missing_bridge_changes_nothing(host, busybox_template, bridge):
    vmid = start_container(host, busybox_template, bridge)
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--net1", "name=eth1,bridge=pctnobr9,ip=dhcp", check=False)
    assert result.returncode != 0
    assert "bridge 'pctnobr9' does not exist" in result.stderr
    assert host.conf_text(vmid) == before
    assert not os.path.exists(f"/sys/class/net/veth{vmid}i1")


def test_digest_mismatch_is_refused(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    digest = hashlib.sha1(host.conf_path(vmid).read_bytes()).hexdigest()
    host.pct("set", vmid, "--memory", "300", "--digest", digest)
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--memory", "400", "--digest", digest, check=False)
    assert result.returncode != 0
    assert "digest: detected modified configuration" in result.stderr
    assert host.conf_text(vmid) == before


def test_delete_rootfs_is_refused(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--delete", "rootfs", check=False)
    assert "rootfs: the root file system cannot be removed" in result.stderr
    assert host.conf_text(vmid) == before
