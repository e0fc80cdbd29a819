"""Raw ext4 images: make one, grow one, and find the loop devices that serve it."""

from __future__ import annotations

from pathlib import Path

from pct.errors import StorageError
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

    A mounted image is grown online: the loop device is told the new capacity
    and ``resize2fs`` runs on it. An unmounted one is checked and grown offline.
    """
    current = path.stat().st_size
    if size_bytes < current:
        raise StorageError(f"image '{path}' is {current} bytes; shrinking is not supported")

    with open(path, "r+b") as image:
        image.truncate(size_bytes)

    devices = loop_devices_of(path)
    if devices:
        for device in devices:
            run(["losetup", "-c", device])
        run(["resize2fs", devices[0]])
        return

    # e2fsck exits with 1 when it corrected something, which still allows the resize.
    check = run(["e2fsck", "-f", "-p", str(path)], check=False)
    if check.returncode not in (0, 1):
        raise StorageError(f"file system check of '{path}' failed before resizing: "
                           f"{(check.stdout or '').strip() or check.returncode}")
    run(["resize2fs", str(path)])
