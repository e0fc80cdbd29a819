"""A storage that fills up during create or restore, and storages whose content rejects container volumes.

The small storage is a real ext4 on a loop file below the test's root. A
container's raw image on it is sparse, so allocating a 4 GiB volume works and
the space runs out only when the unpacked files are written back.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from backup_helpers import archives, assert_one_line_error
from conftest import _mounts_below

SMALL_STORAGE_MIB = 48
# Random bytes do not compress, so this much data never fits on the small storage.
BIG_FILE_MIB = 80

STORAGE_CFG = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,backup,rootdir,images,iso

dir: small
\tpath /mnt/small
\tcontent rootdir,images

dir: dumps
\tpath /srv/dumps
\tcontent backup
"""


class SmallStorage:
    def __init__(self, image: Path, mount_point: Path):
        self.image = image
        self.mount_point = mount_point

    def files(self) -> list[str]:
        images = self.mount_point / "images"
        if not images.exists():
            return []
        return sorted(str(path.relative_to(images)) for path in images.rglob("*"))


@pytest.fixture
def small_storage(host):
    """Storage ``small``: a mounted ext4 of SMALL_STORAGE_MIB MiB, unmounted and detached afterwards."""
    image = host.root / "small.img"
    mount_point = host.root / "mnt/small"
    mount_point.mkdir(parents=True)
    (host.root / "srv/dumps").mkdir(parents=True)
    subprocess.run(["truncate", "-s", f"{SMALL_STORAGE_MIB}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], check=True)
    cfg = host.root / "etc/pve/storage.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(STORAGE_CFG)
    try:
        yield SmallStorage(image, mount_point)
    finally:
        host.cleanup()
        for _ in range(50):
            if subprocess.run(["mountpoint", "-q", str(mount_point)]).returncode != 0:
                break
            subprocess.run(["umount", str(mount_point)], capture_output=True)
            time.sleep(0.1)
        for device in loop_devices_of(image):
            subprocess.run(["losetup", "-d", device], capture_output=True)


@pytest.fixture
def big_template(host, busybox_template):
    """The busybox template plus BIG_FILE_MIB MiB of random data in /data/big, as a plain tar."""
    path = host.root / "big-template.tar"
    with tarfile.open(busybox_template) as source, tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        directory = tarfile.TarInfo("./data")
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        target.addfile(directory)
        info = tarfile.TarInfo("./data/big")
        info.size = BIG_FILE_MIB << 20
        info.mode = 0o644
        target.addfile(info, io.BytesIO(os.urandom(info.size)))
    return path


def loop_devices_of(image: Path) -> list[str]:
    result = subprocess.run(["losetup", "-n", "-O", "NAME", "-j", str(image)], capture_output=True, text=True)
    return result.stdout.split()


def loop_devices_below(directory: Path) -> list[str]:
    """Return the loop devices whose backing file is below *directory*."""
    result = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True)
    prefix = f"{directory}/"
    return [line.split()[0] for line in result.stdout.splitlines()
            if len(line.split()) > 1 and line.split()[1].startswith(prefix)]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def assert_nothing_left(host, small_storage, vmid):
    assert small_storage.files() == []
    assert _mounts_below(host.root / "var/lib/lxc" / str(vmid)) == []
    # A loop device set to autoclear detaches a moment after its unmount.
    assert wait_for(lambda: loop_devices_below(small_storage.mount_point) == [])


FULL_MESSAGE = "writing the container's files failed: No space left on device on storage 'small'"


def test_create_on_full_storage_fails(host, small_storage, big_template):
    vmid = host.new_vmid()

    result = host.pct("create", vmid, str(big_template), "--rootfs", "small:4", check=False)

    assert_one_line_error(result, f"CT {vmid}: {FULL_MESSAGE}")
    assert not host.conf_path(vmid).exists()
    assert_nothing_left(host, small_storage, vmid)


def test_create_with_full_mount_point_fails(host, small_storage, big_template):
    vmid = host.new_vmid()

    result = host.pct("create", vmid, str(big_template), "--mp0", "small:4,mp=/data", check=False)

    assert_one_line_error(result, f"CT {vmid}: {FULL_MESSAGE}")
    assert not host.conf_path(vmid).exists()
    assert host.images() == []
    assert_nothing_left(host, small_storage, vmid)


def test_restore_onto_full_storage_fails(host, small_storage, big_template):
    original = host.new_vmid()
    host.pct("create", original, str(big_template), "--hostname", "original")
    host.pct(original, "--mode", "stop", tool="vzdump")
    archive = archives(host, original)[-1]
    original_config = host.conf_text(original)
    original_images = host.images()

    restored = host.new_vmid()
    result = host.pct("restore", restored, str(archive), "--storage", "small", check=False)

    assert_one_line_error(result, f"CT {restored}: {FULL_MESSAGE}")
    assert not host.conf_path(restored).exists()
    assert_nothing_left(host, small_storage, restored)
    task_logs = list((host.root / "var/log/pve/tasks").rglob(f"*:vzrestore:{restored}:*"))
    assert len(task_logs) == 1
    assert f"TASK ERROR: CT {restored}: {FULL_MESSAGE}" in task_logs[0].read_text()

    result = host.pct("restore", original, str(archive), "--storage", "small", "--force", check=False)

    assert_one_line_error(result, f"CT {original}: {FULL_MESSAGE}")
    assert host.conf_text(original) == original_config
    assert host.images() == original_images
    assert_nothing_left(host, small_storage, original)


def test_create_on_storage_without_rootdir_rejected(host, small_storage, busybox_template):
    vmid = host.new_vmid()

    result = host.pct("create", vmid, str(busybox_template), "--rootfs", "dumps:1", check=False)

    assert_one_line_error(result, "storage 'dumps' does not allow container volumes (content: backup)")
    assert not host.conf_path(vmid).exists()
    assert host.images() == []
    assert os.listdir(host.root / "srv/dumps") == []


def test_restore_to_storage_without_rootdir_rejected(host, small_storage, busybox_template):
    original = host.new_vmid()
    host.pct("create", original, str(busybox_template))
    host.pct(original, "--mode", "stop", tool="vzdump")
    archive = archives(host, original)[-1]

    restored = host.new_vmid()
    result = host.pct("restore", restored, str(archive), "--storage", "dumps", check=False)

    assert_one_line_error(result, "storage 'dumps' does not allow container volumes (content: backup)")
    assert not host.conf_path(restored).exists()
    assert host.images() == [f"{original}/vm-{original}-disk-0.raw"]
    assert os.listdir(host.root / "srv/dumps") == []


def test_set_mount_point_on_storage_without_rootdir_rejected(host, small_storage, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    before = host.conf_text(vmid)

    result = host.pct("set", vmid, "--mp0", "dumps:1,mp=/data", check=False)

    assert_one_line_error(result, "storage 'dumps' does not allow container volumes (content: backup)")
    assert host.conf_text(vmid) == before
    assert os.listdir(host.root / "srv/dumps") == []


def test_full_clone_onto_full_storage_fails(host, small_storage, big_template):
    original = host.new_vmid()
    host.pct("create", original, str(big_template))
    original_config = host.conf_text(original)

    clone = host.new_vmid()
    result = host.pct("clone", original, clone, "--full", "--storage", "small", check=False)

    assert_one_line_error(result, f"CT {clone}: {FULL_MESSAGE}")
    assert not host.conf_path(clone).exists()
    assert host.conf_text(original) == original_config
    assert_nothing_left(host, small_storage, clone)
