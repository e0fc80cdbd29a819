"""Snapshots on btrfs: take, list, roll back, delete; and the inputs they reject."""

import subprocess

import pytest

from conftest import _mounts_below
from storage_fixtures import btrfs  # noqa: F401  (fixture)


def create_on_btrfs(host, template, *extra):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data", *extra)
    return vmid


def section(text, name):
    """Return the lines of section [name] of a config file text."""
    return text.split(f"[{name}]\n", 1)[1].split("\n\n", 1)[0].splitlines()


def lxc_state(host, vmid):
    return subprocess.run(["lxc-info", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "-s", "-H"],
                          capture_output=True, text=True).stdout.strip()


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_snapshot_tree_and_config(host, btrfs, busybox_template):
    vmid = create_on_btrfs(host, busybox_template)
    data = btrfs.images(vmid) / f"subvol-{vmid}-disk-1"
    (data / "file").write_text("one\n")
    host.pct("snapshot", vmid, "first", "--description", "before the change")
    host.pct("set", vmid, "--memory", "256")
    host.pct("snapshot", vmid, "second")

    text = host.conf_text(vmid)
    first = section(text, "first")
    assert first[0] == "# before the change"
    assert any(line.startswith("snaptime: ") for line in first)
    assert "memory: 256" not in first
    assert not any(line.startswith("parent:") for line in first)
    assert "parent: first" in section(text, "second")
    assert "memory: 256" in section(text, "second")
    assert "parent: second\n" in text.split("\n[")[0]
    assert f"images/{vmid}/subvol-{vmid}-disk-1@first" in btrfs.subvolumes()
    assert (btrfs.images(vmid) / f"subvol-{vmid}-disk-1@first/file").read_text() == "one\n"

    lines = host.pct("listsnapshot", vmid).stdout.splitlines()
    assert lines[0].startswith("`-> first")
    assert "before the change" in lines[0]
    assert lines[1].startswith("  `-> second")
    assert lines[2].startswith("    `-> current")
    assert lines[2].endswith("You are here!")


def test_snapshot_of_running_container(host, btrfs, busybox_template):
    vmid = create_on_btrfs(host, busybox_template)
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo live > /data/file")
    host.pct("snapshot", vmid, "running")
    assert lxc_state(host, vmid) == "RUNNING"
    assert (btrfs.images(vmid) / f"subvol-{vmid}-disk-1@running/file").read_text() == "live\n"
    # The snapshot is read-only.
    with pytest.raises(OSError):
        (btrfs.images(vmid) / f"subvol-{vmid}-disk-1@running/new").write_text("x")


def test_rollback_restores_volumes_and_config(host, btrfs, busybox_template):
    vmid = create_on_btrfs(host, busybox_template)
    data = btrfs.images(vmid) / f"subvol-{vmid}-disk-1"
    (data / "file").write_text("before\n")
    host.pct("snapshot", vmid, "base")
    (data / "file").write_text("after\n")
    (data / "extra").write_text("extra\n")
    host.pct("set", vmid, "--memory", "300", "--mp1", "btr:0,mp=/later")
    host.pct("start", vmid)

    host.pct("rollback", vmid, "base", "--start")
    assert host.pct("status", vmid).stdout == "status: running\n"
    assert host.pct("exec", vmid, "--", "cat", "/data/file").stdout == "before\n"
    assert host.pct("exec", vmid, "--", "ls", "/data").stdout.split() == ["file"]
    text = host.conf_text(vmid)
    main = text.split("\n[")[0]
    assert "memory: 300" not in main
    assert "parent: base\n" in main
    assert "lock:" not in main
    # The volume added after the snapshot is kept, detached.
    assert f"unused0: btr:{vmid}/subvol-{vmid}-disk-2\n" in main
    assert (btrfs.images(vmid) / f"subvol-{vmid}-disk-2").is_dir()
    # The snapshot survives the rollback and can be used again.
    assert f"images/{vmid}/subvol-{vmid}-disk-1@base" in btrfs.subvolumes()

    host.pct("stop", vmid)
    assert _mounts_below(host.root / "var/lib/lxc") == []


def test_delete_middle_snapshot_relinks_children(host, btrfs, busybox_template):
    vmid = create_on_btrfs(host, busybox_template)
    for name in ("a", "b", "c"):
        host.pct("snapshot", vmid, name)
    host.pct("delsnapshot", vmid, "b")
    text = host.conf_text(vmid)
    assert "[b]" not in text
    assert "parent: a" in section(text, "c")
    assert "parent: c\n" in text.split("\n[")[0]
    assert f"images/{vmid}/subvol-{vmid}-disk-0@b" not in btrfs.subvolumes()
    assert f"images/{vmid}/subvol-{vmid}-disk-1@b" not in btrfs.subvolumes()

    host.pct("delsnapshot", vmid, "a")
    assert not any(line.startswith("parent:") for line in section(host.conf_text(vmid), "c"))
    lines = host.pct("listsnapshot", vmid).stdout.splitlines()
    assert lines[0].startswith("`-> c")
    assert lines[1].startswith("  `-> current")


def test_snapshot_bad_input_changes_nothing(host, btrfs, busybox_template):
    vmid = create_on_btrfs(host, busybox_template)
    host.pct("snapshot", vmid, "kept")
    before = host.conf_text(vmid)
    subvolumes = btrfs.subvolumes()

    cases = [
        (("snapshot", vmid, "1bad"), "invalid snapshot name '1bad'"),
        (("snapshot", vmid, "has space"), "invalid snapshot name 'has space'"),
        (("snapshot", vmid, "current"), "'current' is reserved"),
        (("snapshot", vmid, "kept"), "snapshot name 'kept' is already used"),
        (("rollback", vmid, "missing"), f"snapshot 'missing' of CT {vmid} does not exist"),
        (("delsnapshot", vmid, "missing"), f"snapshot 'missing' of CT {vmid} does not exist"),
    ]
    for args, message in cases:
        assert_one_line_error(host.pct(*args, check=False), message)
        assert host.conf_text(vmid) == before
        assert btrfs.subvolumes() == subvolumes


def test_snapshot_on_dir_storage_rejected(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "local:1,mp=/data")
    before = host.conf_text(vmid)
    result = host.pct("snapshot", vmid, "nope", check=False)
    assert_one_line_error(result, f"volume 'local:{vmid}/vm-{vmid}-disk-0.raw' on storage 'local' (type dir)")
    assert host.conf_text(vmid) == before
    # The btrfs rootfs got no partial snapshot either.
    assert btrfs.subvolumes() == [f"images/{vmid}/subvol-{vmid}-disk-0"]
