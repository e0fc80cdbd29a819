"""vzdump suspend and snapshot modes on running containers, on dir and btrfs storage."""

import subprocess

from backup_helpers import archives, members
from conftest import _mounts_below
from storage_fixtures import btrfs  # noqa: F401  (fixture)

BTRFS_WITH_BACKUPS = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,backup,rootdir,images,iso

btrfs: btr
\tpath /mnt/btr
\tcontent rootdir,images
"""


def init_pid(host, vmid):
    return subprocess.run(["lxc-info", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "-p", "-H"],
                          capture_output=True, text=True).stdout.strip()


def test_suspend_mode_keeps_container_running(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", "local:0,mp=/data,backup=1",
             "--mp1", "local:0,mp=/skip")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo live > /live; echo d > /data/d; echo s > /skip/s")
    pid = init_pid(host, vmid)

    scratch = host.root / "scratch"
    result = host.pct(vmid, "--mode", "suspend", "--compress", "gzip", "--tmpdir", str(scratch), tool="vzdump")

    assert init_pid(host, vmid) == pid
    log = result.stderr
    assert "backup failed" not in log
    names = members(archives(host, vmid)[0])
    assert names[0] == "./etc/vzdump/pct.conf"
    assert "./live" in names
    assert "./data/d" in names
    assert "./skip/s" not in names
    assert list(scratch.iterdir()) == []
    assert [m for m in _mounts_below(host.root) if "vzdumptmp" in m] == []
    text = archives(host, vmid)[0].with_name(archives(host, vmid)[0].name.replace(".tar.gz", ".log")).read_text()
    assert "freezing CT" in text
    assert "thawed" in text
    state = subprocess.run(["lxc-info", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "-s", "-H"],
                           capture_output=True, text=True).stdout.strip()
    assert state == "RUNNING"


def test_snapshot_mode_on_btrfs(host, btrfs, busybox_template):
    (host.root / "etc/pve/storage.cfg").write_text(BTRFS_WITH_BACKUPS)
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data,backup=1")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo snap > /snapfile; echo d > /data/d")
    pid = init_pid(host, vmid)

    host.pct(vmid, "--mode", "snapshot", "--compress", "zstd", tool="vzdump")

    assert init_pid(host, vmid) == pid
    names = members(archives(host, vmid)[0])
    assert "./snapfile" in names
    assert "./data/d" in names
    assert not any("@vzdump" in subvolume for subvolume in btrfs.subvolumes())
    assert [m for m in _mounts_below(host.root) if "vzdumptmp" in m] == []
    assert "lock:" not in host.conf_text(vmid)

    restored = host.new_vmid()
    host.pct("restore", restored, str(archives(host, vmid)[0]), "--storage", "btr")
    assert (btrfs.images(restored) / f"subvol-{restored}-disk-0/snapfile").read_text() == "snap\n"
    assert (btrfs.images(restored) / f"subvol-{restored}-disk-1/d").read_text() == "d\n"


def test_snapshot_mode_names_volume_without_snapshots(host, btrfs, busybox_template):
    (host.root / "etc/pve/storage.cfg").write_text(BTRFS_WITH_BACKUPS)
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "local:1,mp=/data,backup=1")
    before = host.conf_text(vmid)

    result = host.pct(vmid, "--mode", "snapshot", check=False, tool="vzdump")

    assert result.returncode != 0
    assert f"volume 'local:{vmid}/vm-{vmid}-disk-0.raw' (mp0)" in result.stderr
    assert host.conf_text(vmid) == before
    assert archives(host, vmid) == []
    assert not any("@vzdump" in subvolume for subvolume in btrfs.subvolumes())


def test_default_mode_falls_back_to_suspend(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    host.pct("start", vmid)
    pid = init_pid(host, vmid)

    host.pct(vmid, tool="vzdump")

    found = archives(host, vmid)
    assert len(found) == 1
    log = found[0].with_name(found[0].name.split(".tar")[0] + ".log").read_text()
    assert "falling back to suspend mode" in log
    assert init_pid(host, vmid) == pid
    assert "./etc/vzdump/pct.conf" == members(found[0])[0]
