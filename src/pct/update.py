"""``pct set``: validate option changes and apply them to the config, live or pending.

A stopped container takes every change at once. On a running container, a
change the kernel can take live (see ``is_hotpluggable``) is applied and
written to the main section. Every other change waits in ``[pve:pending]``
until the next start, or until ``pct set`` runs on the stopped container.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field

from pct.config.checks import ALLOCATION_RE
from pct.config.format import ContainerConfig, Section, config_digest, parse_config, write_config
from pct.config.model import settings_from_config
from pct.config.schema import check_deletable, check_settable, lookup_option, validate_option
from pct.errors import ConfigError, LockError, ParameterError, PctError
from pct.locks import config_lock
from pct.paths import Paths
from pct.protection import check_disk_removal
from pct.runtime.mountpoints import check_new_bind_mounts
from pct.runtime.state import is_running

log = logging.getLogger(__name__)

DIGEST_MISMATCH = "detected modified configuration - file changed by other user? Try again."


@dataclass
class UpdateRequest:
    """The changes of one ``pct set``: new values, removals, reverted pending changes."""

    changes: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    revert: list[str] = field(default_factory=list)
    digest: str | None = None
    # Allow bind mounts of host system directories such as /etc.
    force: bool = False


def validate_request(request: UpdateRequest, vmid: int) -> dict[str, str]:
    """Check every key and value of *request*; return the changes normalised."""
    if not (request.changes or request.delete or request.revert):
        raise PctError(f"CT {vmid}: no options specified; see 'pct help set'", vmid)
    normalised = {}
    for key, value in request.changes.items():
        if key.startswith("lxc."):
            raise ParameterError(key, "raw LXC keys cannot be set with 'pct set'; edit the config file", vmid)
        check_settable(key, vmid)
        normalised[key] = validate_option(key, value, vmid)
    _check_rootfs_change(normalised.get("rootfs"), vmid)

    for key in request.delete + request.revert:
        if lookup_option(key) is None:
            raise ParameterError("delete" if key in request.delete else "revert", f"unknown option '{key}'", vmid)
    for key in request.delete:
        if key != "lock":
            check_deletable(key, vmid)
        if key in normalised:
            raise ParameterError("delete", f"cannot set and delete '{key}' at the same time", vmid)
    for key in request.revert:
        if key in normalised or key in request.delete:
            raise ParameterError("revert", f"cannot revert and change '{key}' at the same time", vmid)
    check_new_bind_mounts(normalised, vmid, request.force)
    return normalised


def _check_rootfs_change(value: str | None, vmid: int) -> None:
    """Reject ``rootfs: STORAGE:SIZE``, because a new empty root volume cannot boot."""
    if value is None:
        return
    volume = value.split(",", 1)[0].removeprefix("volume=")
    if ALLOCATION_RE.fullmatch(volume):
        raise ParameterError("rootfs", f"'pct set' cannot allocate a new root volume ('{volume}'); use "
                             "'pct resize' to grow it or 'pct move-volume' to move it", vmid)


def update_container(paths: Paths, vmid: int, request: UpdateRequest) -> list[str]:
    """Apply *request* to container *vmid*; return the keys left pending."""
    changes = validate_request(request, vmid)

    with config_lock(paths, vmid):
        config = _load_checked(paths, vmid, request.digest)
        lock = config.main.get("lock")
        if lock and set(changes) | set(request.delete) != {"lock"}:
            raise LockError(f"CT {vmid} is locked ({lock})", vmid)

        for key in request.revert:
            _drop_pending(config, key)

        undo: list = []
        try:
            _allocate_volumes(paths, vmid, config, changes, undo)
            _check_devices(changes, vmid)
            for key in request.delete:
                check_disk_removal(config, key, vmid)
            if "hookscript" in changes:
                _check_hookscript(paths, vmid, changes["hookscript"])
            freed: list[str] = []
            if is_running(paths, vmid):
                freed = _update_running(paths, vmid, config, changes, request.delete)
            else:
                fold_pending(config)
                for key, value in changes.items():
                    _set_value(config, key, value, vmid)
                for key in request.delete:
                    freed += [volume for volume in [_delete_value(config, key)] if volume]

            _check_result(config, vmid)
            write_config(paths, vmid, config)
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        _free_volumes(paths, vmid, freed)
        return pending_keys(config)



def _allocate_volumes(paths: Paths, vmid: int, config: ContainerConfig, changes: dict[str, str],
                      undo: list) -> None:
    """Allocate the volumes that ``mp[n]: STORAGE:SIZE`` values request, in place in *changes*.

    Each new ``rootfs`` or ``mp[n]`` value is then checked for options its
    volume cannot take, such as ``quota=1`` on a directory.
    """
    from pct.container import allocate_if_requested
    from pct.runtime.fsoptions import check_quota_setting

    unprivileged = config.main.get("unprivileged") == "1"
    for key in list(changes):
        if re.fullmatch(r"mp\d+", key):
            changes[key] = allocate_if_requested(paths, vmid, key, changes[key], unprivileged, undo)
        if key == "rootfs" or re.fullmatch(r"mp\d+", key):
            check_quota_setting(paths, vmid, key, changes[key])


def _check_devices(changes: dict[str, str], vmid: int) -> None:
    """Reject a new ``dev[n]`` whose host path is missing or not a device node, before it is stored."""
    from pct.config.model import device_from_valid
    from pct.runtime.devices import host_device

    for key, value in changes.items():
        if re.fullmatch(r"dev\d+", key):
            host_device(device_from_valid(key, value), vmid)


def _load_checked(paths: Paths, vmid: int, digest: str | None) -> ContainerConfig:
    try:
        text = paths.conf(vmid).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Configuration file 'etc/pve/lxc/{vmid}.conf' does not exist", vmid) from None
    if digest is not None and digest != config_digest(text):
        raise ParameterError("digest", DIGEST_MISMATCH, vmid)
    return parse_config(text, vmid)


def _check_hookscript(paths: Paths, vmid: int, volume: str) -> None:
    """Refuse a hookscript that does not exist or cannot be executed."""
    from types import SimpleNamespace

    from pct.runtime.hookscript import hookscript_path

    hookscript_path(paths, SimpleNamespace(hookscript=volume, vmid=vmid))


def _check_result(config: ContainerConfig, vmid: int) -> None:
    """Validate the main section and the config the next start would use."""
    settings_from_config(config, vmid)
    if config.pending:
        future = copy.deepcopy(config)
        fold_pending(future)
        settings_from_config(future, vmid)


def _update_running(paths: Paths, vmid: int, config: ContainerConfig, changes: dict[str, str],
                    delete: list[str]) -> list[str]:
    """Apply live what can be, leave the rest pending; return volumes to free."""
    from pct.runtime.live import applies_live, apply_live

    # A new mount point is mounted live; changing or removing a mounted one
    # waits for the next start.
    live = {key: value for key, value in changes.items()
            if applies_live(key) and not (_is_mount_point(key) and key in config.main)}
    live_delete = [key for key in delete if applies_live(key) and not _is_mount_point(key)]

    for key, value in changes.items():
        if key not in live:
            _set_pending(config, key, value)
    for key in delete:
        if key not in live_delete:
            _add_pending_delete(config, key)

    freed: list[str] = []
    if live or live_delete:
        after = copy.deepcopy(config)
        for key, value in live.items():
            _set_value(after, key, value, vmid)
            _drop_pending(after, key)
        for key in live_delete:
            freed += [volume for volume in [_delete_value(after, key)] if volume]
            _drop_pending(after, key)
        settings_from_config(after, vmid)
        apply_live(paths, settings_from_config(config, vmid), settings_from_config(after, vmid),
                   set(live) | set(live_delete))
        config.main, config.description, config.pending = after.main, after.description, after.pending
    return freed


def _is_mount_point(key: str) -> bool:
    return re.fullmatch(r"mp\d+", key) is not None


def _set_value(config: ContainerConfig, key: str, value: str, vmid: int) -> None:
    if key.startswith("net"):
        from pct.container import with_hwaddr

        value = with_hwaddr(key, value)
    if key == "description":
        config.description = value
    else:
        _keep_replaced_volume(config, key, value)
        config.main.set(key, value)


def _volume_of(value: str) -> str:
    return value.split(",", 1)[0].removeprefix("volume=")


def _keep_replaced_volume(config: ContainerConfig, key: str, value: str) -> None:
    """Swap volumes for a new ``rootfs`` or ``mp[n]`` value.

    The storage volume that the value replaces stays attached as
    ``unused[n]``, and an ``unused[n]`` entry of the volume that the value
    attaches again is removed.
    """
    if not (key == "rootfs" or _is_mount_point(key)):
        return
    new_volume = _volume_of(value)
    for unused_key in [name for name in config.main.keys() if re.fullmatch(r"unused\d+", name)]:
        if _volume_of(config.main.get(unused_key)) == new_volume:
            config.main.delete(unused_key)
    old = config.main.get(key)
    if old is None:
        return
    old_volume = _volume_of(old)
    if not old_volume.startswith("/") and old_volume != new_volume:
        config.main.set(_free_unused_key(config), old_volume)


def _delete_value(config: ContainerConfig, key: str) -> str | None:
    """Remove *key* from the main section; return a volume the caller must free afterwards.

    A removed storage-backed mount point stays attached as ``unused[n]``, so
    its data survives until that entry is removed too, which frees it.
    """
    value = config.main.get(key)
    if key == "description":
        config.description = ""
    config.main.delete(key)
    if not value:
        return None
    volume = _volume_of(value)
    if re.fullmatch(r"mp\d+", key) and not volume.startswith("/"):
        config.main.set(_free_unused_key(config), volume)
    elif re.fullmatch(r"unused\d+", key):
        return volume
    return None


def _free_unused_key(config: ContainerConfig) -> str:
    index = 0
    while f"unused{index}" in config.main:
        index += 1
    return f"unused{index}"


def _free_volumes(paths: Paths, vmid: int, volumes: list[str]) -> None:
    """Free removed ``unused[n]`` volumes, after the config no longer names them."""
    from pct.storage import get_storage, parse_volume_id

    for volume in volumes:
        storage_id, volname = parse_volume_id(volume)
        try:
            get_storage(paths, storage_id).free_volume(volname)
        except PctError as exc:
            log.warning("CT %s: unable to free volume '%s': %s", vmid, volume, exc.message)


# -- the pending section ------------------------------------------------------------

def _pending_section(config: ContainerConfig) -> Section:
    if config.pending is None:
        config.pending = Section(entries=[])
    return config.pending


def _pending_deletes(config: ContainerConfig) -> list[str]:
    if config.pending is None:
        return []
    return [key for key in (config.pending.get("delete") or "").split(",") if key]


def _write_pending_deletes(config: ContainerConfig, keys: list[str]) -> None:
    pending = _pending_section(config)
    if keys:
        pending.set("delete", ",".join(keys))
    else:
        pending.delete("delete")
    _drop_empty_pending(config)


def _set_pending(config: ContainerConfig, key: str, value: str) -> None:
    if key.startswith("net"):
        from pct.container import with_hwaddr

        value = with_hwaddr(key, value)
    _pending_section(config).set(key, value)
    _write_pending_deletes(config, [k for k in _pending_deletes(config) if k != key])


def _add_pending_delete(config: ContainerConfig, key: str) -> None:
    pending = _pending_section(config)
    pending.delete(key)
    keys = _pending_deletes(config)
    if key not in keys and (key in config.main or (key == "description" and config.description)):
        keys.append(key)
    _write_pending_deletes(config, keys)


def _drop_pending(config: ContainerConfig, key: str) -> None:
    if config.pending is None:
        return
    config.pending.delete(key)
    _write_pending_deletes(config, [k for k in _pending_deletes(config) if k != key])


def _drop_empty_pending(config: ContainerConfig) -> None:
    if config.pending is not None and not config.pending.entries:
        config.pending = None


def pending_keys(config: ContainerConfig) -> list[str]:
    """Return the keys with a pending value or a pending removal."""
    if config.pending is None:
        return []
    return [key for key in config.pending.keys() if key != "delete"] + _pending_deletes(config)


def fold_pending(config: ContainerConfig) -> bool:
    """Move pending values and removals into the main section; return whether any existed."""
    if config.pending is None:
        return False
    for key, value in config.pending.entries:
        if key == "delete":
            continue
        if key == "description":
            config.description = value
        else:
            _keep_replaced_volume(config, key, value)
            config.main.set(key, value)
    for key in _pending_deletes(config):
        _delete_value(config, key)
    config.pending = None
    return True


def pending_rows(config: ContainerConfig) -> list[dict]:
    """Return ``pct pending`` rows: each key with its current and pending value or removal."""
    rows = {}
    for key, value in config.main.entries:
        if not key.startswith("lxc."):
            rows[key] = {"key": key, "value": value}
    if config.description:
        rows["description"] = {"key": "description", "value": config.description}
    if config.pending is not None:
        for key, value in config.pending.entries:
            if key != "delete":
                rows.setdefault(key, {"key": key})["pending"] = value
        for key in _pending_deletes(config):
            rows.setdefault(key, {"key": key})["delete"] = 1
    return [rows[key] for key in sorted(rows)]
