"""The ``btrfs`` storage type: each volume is a btrfs subvolume below the storage's path.

Layout below ``<path>/images/<owner>/``:

- ``subvol-<vmid>-disk-<n>``: a directory volume, a subvolume whose qgroup
  limit (``max referenced``) is the volume size; size 0 means no limit.
- ``vm-<vmid>-disk-<n>.raw``: a raw ext4 image, kept as ``disk.raw`` inside
  the subvolume ``vm-<vmid>-disk-<n>`` so that it can be snapshotted too.
- ``<subvolume>@<snapshot>``: a read-only snapshot of that subvolume.
- ``base-``/``basevol-`` instead of ``vm-``/``subvol-``: a template's volume,
  set read-only.

A linked clone of a template volume is a writable snapshot of it, named
``<base volume>/<clone volume>`` (``basevol-100-disk-0/subvol-101-disk-0``)
and kept in ``<path>/images/<clone vmid>/<base volume>/``. btrfs snapshots do
not depend on their source, but the template volume is kept while a clone
names it, as on storage types whose clones do depend on it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pct.errors import CommandError, StorageError
from pct.run import run
from pct.storage.dir import UNPRIVILEGED_ROOT_ID, DirStorage, ImageName, parse_image_volname
from pct.storage.image import grow_ext4_image, make_ext4_image

RAW_FILE = "disk.raw"
SNAPSHOT_SEPARATOR = "@"


class BtrfsStorage(DirStorage):
    """Subvolumes with qgroup limits, read-only snapshots and snapshot-based linked clones."""

    capabilities = frozenset({"rootdir", "images", "full-clone", "linked-clone", "snapshot"})
    volume_features = {
        "snapshot": frozenset({"raw", "subvol"}),
        "linked-clone": frozenset({"raw", "subvol"}),
        "copy": frozenset({"raw", "subvol"}),
        "resize": frozenset({"raw", "subvol"}),
        "template": frozenset({"raw", "subvol"}),
        "rename": frozenset({"raw", "subvol"}),
        "acl": frozenset({"raw"}),
        "quota": frozenset({"raw"}),
    }
    sized_directories = True

    # -- names and paths ---------------------------------------------------------------

    def subvolume_dir(self, volname: str) -> Path:
        """Return the subvolume that contains *volname* (for a raw image, the one around its file)."""
        image = self._parse(volname)
        return self.image_dir_of(image) / f"{image.prefix}-{image.vmid}-disk-{image.disk}"

    def volume_path(self, volname: str) -> Path:
        image = parse_image_volname(volname)
        if image is None:
            return super().volume_path(volname)
        directory = self.subvolume_dir(volname)
        return directory / RAW_FILE if image.format == "raw" else directory

    def snapshot_dir(self, volname: str, snapshot: str) -> Path:
        directory = self.subvolume_dir(volname)
        return directory.with_name(f"{directory.name}{SNAPSHOT_SEPARATOR}{snapshot}")

    def snapshot_path(self, volname: str, snapshot: str) -> Path:
        directory = self.snapshot_dir(volname, snapshot)
        return directory / RAW_FILE if self._parse(volname).format == "raw" else directory

    def list_volumes(self, vmid: int | None = None) -> list[str]:
        images = self.base / "images"
        if not images.is_dir():
            return []
        owners = [str(vmid)] if vmid is not None else sorted(os.listdir(images))
        volumes = []
        for owner in owners:
            owner_dir = images / owner
            if not owner_dir.is_dir():
                continue
            volumes += _volumes_in(owner_dir, owner)
            for name in sorted(os.listdir(owner_dir)):
                if _is_base_directory(owner_dir / name):
                    volumes += _volumes_in(owner_dir / name, name)
        return volumes

    def linked_clones(self, volname: str) -> list[str]:
        """Return the linked clones of the template volume *volname*, found in every owner's base directory."""
        image = self._parse(volname)
        images = self.base / "images"
        if not image.is_base or not images.is_dir():
            return []
        clones = []
        for owner in sorted(os.listdir(images)):
            base_dir = images / owner / image.name
            if base_dir.is_dir():
                clones += _volumes_in(base_dir, image.name)
        return clones

    # -- allocation --------------------------------------------------------------------

    def alloc_volume(self, vmid: int, size_bytes: int, unprivileged: bool, name: str | None = None) -> str:
        """Create a subvolume for *vmid*, limited to *size_bytes* (0: no limit), or a raw image.

        Without *name*, a size allocates a subvolume with a qgroup limit, as
        ``STORAGE:N`` in rootfs and mp[n] does; a ``.raw`` *name* makes an image.
        """
        self._check_btrfs()
        image = self._new_volname(vmid, size_bytes, name)
        owner = UNPRIVILEGED_ROOT_ID if unprivileged else 0
        directory = self.subvolume_dir(image.volname())
        directory.parent.mkdir(parents=True, exist_ok=True)

        _create_subvolume(directory)
        try:
            if image.format == "raw":
                make_ext4_image(directory / RAW_FILE, size_bytes, owner)
            else:
                os.chown(directory, owner, owner)
                if size_bytes:
                    self._set_limit(directory, size_bytes)
        except BaseException:
            _delete_subvolume(directory)
            raise
        return image.volname()

    def free_volume(self, volname: str) -> None:
        """Delete the volume's subvolume and every snapshot of it.

        A template volume that linked clones were made from is kept, and
        StorageError names the first clone.
        """
        self.check_no_linked_clones(volname)
        directory = self.subvolume_dir(volname)
        for snapshot in self._snapshot_dirs(volname):
            _delete_subvolume(snapshot)
        if directory.exists():
            _delete_subvolume(directory)
        for parent in (directory.parent, directory.parent.parent):
            if parent == self.base / "images":
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def volume_size(self, volname: str) -> int:
        """Return the image size, or the subvolume's qgroup limit (0 when it has none)."""
        if self._parse(volname).format == "raw":
            return super().volume_size(volname)
        return self._limit(self.subvolume_dir(volname)) or 0

    # -- snapshots -----------------------------------------------------------------------

    def snapshot_volume(self, volname: str, snapshot: str) -> None:
        self._check_btrfs()
        target = self.snapshot_dir(volname, snapshot)
        if target.exists():
            raise StorageError(f"snapshot '{snapshot}' of volume '{self.storage_id}:{volname}' already exists")
        run(["btrfs", "subvolume", "snapshot", "-r", str(self.subvolume_dir(volname)), str(target)])

    def delete_volume_snapshot(self, volname: str, snapshot: str) -> None:
        target = self.snapshot_dir(volname, snapshot)
        if target.exists():
            _delete_subvolume(target)

    def has_volume_snapshot(self, volname: str, snapshot: str) -> bool:
        return self.snapshot_dir(volname, snapshot).is_dir()

    def rollback_volume(self, volname: str, snapshot: str) -> None:
        """Replace the volume by a writable copy of *snapshot*, keeping its qgroup limit.

        The copy is made first under a temporary name, so a failure leaves the
        current volume in place.
        """
        source = self.snapshot_dir(volname, snapshot)
        if not source.is_dir():
            raise StorageError(f"snapshot '{snapshot}' of volume '{self.storage_id}:{volname}' does not exist")
        current = self.subvolume_dir(volname)
        limit = self._limit(current)
        staging = current.with_name(f".{current.name}.rollback")
        if staging.exists():
            _delete_subvolume(staging)

        run(["btrfs", "subvolume", "snapshot", str(source), str(staging)])
        _delete_subvolume(current)
        os.rename(staging, current)
        if limit:
            self._set_limit(current, limit)

    def _snapshot_dirs(self, volname: str) -> list[Path]:
        directory = self.subvolume_dir(volname)
        if not directory.parent.is_dir():
            return []
        prefix = f"{directory.name}{SNAPSHOT_SEPARATOR}"
        return [directory.parent / name for name in sorted(os.listdir(directory.parent)) if name.startswith(prefix)]

    # -- templates, clones, renames, resize -------------------------------------------------

    def linked_clone(self, volname: str, target_vmid: int, snapshot: str | None = None) -> str:
        """Make a writable snapshot of the volume (or of its *snapshot*) as a new volume of *target_vmid*."""
        image = self._parse(volname)
        source = self.subvolume_dir(volname) if snapshot is None else self.snapshot_dir(volname, snapshot)
        prefix = "vm" if image.format == "raw" else "subvol"
        # The clone of a template volume records it, so removing the template can check for clones.
        base = image.name if image.is_base else None
        clone = ImageName(target_vmid, prefix, target_vmid, self._next_disk_number(target_vmid), base)
        target = self.subvolume_dir(clone.volname())
        target.parent.mkdir(parents=True, exist_ok=True)

        run(["btrfs", "subvolume", "snapshot", str(source), str(target)])
        limit = self._limit(self.subvolume_dir(volname))
        if limit:
            self._set_limit(target, limit)
        return clone.volname()

    def create_base(self, volname: str) -> str:
        """Rename the volume to its template name and make its subvolume read-only."""
        if self._snapshot_dirs(volname):
            raise StorageError(f"volume '{self.storage_id}:{volname}' has snapshots; remove them first")
        base = super().create_base(volname)
        run(["btrfs", "property", "set", "-ts", str(self.subvolume_dir(base)), "ro", "true"])
        return base

    def rename_volume(self, volname: str, target_vmid: int) -> str:
        if self._snapshot_dirs(volname):
            raise StorageError(f"volume '{self.storage_id}:{volname}' has snapshots; remove them first")
        return super().rename_volume(volname, target_vmid)

    def _rename_path(self, volname: str, new_volname: str) -> None:
        source, target = self.subvolume_dir(volname), self.subvolume_dir(new_volname)
        if target.exists():
            raise StorageError(f"volume '{self.storage_id}:{new_volname}' already exists")
        os.rename(source, target)

    def resize_volume(self, volname: str, size_bytes: int) -> None:
        """Grow a raw image and its file system, or raise a subvolume's qgroup limit."""
        if self._parse(volname).format == "raw":
            grow_ext4_image(self.volume_path(volname), size_bytes)
            return
        directory = self.subvolume_dir(volname)
        limit = self._limit(directory)
        if limit and size_bytes < limit:
            raise StorageError(f"volume '{self.storage_id}:{volname}' is limited to {limit} bytes; "
                               "shrinking is not supported")
        self._set_limit(directory, size_bytes)

    # -- quota groups --------------------------------------------------------------------

    def _set_limit(self, directory: Path, size_bytes: int) -> None:
        run(["btrfs", "quota", "enable", str(self.base)])
        run(["btrfs", "qgroup", "limit", str(size_bytes), str(directory)])

    def _limit(self, directory: Path) -> int | None:
        """Return the ``max referenced`` limit of the subvolume in bytes, None when unlimited."""
        subvolume_id = run(["btrfs", "inspect-internal", "rootid", str(directory)]).stdout.strip()
        try:
            table = run(["btrfs", "qgroup", "show", "-re", "--raw", str(directory)]).stdout
        except CommandError:
            return None  # quotas are not enabled on this file system
        for line in table.splitlines():
            fields = line.split()
            if fields and fields[0] == f"0/{subvolume_id}":
                return int(fields[3]) if fields[3].isdigit() else None
        return None

    def _check_btrfs(self) -> None:
        if not self.base.is_dir():
            raise StorageError(f"storage '{self.storage_id}': path '{self.base}' does not exist")
        fstype = run(["stat", "-f", "-c", "%T", str(self.base)]).stdout.strip()
        if fstype != "btrfs":
            raise StorageError(f"storage '{self.storage_id}': path '{self.base}' is on {fstype}, "
                               "not on a btrfs file system")


