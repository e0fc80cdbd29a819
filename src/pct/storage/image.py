"""Raw ext4 images: make one, grow one, and find the loop devices that serve it."""

from __future__ import annotations

import time
from pathlib import Path

from pct.errors import CommandError, StorageError
from pct.run import run


def make_ext4_image(path: Path, size_bytes: int, owner: int) -> None:
    """Create the sparse file *path* and an ext4 file system in it, owned by *owner*."""
    try:
        with open(path, "xb") as image:
            image.truncate(size_bytes)
        run(["mkfs.ext4", "-q", "-F", "-E", f"root_owner={owner}:{owner}", str(path)])
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def loop_devices_of(path: Path) -> list[str]:
    """Return the loop devices attached to the file *path*."""
    result = run(["losetup", "-n", "-O", "NAME", "-j", str(path)])
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def grow_ext4_image(path: Path, size_bytes: int) -> None:
    """Grow the image file *path* to *size_bytes* and its ext4 file system with it.

    A mounted image is grown online: ``losetup -c`` updates the loop device's
    capacity and ``resize2fs`` runs on it. An unmounted one is checked and grown offline.
    """
    current = path.stat().st_size
    if size_bytes < current:
        raise StorageError(f"image '{path}' is {current} bytes; shrinking is not supported")

    devices = _mounted_loop_devices(path)
    _set_file_size(path, size_bytes, devices)
    if devices:
        try:
            run(["resize2fs", devices[0]])
        except CommandError as exc:
            # The file system did not grow, so the old size still contains all of it.
            _set_file_size(path, current, devices)
            # Limitation: the ext4 online resize ioctl needs CAP_SYS_RESOURCE. The
            # development host lacks it, so only this failure path ran there, never a successful online grow.
            raise StorageError(f"growing the mounted file system of '{path}' failed: {exc.message}; "
                               "stop the container and resize again to grow it offline") from exc
        return

    # e2fsck exits with 1 when it corrected something, which still allows the resize.
    check = run(["e2fsck", "-f", "-p", str(path)], check=False)
    if check.returncode not in (0, 1):
        raise StorageError(f"file system check of '{path}' failed before resizing: "
                           f"{(check.stdout or '').strip() or check.returncode}")
    run(["resize2fs", str(path)])


def _mounted_loop_devices(path: Path, wait_seconds: float = 5.0) -> list[str]:
    """Return the loop devices of *path* that are mounted.

    A loop device set to autoclear detaches shortly after its last unmount,
    so this waits for attached devices that are not mounted. A device that
    stays attached means another program uses the image.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        devices = loop_devices_of(path)
        mounted = _mount_sources()
        if all(device in mounted for device in devices):
            return devices
        if time.monotonic() > deadline:
            idle = [device for device in devices if device not in mounted]
            raise StorageError(f"image '{path}' is attached to {', '.join(idle)} without being mounted; "
                               "detach it (losetup -d) and try again")
        time.sleep(0.1)


def _mount_sources() -> set[str]:
    with open("/proc/self/mounts") as mounts:
        return {line.split()[0] for line in mounts}


def _set_file_size(path: Path, size_bytes: int, devices: list[str]) -> None:
    """Set the image file's size and tell the loop devices in *devices* about it."""
    with open(path, "r+b") as image:
        image.truncate(size_bytes)
    for device in devices:
        run(["losetup", "-c", device])
