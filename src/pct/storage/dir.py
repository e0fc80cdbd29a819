"""The ``dir`` storage type: raw ext4 images or plain directories below a path."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from pct.errors import StorageError
from pct.run import run
from pct.storage.plugins import Storage

UNPRIVILEGED_ROOT_ID = 100000

_IMAGE_VOLNAME = re.compile(r"^(\d+)/((?:vm|base)-(\d+)-disk-(\d+)\.raw|subvol-(\d+)-disk-(\d+))$")
_TEMPLATE_VOLNAME = re.compile(r"^vztmpl/([^/]+)$")
_SNIPPET_VOLNAME = re.compile(r"^snippets/([^/]+)$")


class DirStorage(Storage):
    """Volumes are files and directories below the storage's ``path``."""

    capabilities = frozenset({"rootdir", "images", "vztmpl", "full-clone"})

    @property
    def base(self) -> Path:
        path = self.definition.properties.get("path")
        if not path:
            raise StorageError(f"storage '{self.storage_id}': missing 'path'")
        return self.paths.under_root(path)

    def _image_dir(self, vmid: int) -> Path:
        return self.base / "images" / str(vmid)

    def _next_disk_number(self, vmid: int) -> int:
        taken = set()
        for name in self.list_volumes(vmid):
            match = re.search(r"-disk-(\d+)", name)
            if match:
                taken.add(int(match.group(1)))
        number = 0
        while number in taken:
            number += 1
        return number

    def alloc_volume(self, vmid: int, size_bytes: int, unprivileged: bool) -> str:
        """Create a new volume for *vmid*: an ext4 image, or a directory when size is 0."""
        image_dir = self._image_dir(vmid)
        image_dir.mkdir(parents=True, exist_ok=True)
        number = self._next_disk_number(vmid)
        owner = UNPRIVILEGED_ROOT_ID if unprivileged else 0

        if size_bytes == 0:
            name = f"subvol-{vmid}-disk-{number}"
            path = image_dir / name
            path.mkdir(mode=0o755)
            os.chown(path, owner, owner)
            return f"{vmid}/{name}"

        name = f"vm-{vmid}-disk-{number}.raw"
        path = image_dir / name
        try:
            with open(path, "xb") as image:
                image.truncate(size_bytes)
            run(["mkfs.ext4", "-q", "-F", "-E", f"root_owner={owner}:{owner}", str(path)])
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return f"{vmid}/{name}"

    def free_volume(self, volname: str) -> None:
        path = self.volume_path(volname)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass

    def volume_path(self, volname: str) -> Path:
        if _IMAGE_VOLNAME.match(volname):
            return self.base / "images" / volname
        template = _TEMPLATE_VOLNAME.match(volname)
        if template:
            return self.template_path(volname)
        snippet = _SNIPPET_VOLNAME.match(volname)
        if snippet and snippet.group(1) not in (".", ".."):
            return self.base / "snippets" / snippet.group(1)
        raise StorageError(f"storage '{self.storage_id}': unable to parse volume name '{volname}'")

    def template_path(self, volname: str) -> Path:
        match = _TEMPLATE_VOLNAME.match(volname)
        if not match or match.group(1) in (".", ".."):
            raise StorageError(f"storage '{self.storage_id}': '{volname}' is not a template volume")
        return self.base / "template" / "cache" / match.group(1)

    def mount_volume(self, volname: str, target: Path | str, read_only: bool = False,
                     options: list[str] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
        """Mount a raw image through a loop device, or bind-mount a directory volume.

        *target* may be a ``/proc/self/fd/<n>`` path of a directory opened by
        the caller, with that descriptor in *pass_fds*.
        """
        path = self.volume_path(volname)
        if not path.exists():
            raise StorageError(f"volume '{self.storage_id}:{volname}' does not exist")
        flags = ["ro" if read_only else "rw"] + list(options or [])
        if path.is_dir():
            run(["mount", "--bind", str(path), str(target)], pass_fds=pass_fds)
            if read_only or options:
                run(["mount", "-o", ",".join(["remount", "bind"] + flags), str(target)], pass_fds=pass_fds)
        else:
            run(["mount", "-t", "ext4", "-o", ",".join(["loop"] + flags), str(path), str(target)],
                pass_fds=pass_fds)

    def list_volumes(self, vmid: int | None = None) -> list[str]:
        images = self.base / "images"
        if not images.is_dir():
            return []
        owners = [str(vmid)] if vmid is not None else sorted(os.listdir(images))
        volumes = []
        for owner in owners:
            owner_dir = images / owner
            if owner_dir.is_dir():
                volumes += [f"{owner}/{name}" for name in sorted(os.listdir(owner_dir))]
        return volumes
