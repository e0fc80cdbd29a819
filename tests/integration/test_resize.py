"""pct resize and pct move-volume on raw images, btrfs subvolumes and between containers."""

import re

from storage_fixtures import btrfs  # noqa: F401  (fixture)

GIB = 1024 ** 3


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def guest_size_kib(host, vmid, path):
    """Return the file system size that df shows inside the container, in KiB."""
    line = host.pct("exec", vmid, "--", "busybox", "df", "-k", path).stdout.splitlines()[-1]
    return int(line.split()[1])


def has_sys_resource() -> bool:
    """Return whether this process has CAP_SYS_RESOURCE (bit 24), which online ext4 resizing needs."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("CapEff:"))
    return bool(int(line.split()[1], 16) >> 24 & 1)


def test_grow_raw_image_online(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1", "--mp0", "btr:0.5,mp=/data")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo kept > /kept")
    before = guest_size_kib(host, vmid, "/")

    if not has_sys_resource():
        # Without the capability the kernel rejects the online resize. The
        # error tells the user to resize offline, and the image keeps its size and data.
        text = host.conf_text(vmid)
        assert_one_line_error(host.pct("resize", vmid, "rootfs", "+1G", check=False),
                              "stop the container and resize again")
        assert host.conf_text(vmid) == text
        assert (host.root / f"var/lib/vz/images/{vmid}/vm-{vmid}-disk-0.raw").stat().st_size == GIB
        assert guest_size_kib(host, vmid, "/") == before
        assert host.pct("status", vmid).stdout == "status: running\n"
        assert host.pct("exec", vmid, "--", "cat", "/kept").stdout == "kept\n"
        host.pct("exec", vmid, "--", "sh", "-c", "echo still-writable > /after-failed-resize")
        host.pct("stop", vmid)
        host.pct("resize", vmid, "rootfs", "+1G")
        host.pct("start", vmid)
    else:
        # NOTE: the development host lacks CAP_SYS_RESOURCE, so this online branch never ran there.
        host.pct("resize", vmid, "rootfs", "+1G")
    after = guest_size_kib(host, vmid, "/")
    assert after > before + 900 * 1024
    assert f"rootfs: local:{vmid}/vm-{vmid}-disk-0.raw,size=2G\n" in host.conf_text(vmid)
    assert (host.root / f"var/lib/vz/images/{vmid}/vm-{vmid}-disk-0.raw").stat().st_size == 2 * GIB
    assert host.pct("exec", vmid, "--", "cat", "/kept").stdout == "kept\n"

    host.pct("resize", vmid, "mp0", "1G")
    assert btrfs.qgroup_limit(f"images/{vmid}/subvol-{vmid}-disk-0") == GIB
    assert f"mp0: btr:{vmid}/subvol-{vmid}-disk-0,mp=/data,size=1G\n" in host.conf_text(vmid)
    # More than the old 512 MiB limit now fits.
    host.pct("exec", vmid, "--", "busybox", "dd", "if=/dev/zero", "of=/data/big", "bs=1M", "count=700")


def test_grow_raw_image_offline(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1", "--mp0", "local:1,mp=/data")
    host.pct("resize", vmid, "mp0", "3G")
    assert f"mp0: local:{vmid}/vm-{vmid}-disk-1.raw,mp=/data,size=3G\n" in host.conf_text(vmid)
    host.pct("start", vmid)
    assert guest_size_kib(host, vmid, "/data") > 2900 * 1024


def test_resize_bad_input_changes_nothing(host, btrfs, busybox_template, tmp_path):
    vmid = host.new_vmid()
    shared = host.root / "shared"
    shared.mkdir()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1", "--mp0", "local:0,mp=/dir",
             "--mp1", "btr:1,mp=/sub", "--mp2", f"{shared},mp=/bind")
    image = host.root / f"var/lib/vz/images/{vmid}/vm-{vmid}-disk-0.raw"
    before = host.conf_text(vmid)

    cases = [
        (("resize", vmid, "rootfs", "512M"), "shrinking to 512M is not supported"),
        (("resize", vmid, "mp1", "100M"), "shrinking to 100M is not supported"),
        (("resize", vmid, "rootfs", "lots"), "invalid size 'lots'"),
        (("resize", vmid, "rootfs", "--", "-1G"), "shrinking a volume is not supported ('-1G')"),
        (("resize", vmid, "rootfs", "-1G"), "shrinking a volume is not supported ('-1G')"),
        (("resize", vmid, "rootfs", "-"), "invalid size '-'"),
        (("resize", vmid, "mp9", "+1G"), f"CT {vmid} has no volume 'mp9'"),
        (("resize", vmid, "mp0", "+1G"), f"resizing is not available for volume 'local:{vmid}/subvol-{vmid}-disk-1'"),
        (("resize", vmid, "mp2", "+1G"), "bind or device mount"),
    ]
    for args, message in cases:
        assert_one_line_error(host.pct(*args, check=False), message)
        assert host.conf_text(vmid) == before
        assert image.stat().st_size == GIB
        assert btrfs.qgroup_limit(f"images/{vmid}/subvol-{vmid}-disk-0") == GIB


def test_move_volume_between_storages(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1", "--mp0", "local:1,mp=/data",
             "--unprivileged", "0")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo moved > /data/file")
    host.pct("stop", vmid)

    host.pct("move-volume", vmid, "mp0", "btr")
    text = host.conf_text(vmid)
    assert f"mp0: btr:{vmid}/subvol-{vmid}-disk-0,mp=/data,size=1G\n" in text
    assert f"unused0: local:{vmid}/vm-{vmid}-disk-1.raw\n" in text
    assert (btrfs.images(vmid) / f"subvol-{vmid}-disk-0/file").read_text() == "moved\n"
    assert btrfs.qgroup_limit(f"images/{vmid}/subvol-{vmid}-disk-0") == GIB

    host.pct("move-volume", vmid, "rootfs", "btr", "--delete")
    text = host.conf_text(vmid)
    assert f"rootfs: btr:{vmid}/subvol-{vmid}-disk-1,size=1G\n" in text
    assert not (host.root / f"var/lib/vz/images/{vmid}/vm-{vmid}-disk-0.raw").exists()
    host.pct("start", vmid)
    assert host.pct("exec", vmid, "--", "cat", "/data/file").stdout == "moved\n"


def test_reassign_volume_to_other_container(host, btrfs, busybox_template):
    source = host.new_vmid()
    target = host.new_vmid()
    host.pct("create", source, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data")
    host.pct("create", target, str(busybox_template), "--rootfs", "btr:1")
    (btrfs.images(source) / f"subvol-{source}-disk-1/file").write_text("handed over\n")

    host.pct("move-volume", source, "mp0", "--target-vmid", target, "--target-volume", "mp3")
    assert "mp0:" not in host.conf_text(source)
    assert f"mp3: btr:{target}/subvol-{target}-disk-1,mp=/data\n" in host.conf_text(target)
    assert (btrfs.images(target) / f"subvol-{target}-disk-1/file").read_text() == "handed over\n"
    assert not (btrfs.images(source) / f"subvol-{source}-disk-1").exists()


def test_move_volume_bad_input_changes_nothing(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    other = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data")
    host.pct("create", other, str(busybox_template), "--rootfs", "btr:1", "--mp0", "btr:0,mp=/data")
    host.pct("snapshot", other, "snap")
    host.pct("start", vmid)
    texts = {id_: host.conf_text(id_) for id_ in (vmid, other)}
    subvolumes = btrfs.subvolumes()

    cases = [
        (("move-volume", vmid, "mp0", "local"), f"CT {vmid} is running"),
        (("move-volume", other, "mp0", "btr"), "is already on storage 'btr'"),
        (("move-volume", other, "mp0", "local", "--delete"), "is used by snapshots (snap)"),
        (("move-volume", other, "rootfs", "--target-vmid", vmid), "root file system cannot be reassigned"),
        (("move-volume", other, "mp0", "--target-vmid", vmid, "--target-volume", "mp1"), f"CT {vmid} is running"),
        (("move-volume", other, "mp7", "local"), f"CT {other} has no volume 'mp7'"),
        (("move-volume", other, "mp0", "nosuch"), "storage 'nosuch' does not exist"),
        (("move-volume", other, "mp0"), "missing target"),
    ]
    for args, message in cases:
        assert_one_line_error(host.pct(*args, check=False), message)
        assert {id_: host.conf_text(id_) for id_ in (vmid, other)} == texts
        assert btrfs.subvolumes() == subvolumes
    assert not re.search(r"images/\d+", " ".join(host.images()))

    host.pct("stop", vmid)
    for args, message in [
        (("move-volume", other, "rootfs", "--target-vmid", vmid), "root file system cannot be reassigned"),
        (("move-volume", other, "mp0", "--target-vmid", vmid), f"CT {vmid}: mp0 is already in use"),
        (("move-volume", other, "mp0", "--target-vmid", vmid, "--target-volume", "mp2"), "used by snapshots"),
    ]:
        assert_one_line_error(host.pct(*args, check=False), message)
        assert btrfs.subvolumes() == subvolumes
