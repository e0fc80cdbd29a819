"""pveam build debian: a real debootstrap build from the host's Debian mirror (slow)."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.debian


def archive_members(archive) -> dict[str, str]:
    """Return each member of a zstd tar mapped to its ``tar -tv`` line (numeric owners)."""
    listing = subprocess.run(["tar", "--zstd", "--numeric-owner", "-tvf", str(archive)], check=True,
                             capture_output=True, text=True).stdout
    members = {}
    for line in listing.splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0]
        members[name.removeprefix("./")] = line
    return members


def read_member(archive, name: str) -> str:
    return subprocess.run(["tar", "--zstd", "-xOf", str(archive), f"./{name}"], check=True,
                          capture_output=True, text=True).stdout


def test_build_debian_standard(host):
    result = host.pct("build", "debian", tool="pveam", timeout=3600)
    volid = result.stdout.strip()
    assert volid.startswith("local:vztmpl/debian-12-standard_12.")
    archive = host.root / "var/lib/vz/template/cache" / volid.split("/", 1)[1]
    members = archive_members(archive)

    for binary in ("usr/sbin/sshd", "usr/sbin/cron", "sbin/ifup", "usr/bin/ip", "usr/sbin/locale-gen",
                   "usr/bin/less", "bin/nano", "etc/ssl/certs/ca-certificates.crt", "lib/systemd/systemd"):
        assert binary in members or binary.replace("sbin/", "usr/sbin/", 1) in members \
            or "usr/" + binary in members, binary
    assert not [name for name in members if name.startswith("etc/ssh/ssh_host_")]
    assert [name for name in members if name.startswith("var/lib/apt/lists/") and "_" in name] == []
    assert [name for name in members if name.startswith("var/log/") and ".log" in name] == []
    assert read_member(archive, "etc/machine-id") == ""
    assert members["etc/hostname"].startswith("-rw-r--r-- ")
    assert " 0/0 " in members["etc/passwd"]

    available = host.pct("available", tool="pveam").stdout
    assert f"system          {archive.name}\n" == available
