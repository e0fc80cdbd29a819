"""pct template and pct clone: linked clones on btrfs, full copies anywhere, and bad input."""

import os
import re

import pytest

from storage_fixtures import btrfs  # noqa: F401  (fixture)


def hwaddr(text):
    return re.search(r"hwaddr=([0-9A-F:]+)", text).group(1)


def main_section(text):
    return text.split("\n[")[0]


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_template_and_linked_clone(host, btrfs, bridge, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data",
             "--net0", f"name=eth0,bridge={bridge.name},ip=dhcp", "--hostname", "origin")
    seeded = btrfs.images(vmid) / f"subvol-{vmid}-disk-1/file"
    seeded.write_text("from the template\n")
    os.chown(seeded, 100000, 100000)  # the container's root user

    host.pct("template", vmid)
    text = host.conf_text(vmid)
    assert f"rootfs: btr:{vmid}/basevol-{vmid}-disk-0,size=1G\n" in text
    assert f"mp0: btr:{vmid}/basevol-{vmid}-disk-1,mp=/data\n" in text
    assert "template: 1\n" in text
    with pytest.raises(OSError):
        (btrfs.images(vmid) / f"basevol-{vmid}-disk-1/new").write_text("x")
    assert "is a template" in host.pct("start", vmid, check=False).stderr

    clone = host.new_vmid()
    host.pct("clone", vmid, clone, "--hostname", "copy", "--description", "a linked clone")
    cloned = host.conf_text(clone)
    assert f"rootfs: btr:basevol-{vmid}-disk-0/subvol-{clone}-disk-0,size=1G\n" in cloned
    assert f"mp0: btr:basevol-{vmid}-disk-1/subvol-{clone}-disk-1,mp=/data\n" in cloned
    assert "hostname: copy\n" in cloned
    assert "template" not in cloned
    assert cloned.startswith("# a linked clone\n")
    assert hwaddr(cloned) != hwaddr(text)
    assert btrfs.qgroup_limit(f"images/{clone}/basevol-{vmid}-disk-0/subvol-{clone}-disk-0") == 1024 ** 3

    host.pct("start", clone)
    assert host.pct("exec", clone, "--", "cat", "/data/file").stdout == "from the template\n"
    host.pct("exec", clone, "--", "sh", "-c", "echo changed > /data/file")
    assert (btrfs.images(vmid) / f"basevol-{vmid}-disk-1/file").read_text() == "from the template\n"
    assert host.conf_text(vmid) == text


