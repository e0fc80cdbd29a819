"""Checks of typed container settings: value ranges and rules between keys.

``settings_from_config`` validates each key on its own first; the checks here
add the rules that involve several keys (two mount points on one path, two
network devices with one interface name) and re-check the values of settings
that code built directly, without a config file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from pct.config import checks
from pct.config.propstring import PropertyValueError, format_number
from pct.config.schema import validate_option
from pct.errors import ParameterError

if TYPE_CHECKING:
    from pct.config.model import ContainerSettings

# Scalar fields of ContainerSettings named like their config key.
_SCALAR_KEYS = ("arch", "hostname", "memory", "swap", "cores", "cpulimit", "cpuunits", "tty",
                "ostype", "cmode", "lock", "nameserver", "searchdomain", "hookscript", "timezone")


def check_settings(settings: ContainerSettings) -> None:
    """Raise ``ParameterError`` for the first invalid value or conflict between keys in *settings*."""
    vmid = settings.vmid
    _check_scalars(settings)
    _check_tags(settings.tags, vmid)
    _check_mount_targets(settings)
    _check_unique("mount point path", ((mount.key, mount.mountpoint) for mount in settings.mounts), vmid)
    _check_unique("interface name", ((net.key, net.name) for net in settings.nets), vmid)
    _check_unique("MAC address", ((net.key, net.hwaddr) for net in settings.nets if net.hwaddr), vmid)
    _check_unique("device path", ((device.key, device.path) for device in settings.devices), vmid)
    _check_unused_not_attached(settings)


def _check_scalars(settings: ContainerSettings) -> None:
    """Check the scalar fields against the schema, as if they had been read from a file."""
    for key in _SCALAR_KEYS:
        value = getattr(settings, key)
        if value is None:
            continue
        text = format_number(value) if isinstance(value, (int, float)) else str(value)
        validate_option(key, text, settings.vmid)


def _check_tags(tags: Iterable[str], vmid: int) -> None:
    for tag in tags:
        try:
            checks.check_tag(tag)
        except PropertyValueError as exc:
            raise ParameterError("tags", exc.reason, vmid) from None


def _check_mount_targets(settings: ContainerSettings) -> None:
    if settings.rootfs is not None and settings.rootfs.mountpoint != "/":
        raise ParameterError("rootfs", f"mount point must be '/', not '{settings.rootfs.mountpoint}'",
                             settings.vmid)
    for mount in settings.mounts:
        try:
            checks.check_mount_target(mount.mountpoint)
        except PropertyValueError as exc:
            raise ParameterError(mount.key, exc.reason, settings.vmid) from None
        except ValueError:
            raise ParameterError(mount.key, f"mount point path '{mount.mountpoint}' is not absolute",
                                 settings.vmid) from None


def _check_unique(what: str, items: Iterable[tuple[str, str]], vmid: int) -> None:
    """Raise for the first item whose value an earlier key already uses."""
    owners: dict[str, str] = {}
    for key, value in items:
        if value in owners:
            raise ParameterError(key, f"duplicate {what} '{value}' (also used by {owners[value]})", vmid)
        owners[value] = key


def _check_unused_not_attached(settings: ContainerSettings) -> None:
    attached = {mount.volume: mount.key for mount in settings.mounts}
    if settings.rootfs is not None:
        attached[settings.rootfs.volume] = "rootfs"
    for unused in settings.unused:
        if unused.volume in attached:
            raise ParameterError(unused.key, f"volume '{unused.volume}' is still attached as "
                                 f"{attached[unused.volume]}", settings.vmid)
