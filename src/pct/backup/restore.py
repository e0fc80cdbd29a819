"""Restore a container from a backup archive.

Simple mode (no ``--rootfs`` given) recreates the archive's mount point
layout: every storage-backed volume is allocated anew on ``--storage`` with
its stored size, and bind and device mount points come back as config only.
Advanced mode uses only the ``--rootfs`` and ``--mp[n]`` values given.

Restoring over an existing container (``--force``) builds the new container
on new volumes while the old config stays in place, locked. Only when the new
container is complete does its config replace the old one, and only then are
the old volumes removed. A failure removes the new volumes and puts the old
config back unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from pct.backup.archive import ArchiveError, extract_archive, read_config
from pct.backup.target import resolve_archive
from pct.config.format import ContainerConfig, Section, load_config, parse_config, write_config
from pct.config.model import parse_mount, settings_from_config
from pct.config.schema import lookup_option, validate_option
from pct.container import GIB, allocate_if_requested, check_vmid, remove_empty_lxc_dir, with_hwaddr
from pct.errors import ConfigError, LockError, ParameterError, PctError
from pct.locks import config_lock
from pct.paths import Paths
from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP
from pct.runtime.mountpoints import mount_all, mount_kind
from pct.runtime.mounts import checked_write_back, mount_rootfs, unmount_all
from pct.runtime.state import is_running
from pct.storage import get_storage, parse_volume_id
from pct.tasks import Task, task
from pct.volumes import mount_volumes, volume_of

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "local"
_MOUNT_KEY = re.compile(r"rootfs|mp\d+")
_NET_KEY = re.compile(r"net\d+")
_VOLUME_KEY = re.compile(r"rootfs|mp\d+|unused\d+")
# Keys of an archived config that a restored container does not take over.
_DROPPED = ("lock", "parent", "snaptime", "snapstate")
_DROPPED_PATTERN = re.compile(r"unused\d+")


@dataclass
class RestoreRequest:
    """A ``pct restore`` request: *mounts* contains ``--rootfs``/``--mp[n]``, *options* the other overrides."""

    vmid: int
    archive: str
    storage: str | None = None
    mounts: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    force: bool = False
    ignore_unpack_errors: bool = False
    # Give every net[n] a new random MAC address instead of the archived one.
    unique: bool = False


def restore_container(paths: Paths, request: RestoreRequest) -> None:
    """Create container *request.vmid* from a backup archive; on failure leave everything as it was.

    The archive ``-`` is read from standard input, as ``vzdump --stdout``
    writes it.
    """
    check_vmid(request.vmid)
    if request.archive == "-":
        with _spooled_stdin(paths, request.vmid) as archive:
            _restore_from(paths, request, archive)
    else:
        _restore_from(paths, request, resolve_archive(paths, request.archive))


@contextlib.contextmanager
def _spooled_stdin(paths: Paths, vmid: int) -> Iterator[Path]:
    """Copy standard input to a temporary file below ``/var/tmp``, removed afterwards.

    The archive is read twice, once for its config and once to unpack it.
    """
    if sys.stdin.isatty():
        raise ArchiveError(f"CT {vmid}: the archive '-' is read from standard input, which is a terminal", vmid)
    directory = paths.under_root("var/tmp")
    directory.mkdir(parents=True, exist_ok=True)
    # The file is named "stdin", which messages about the archive then show.
    with tempfile.TemporaryDirectory(prefix=f"pct-restore-{vmid}-", dir=directory) as spool_dir:
        spool = Path(spool_dir) / "stdin"
        try:
            with open(spool, "wb") as output:
                shutil.copyfileobj(sys.stdin.buffer, output, 1 << 20)
        except OSError as exc:
            raise ArchiveError(f"CT {vmid}: reading the archive from standard input failed: "
                               f"{exc.strerror or exc}", vmid) from exc
        yield spool


def _restore_from(paths: Paths, request: RestoreRequest, archive: Path) -> None:
    vmid = request.vmid
    stored = _stored_config(archive, vmid)
    section = restored_section(stored.main, request)

    with config_lock(paths, vmid), task(paths, "vzrestore", vmid) as progress:
        old_text = _check_target(paths, vmid, request.force)
        undo: list[Callable[[], None]] = []
        config = ContainerConfig(description=stored.description, main=section)
        _mark_in_progress(paths, vmid, config, old_text, undo)
        try:
            _populate(paths, request, config, archive, old_text is not None, undo, progress)
        except BaseException:
            _roll_back(undo, vmid)
            raise

        config.main.delete("lock")
        write_config(paths, vmid, config)
        if old_text is not None:
            _free_replaced_volumes(paths, vmid, parse_config(old_text, vmid), config, progress)
        progress.log(f"restored CT {vmid} from '{archive.name}'")


# Limitation: an archive's ``./etc/vzdump/pct.fw`` is not restored, because
# this toolkit has no container firewall yet.
def _stored_config(archive: Path, vmid: int) -> ContainerConfig:
    text = read_config(archive, vmid)
    try:
        return parse_config(text, vmid)
    except ConfigError as exc:
        raise ConfigError(f"archive '{archive.name}': invalid container config: {exc.message}", vmid) from exc


def restored_section(stored: Section, request: RestoreRequest) -> Section:
    """Return the main section of the restored config, before volumes are allocated.

    The archived values come first; options given on the command line
    override them. Volume values read ``STORAGE:SIZE_GIB`` until allocated.
    """
    vmid = request.vmid
    advanced = "rootfs" in request.mounts
    if request.mounts and not advanced:
        raise ParameterError(next(iter(request.mounts)), "mount points can only be given together with "
                             "--rootfs (advanced restore mode)", vmid)

    section = Section(entries=[(key, value) for key, value in stored.entries
                               if key not in _DROPPED and not _DROPPED_PATTERN.fullmatch(key)])
    for key in [key for key in section.keys() if _MOUNT_KEY.fullmatch(key)]:
        if advanced:
            section.delete(key)
        else:
            section.set(key, simple_mode_value(key, section.get(key), request.storage or DEFAULT_STORAGE, vmid))
    for key, value in list(request.mounts.items()) + list(request.options.items()):
        if lookup_option(key) is None:
            raise ParameterError(key, "property is not defined in schema", vmid)
        normalised = validate_option(key, value, vmid)
        section.set(key, with_hwaddr(key, normalised) if key.startswith("net") else normalised)
    if request.unique:
        for key in [key for key in section.keys() if _NET_KEY.fullmatch(key)]:
            section.set(key, with_new_hwaddr(key, section.get(key)))
    if "rootfs" not in section:
        raise PctError(f"CT {vmid}: the archive's config has no rootfs; give one with --rootfs", vmid)
    return section


def with_new_hwaddr(key: str, value: str) -> str:
    """Return a ``net[n]`` value with its MAC address replaced by a new random one."""
    parts = [part for part in value.split(",") if not part.startswith("hwaddr=")]
    return with_hwaddr(key, ",".join(parts))


def simple_mode_value(key: str, value: str, storage_id: str, vmid: int) -> str:
    """Return a stored ``rootfs``/``mp[n]`` value with its volume replaced by a new allocation on *storage_id*.

    Bind and device mount points are returned unchanged.
    """
    mount = parse_mount(key, value, vmid)
    if mount.volume.startswith("/"):
        return value
    size_gib = f"{(mount.size or 0) / GIB:.6f}".rstrip("0").rstrip(".")
    parts = [part for part in value.split(",")[1:] if not part.startswith(("size=", "volume="))]
    if value.startswith("volume="):
        parts = [part for part in value.split(",") if not part.startswith(("size=", "volume="))]
    return ",".join([f"{storage_id}:{size_gib}"] + parts)


def _check_target(paths: Paths, vmid: int, force: bool) -> str | None:
    """Return the existing config text of *vmid*, None when there is none; raise when it must not be replaced."""
    path = paths.conf(vmid)
    if not path.exists():
        return None
    if not force:
        raise PctError(f"unable to restore CT {vmid} - CT {vmid} already exists; use --force to overwrite it", vmid)
    old = load_config(paths, vmid)
    lock = old.main.get("lock")
    if lock:
        raise LockError(f"CT {vmid} is locked ({lock})", vmid)
    if old.main.get("protection") == "1":
        raise PctError(f"unable to restore CT {vmid} - protection mode enabled", vmid)
    if is_running(paths, vmid):
        raise PctError(f"unable to restore CT {vmid} - CT {vmid} is running; stop it first", vmid)
    return path.read_text(encoding="utf-8")


def _mark_in_progress(paths: Paths, vmid: int, config: ContainerConfig, old_text: str | None,
                      undo: list[Callable[[], None]]) -> None:
    """Lock the id with ``lock: create``: a new config, or the old one until the new one replaces it."""
    # Limitation: a restore killed with SIGKILL during --force leaves the old
    # config locked ``create`` and the new volumes unreferenced. ``pct unlock``
    # brings the old container back, and ``pvesm free`` removes the volumes.
    if old_text is None:
        config.main.set("lock", "create")
        write_config(paths, vmid, config)
        undo.append(lambda: paths.conf(vmid).unlink(missing_ok=True))
        return
    old = parse_config(old_text, vmid)
    old.main.set("lock", "create")
    write_config(paths, vmid, old)
    undo.append(lambda: _write_text(paths.conf(vmid), old_text))
    config.main.set("lock", "create")


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.restore")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _populate(paths: Paths, request: RestoreRequest, config: ContainerConfig, archive: Path, replacing: bool,
              undo: list[Callable[[], None]], progress: Task) -> None:
    vmid = request.vmid
    unprivileged = config.main.get("unprivileged") == "1"
    mount_keys = sorted((key for key in config.main.keys() if _MOUNT_KEY.fullmatch(key)),
                        key=lambda key: -1 if key == "rootfs" else int(key[2:]))
    for key in mount_keys:
        value = config.main.get(key)
        if mount_kind(volume_of(value)) == "volume":
            progress.log(f"allocating {key}: {value}")
        config.main.set(key, allocate_if_requested(paths, vmid, key, value, unprivileged, undo))
    if not replacing:
        write_config(paths, vmid, config)

    settings = settings_from_config(config, vmid)
    if not paths.lxc_dir(vmid).exists():
        undo.append(lambda: remove_empty_lxc_dir(paths, vmid))
    rootfs = mount_rootfs(paths, settings)
    undo.append(lambda: unmount_all(paths, vmid))
    uid_base = UNPRIVILEGED_ID_MAP[0] if unprivileged else 0
    # Bind and device mount points are restored as config only; their host paths need not exist here.
    volumes = tuple(mount for mount in settings.mounts if mount_kind(mount.volume) == "volume")
    mount_all(paths, dataclasses.replace(settings, mounts=volumes), rootfs, uid_base, volumes_only=True)

    progress.log(f"extracting archive '{archive}'")
    id_map = UNPRIVILEGED_ID_MAP if unprivileged else None
    storage_ids = [volume.storage_id for volume in mount_volumes(config.main)]
    with checked_write_back(paths, vmid, rootfs, storage_ids):
        for warning in extract_archive(archive, rootfs, id_map, vmid, request.ignore_unpack_errors):
            progress.log(f"WARN: {warning}")
            log.warning("CT %s: skipped while unpacking: %s", vmid, warning)
    unmount_all(paths, vmid)


def _roll_back(undo: list[Callable[[], None]], vmid: int) -> None:
    for step in reversed(undo):
        try:
            step()
        except Exception as exc:  # keep undoing; report each failure once
            log.error("CT %s: rollback step failed: %s", vmid, exc)


def _free_replaced_volumes(paths: Paths, vmid: int, old: ContainerConfig, new: ContainerConfig,
                           progress: Task) -> None:
    """Remove the volumes of the replaced container that the new config does not use."""
    in_use = {volume_of(new.main.get(key)) for key in new.main.keys() if _VOLUME_KEY.fullmatch(key)}
    for section in [old.main] + list(old.snapshots.values()):
        for key in section.keys():
            if not _VOLUME_KEY.fullmatch(key):
                continue
            volid = volume_of(section.get(key))
            if volid.startswith("/") or volid in in_use:
                continue
            in_use.add(volid)
            _free_old_volume(paths, vmid, volid, progress)


def _free_old_volume(paths: Paths, vmid: int, volid: str, progress: Task) -> None:
    storage_id, volname = parse_volume_id(volid)
    try:
        storage = get_storage(paths, storage_id)
        if storage.owner_of(volname) != vmid:
            return
        if storage.volume_path(volname).exists():
            storage.free_volume(volname)
            progress.log(f"removed volume '{volid}' of the replaced container")
    except PctError as exc:
        progress.log(f"WARN: unable to remove volume '{volid}' of the replaced container: {exc}")
