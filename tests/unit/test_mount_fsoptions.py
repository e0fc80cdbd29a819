"""The acl and quota options of mount points: mount options and quota checks, without root."""

import pytest

from pct.config.model import parse_mount
from pct.errors import PctError
from pct.paths import Paths
from pct.runtime.fsoptions import QUOTA_MOUNT_OPTIONS, check_quota_support, filesystem_options

STORAGE_CFG = "dir: local\n\tpath /var/lib/vz\n\tcontent rootdir,images\n"


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "etc/pve").mkdir(parents=True)
    (tmp_path / "etc/pve/storage.cfg").write_text(STORAGE_CFG)
    return Paths(tmp_path)


@pytest.mark.parametrize("value, expected", [
    ("local:100/vm-100-disk-1.raw,mp=/d,acl=1", ["acl"]),
    ("local:100/vm-100-disk-1.raw,mp=/d,acl=0", ["noacl"]),
    ("local:100/vm-100-disk-1.raw,mp=/d", []),
    ("local:100/vm-100-disk-1.raw,mp=/d,quota=1", list(QUOTA_MOUNT_OPTIONS)),
    ("local:100/vm-100-disk-1.raw,mp=/d,quota=1,ro=1", []),
    ("local:100/vm-100-disk-1.raw,mp=/d,acl=1,quota=1", ["acl"] + list(QUOTA_MOUNT_OPTIONS)),
    ("local:100/subvol-100-disk-1,mp=/d,acl=0", []),
])
def test_volume_mount_options(paths, value, expected):
    assert filesystem_options(paths, parse_mount("mp0", value), "volume") == expected


def test_device_takes_acl(paths):
    assert filesystem_options(paths, parse_mount("mp0", "/dev/sdz1,mp=/d,acl=0"), "device") == ["noacl"]


def test_bind_ignores_acl(paths):
    assert filesystem_options(paths, parse_mount("mp0", "/srv/data,mp=/d,acl=1"), "bind") == []


def test_quota_allowed_on_raw_image(paths):
    check_quota_support(paths, 100, parse_mount("mp0", "local:100/vm-100-disk-1.raw,mp=/d,quota=1"), "volume")
    check_quota_support(paths, 100, parse_mount("rootfs", "local:100/vm-100-disk-0.raw,quota=1"), "volume")


@pytest.mark.parametrize("value, kind, what", [
    ("local:100/subvol-100-disk-1,mp=/d,quota=1", "volume", "a directory volume"),
    ("/srv/data,mp=/d,quota=1", "bind", "a bind mount"),
    ("/dev/sdz1,mp=/d,quota=1", "device", "a device"),
])
def test_quota_rejected_elsewhere(paths, value, kind, what):
    mount = parse_mount("mp3", value)
    with pytest.raises(PctError) as error:
        check_quota_support(paths, 100, mount, kind)
    assert error.value.message == (f"CT 100: mp3: quota=1 needs an ext4 image volume, but '{mount.volume}' "
                                   f"is {what}; remove quota=1 or use a raw image")
