"""Container operations that change configs and volumes: create, set, destroy, unlock.

Each read-modify-write of a config happens under the container's flock.
Long actions also record ``lock: <kind>`` in the config, so a crash leaves a
visible lock that ``pct unlock`` or ``pct destroy`` clears.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pct.appliance.extract import detect_compression, extract_template
from pct.config.checks import ALLOCATION_RE
from pct.config.format import ContainerConfig, Section, load_config, write_config
from pct.config.model import generate_hwaddr, parse_mount, parse_net, settings_from_config
from pct.config.propstring import format_size
from pct.config.schema import lookup_option, validate_option
from pct.errors import LockError, ParameterError, PctError, TemplateError
from pct.locks import config_lock
from pct.paths import Paths
from pct.guest.credentials import start_host_key_generation
from pct.runtime.guestprep import prepare_guest
from pct.runtime.fsoptions import check_quota_setting
from pct.runtime.idmap import check_subid_ranges
from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP
from pct.runtime.mountpoints import check_new_bind_mounts, mount_all
from pct.runtime.mounts import checked_write_back, mount_rootfs, unmount_all
from pct.runtime.state import is_running
from pct.storage import get_storage, local_file, parse_volume_id
from pct.undo import roll_back
from pct.volumes import mount_volumes
from pct.tasks import Task, task

log = logging.getLogger(__name__)

MIN_VMID = 100
MAX_VMID = 999999999
GIB = 1024 ** 3
DEFAULT_ROOTFS_GIB = "4"


def check_vmid(vmid: int) -> None:
    if vmid < MIN_VMID:
        raise ParameterError("vmid", f"value must have a minimum value of {MIN_VMID}", vmid)
    if vmid > MAX_VMID:
        raise ParameterError("vmid", f"value must have a maximum value of {MAX_VMID}", vmid)


@dataclass
class CreateRequest:
    """The request of one ``pct create``, with options already as config strings."""

    vmid: int
    template: str
    options: dict[str, str] = field(default_factory=dict)
    storage: str = "local"
    password: str | None = None
    ssh_public_keys: str | None = None
    # Allow bind mounts of host system directories such as /etc.
    force: bool = False


def resolve_template(paths: Paths, template: str, vmid: int) -> Path:
    """Return the host path of *template*: a file path or a ``storage:vztmpl/`` id."""
    path = local_file(template)
    if path is None:
        storage_id, volname = parse_volume_id(template)
        path = get_storage(paths, storage_id).template_path(volname)
    if not path.is_file():
        raise TemplateError(f"template '{template}' does not exist", vmid)
    return path


def create_container(paths: Paths, request: CreateRequest) -> None:
    """Create a container from a template; on failure leave no config, volume or mount."""
    vmid = request.vmid
    check_vmid(vmid)
    template = resolve_template(paths, request.template, vmid)
    detect_compression(template)
    main = _initial_section(request)

    undo: list[Callable[[], None]] = []
    with config_lock(paths, vmid), task(paths, "vzcreate", vmid) as progress:
        if paths.conf(vmid).exists():
            raise PctError(f"CT {vmid} already exists", vmid)
        paths.lxc_conf_dir.mkdir(parents=True, exist_ok=True)
        config = ContainerConfig(description=request.options.get("description", ""), main=main,
                                 snapshots={}, pending=None, warnings=[])
        config.main.set("lock", "create")
        write_config(paths, vmid, config)
        undo.append(lambda: paths.conf(vmid).unlink(missing_ok=True))

        try:
            _populate(paths, request, config, template, undo, progress)
        except BaseException:
            roll_back(undo, vmid)
            raise

        config.main.delete("lock")
        write_config(paths, vmid, config)


def _initial_section(request: CreateRequest) -> Section:
    """Validate the requested options and return the main config section."""
    vmid = request.vmid
    options = dict(request.options)
    options.setdefault("unprivileged", "1")
    options.setdefault("rootfs", f"{request.storage}:{DEFAULT_ROOTFS_GIB}")
    options.pop("description", None)

    section = Section(entries=[])
    for key, value in options.items():
        if lookup_option(key) is None:
            raise ParameterError(key, "property is not defined in schema", vmid)
        normalised = validate_option(key, value, vmid)
        if key.startswith("net"):
            normalised = with_hwaddr(key, normalised)
        section.set(key, normalised)
    check_new_bind_mounts(dict(section.entries), vmid, request.force)
    return section


def remove_empty_lxc_dir(paths: Paths, vmid: int) -> None:
    """Remove the LXC directory of a failed create or restore, with its empty mount point."""
    for directory in (paths.lxc_dir(vmid) / "rootfs", paths.lxc_dir(vmid)):
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass


def with_hwaddr(key: str, value: str) -> str:
    """Add a generated MAC address to a ``net[n]`` value that has none."""
    if parse_net(value, int(key[3:])).hwaddr:
        return value
    return validate_option(key, f"{value},hwaddr={generate_hwaddr()}")


def _populate(paths: Paths, request: CreateRequest, config: ContainerConfig, template: Path,
              undo: list[Callable[[], None]], progress: Task) -> None:
    vmid = request.vmid
    unprivileged = config.main.get("unprivileged") == "1"

    progress.log(f"allocating root volume: {config.main.get('rootfs')}")
    for key in ["rootfs"] + [key for key in config.main.keys() if re.fullmatch(r"mp\d+", key)]:
        config.main.set(key, allocate_if_requested(paths, vmid, key, config.main.get(key), unprivileged, undo))
        check_quota_setting(paths, vmid, key, config.main.get(key))
    write_config(paths, vmid, config)

    settings = settings_from_config(config, vmid)
    if not paths.lxc_dir(vmid).exists():
        undo.append(lambda: remove_empty_lxc_dir(paths, vmid))
    rootfs = mount_rootfs(paths, settings)
    undo.append(lambda: unmount_all(paths, vmid))
    mount_all(paths, settings, rootfs, UNPRIVILEGED_ID_MAP[0] if unprivileged else 0, volumes_only=True)

    id_map = UNPRIVILEGED_ID_MAP if unprivileged else None
    if id_map:
        check_subid_ranges(*id_map, vmid)
    # The host keys are generated while the template unpacks.
    host_keys = start_host_key_generation(f"root@{settings.hostname}", vmid)
    storage_ids = [volume.storage_id for volume in mount_volumes(config.main)]
    with checked_write_back(paths, vmid, rootfs, storage_ids):
        try:
            progress.log(f"extracting archive '{template}'")
            extract_template(template, rootfs, id_map, vmid)
            progress.log("setting up the guest")
        except BaseException:
            _discard_keys(host_keys)
            raise
        ostype = prepare_guest(settings, rootfs, phase="create", password=request.password,
                               ssh_public_keys=request.ssh_public_keys, host_keys=host_keys)
    if not config.main.get("ostype"):
        config.main.set("ostype", ostype)
    if not config.main.get("arch"):
        config.main.set("arch", "amd64")
    unmount_all(paths, vmid)
    progress.log(f"created CT {vmid} ({config.main.get('ostype')}, {config.main.get('rootfs')})")


def _discard_keys(host_keys) -> None:
    """Wait for background key generation to end and drop its keys."""
    try:
        host_keys()
    except PctError:
        pass


def allocate_if_requested(paths: Paths, vmid: int, key: str, value: str, unprivileged: bool,
                          undo: list[Callable[[], None]]) -> str:
    """Replace ``STORAGE:SIZE_GIB`` in a rootfs or ``mp[n]`` value by a newly allocated volume.

    Values that name an existing volume, a host path or a device come back
    unchanged; a missing storage volume is an error.
    """
    mount = parse_mount(key, value)
    match = ALLOCATION_RE.match(mount.volume)
    if not match:
        if not mount.volume.startswith("/"):
            storage_id, volname = parse_volume_id(mount.volume)
            if not get_storage(paths, storage_id).volume_path(volname).exists():
                raise PctError(f"CT {vmid}: {key}: volume '{mount.volume}' does not exist", vmid)
        return value

    storage_id, size_gib = match.group(1), float(match.group(2))
    size = int(size_gib * GIB)
    storage = get_storage(paths, storage_id)
    storage.check_container_content(vmid)
    volname = storage.alloc_volume(vmid, size, unprivileged)
    undo.append(lambda: storage.free_volume(volname))
    parts = value.split(",")
    rest = [part for part in parts[1:] if not part.startswith("size=")]
    if parts[0].startswith("volume="):
        rest = [part for part in parts if not part.startswith(("volume=", "size="))]
    options = [f"{storage_id}:{volname}"] + rest
    if size:
        options.append(f"size={format_size(size)}")
    return validate_option(key, ",".join(options), vmid)


def unlock_container(paths: Paths, vmid: int) -> None:
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        config.main.delete("lock")
        write_config(paths, vmid, config)


def destroy_container(paths: Paths, vmid: int, force: bool = False) -> None:
    """Remove the container's volumes, its config and its LXC directory.

    A container left locked ``create`` by a killed ``pct create`` may be
    destroyed; other locks must be cleared with ``pct unlock`` first.
    """
    from pct.runtime.lifecycle import stop_container

    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        main = config.main
        if main.get("protection") == "1":
            raise PctError(f"can't remove CT {vmid} - protection mode enabled", vmid)
        lock = main.get("lock")
        if lock and lock not in ("create", "destroyed"):
            raise LockError(f"CT {vmid} is locked ({lock})", vmid)
        if is_running(paths, vmid):
            if not force:
                raise PctError(f"CT {vmid} is running - destroy failed", vmid)
            stop_container(paths, vmid)

        volumes = _owned_volumes(config, vmid)
        for volume in volumes:
            _check_no_linked_clones(paths, volume, vmid)
        unmount_all(paths, vmid)
        for volume in volumes:
            _free(paths, volume, vmid)
        paths.conf(vmid).unlink()
        shutil.rmtree(paths.lxc_dir(vmid), ignore_errors=True)


def _owned_volumes(config: ContainerConfig, vmid: int) -> list[str]:
    """Return storage volume ids that belong to *vmid*, from every section."""
    sections = [config.main] + list(config.snapshots.values())
    if config.pending:
        sections.append(config.pending)
    volumes: list[str] = []
    for section in sections:
        for key in section.keys():
            if key == "rootfs" or re.fullmatch(r"(mp|unused)\d+", key):
                volume = section.get(key).split(",", 1)[0].removeprefix("volume=")
                if not volume.startswith("/") and volume not in volumes:
                    volumes.append(volume)
    return volumes


def _check_no_linked_clones(paths: Paths, volume: str, vmid: int) -> None:
    """Raise before anything is removed when a linked clone still uses the template volume *volume*."""
    storage_id, volname = parse_volume_id(volume)
    storage = get_storage(paths, storage_id)
    if storage.owner_of(volname) == vmid and storage.linked_clones(volname):
        clone = storage.linked_clones(volname)[0]
        raise PctError(f"CT {vmid}: volume '{volume}' is the base of linked clone '{storage_id}:{clone}'; "
                       "destroy the clone first", vmid)


def _free(paths: Paths, volume: str, vmid: int) -> None:
    storage_id, volname = parse_volume_id(volume)
    storage = get_storage(paths, storage_id)
    if storage.owner_of(volname) != vmid:
        log.warning("CT %s: keeping volume '%s' of another owner", vmid, volume)
        return
    if storage.volume_path(volname).exists():
        storage.free_volume(volname)
