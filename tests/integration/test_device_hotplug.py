"""Hot plug of ``dev[n]`` devices into running containers, privileged and unprivileged."""

import os
import subprocess

import pytest


def start(host, template, unprivileged):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(template), "--memory", "96", "--unprivileged", unprivileged)
    host.pct("start", vmid)
    return vmid


def guest(host, vmid, *argv, check=True):
    return host.pct("exec", vmid, "--", *argv, check=check)


def can_write(host, vmid, path):
    write = guest(host, vmid, "dd", "if=/dev/zero", f"of={path}", "bs=512", "count=1", "conv=notrunc",
                  check=False)
    return write.returncode == 0


def can_read(host, vmid, path):
    return guest(host, vmid, "dd", f"if={path}", "of=/dev/null", "bs=512", "count=1", check=False).returncode == 0


def mounted_in_guest(host, vmid, path):
    return any(line.split()[1] == path for line in guest(host, vmid, "cat", "/proc/mounts").stdout.splitlines())


@pytest.mark.parametrize("unprivileged", ["1", "0"])
def test_device_hot_add_and_remove(host, busybox_template, loop_device, unprivileged):
    vmid = start(host, busybox_template, unprivileged)
    host.pct("set", vmid, "--dev0", f"{loop_device},uid=0,gid=6,mode=0640,deny-write=1")

    text = host.conf_text(vmid)
    assert f"dev0: {loop_device}," in text
    assert "[pve:pending]" not in text
    listing = guest(host, vmid, "ls", "-ln", loop_device).stdout.split()
    assert listing[0] == "brw-r-----"
    assert listing[2:4] == ["0", "6"]
    assert can_read(host, vmid, loop_device)
    assert not can_write(host, vmid, loop_device)

    host.pct("set", vmid, "--dev0", f"{loop_device},mode=0660")
    assert guest(host, vmid, "ls", "-ln", loop_device).stdout.split()[0] == "brw-rw----"
    assert can_write(host, vmid, loop_device)

    host.pct("set", vmid, "--delete", "dev0")
    assert "dev0" not in host.conf_text(vmid)
    assert guest(host, vmid, "test", "-e", loop_device, check=False).returncode != 0
    assert not mounted_in_guest(host, vmid, loop_device)
    assert not (host.root / f"var/lib/lxc/{vmid}/devices/dev0").exists()


def test_removed_device_is_denied_again(host, busybox_template, loop_device):
    # A privileged container may mknod any node (LXC allows 'b *:* m'), so
    # only the devices cgroup keeps it from the device.
    vmid = start(host, busybox_template, "0")
    number = os.stat(loop_device).st_rdev
    node = "/tmp/loop-node"
    guest(host, vmid, "busybox", "mknod", node, "b", str(os.major(number)), str(os.minor(number)))
    assert not can_read(host, vmid, node)

    host.pct("set", vmid, "--dev0", loop_device)
    assert can_read(host, vmid, node)
    assert can_write(host, vmid, node)

    host.pct("set", vmid, "--delete", "dev0")
    assert not can_read(host, vmid, node)
    devices = subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid),
                              "devices.list"], capture_output=True, text=True, check=True).stdout
    assert f"b {os.major(number)}:{os.minor(number)} " not in devices


def test_removing_fuse_device_keeps_base_rule(host, busybox_template):
    # LXC's common config allows /dev/fuse (c 10:229); removing a dev[n] for
    # it must leave that rule in place.
    if not os.path.exists("/dev/fuse"):
        pytest.skip("this host has no /dev/fuse")
    vmid = start(host, busybox_template, "0")
    host.pct("set", vmid, "--dev0", "/dev/fuse")
    host.pct("set", vmid, "--delete", "dev0")
    devices = subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid),
                              "devices.list"], capture_output=True, text=True, check=True).stdout
    assert "c 10:229 rwm" in devices.splitlines()


