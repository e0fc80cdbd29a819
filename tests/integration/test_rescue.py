"""pct mount, unmount, df, fsck and fstrim on real containers and ext4 images."""

import json
import os
import subprocess
import time

from conftest import _mounts_below, _test_loop_devices
from storage_fixtures import btrfs  # noqa: F401  (fixture)


def make_container(host, template, *options):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(template), "--unprivileged", "0", *options)
    return vmid


def image(host, vmid, disk):
    return host.root / "var/lib/vz/images" / str(vmid) / f"vm-{vmid}-disk-{disk}.raw"


def last_checked(path) -> str:
    return next(line for line in superblock(path).splitlines() if line.startswith("Last checked:"))


def superblock(path) -> str:
    return subprocess.run(["dumpe2fs", "-h", str(path)], capture_output=True, text=True, check=True).stdout


def test_mount_and_unmount_stopped(host, busybox_template):
    vmid = make_container(host, busybox_template, "--mp0", "local:1,mp=/data")
    rootfs = host.root / "var/lib/lxc" / str(vmid) / "rootfs"

    result = host.pct("mount", vmid)
    assert result.stdout.strip() == f"mounted CT {vmid} in '{rootfs}'"
    assert "lock: mounted\n" in host.conf_text(vmid)
    assert set(_mounts_below(rootfs)) == {str(rootfs), str(rootfs / "data")}
    (rootfs / "data" / "rescued").write_text("fixed by hand\n")

    usage = host.pct("df", vmid).stdout
    assert f"mp0    local:{vmid}/vm-{vmid}-disk-1.raw" in usage
    assert set(_mounts_below(rootfs)) == {str(rootfs), str(rootfs / "data")}

    refused = host.pct("start", vmid, check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip() == f"CT {vmid} is locked (mounted)"

    host.pct("unmount", vmid)
    assert "lock:" not in host.conf_text(vmid)
    assert _mounts_below(host.root) == []
    assert _test_loop_devices() == []

    host.pct("start", vmid)
    assert host.pct("exec", vmid, "--", "cat", "/data/rescued").stdout == "fixed by hand\n"


def test_mount_unprivileged_creates_mapped_target(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--unprivileged", "1", "--mp0", "local:1,mp=/srv/new")
    rootfs = host.root / "var/lib/lxc" / str(vmid) / "rootfs"
    host.pct("mount", vmid)
    try:
        target = os.stat(rootfs / "srv/new")
        assert (target.st_uid, target.st_gid) == (100000, 100000)
        assert str(rootfs / "srv/new") in _mounts_below(rootfs)
    finally:
        host.pct("unmount", vmid)
    assert _mounts_below(host.root) == []


def test_mount_running_refused(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.pct("start", vmid)
    before = host.conf_text(vmid)

    result = host.pct("mount", vmid, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == f"CT {vmid} is running; stop it before mounting its volumes"
    assert host.conf_text(vmid) == before

    result = host.pct("unmount", vmid, check=False)
    assert result.stderr.strip() == f"CT {vmid} is running; stop it before unmounting its volumes"
    assert host.pct("exec", vmid, "--", "true").returncode == 0


def test_unmount_not_mounted(host, busybox_template):
    vmid = make_container(host, busybox_template)
    before = host.conf_text(vmid)
    result = host.pct("unmount", vmid, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == f"CT {vmid} is not mounted"
    assert host.conf_text(vmid) == before


def test_mount_of_locked_container_refused(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.conf_path(vmid).write_text(host.conf_text(vmid) + "lock: backup\n")
    before = host.conf_text(vmid)
    for command in ("mount", "unmount"):
        result = host.pct(command, vmid, check=False)
        assert result.stderr.strip() == f"CT {vmid} is locked (backup)"
    assert host.conf_text(vmid) == before
    assert _mounts_below(host.root) == []


def test_mount_failure_clears_lock(host, busybox_template, tmp_path):
    shared = host.root / "shared"
    shared.mkdir()
    vmid = make_container(host, busybox_template, "--mp0", f"{shared},mp=/shared")
    shared.rmdir()

    result = host.pct("mount", vmid, check=False)
    assert result.returncode != 0
    assert "bind mount source" in result.stderr
    assert "lock:" not in host.conf_text(vmid)
    assert _mounts_below(host.root) == []


def test_df_stopped_and_running(host, busybox_template):
    vmid = make_container(host, busybox_template, "--mp0", "local:1,mp=/data", "--mp1", "local:0,mp=/data/dir")

    text = host.pct("df", vmid).stdout.splitlines()
    assert text[0].split() == ["MP", "Volume", "Size", "Used", "Avail", "Use%", "Path"]
    assert [line.split()[0] for line in text[1:]] == ["rootfs", "mp0", "mp1"]
    assert text[2].split()[1] == f"local:{vmid}/vm-{vmid}-disk-1.raw"
    assert text[2].split()[-1] == "/data"
    assert _mounts_below(host.root) == []
    assert _test_loop_devices() == []

    rows = {row["mp"]: row for row in json.loads(host.pct("df", vmid, "--output-format", "json").stdout)}
    assert 900 << 20 < rows["mp0"]["total"] <= 1 << 30
    used_stopped = rows["mp0"]["used"]

    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "dd if=/dev/zero of=/data/fill bs=1M count=64 2>/dev/null; sync")
    rows = {row["mp"]: row for row in json.loads(host.pct("df", vmid, "--output-format", "json").stdout)}
    assert rows["mp0"]["used"] >= used_stopped + (60 << 20)
    assert rows["mp0"]["path"] == "/data"


def test_fsck_checks_image(host, busybox_template):
    vmid = make_container(host, busybox_template, "--mp0", "local:1,mp=/data")
    data = image(host, vmid, 1)
    subprocess.run(["debugfs", "-w", "-R", "ssv state 0", str(data)], check=True, capture_output=True)
    assert "Filesystem state:         not clean" in superblock(data)

    result = host.pct("fsck", vmid, "--device", "mp0")
    assert str(data) in result.stdout
    assert "Filesystem state:         clean" in superblock(data)

    # Without --force a clean file system is left alone; with it, it is checked again.
    rootfs = image(host, vmid, 0)
    before = last_checked(rootfs)
    time.sleep(1.1)
    host.pct("fsck", vmid)
    assert last_checked(rootfs) == before
    host.pct("fsck", vmid, "--force")
    assert last_checked(rootfs) != before


def test_fsck_running_refused(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.pct("start", vmid)
    before = host.conf_text(vmid)
    result = host.pct("fsck", vmid, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == f"CT {vmid} is running; stop it before checking its file systems"
    assert host.conf_text(vmid) == before


def test_fsck_mounted_refused(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.pct("mount", vmid)
    result = host.pct("fsck", vmid, check=False)
    assert result.stderr.strip() == f"CT {vmid} is locked (mounted)"
    host.pct("unmount", vmid)


def test_fsck_directory_volumes_refused(host, busybox_template, btrfs):  # noqa: F811
    vmid = make_container(host, busybox_template, "--storage", "btr", "--mp0", "local:0,mp=/dir")
    before = host.conf_text(vmid)

    result = host.pct("fsck", vmid, "--device", "mp0", check=False)
    assert result.stderr.strip() == (f"CT {vmid}: cannot check mp0: volume 'local:{vmid}/subvol-{vmid}-disk-0' "
                                     "is a directory (subvolume) without a file system image of its own")
    result = host.pct("fsck", vmid, check=False)
    assert f"volume 'btr:{vmid}/subvol-{vmid}-disk-0' is a directory (subvolume)" in result.stderr
    result = host.pct("fsck", vmid, "--device", "mp7", check=False)
    assert result.stderr.strip() == f"400 Parameter verification failed. device: CT {vmid} has no volume 'mp7'"
    assert host.conf_text(vmid) == before


def test_fstrim_returns_space(host, busybox_template):
    vmid = make_container(host, busybox_template, "--mp0", "local:1,mp=/data", "--mp1", "local:0,mp=/dir")
    host.pct("start", vmid)
    data = image(host, vmid, 1)
    host.pct("exec", vmid, "--", "sh", "-c",
             "dd if=/dev/urandom of=/data/big bs=1M count=48 2>/dev/null; sync; rm /data/big; sync")
    allocated = os.stat(data).st_blocks * 512

    lines = host.pct("fstrim", vmid).stdout.splitlines()
    assert lines[0].startswith("rootfs (/): ")
    assert lines[1].startswith("mp0 (/data): ")
    assert lines[1].endswith(" trimmed")
    assert lines[2] == "mp1 (/dir): skipped, a directory volume has no file system of its own"
    assert os.stat(data).st_blocks * 512 < allocated - (40 << 20)
    assert "lock:" not in host.conf_text(vmid)


def test_fstrim_holds_lock(host, busybox_template, monkeypatch):
    from pct import rescue
    from pct.paths import Paths

    vmid = make_container(host, busybox_template, "--mp0", "local:1,mp=/data")
    host.pct("start", vmid)
    seen = []
    real_fitrim = rescue._fitrim

    def observing_fitrim(path_fd, mount, vmid_):
        seen.append(host.conf_text(vmid))
        return real_fitrim(path_fd, mount, vmid_)

    monkeypatch.setattr(rescue, "_fitrim", observing_fitrim)
    rescue.trim_container(Paths(host.root), vmid)
    assert len(seen) == 2
    assert all("lock: fstrim\n" in text for text in seen)
    assert "lock:" not in host.conf_text(vmid)


def test_fstrim_locked_refused(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.pct("start", vmid)
    host.conf_path(vmid).write_text(host.conf_text(vmid) + "lock: backup\n")
    before = host.conf_text(vmid)
    result = host.pct("fstrim", vmid, check=False)
    assert result.stderr.strip() == f"CT {vmid} is locked (backup)"
    assert host.conf_text(vmid) == before


def test_fstrim_stopped_refused(host, busybox_template):
    vmid = make_container(host, busybox_template)
    before = host.conf_text(vmid)
    result = host.pct("fstrim", vmid, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == f"CT {vmid} not running"
    assert host.conf_text(vmid) == before
