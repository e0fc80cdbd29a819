"""``pct template`` and ``pct clone``: turn a container into a template, copy containers.

A linked clone shares its data with the template it comes from, through the
storage's snapshots. It needs a template on a storage that declares
``linked-clone``. Every other clone is a full copy: a new volume per volume,
filled by copying the file tree.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pct.config.format import ContainerConfig, Section, load_config, write_config
from pct.config.model import parse_mount
from pct.errors import LockError, PctError
from pct.locks import config_lock
from pct.paths import Paths
from pct.run import run
from pct.runtime.mounts import checked_write_back, is_mountpoint
from pct.runtime.state import is_running
from pct.storage import Storage, get_storage
from pct.volumes import ConfigVolume, mount_volumes, replace_volume, storage_of, with_size

from pct.undo import roll_back

log = logging.getLogger(__name__)

# Keys of the source that a clone does not take over.
_NOT_CLONED = re.compile(r"lock|parent|snaptime|snapstate|description|template|unused\d+")
_HWADDR = re.compile(r"(^|,)hwaddr=[^,]*")


@dataclass
class CloneRequest:
    """The request of one ``pct clone``. ``full`` None lets the source decide."""

    vmid: int
    newid: int
    full: bool | None = None
    hostname: str | None = None
    storage: str | None = None
    snapname: str | None = None
    description: str | None = None


# -- template ---------------------------------------------------------------------------

def make_template(paths: Paths, vmid: int) -> None:
    """Turn stopped container *vmid* into a read-only template, renaming its volumes ``base-...``.

    The config is written after each renamed volume, so it matches the
    volumes on disk even when a later rename fails.
    """
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        _check_unlocked(config, vmid)
        if config.main.get("template") == "1":
            raise PctError(f"CT {vmid} is already a template", vmid)
        if is_running(paths, vmid):
            raise PctError(f"CT {vmid} is running; stop it before converting it to a template", vmid)
        if config.snapshots:
            raise PctError(f"CT {vmid} has snapshots ({', '.join(config.snapshots)}); "
                           "remove them before converting it to a template", vmid)

        cache: dict[str, Storage] = {}
        volumes = mount_volumes(config.main)
        for volume in volumes:
            storage_of(paths, volume, cache).require("template", volume.volname, vmid)
        for volume in volumes:
            base = storage_of(paths, volume, cache).create_base(volume.volname)
            config.main.set(volume.key, replace_volume(config.main.get(volume.key), f"{volume.storage_id}:{base}"))
            write_config(paths, vmid, config)

        config.main.set("template", "1")
        write_config(paths, vmid, config)


# -- clone -------------------------------------------------------------------------------

def clone_container(paths: Paths, request: CloneRequest) -> None:
    """Create container ``newid`` from ``vmid`` (or from its snapshot ``snapname``).

    On failure every volume made so far is removed and no config is left.
    """
    from pct.container import check_vmid

    vmid, newid = request.vmid, request.newid
    check_vmid(newid)
    if newid == vmid:
        raise PctError(f"CT {vmid}: the clone needs an id of its own", vmid)

    with config_lock(paths, vmid), config_lock(paths, newid):
        if paths.conf(newid).exists():
            raise PctError(f"CT {newid} already exists", newid)
        source = load_config(paths, vmid)
        _check_unlocked(source, vmid)
        section = _source_section(source, request)
        linked = _decide_linked(paths, source, section, request)
        if not linked and request.snapname is None and is_running(paths, vmid):
            raise PctError(f"CT {vmid} is running; stop it or clone one of its snapshots (--snapname)", vmid)

        clone = ContainerConfig(description=source.description if request.description is None
                                else request.description,
                                main=_cloned_section(section, request))
        clone.main.set("lock", "create")
        write_config(paths, newid, clone)
        undo: list[Callable[[], None]] = [lambda: paths.conf(newid).unlink(missing_ok=True),
                                          lambda: _remove_empty_dirs(paths.lxc_dir(newid))]
        try:
            _clone_volumes(paths, request, section, clone.main, linked, undo)
            clone.main.delete("lock")
            write_config(paths, newid, clone)
        except BaseException:
            roll_back(undo, newid)
            raise


def _source_section(source: ContainerConfig, request: CloneRequest) -> Section:
    if request.snapname is None:
        return source.main
    section = source.snapshots.get(request.snapname)
    if section is None:
        raise PctError(f"snapshot '{request.snapname}' of CT {request.vmid} does not exist", request.vmid)
    return section


def _decide_linked(paths: Paths, source: ContainerConfig, section: Section, request: CloneRequest) -> bool:
    """Return whether the clone is linked: by default for templates whose storage can, never otherwise."""
    vmid = request.vmid
    is_template = source.main.get("template") == "1"
    volumes = mount_volumes(section)
    capable = all(storage_of(paths, volume).supports("linked-clone", volume.volname) for volume in volumes)

    if request.full is None:
        return is_template and capable and request.storage is None
    if request.full:
        return False
    if not is_template:
        raise PctError(f"CT {vmid} is not a template; only templates have linked clones (use --full)", vmid)
    if request.storage is not None:
        raise PctError(f"CT {vmid}: --storage needs a full clone, because a linked clone stays on "
                       "the template's storage", vmid)
    for volume in volumes:
        storage_of(paths, volume).require("linked-clone", volume.volname, vmid)
    return True


def _cloned_section(section: Section, request: CloneRequest) -> Section:
    """Return the clone's main section: the source's keys with new MAC addresses and hostname."""
    from pct.container import with_hwaddr

    clone = Section(entries=[(key, value) for key, value in section.entries if not _NOT_CLONED.fullmatch(key)])
    for key in clone.keys():
        if re.fullmatch(r"net\d+", key):
            clone.set(key, with_hwaddr(key, _HWADDR.sub("", clone.get(key)).lstrip(",")))
    if request.hostname:
        from pct.config.schema import validate_option

        clone.set("hostname", validate_option("hostname", request.hostname, request.newid))
    return clone


def _clone_volumes(paths: Paths, request: CloneRequest, section: Section, clone: Section, linked: bool,
                   undo: list[Callable[[], None]]) -> None:
    unprivileged = section.get("unprivileged") == "1"
    for volume in mount_volumes(section):
        source = storage_of(paths, volume)
        if linked:
            volname = source.linked_clone(volume.volname, request.newid, request.snapname)
            target = source
        else:
            target = get_storage(paths, request.storage or volume.storage_id)
            size = parse_mount(volume.key, section.get(volume.key)).size
            if size is None:
                size = source.volume_size(volume.volname)
            volname = copy_volume(paths, volume, source, target, request.newid, size, unprivileged,
                                  request.snapname)
        undo.append(lambda target=target, volname=volname: target.free_volume(volname))

        value = replace_volume(clone.get(volume.key), f"{target.storage_id}:{volname}")
        if not linked:
            value = with_size(value, target.volume_size(volname))
        clone.set(volume.key, value)


def copy_volume(paths: Paths, volume: ConfigVolume, source: Storage, target: Storage, target_vmid: int,
                size: int, unprivileged: bool, snapshot: str | None = None) -> str:
    """Allocate a volume of *size* bytes for *target_vmid* on *target* and copy *volume*'s files into it."""
    source.require("copy", volume.volname, target_vmid)
    target.check_container_content(target_vmid)

    volname = target.alloc_volume(target_vmid, size, unprivileged)
    try:
        copy_volume_tree(paths.lxc_dir(target_vmid) / "clone" / volume.key, source, volume.volname, snapshot,
                         target, volname, target_vmid)
    except BaseException:
        target.free_volume(volname)
        raise
    return volname