# The inode number of the root directory of every btrfs subvolume.
SUBVOLUME_ROOT_INODE = 256


def _is_subvolume(path: Path) -> bool:
    return path.is_dir() and path.stat().st_ino == SUBVOLUME_ROOT_INODE


def _is_base_directory(path: Path) -> bool:
    """Return whether *path* is a plain directory that contains the linked clones of one template volume."""
    probe = "vm-0-disk-0.raw" if path.name.endswith(".raw") else "subvol-0-disk-0"
    return parse_image_volname(f"{path.name}/{probe}") is not None and path.is_dir() and not _is_subvolume(path)


def _volumes_in(directory: Path, prefix: str) -> list[str]:
    """Return the volume names (``<prefix>/<name>``) of the subvolumes in *directory*, snapshots left out."""
    volumes = []
    for name in sorted(os.listdir(directory)):
        if SNAPSHOT_SEPARATOR in name or not _is_subvolume(directory / name):
            continue
        raw = f"{prefix}/{name}.raw"
        if parse_image_volname(raw) and (directory / name / RAW_FILE).exists():
            volumes.append(raw)
        elif parse_image_volname(f"{prefix}/{name}") and not (directory / name / RAW_FILE).exists():
            volumes.append(f"{prefix}/{name}")
    return volumes


def _create_subvolume(directory: Path) -> None:
    if directory.exists():
        raise StorageError(f"'{directory}' already exists")
    run(["btrfs", "subvolume", "create", str(directory)])


def _delete_subvolume(directory: Path) -> None:
    """Delete a subvolume (read-only ones too) and drop its quota group."""
    subvolume_id = run(["btrfs", "inspect-internal", "rootid", str(directory)]).stdout.strip()
    run(["btrfs", "property", "set", "-ts", str(directory), "ro", "false"])
    run(["btrfs", "subvolume", "delete", "--commit-after", str(directory)])
    # The quota group outlives the subvolume; removing it fails harmlessly when quotas are off.
    run(["btrfs", "qgroup", "destroy", f"0/{subvolume_id}", str(directory.parent)], check=False)