def test_template_with_linked_clone_kept(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1")
    host.pct("template", vmid)
    clone, full = host.new_vmid(), host.new_vmid()
    host.pct("clone", vmid, clone)
    host.pct("clone", vmid, full, "--full")
    base, linked = f"btr:{vmid}/basevol-{vmid}-disk-0", f"btr:basevol-{vmid}-disk-0/subvol-{clone}-disk-0"
    assert f"rootfs: {linked},size=1G\n" in host.conf_text(clone)
    assert f"rootfs: btr:{full}/subvol-{full}-disk-0,size=1G\n" in host.conf_text(full)
    assert linked.split(":", 1)[1] in host.pct("list", "btr", tool="pvesm").stdout
    subvolumes, text = btrfs.subvolumes(), host.conf_text(vmid)

    result = host.pct("destroy", vmid, check=False)
    assert result.returncode != 0
    assert (f"CT {vmid}: volume '{base}' is the base of linked clone '{linked}'; destroy the clone first"
            in result.stderr)
    result = host.pct("free", base, tool="pvesm", check=False)
    assert result.returncode != 0
    assert f"volume '{base}' is the base of linked clone '{linked}'; remove the clone first" in result.stderr
    assert btrfs.subvolumes() == subvolumes
    assert host.conf_text(vmid) == text

    host.pct("start", clone)
    assert host.pct("status", clone).stdout == "status: running\n"
    host.pct("destroy", clone, "--force")
    assert not host.conf_path(clone).exists()
    assert not (btrfs.images(clone) / f"basevol-{vmid}-disk-0").exists()
    host.pct("destroy", vmid)
    assert not host.conf_path(vmid).exists()
    assert not btrfs.images(vmid).exists()
    host.pct("start", full)


def test_full_clone_to_other_storage(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1", "--unprivileged", "0")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo original > /root-file && chown 123:45 /root-file")
    host.pct("stop", vmid)
    before = host.conf_text(vmid)

    clone = host.new_vmid()
    host.pct("clone", vmid, clone, "--storage", "btr")
    cloned = host.conf_text(clone)
    assert f"rootfs: btr:{clone}/subvol-{clone}-disk-0,size=1G\n" in cloned
    copied = btrfs.images(clone) / f"subvol-{clone}-disk-0/root-file"
    assert copied.read_text() == "original\n"
    assert (copied.stat().st_uid, copied.stat().st_gid) == (123, 45)
    assert host.conf_text(vmid) == before

    # A full clone on the same dir storage is an image of its own.
    second = host.new_vmid()
    host.pct("clone", vmid, second, "--full")
    assert f"rootfs: local:{second}/vm-{second}-disk-0.raw,size=1G\n" in host.conf_text(second)
    host.pct("start", second)
    assert host.pct("exec", second, "--", "cat", "/root-file").stdout == "original\n"


def test_full_clone_of_snapshot(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1")
    data = btrfs.images(vmid) / f"subvol-{vmid}-disk-0"
    (data / "state").write_text("at snapshot\n")
    host.pct("snapshot", vmid, "snap")
    (data / "state").write_text("later\n")
    host.pct("set", vmid, "--memory", "333")

    clone = host.new_vmid()
    host.pct("clone", vmid, clone, "--snapname", "snap")
    cloned = host.conf_text(clone)
    assert (btrfs.images(clone) / f"subvol-{clone}-disk-0/state").read_text() == "at snapshot\n"
    assert "memory: 333" not in cloned
    assert "snaptime" not in cloned
    assert "parent" not in cloned


def test_clone_bad_input_changes_nothing(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1")
    other = host.new_vmid()
    host.pct("create", other, str(busybox_template), "--rootfs", "local:0")
    fresh = host.new_vmid()
    before = {id_: host.conf_text(id_) for id_ in (vmid, other)}
    subvolumes = btrfs.subvolumes()

    cases = [
        (("clone", vmid, other), f"CT {other} already exists"),
        (("clone", vmid, vmid), "needs an id of its own"),
        (("clone", vmid, fresh, "--full", "0"), "is not a template"),
        (("clone", vmid, fresh, "--snapname", "nope"), f"snapshot 'nope' of CT {vmid} does not exist"),
        (("clone", vmid, 99), "minimum value of 100"),
    ]
    for args, message in cases:
        assert_one_line_error(host.pct(*args, check=False), message)
        assert not host.conf_path(fresh).exists()
        assert btrfs.subvolumes() == subvolumes
        assert {id_: host.conf_text(id_) for id_ in (vmid, other)} == before

    host.pct("start", vmid)
    assert_one_line_error(host.pct("clone", vmid, fresh, check=False), "is running")
    assert_one_line_error(host.pct("template", vmid, check=False), "is running")
    assert not host.conf_path(fresh).exists()
    assert btrfs.subvolumes() == subvolumes
    assert host.conf_text(vmid) == before[vmid]

    # A template on dir storage cannot have linked clones.
    host.pct("template", other)
    assert_one_line_error(host.pct("clone", other, fresh, "--full", "0", check=False),
                          f"linked clones is not available for volume 'local:{other}/basevol-{other}-disk-0'")
    host.pct("clone", other, fresh)
    assert f"rootfs: local:{fresh}/subvol-{fresh}-disk-0\n" in host.conf_text(fresh)
