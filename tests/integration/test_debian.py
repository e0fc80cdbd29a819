"""The main job on a real distribution: a Debian 12 container from the debootstrap template."""

import json
import socket
import subprocess
import time

import pytest

from conftest import _mounts_below

pytestmark = pytest.mark.debian


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def ssh_banner(address: str) -> bytes:
    try:
        with socket.create_connection((address, 22), timeout=2) as connection:
            return connection.recv(32)
    except OSError:
        return b""


def test_debian_container_boots_configured(host, debian_template, bridge, tmp_path):
    vmid = host.new_vmid()
    address = bridge.address(10)
    keys = tmp_path / "keys.pub"
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBZg5pEVgh0HpcbRqVmnCg6Nf9Sr5mYzA0hh8S2qe7Kz test@pct\n")
    host.pct("create", vmid, str(debian_template), "--hostname", "deb-test", "--memory", "384",
             "--swap", "128", "--cores", "1", "--searchdomain", "example.test", "--nameserver", bridge.host_ip,
             "--net0", f"name=eth0,bridge={bridge.name},ip={address}/24,gw={bridge.host_ip}",
             "--password", "s3cret-pass", "--ssh-public-keys", str(keys), "--start", "1")

    def systemd_state():
        result = host.pct("exec", vmid, "--", "systemctl", "is-system-running", check=False)
        return result.stdout.strip()

    assert wait_for(lambda: systemd_state() in ("running", "degraded"))
    status = json.loads(host.pct("status", vmid, "--verbose", "--output-format", "json").stdout)
    assert status["mem"] > 8 * 1024 * 1024, "memory use of a booted systemd guest looks too small"
    assert status["cputime"] > 0
    assert host.pct("exec", vmid, "--", "hostname").stdout.strip() == "deb-test"
    assert host.pct("exec", vmid, "--", "hostname", "-f").stdout.strip() == "deb-test.example.test"
    inet = host.pct("exec", vmid, "--", "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert f"inet {address}/24" in inet
    limit = host.pct("exec", vmid, "--", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout
    assert int(limit) == 384 * 1024 * 1024
    assert host.pct("exec", vmid, "--", "nproc").stdout.strip() == "1"
    resolv = host.pct("exec", vmid, "--", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {bridge.host_ip}" in resolv
    assert "search example.test" in resolv

    shadow = host.pct("exec", vmid, "--", "getent", "shadow", "root").stdout
    assert shadow.startswith("root:$6$")
    authorized = host.pct("exec", vmid, "--", "cat", "/root/.ssh/authorized_keys").stdout
    assert "test@pct" in authorized

    assert wait_for(lambda: ssh_banner(address).startswith(b"SSH-2.0-OpenSSH"))

    host.pct("shutdown", vmid, "--timeout", "60")
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert _mounts_below(host.root) == []
    host.pct("destroy", vmid)
    assert host.images() == []


def test_debian_host_keys_are_unique(host, debian_template):
    fingerprints = []
    for _ in range(2):
        vmid = host.new_vmid()
        host.pct("create", vmid, str(debian_template), "--unprivileged", "0")
        image = host.root / f"var/lib/vz/images/{vmid}/vm-{vmid}-disk-0.raw"
        mount_point = host.root / f"mnt{vmid}"
        mount_point.mkdir()
        subprocess.run(["mount", "-o", "loop,ro", str(image), str(mount_point)], check=True)
        try:
            key = mount_point / "etc/ssh/ssh_host_ed25519_key.pub"
            fingerprints.append(key.read_text().split()[1])
        finally:
            subprocess.run(["umount", str(mount_point)], check=True)
    assert fingerprints[0] != fingerprints[1]