@pytest.mark.parametrize("path,message", [("/dev/shm", "dev0: '/dev/shm' is not a device node"),
                                           ("/dev/pct-missing", "dev0: device '/dev/pct-missing' does not exist")])
def test_hot_add_of_non_device_changes_nothing(host, busybox_template, path, message):
    vmid = start(host, busybox_template, "1")
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--dev0", path, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert host.conf_text(vmid) == before
    assert host.pct("status", vmid).stdout == "status: running\n"
    assert not mounted_in_guest(host, vmid, path)
    assert not (host.root / f"var/lib/lxc/{vmid}/devices/dev0").exists()


@pytest.mark.parametrize("unprivileged", ["1", "0"])
def test_hot_add_onto_guest_symlink_is_refused(host, busybox_template, loop_device, unprivileged):
    vmid = start(host, busybox_template, unprivileged)
    guest(host, vmid, "ln", "-s", "/etc/hostname", loop_device)
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--dev0", loop_device, check=False)
    assert result.returncode != 0
    assert f"'{loop_device}' is a symlink inside the container" in result.stderr
    assert host.conf_text(vmid) == before
    assert not mounted_in_guest(host, vmid, loop_device)
    assert not mounted_in_guest(host, vmid, "/etc/hostname")
    assert guest(host, vmid, "busybox", "readlink", loop_device).stdout.strip() == "/etc/hostname"


def test_hot_add_reaches_guest_child_cgroup(host, busybox_template, loop_device):
    # cgroup v1 does not pass an allow rule down to existing child cgroups,
    # such as the slices systemd makes inside the container.
    vmid = start(host, busybox_template, "0")
    number = os.stat(loop_device).st_rdev
    node = "/tmp/loop-node"
    guest(host, vmid, "busybox", "mknod", node, "b", str(os.major(number)), str(os.minor(number)))
    guest(host, vmid, "mkdir", "/sys/fs/cgroup/devices/child")
    read_in_child = ("echo $$ > /sys/fs/cgroup/devices/child/cgroup.procs && "
                     f"dd if={node} of=/dev/null bs=512 count=1")
    assert guest(host, vmid, "sh", "-c", read_in_child, check=False).returncode != 0

    host.pct("set", vmid, "--dev0", loop_device)
    assert guest(host, vmid, "sh", "-c", read_in_child, check=False).returncode == 0

    host.pct("set", vmid, "--delete", "dev0")
    assert guest(host, vmid, "sh", "-c", read_in_child, check=False).returncode != 0


@pytest.fixture
def null_alias():
    """A host node with the number of /dev/null under another name, below /dev as dev[n] requires."""
    path = f"/dev/pct-test-null-{os.getpid()}"
    os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
    yield path
    os.unlink(path)


@pytest.mark.parametrize("unprivileged", ["1", "0"])
def test_failed_hot_add_keeps_base_devices(host, busybox_template, null_alias, unprivileged):
    vmid = start(host, busybox_template, unprivileged)
    guest(host, vmid, "ln", "-s", "/etc/hostname", null_alias)

    result = host.pct("set", vmid, "--dev1", null_alias, check=False)

    assert result.returncode != 0
    assert "is a symlink inside the container" in result.stderr
    assert result.stderr.count(f"CT {vmid}: ") == 1
    assert guest(host, vmid, "true").stderr == ""
    assert can_read(host, vmid, "/dev/null")


@pytest.mark.parametrize("path", ["/dev/null", "/dev/full"])
def test_unprivileged_removal_keeps_base_devices(host, busybox_template, path):
    vmid = start(host, busybox_template, "1")
    host.pct("set", vmid, "--dev0", f"{path},mode=0666,deny-write=1")
    host.pct("set", vmid, "--dev0", f"{path},mode=0666")
    host.pct("set", vmid, "--delete", "dev0")

    assert guest(host, vmid, "true").stderr == ""
    assert can_read(host, vmid, "/dev/null")
    assert can_read(host, vmid, "/dev/full")
    assert guest(host, vmid, "sh", "-c", "echo x > /dev/null").returncode == 0
