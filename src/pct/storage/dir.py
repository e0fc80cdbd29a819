"""The ``dir`` storage type: raw ext4 images or plain directories below a path."""

from __future__ import annotations

import glob
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pct.errors import StorageError
from pct.run import run
from pct.storage.image import grow_ext4_image, make_ext4_image
from pct.storage.plugins import Storage, StorageStatus, VolumeInfo, statvfs_status

# How long a mount waits for a loop device that is detaching from the image.
LOOP_RELEASE_TIMEOUT = 5.0


def wait_for_loop_release(image: Path, timeout: float = LOOP_RELEASE_TIMEOUT) -> None:
    """Wait until no unmounted loop device is detaching from *image*, for at most *timeout* seconds.

    The kernel detaches an autoclear loop device in the background after its
    last unmount. mount(8) reuses a loop device that is still attached to the
    image, and a read-only mount on the device of a read-write one then fails with
    "Can't mount, would change RO state", as a backup right after
    ``pct create`` did.
    """
    deadline = time.monotonic() + timeout
    while detaching_loop_devices(image) and time.monotonic() < deadline:
        time.sleep(0.01)


def detaching_loop_devices(image: Path) -> list[str]:
    """Return the autoclear loop devices attached to *image* that are not mounted in this mount namespace."""
    real = os.path.realpath(image)
    found = []
    for backing in glob.glob("/sys/block/loop*/loop/backing_file"):
        device_dir = os.path.dirname(os.path.dirname(backing))
        try:
            with open(backing) as text:
                if text.read().strip() != real:
                    continue
            with open(os.path.join(device_dir, "loop", "autoclear")) as text:
                if text.read().strip() != "1":
                    continue
        except OSError:
            continue  # detached meanwhile
        found.append("/dev/" + os.path.basename(device_dir))
    if not found:
        return []
    with open("/proc/self/mountinfo") as mountinfo:
        sources = {line.split(" - ", 1)[1].split()[1] for line in mountinfo if " - " in line}
    return [device for device in found if device not in sources]

UNPRIVILEGED_ROOT_ID = 100000

# ``<owner>/<prefix>-<vmid>-disk-<n>[.raw]``: vm-/base- name raw images,
# subvol-/basevol- name directory trees; base-/basevol- belong to templates.
# A linked clone names its template volume in place of the owner:
# ``<base volume>/<clone volume>``, as in ``basevol-100-disk-0/subvol-101-disk-0``.
_IMAGE_VOLNAME = re.compile(
    r"^(?:(\d+)|(base-\d+-disk-\d+\.raw|basevol-\d+-disk-\d+))/"
    r"(?:(vm|base)-(\d+)-disk-(\d+)\.raw|(subvol|basevol)-(\d+)-disk-(\d+))$")
_BASE_VMID = re.compile(r"^base(?:vol)?-(\d+)-")
_TEMPLATE_VOLNAME = re.compile(r"^vztmpl/([^/]+)$")
_SNIPPET_VOLNAME = re.compile(r"^snippets/([^/]+)$")
_BACKUP_NAME = re.compile(r"^vzdump-lxc-(\d+)-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar(\.gz|\.zst|\.lzo)?$")
_TEMPLATE_SUFFIXES = (".tar.gz", ".tar.xz", ".tar.zst", ".tgz", ".tar")


@dataclass(frozen=True)
class ImageName:
    """The parts of an image volume name."""

    owner: int
    prefix: str
    vmid: int
    disk: int
    # The template volume a linked clone was made from, as ``basevol-100-disk-0``.
    base: str | None = None

    @property
    def format(self) -> str:
        return "raw" if self.prefix in ("vm", "base") else "subvol"

    @property
    def is_base(self) -> bool:
        return self.prefix in ("base", "basevol")

    @property
    def name(self) -> str:
        """Return the volume's own name, without owner or base: ``subvol-101-disk-0``."""
        suffix = ".raw" if self.format == "raw" else ""
        return f"{self.prefix}-{self.vmid}-disk-{self.disk}{suffix}"

    @property
    def base_volname(self) -> str | None:
        """Return the volume name of the template volume of a linked clone, or None."""
        if self.base is None:
            return None
        return f"{_BASE_VMID.match(self.base).group(1)}/{self.base}"

    def volname(self) -> str:
        return f"{self.base or self.owner}/{self.name}"


def parse_image_volname(volname: str) -> ImageName | None:
    """Return the parts of *volname*, or None when it is not an image volume name."""
    match = _IMAGE_VOLNAME.match(volname)
    if not match:
        return None
    owner_text, base = match.group(1), match.group(2)
    if match.group(3):
        prefix, vmid, disk = match.group(3), int(match.group(4)), int(match.group(5))
    else:
        prefix, vmid, disk = match.group(6), int(match.group(7)), int(match.group(8))
    # A linked clone lives with the container it belongs to, which its own name gives.
    owner = int(owner_text) if owner_text is not None else vmid
    return ImageName(owner, prefix, vmid, disk, base)