def copy_volume_tree(work: Path, source: Storage, source_volname: str, snapshot: str | None,
               target: Storage, target_volname: str, vmid: int) -> None:
    """Mount both volumes below *work* and copy every file, owner, mode, ACL and xattr across."""
    source_dir, target_dir = work / "source", work / "target"
    source_dir.mkdir(parents=True, exist_ok=True)
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        source.mount_volume(source_volname, source_dir, read_only=True, snapshot=snapshot)
        target.mount_volume(target_volname, target_dir)
        with checked_write_back(target.paths, vmid, target_dir, [target.storage_id]):
            # On one btrfs file system --reflink=auto shares extents, which keeps the copy independent.
            run(["cp", "-a", "--reflink=auto", f"{source_dir}/.", f"{target_dir}/"])
    finally:
        _unmount_quietly(target_dir, vmid)
        _unmount_quietly(source_dir, vmid)
        _remove_empty_dirs(work.parent.parent)


def _unmount_quietly(directory: Path, vmid: int) -> None:
    if is_mountpoint(directory):
        try:
            run(["umount", str(directory)])
        except PctError as exc:
            log.error("CT %s: unmounting %s failed: %s", vmid, directory, exc)


def _remove_empty_dirs(top: Path) -> None:
    """Remove *top* and the directories below it, bottom up, leaving any that are not empty.

    Only empty directories go, so a volume still mounted below *top* after a
    failed unmount keeps its files.
    """
    if not top.is_dir():
        return
    for directory in sorted((path for path in top.rglob("*") if path.is_dir() and not path.is_symlink()),
                            key=lambda path: len(path.parts), reverse=True) + [top]:
        try:
            directory.rmdir()
        except OSError:
            pass


def _check_unlocked(config: ContainerConfig, vmid: int) -> None:
    lock = config.main.get("lock")
    if lock:
        raise LockError(f"CT {vmid} is locked ({lock})", vmid)
