"""pvesm status, list, alloc, free and path against dir and btrfs storages."""

import json
import subprocess

from storage_fixtures import btrfs  # noqa: F401  (fixture)

MIB = 1024 ** 2


def pvesm(host, *args, check=True):
    return host.pct(*args, check=check, tool="pvesm")


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_status_lists_every_storage(host, btrfs):
    rows = json.loads(pvesm(host, "status", "--output-format", "json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["btr"]["type"] == "btrfs"
    assert by_name["btr"]["status"] == "active"
    assert 3 * 1024 ** 3 < by_name["btr"]["total"] <= 4 * 1024 ** 3
    assert by_name["local"]["status"] == "inactive"  # its path does not exist yet
    text = pvesm(host, "status").stdout.splitlines()
    assert text[0].split()[:3] == ["Name", "Type", "Status"]
    assert any(line.split()[:3] == ["btr", "btrfs", "active"] for line in text)


def test_raw_image_on_btrfs_snapshots(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    # pvesm alloc makes volumes owned by host root, which only a privileged container can write.
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--unprivileged", "0")
    result = pvesm(host, "alloc", "btr", vmid, f"vm-{vmid}-disk-5.raw", "64M")
    assert result.stdout == f"successfully created 'btr:{vmid}/vm-{vmid}-disk-5.raw'\n"
    path = pvesm(host, "path", f"btr:{vmid}/vm-{vmid}-disk-5.raw").stdout.strip()
    assert path == str(btrfs.images(vmid) / f"vm-{vmid}-disk-5/disk.raw")
    blkid = subprocess.run(["blkid", "-o", "value", "-s", "TYPE", path], capture_output=True, text=True)
    assert blkid.stdout.strip() == "ext4"

    listed = json.loads(pvesm(host, "list", "btr", "--vmid", vmid, "--output-format", "json").stdout)
    assert {(row["volid"], row["format"], row["size"]) for row in listed} == {
        (f"btr:{vmid}/subvol-{vmid}-disk-0", "subvol", 1024 ** 3),
        (f"btr:{vmid}/vm-{vmid}-disk-5.raw", "raw", 64 * MIB),
    }
    images = json.loads(pvesm(host, "list", "btr", "--content", "images", "--output-format", "json").stdout)
    assert [row["volid"] for row in images] == [f"btr:{vmid}/vm-{vmid}-disk-5.raw"]

    # The raw image mounts as a mount point and takes part in snapshots.
    host.pct("set", vmid, "--mp0", f"btr:{vmid}/vm-{vmid}-disk-5.raw,mp=/raw,size=64M")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo first > /raw/file")
    host.pct("snapshot", vmid, "withraw")
    host.pct("exec", vmid, "--", "sh", "-c", "echo second > /raw/file")
    host.pct("rollback", vmid, "withraw", "--start")
    assert host.pct("exec", vmid, "--", "cat", "/raw/file").stdout == "first\n"


def test_alloc_sized_subvolume_and_free(host, btrfs):
    vmid = host.new_vmid()
    pvesm(host, "alloc", "btr", vmid, f"subvol-{vmid}-disk-2", "100M")
    assert btrfs.qgroup_limit(f"images/{vmid}/subvol-{vmid}-disk-2") == 100 * MIB
    pvesm(host, "free", f"btr:{vmid}/subvol-{vmid}-disk-2")
    assert btrfs.subvolumes() == []


def test_pvesm_bad_input_changes_nothing(host, btrfs, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--mp0", "local:0,mp=/dir")
    before = host.conf_text(vmid)
    subvolumes = btrfs.subvolumes()
    images = host.images()

    cases = [
        (("free", f"btr:{vmid}/subvol-{vmid}-disk-0"), f"is in use by CT {vmid} (rootfs)"),
        (("free", f"btr:{vmid}/subvol-{vmid}-disk-7"), "does not exist"),
        (("alloc", "btr", vmid, f"subvol-{vmid}-disk-0", "0"), "already exists"),
        (("alloc", "btr", vmid, "vm-999-disk-1.raw", "1G"), "invalid volume name 'vm-999-disk-1.raw'"),
        (("alloc", "btr", vmid, f"vm-{vmid}-disk-1.raw", "0"), "needs a size above 0"),
        (("alloc", "local", vmid, f"subvol-{vmid}-disk-3", "1G"), "cannot have a size"),
        (("alloc", "btr", vmid, f"vm-{vmid}-disk-1.raw", "big"), "invalid size 'big'"),
        (("alloc", "nosuch", vmid, f"vm-{vmid}-disk-1.raw", "1G"), "storage 'nosuch' does not exist"),
        (("path", "nonsense"), "unable to parse volume ID 'nonsense'"),
        (("list", "nosuch"), "storage 'nosuch' does not exist"),
    ]
    for args, message in cases:
        assert_one_line_error(pvesm(host, *args, check=False), message)
        assert host.conf_text(vmid) == before
        assert btrfs.subvolumes() == subvolumes
        assert host.images() == images
