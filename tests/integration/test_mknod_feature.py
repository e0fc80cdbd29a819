"""``features: mknod=1``: unprivileged containers create safe device nodes through pct's seccomp proxy."""

import os

import pytest


def start(host, template, features="mknod=1"):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(template), "--memory", "96", "--unprivileged", "1", "--features", features)
    host.pct("start", vmid)
    return vmid


def guest(host, vmid, *argv, check=True):
    return host.pct("exec", vmid, "--", *argv, check=check)


def test_mknod_of_allowed_device(host, busybox_template):
    # /root is on the root file system: a node on a tmpfs that the guest
    # mounted itself (/tmp here) cannot be opened, as the kernel treats file
    # systems mounted in a user namespace as nodev.
    vmid = start(host, busybox_template)
    guest(host, vmid, "busybox", "mknod", "-m", "0640", "/root/null", "c", "1", "3")

    listing = guest(host, vmid, "ls", "-ln", "/root/null").stdout.split()
    assert listing[0] == "crw-r-----"
    assert listing[2:4] == ["0", "0"]
    assert listing[4:6] == ["1,", "3"]
    assert guest(host, vmid, "sh", "-c", "echo data > /root/null && cat /root/null").stdout == ""


def test_mknod_relative_to_working_directory(host, busybox_template):
    vmid = start(host, busybox_template)
    guest(host, vmid, "sh", "-c", "mkdir -p /srv/nodes && cd /srv/nodes && busybox mknod zero c 1 5")
    assert guest(host, vmid, "head", "-c", "4", "/srv/nodes/zero").stdout == "\0\0\0\0"


@pytest.mark.parametrize("major,minor", [("1", "1"), ("5", "1"), ("7", "0"), ("10", "229")])
def test_mknod_of_other_device_is_denied(host, busybox_template, major, minor):
    vmid = start(host, busybox_template)
    result = guest(host, vmid, "busybox", "mknod", "/tmp/node", "c", major, minor, check=False)
    assert result.returncode != 0
    assert "Operation not permitted" in result.stderr
    assert guest(host, vmid, "test", "-e", "/tmp/node", check=False).returncode != 0


def as_nobody(host, vmid, command):
    return guest(host, vmid, "busybox", "su", "-s", "/bin/sh", "-c", command, "nobody", check=False)


def test_mknod_respects_directory_permissions(host, busybox_template):
    vmid = start(host, busybox_template)
    guest(host, vmid, "sh", "-c", "mkdir -p /srv/locked /srv/open && chmod 0755 /srv/locked && chmod 1777 /srv/open")

    denied = as_nobody(host, vmid, "busybox mknod /srv/locked/null c 1 3")
    assert denied.returncode != 0
    assert "Permission denied" in denied.stderr
    assert guest(host, vmid, "test", "-e", "/srv/locked/null", check=False).returncode != 0

    allowed = as_nobody(host, vmid, "busybox mknod /srv/open/null c 1 3")
    assert allowed.returncode == 0, allowed.stderr
    assert guest(host, vmid, "ls", "-ln", "/srv/open/null").stdout.split()[2:4] == ["65534", "65534"]


def test_mknod_through_guest_symlink_stays_inside(host, busybox_template):
    # The symlink points at the host's /etc when read on the host; inside the
    # container it names the container's own /etc.
    vmid = start(host, busybox_template)
    guest(host, vmid, "ln", "-s", "/etc", "/tmp/etc-link")
    guest(host, vmid, "busybox", "mknod", "/tmp/etc-link/pct-null", "c", "1", "3")
    assert guest(host, vmid, "ls", "-ln", "/etc/pct-null").stdout.startswith("c")
    assert not os.path.exists("/etc/pct-null")


def test_without_feature_mknod_fails(host, busybox_template):
    vmid = start(host, busybox_template, features="nesting=0")
    result = guest(host, vmid, "busybox", "mknod", "/tmp/null", "c", "1", "3", check=False)
    assert result.returncode != 0
