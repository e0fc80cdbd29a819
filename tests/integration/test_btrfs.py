"""The btrfs storage type on a real btrfs file system: subvolumes, quota limits, raw images."""

import subprocess

from conftest import _mounts_below
from storage_fixtures import btrfs  # noqa: F401  (fixture)

GIB = 1024 ** 3


def test_rootfs_and_mount_point_subvolumes(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data")
    text = host.conf_text(vmid)
    assert f"rootfs: btr:{vmid}/subvol-{vmid}-disk-0,size=1G\n" in text
    assert f"mp0: btr:{vmid}/subvol-{vmid}-disk-1,mp=/data\n" in text
    assert btrfs.subvolumes() == [f"images/{vmid}/subvol-{vmid}-disk-0", f"images/{vmid}/subvol-{vmid}-disk-1"]
    assert btrfs.qgroup_limit(f"images/{vmid}/subvol-{vmid}-disk-0") == GIB
    assert btrfs.qgroup_limit(f"images/{vmid}/subvol-{vmid}-disk-1") is None
    # An unprivileged container's root owns its volumes.
    assert (btrfs.images(vmid) / f"subvol-{vmid}-disk-1").stat().st_uid == 100000

    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo on-btrfs > /data/file")
    assert (btrfs.images(vmid) / f"subvol-{vmid}-disk-1/file").read_text() == "on-btrfs\n"
    assert (btrfs.images(vmid) / f"subvol-{vmid}-disk-0/bin/busybox").exists()


def test_filling_quota_limited_volume(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0.05,mp=/small")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo precious > /small/keep && sync")
    before = host.conf_text(vmid)

    result = host.pct("exec", vmid, "--", "busybox", "dd", "if=/dev/zero", "of=/small/fill", "bs=1M", "count=200",
                      check=False)
    assert result.returncode != 0
    assert "Disk quota exceeded" in result.stderr
    assert host.pct("exec", vmid, "--", "cat", "/small/keep").stdout == "precious\n"
    assert host.conf_text(vmid) == before
    # The rest of the file system is not affected by the full volume.
    host.pct("exec", vmid, "--", "sh", "-c", "echo fine > /root-file")


def test_destroy_removes_subvolumes(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data")
    host.pct("snapshot", vmid, "first")
    assert len(btrfs.subvolumes()) == 4
    host.pct("destroy", vmid)
    assert btrfs.subvolumes() == []
    assert not btrfs.images(vmid).exists()
    assert not host.conf_path(vmid).exists()


def test_btrfs_storage_on_other_file_system(host, busybox_template):
    cfg = host.root / "etc/pve/storage.cfg"
    cfg.parent.mkdir(parents=True)
    (host.root / "srv/notbtrfs").mkdir(parents=True)
    cfg.write_text("dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl,rootdir,images\n\n"
                   "btrfs: fake\n\tpath /srv/notbtrfs\n\tcontent rootdir,images\n")
    vmid = host.new_vmid()
    result = host.pct("create", vmid, str(busybox_template), "--rootfs", "fake:1", check=False)
    assert result.returncode != 0
    assert "not on a btrfs file system" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not host.conf_path(vmid).exists()
    assert _mounts_below(host.root / "var/lib/lxc") == []
