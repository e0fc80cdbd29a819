"""Volume names, declared features, config volume helpers and size parsing, without root."""

from pathlib import Path

import pytest

from pct.cli.pvesm import parse_alloc_size
from pct.config.format import Section
from pct.errors import ParameterError, PctError, StorageError
from pct.paths import Paths
from pct.resize import parse_size_request
from pct.snapshots import SnapshotInfo, check_new_name, format_tree
from pct.storage.cfg import StorageDefinition
from pct.storage.dir import parse_image_volname
from pct.storage.plugins import make_storage
from pct.volumes import free_unused_key, mount_volumes, replace_volume, volume_of, with_size


def storage(tmp_path, storage_type, path="/store"):
    return make_storage(Paths(tmp_path), StorageDefinition(storage_type, "s1", {"path": path}))


@pytest.mark.parametrize("volname, expected", [
    ("100/vm-100-disk-0.raw", (100, "vm", 100, 0, "raw")),
    ("100/subvol-100-disk-3", (100, "subvol", 100, 3, "subvol")),
    ("101/base-101-disk-1.raw", (101, "base", 101, 1, "raw")),
    ("101/basevol-101-disk-0", (101, "basevol", 101, 0, "subvol")),
])
def test_image_volname_parts(volname, expected):
    image = parse_image_volname(volname)
    assert (image.owner, image.prefix, image.vmid, image.disk, image.format) == expected
    assert image.volname() == volname


@pytest.mark.parametrize("volname, owner, base, base_volname", [
    ("basevol-100-disk-0/subvol-101-disk-0", 101, "basevol-100-disk-0", "100/basevol-100-disk-0"),
    ("base-100-disk-1.raw/vm-102-disk-1.raw", 102, "base-100-disk-1.raw", "100/base-100-disk-1.raw"),
    ("101/subvol-101-disk-0", 101, None, None),
])
def test_linked_clone_volname_parts(volname, owner, base, base_volname):
    image = parse_image_volname(volname)
    assert image.owner == owner
    assert image.base == base
    assert image.base_volname == base_volname
    assert image.volname() == volname


def test_linked_clone_path_below_owner(tmp_path):
    btrfs = storage(tmp_path, "btrfs")
    assert btrfs.owner_of("basevol-100-disk-0/subvol-101-disk-0") == 101
    assert btrfs.subvolume_dir("basevol-100-disk-0/subvol-101-disk-0") == \
        tmp_path / "store/images/101/basevol-100-disk-0/subvol-101-disk-0"
    assert btrfs.volume_path("base-100-disk-0.raw/vm-101-disk-0.raw") == \
        tmp_path / "store/images/101/base-100-disk-0.raw/vm-101-disk-0/disk.raw"


@pytest.mark.parametrize("volname", ["100/vm-100-disk-0", "vm-100-disk-0/subvol-101-disk-0",
                                     "base-100-disk-0/subvol-101-disk-0", "100/subvol-100-disk-0.raw", "../vm-1-disk-0.raw",
                                     "100/vm-100-disk-x.raw", "vztmpl/a.tar.gz", "100/subvol-100-disk-0@snap"])
def test_image_volname_rejected(volname):
    assert parse_image_volname(volname) is None


def test_features_declared_per_type(tmp_path):
    directory, btrfs = storage(tmp_path, "dir"), storage(tmp_path, "btrfs")
    assert not directory.supports("snapshot", "100/vm-100-disk-0.raw")
    assert directory.supports("resize", "100/vm-100-disk-0.raw")
    assert not directory.supports("resize", "100/subvol-100-disk-0")
    assert btrfs.supports("snapshot", "100/subvol-100-disk-0")
    assert btrfs.supports("linked-clone", "100/vm-100-disk-0.raw")
    assert not btrfs.supports("snapshot", "not-a-volume")


def test_require_names_volume_and_storage(tmp_path):
    with pytest.raises(StorageError) as error:
        storage(tmp_path, "dir").require("snapshot", "100/vm-100-disk-0.raw", 100)
    assert error.value.message == ("taking snapshots is not available for volume 's1:100/vm-100-disk-0.raw' "
                                   "on storage 's1' (type dir)")
    assert error.value.vmid == 100


def test_unsupported_type_rejects_everything(tmp_path):
    zfs = storage(tmp_path, "zfspool")
    assert not zfs.supports("snapshot", "100/subvol-100-disk-0")
    with pytest.raises(StorageError, match="not supported on this host for storage type 'zfspool'"):
        zfs.snapshot_volume("100/subvol-100-disk-0", "s")
    with pytest.raises(StorageError, match="not supported"):
        zfs.alloc_volume(100, 0, False)


