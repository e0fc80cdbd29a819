"""protection: 1 keeps a container's disks."""

import pytest

from pct.config.format import parse_config
from pct.errors import PctError
from pct.paths import Paths
from pct.protection import check_disk_removal, check_volume_free

PROTECTED = """arch: amd64
mp0: local:100/vm-100-disk-1.raw,mp=/data,size=1G
mp1: /srv/share,mp=/share
protection: 1
rootfs: local:100/vm-100-disk-0.raw,size=4G
unused0: local:100/vm-100-disk-2.raw
"""


@pytest.mark.parametrize("key", ["mp0", "mp1", "unused0", "rootfs", "mp255"])
def test_disk_removal_protected(key):
    config = parse_config(PROTECTED)
    with pytest.raises(PctError) as raised:
        check_disk_removal(config, key, 100)
    assert raised.value.message == (f"can't remove CT 100 disk '{key}' - protection mode enabled; "
                                    "clear it first with 'pct set 100 --protection 0'")
    assert raised.value.vmid == 100


@pytest.mark.parametrize("key", ["memory", "net0", "description", "mpx", "unused"])
def test_other_keys_pass_when_protected(key):
    check_disk_removal(parse_config(PROTECTED), key, 100)


def test_section_accepted():
    with pytest.raises(PctError):
        check_disk_removal(parse_config(PROTECTED).main, "mp0", 100)


@pytest.mark.parametrize("value", ["0", None])
def test_unprotected_disks_removable(value):
    text = PROTECTED.replace("protection: 1\n", "" if value is None else f"protection: {value}\n")
    check_disk_removal(parse_config(text), "mp0", 100)


def write_config(root, vmid, text):
    conf = root / "etc/pve/lxc" / f"{vmid}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(text)


def test_volume_free_of_protected_owner(tmp_path):
    write_config(tmp_path, 100, PROTECTED)
    with pytest.raises(PctError) as raised:
        check_volume_free(Paths(tmp_path), "100/vm-100-disk-3.raw", "local:100/vm-100-disk-3.raw")
    assert raised.value.message == ("can't remove volume 'local:100/vm-100-disk-3.raw' of CT 100 - protection "
                                    "mode enabled; clear it first with 'pct set 100 --protection 0'")


def test_volume_free_without_protection(tmp_path):
    write_config(tmp_path, 100, PROTECTED.replace("protection: 1\n", ""))
    check_volume_free(Paths(tmp_path), "100/vm-100-disk-3.raw", "local:100/vm-100-disk-3.raw")


def test_volume_free_without_owner_config(tmp_path):
    check_volume_free(Paths(tmp_path), "101/vm-101-disk-0.raw", "local:101/vm-101-disk-0.raw")
    check_volume_free(Paths(tmp_path), "vztmpl/debian.tar.zst", "local:vztmpl/debian.tar.zst")
