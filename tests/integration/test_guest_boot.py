"""Real boots of guests set up by the guest setup of a family other than Debian.

An Alpine guest is stood in for by the busybox template with
/etc/alpine-release in place of /etc/debian_version: its init runs busybox
``ifup -a``, which reads the busybox-style interfaces file that the Alpine
setup writes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from pct.appliance.busybox import _lay_out_tree, find_busybox
from pct.run import run

# An address outside the test bridge's subnet, so the container needs the
# extra host route the setup writes for it. Nothing is sent to it: the test
# only reads the routing table.
OFF_LINK_GATEWAY = "192.0.2.1"
IPV6_ADDRESS = "fd42:7063:7400::10"


def build_alpine_busybox_template(output: Path) -> Path:
    """Write a busybox template that detection takes for Alpine 3.20, with a getty applet for inittab."""
    with tempfile.TemporaryDirectory(prefix="pct-alpine-busybox-") as workdir:
        tree = Path(workdir) / "rootfs"
        _lay_out_tree(tree, find_busybox())
        (tree / "etc/debian_version").unlink()
        (tree / "etc/alpine-release").write_text("3.20.3\n")
        (tree / "sbin/getty").symlink_to("../bin/busybox")
        run(["tar", "-czf", str(output), "--numeric-owner", "--owner=0", "--group=0", "-C", str(tree), "."])
    return output


@pytest.fixture(scope="module")
def alpine_template():
    directory = Path(tempfile.mkdtemp(prefix="alpine-template-", dir="/var/tmp"))
    os.chmod(directory, 0o755)
    yield build_alpine_busybox_template(directory / "alpine-busybox-test_3.20-1_amd64.tar.gz")
    subprocess.run(["rm", "-rf", str(directory)], check=False)


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def ping(address: str) -> bool:
    return subprocess.run(["ping", "-c", "1", "-W", "1", address], capture_output=True).returncode == 0


def test_alpine_guest_boots_with_its_address(host, alpine_template, bridge):
    vmid = host.new_vmid()
    address = bridge.address(20)
    net = f"name=eth0,bridge={bridge.name},ip={address}/24,gw={OFF_LINK_GATEWAY},ip6={IPV6_ADDRESS}/64"
    host.pct("create", vmid, str(alpine_template), "--hostname", "alp-boot", "--memory", "96",
             "--searchdomain", "example.test", "--nameserver", bridge.host_ip, "--net0", net)
    assert "ostype: alpine\n" in host.conf_text(vmid)

    host.pct("start", vmid)

    assert wait_for(lambda: ping(address)), "the Alpine guest does not answer on the test bridge"
    interfaces = host.pct("exec", vmid, "--", "cat", "/etc/network/interfaces").stdout
    assert f"\taddress {address}\n\tnetmask 255.255.255.0\n" in interfaces
    assert f"\taddress {IPV6_ADDRESS}\n\tnetmask 64\n" in interfaces
    inet = host.pct("exec", vmid, "--", "ip", "addr", "show", "eth0").stdout
    assert f"inet {address}/24" in inet
    assert f"inet6 {IPV6_ADDRESS}/64" in inet
    routes = host.pct("exec", vmid, "--", "ip", "route").stdout
    assert f"default via {OFF_LINK_GATEWAY} dev eth0" in routes
    assert f"{OFF_LINK_GATEWAY} dev eth0" in routes
    assert host.pct("exec", vmid, "--", "hostname").stdout.strip() == "alp-boot"
    hosts = host.pct("exec", vmid, "--", "cat", "/etc/hosts").stdout
    assert f"{address} alp-boot.example.test alp-boot\n" in hosts
    inittab = host.pct("exec", vmid, "--", "cat", "/etc/inittab").stdout
    assert "tty1::respawn:/sbin/getty 38400 tty1\n" in inittab

    host.pct("stop", vmid)
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    host.pct("destroy", vmid)
    assert host.images() == []
