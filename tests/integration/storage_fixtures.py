"""A real btrfs file system on a loop file below the test's root, as storage ``btr``.

Import the ``btrfs`` fixture into a test module to use it. The loop file lives
under ``host.root``, so the session's leak check also finds its loop device.
"""

from __future__ import annotations

import subprocess
import time

import pytest

BTRFS_STORAGE_CFG = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,backup,rootdir,images,iso

btrfs: btr
\tpath /mnt/btr
\tcontent rootdir,images
"""


class BtrfsVolume:
    """The mounted test file system and the paths a test checks."""

    def __init__(self, host, image, mount_point):
        self.host = host
        self.image = image
        self.mount_point = mount_point

    def images(self, vmid: int):
        return self.mount_point / "images" / str(vmid)

    def subvolumes(self) -> list[str]:
        result = subprocess.run(["btrfs", "subvolume", "list", "-o", str(self.mount_point)],
                                capture_output=True, text=True, check=True)
        return sorted(line.split(" path ", 1)[1] for line in result.stdout.splitlines())

    def qgroup_limit(self, relative: str) -> int | None:
        path = self.mount_point / relative
        rootid = subprocess.run(["btrfs", "inspect-internal", "rootid", str(path)],
                                capture_output=True, text=True, check=True).stdout.strip()
        table = subprocess.run(["btrfs", "qgroup", "show", "-re", "--raw", str(self.mount_point)],
                               capture_output=True, text=True, check=True).stdout
        for line in table.splitlines():
            fields = line.split()
            if fields and fields[0] == f"0/{rootid}":
                return int(fields[3]) if fields[3].isdigit() else None
        raise AssertionError(f"no qgroup for {relative}")


def make_btrfs(host, size: str = "4G") -> BtrfsVolume:
    image = host.root / "btrfs.img"
    mount_point = host.root / "mnt/btr"
    mount_point.mkdir(parents=True)
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount_point)], check=True)
    cfg = host.root / "etc/pve/storage.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(BTRFS_STORAGE_CFG)
    return BtrfsVolume(host, image, mount_point)


def remove_btrfs(volume: BtrfsVolume) -> None:
    """Stop the test's containers, unmount everything below the root, detach the loop device."""
    volume.host.cleanup()
    for _ in range(50):
        if subprocess.run(["mountpoint", "-q", str(volume.mount_point)]).returncode != 0:
            break
        subprocess.run(["umount", str(volume.mount_point)], capture_output=True)
        time.sleep(0.1)
    attached = subprocess.run(["losetup", "-n", "-O", "NAME", "-j", str(volume.image)],
                              capture_output=True, text=True).stdout.split()
    for device in attached:
        subprocess.run(["losetup", "-d", device], capture_output=True)


@pytest.fixture
def btrfs(host):
    volume = make_btrfs(host)
    try:
        yield volume
    finally:
        remove_btrfs(volume)