class DirStorage(Storage):
    """Volumes are files and directories below the storage's ``path``."""

    capabilities = frozenset({"rootdir", "images", "vztmpl", "full-clone"})
    volume_features = {
        "copy": frozenset({"raw", "subvol"}),
        "resize": frozenset({"raw"}),
        "template": frozenset({"raw", "subvol"}),
        "rename": frozenset({"raw", "subvol"}),
        "acl": frozenset({"raw"}),
        "quota": frozenset({"raw"}),
    }

    # Whether a directory volume can have a size limit; plain directories cannot.
    sized_directories = False

    @property
    def base(self) -> Path:
        path = self.definition.properties.get("path")
        if not path:
            raise StorageError(f"storage '{self.storage_id}': missing 'path'")
        return self.paths.under_root(path)

    def _image_dir(self, vmid: int) -> Path:
        return self.base / "images" / str(vmid)

    def image_dir_of(self, image: ImageName) -> Path:
        """Return the directory that contains the volume *image*: a linked clone's sits in a base directory."""
        directory = self._image_dir(image.owner)
        return directory / image.base if image.base else directory

    def owner_of(self, volname: str) -> int | None:
        image = parse_image_volname(volname)
        return image.owner if image else None

    def _parse(self, volname: str) -> ImageName:
        image = parse_image_volname(volname)
        if image is None:
            raise StorageError(f"storage '{self.storage_id}': unable to parse volume name '{volname}'")
        return image

    def volume_format(self, volname: str) -> str:
        return self._parse(volname).format

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

    def _new_volname(self, vmid: int, size_bytes: int, name: str | None) -> ImageName:
        """Return the name for a new volume: *name* checked, or the next free disk number."""
        if name is None:
            prefix = "subvol" if size_bytes == 0 or self.sized_directories else "vm"
            return ImageName(vmid, prefix, vmid, self._next_disk_number(vmid))

        image = parse_image_volname(f"{vmid}/{name}")
        if image is None or image.vmid != vmid or image.is_base:
            raise StorageError(f"storage '{self.storage_id}': invalid volume name '{name}' "
                               f"(expected vm-{vmid}-disk-N.raw or subvol-{vmid}-disk-N)", vmid)
        if image.format == "raw" and size_bytes == 0:
            raise StorageError(f"storage '{self.storage_id}': raw image '{name}' needs a size above 0", vmid)
        if image.format == "subvol" and size_bytes and not self.sized_directories:
            raise StorageError(f"storage '{self.storage_id}': directory volume '{name}' cannot have a size "
                               "on this storage type; use size 0", vmid)
        if self.volume_path(image.volname()).exists():
            raise StorageError(f"volume '{self.storage_id}:{image.volname()}' already exists", vmid)
        return image

    def alloc_volume(self, vmid: int, size_bytes: int, unprivileged: bool, name: str | None = None) -> str:
        """Create a new volume for *vmid*: an ext4 image, or a directory when size is 0."""
        image = self._new_volname(vmid, size_bytes, name)
        self._image_dir(vmid).mkdir(parents=True, exist_ok=True)
        owner = UNPRIVILEGED_ROOT_ID if unprivileged else 0
        path = self.volume_path(image.volname())

        if image.format == "subvol":
            path.mkdir(mode=0o755)
            os.chown(path, owner, owner)
        else:
            make_ext4_image(path, size_bytes, owner)
        return image.volname()

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
        image = parse_image_volname(volname)
        if image is not None:
            return self.image_dir_of(image) / image.name
        template = _TEMPLATE_VOLNAME.match(volname)
        if template:
            return self.template_path(volname)
        snippet = _SNIPPET_VOLNAME.match(volname)
        if snippet and snippet.group(1) not in (".", ".."):
            return self.base / "snippets" / snippet.group(1)
        raise StorageError(f"storage '{self.storage_id}': unable to parse volume name '{volname}'")

    def volume_size(self, volname: str) -> int:
        """Return the size of a raw image in bytes; directory volumes have no size and return 0."""
        path = self.volume_path(volname)
        return path.stat().st_size if path.is_file() else 0

    def template_path(self, volname: str) -> Path:
        match = _TEMPLATE_VOLNAME.match(volname)
        if not match or match.group(1) in (".", ".."):
            raise StorageError(f"storage '{self.storage_id}': '{volname}' is not a template volume")
        return self.base / "template" / "cache" / match.group(1)

    def mount_volume(self, volname: str, target: Path | str, read_only: bool = False,
                     options: list[str] | None = None, pass_fds: tuple[int, ...] = (),
                     snapshot: str | None = None) -> None:
        """Mount a raw image through a loop device, or bind-mount a directory volume.

        *target* may be a ``/proc/self/fd/<n>`` path of a directory opened by
        the caller, with that descriptor in *pass_fds*. *snapshot* mounts the
        volume as it was in that snapshot, on types that take snapshots.
        """
        path = self.volume_path(volname) if snapshot is None else self.snapshot_path(volname, snapshot)
        if not path.exists():
            raise StorageError(f"volume '{self.storage_id}:{volname}' does not exist")
        flags = ["ro" if read_only else "rw"] + list(options or [])
        if path.is_dir():
            run(["mount", "--bind", str(path), str(target)], pass_fds=pass_fds)
            if read_only or options:
                run(["mount", "-o", ",".join(["remount", "bind"] + flags), str(target)], pass_fds=pass_fds)
        else:
            wait_for_loop_release(path)
            run(["mount", "-t", "ext4", "-o", ",".join(["loop"] + flags), str(path), str(target)],
                pass_fds=pass_fds)

    def snapshot_path(self, volname: str, snapshot: str) -> Path:
        raise self._unsupported("reading snapshots")

    def list_volumes(self, vmid: int | None = None) -> list[str]:
        images = self.base / "images"
        if not images.is_dir():
            return []
        owners = [str(vmid)] if vmid is not None else sorted(os.listdir(images))
        volumes = []
        for owner in owners:
            owner_dir = images / owner
            if owner_dir.is_dir():
                volumes += [f"{owner}/{name}" for name in sorted(os.listdir(owner_dir))
                            if parse_image_volname(f"{owner}/{name}")]
        return volumes

    def list_content(self, vmid: int | None = None) -> list[VolumeInfo]:
        """Return the image volumes and backups (of *vmid* only, when given) and, without *vmid*, the templates."""
        content = self._list_backups(vmid)
        for volname in self.list_volumes(vmid):
            image = self._parse(volname)
            kind = "rootdir" if image.format == "subvol" else "images"
            content.append(VolumeInfo(volname, kind, image.format, self.volume_size(volname), image.owner))
        cache = self.base / "template" / "cache"
        if vmid is None and cache.is_dir():
            for name in sorted(os.listdir(cache)):
                if name.endswith(_TEMPLATE_SUFFIXES):
                    size = (cache / name).stat().st_size
                    content.append(VolumeInfo(f"vztmpl/{name}", "vztmpl", _archive_format(name), size))
        return content

    def _list_backups(self, vmid: int | None) -> list[VolumeInfo]:
        dump = self.base / "dump"
        if not dump.is_dir():
            return []
        backups = []
        for name in sorted(os.listdir(dump)):
            match = _BACKUP_NAME.match(name)
            if not match or (vmid is not None and int(match.group(1)) != vmid):
                continue
            size = (dump / name).stat().st_size
            backups.append(VolumeInfo(f"backup/{name}", "backup", _archive_format(name), size, int(match.group(1))))
        return backups

    def status(self) -> StorageStatus:
        if not self.base.is_dir():
            raise StorageError(f"storage '{self.storage_id}': path '{self.base}' does not exist")
        return statvfs_status(self.base)

    def create_base(self, volname: str) -> str:
        """Rename the volume to its template name (``base-``/``basevol-``) and return that."""
        image = self._parse(volname)
        if image.is_base:
            return volname
        prefix = "base" if image.format == "raw" else "basevol"
        base = ImageName(image.owner, prefix, image.vmid, image.disk)
        self._rename_path(volname, base.volname())
        return base.volname()

    def rename_volume(self, volname: str, target_vmid: int) -> str:
        """Move the volume to the next free disk name of container *target_vmid*."""
        image = self._parse(volname)
        prefix = "vm" if image.format == "raw" else "subvol"
        target = ImageName(target_vmid, prefix, target_vmid, self._next_disk_number(target_vmid))
        self._image_dir(target_vmid).mkdir(parents=True, exist_ok=True)
        self._rename_path(volname, target.volname())
        try:
            self._image_dir(image.owner).rmdir()
        except OSError:
            pass
        return target.volname()

    def _rename_path(self, volname: str, new_volname: str) -> None:
        source, target = self.volume_path(volname), self.volume_path(new_volname)
        if target.exists():
            raise StorageError(f"volume '{self.storage_id}:{new_volname}' already exists")
        os.rename(source, target)

    def resize_volume(self, volname: str, size_bytes: int) -> None:
        grow_ext4_image(self.volume_path(volname), size_bytes)


def _archive_format(name: str) -> str:
    for suffix in _TEMPLATE_SUFFIXES:
        if name.endswith(suffix):
            return suffix.lstrip(".")
    return "tar"