def test_btrfs_paths_for_raw_and_snapshots(tmp_path):
    btrfs = storage(tmp_path, "btrfs")
    base = Paths(tmp_path).under_root("/store/images/100")
    assert btrfs.volume_path("100/vm-100-disk-1.raw") == base / "vm-100-disk-1/disk.raw"
    assert btrfs.volume_path("100/subvol-100-disk-0") == base / "subvol-100-disk-0"
    assert btrfs.snapshot_path("100/vm-100-disk-1.raw", "s") == base / "vm-100-disk-1@s/disk.raw"


def test_mount_volumes_skip_binds_rootfs_first():
    section = Section(entries=[("mp1", "/srv/data,mp=/bind"), ("mp0", "local:100/vm-100-disk-1.raw,mp=/a"),
                               ("rootfs", "btr:100/subvol-100-disk-0,size=1G"), ("unused0", "local:x")])
    assert [(volume.key, volume.volid) for volume in mount_volumes(section)] == [
        ("rootfs", "btr:100/subvol-100-disk-0"), ("mp0", "local:100/vm-100-disk-1.raw")]


def test_value_helpers():
    assert volume_of("mp=/x,volume=local:1/a") == "local:1/a"
    assert replace_volume("local:1/a,mp=/x,size=1G", "btr:2/b") == "btr:2/b,mp=/x,size=1G"
    assert replace_volume("mp=/x,volume=local:1/a", "btr:2/b") == "mp=/x,volume=btr:2/b"
    assert with_size("local:1/a,size=1G,mp=/x", 2 * 1024 ** 3) == "local:1/a,mp=/x,size=2G"
    assert with_size("local:1/a,size=1G", 0) == "local:1/a"
    assert free_unused_key(Section(entries=[("unused0", "a"), ("unused2", "b")])) == "unused1"


@pytest.mark.parametrize("text, expected", [("+1G", (True, 1024 ** 3)), ("8G", (False, 8 * 1024 ** 3)),
                                            ("512M", (False, 512 * 1024 ** 2)), ("4096", (False, 4096)),
                                            ("+1.5G", (True, 1536 * 1024 ** 2))])
def test_resize_size_request(text, expected):
    assert parse_size_request(text, 100) == expected


@pytest.mark.parametrize("text", ["-", "1X", "", "G", "1 G"])
def test_resize_size_request_invalid(text):
    with pytest.raises(ParameterError, match="invalid size"):
        parse_size_request(text, 100)


def test_resize_size_request_negative():
    with pytest.raises(PctError, match=r"shrinking a volume is not supported \('-1G'\)"):
        parse_size_request("-1G", 100)


def test_alloc_size_defaults_to_kib():
    assert parse_alloc_size("4") == 4096
    assert parse_alloc_size("64M") == 64 * 1024 ** 2
    with pytest.raises(ParameterError):
        parse_alloc_size("1.5G")


@pytest.mark.parametrize("name", ["1abc", "current", "a b", "x" * 41, "a.b"])
def test_snapshot_name_rejected(name):
    with pytest.raises(ParameterError):
        check_new_name(name, 100)


def test_snapshot_tree_current_last():
    tree = format_tree([
        SnapshotInfo("a", None, 1000, "first"),
        SnapshotInfo("b", "a", 2000, ""),
        SnapshotInfo("c", "a", 3000, ""),
        SnapshotInfo("current", "a", None, "You are here!"),
    ])
    names = [line.split()[1] for line in tree.splitlines()]
    assert names == ["a", "b", "c", "current"]
    assert tree.splitlines()[3].startswith("  `-> current")
    assert tree.splitlines()[0].rstrip().endswith("first")


def test_local_file_or_volume_id(tmp_path, monkeypatch):
    from pct.storage import local_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd:name.tar").write_bytes(b"")

    assert local_file("/srv/a.tar") == Path("/srv/a.tar")
    assert local_file("archive.tar.zst") == tmp_path / "archive.tar.zst"
    assert local_file("./x.tar") == tmp_path / "x.tar"
    assert local_file("odd:name.tar") == tmp_path / "odd:name.tar"
    assert local_file("local:backup/vzdump-lxc-100-2024_01_01-00_00_00.tar") is None
