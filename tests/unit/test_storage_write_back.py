"""Container volume content checks and the messages for failed write-backs, without root."""

import errno

import pytest

from pct.errors import StorageError
from pct.paths import Paths
from pct.runtime.mounts import FULL_STORAGE_BYTES, write_back_error
from pct.storage.cfg import StorageDefinition
from pct.storage.plugins import make_storage

EIO = OSError(errno.EIO, "Input/output error", "/var/lib/lxc/721/rootfs")


def storage(tmp_path, storage_type, properties):
    return make_storage(Paths(tmp_path), StorageDefinition(storage_type, "s1", {"path": "/store", **properties}))


@pytest.mark.parametrize("storage_type, properties", [
    ("dir", {"content": "rootdir"}),
    ("dir", {"content": "backup,rootdir,images"}),
    ("btrfs", {"content": "images,rootdir"}),
    ("dir", {}),
])
def test_container_content_allowed(tmp_path, storage_type, properties):
    storage(tmp_path, storage_type, properties).check_container_content(721)


@pytest.mark.parametrize("properties, message", [
    ({"content": "backup"}, "storage 's1' does not allow container volumes (content: backup); "
                            "add 'rootdir' to its content in storage.cfg or use another storage"),
    ({"content": "images,vztmpl"}, "storage 's1' does not allow container volumes (content: images,vztmpl)"),
    ({"content": ""}, "storage 's1' does not allow container volumes (content: none)"),
])
def test_container_content_rejected(tmp_path, properties, message):
    with pytest.raises(StorageError) as raised:
        storage(tmp_path, "dir", properties).check_container_content(721)
    assert message in raised.value.message
    assert raised.value.vmid == 721


def test_container_content_unknown_type_rejected(tmp_path):
    with pytest.raises(StorageError) as raised:
        storage(tmp_path, "nfs", {"content": "rootdir"}).check_container_content(721)
    assert raised.value.message == "storage 's1' (type nfs) cannot hold container volumes"


def test_write_back_error_full_storage():
    error = write_back_error(721, EIO, {"local": 10 << 30, "trsmall": 0})
    assert error.message == ("CT 721: writing the container's files failed: No space left on device on storage "
                             "'trsmall' (0 bytes available, syncfs: Input/output error); "
                             "free space there or use another storage")
    assert error.vmid == 721


def test_write_back_error_threshold():
    just_below = write_back_error(721, EIO, {"trsmall": FULL_STORAGE_BYTES - 1})
    at_threshold = write_back_error(721, EIO, {"trsmall": FULL_STORAGE_BYTES})
    assert "No space left on device on storage 'trsmall'" in just_below.message
    assert "No space left on device" not in at_threshold.message


def test_write_back_error_unknown_capacity():
    error = write_back_error(721, EIO, {"local": 10 << 30, "gone": None})
    assert error.message == "CT 721: writing the container's files failed: Input/output error (is the storage full?)"


def test_write_back_error_storage_has_space():
    error = write_back_error(721, EIO, {"local": 10 << 30})
    assert error.message == ("CT 721: writing the container's files failed: Input/output error on "
                             "/var/lib/lxc/721/rootfs; the kernel log (dmesg) names the cause")
