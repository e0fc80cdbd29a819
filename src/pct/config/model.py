"""The typed container model, built once from a parsed config.

Runtime and guest setup consume ``ContainerSettings`` and never re-parse the
config strings. Every value is validated against the schema on the way in,
so a bad value fails here with a ``ParameterError`` naming the key.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

from pct.config.consistency import check_settings
from pct.config.format import ContainerConfig, Section
from pct.config.propstring import PropertyValueError, format_propstring, format_size, parse_propstring, parse_size
from pct.config.schema import (
    DEV_FORMAT,
    FEATURES_FORMAT,
    MOUNT_POINT_FORMAT,
    NET_FORMAT,
    OPTIONS,
    ROOTFS_FORMAT,
    STARTUP_FORMAT,
    UNUSED_FORMAT,
    lookup_option,
    validate_option,
)
from pct.errors import ParameterError

# Host machine names (uname -m) mapped to the container architecture names.
_HOST_ARCHES = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "i386", "i686": "i386",
    "aarch64": "arm64", "arm64": "arm64", "armv7l": "armhf", "armv6l": "armhf",
    "riscv64": "riscv64", "riscv32": "riscv32",
}
_MOUNT_FIELDS = ("volume", "mp", "size", "ro")


@dataclass(frozen=True)
class NetConfig:
    """One ``net[n]`` device."""

    index: int
    name: str
    bridge: str | None = None
    hwaddr: str | None = None
    ip: str | None = None
    gw: str | None = None
    ip6: str | None = None
    gw6: str | None = None
    mtu: int | None = None
    type: str = "veth"
    firewall: bool = False
    link_down: bool = False
    rate: float | None = None
    tag: int | None = None
    trunks: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        return f"net{self.index}"


@dataclass(frozen=True)
class MountConfig:
    """The root file system or one ``mp[n]`` mount point.

    ``size`` is in bytes. ``options`` contains the other property string keys
    (``acl``, ``backup``, ``quota``, ``mountoptions``, ...) as normalised text.
    """

    key: str
    volume: str
    mountpoint: str
    size: int | None = None
    ro: bool = False
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceConfig:
    """One ``dev[n]`` device passed through to the container.

    ``mode`` is the octal text of the config (``0660``); None keeps the mode
    of the host device node.
    """

    key: str
    path: str
    uid: int | None = None
    gid: int | None = None
    mode: str | None = None
    deny_write: bool = False


@dataclass(frozen=True)
class StartupConfig:
    """The ``startup`` option: start order and delays in seconds (None when not set)."""

    order: int | None = None
    up: int | None = None
    down: int | None = None


@dataclass(frozen=True)
class UnusedVolume:
    """One ``unused[n]`` volume: detached from the container but still owned by it."""

    key: str
    volume: str


@dataclass(frozen=True)
class ContainerSettings:
    """The validated settings of one container, with defaults filled in."""

    vmid: int
    arch: str
    hostname: str = ""
    memory: int = 512
    swap: int = 512
    cores: int | None = None
    cpulimit: float = 0.0
    cpuunits: int | None = None
    nets: tuple[NetConfig, ...] = ()
    rootfs: MountConfig | None = None
    ostype: str | None = None
    unprivileged: bool = False
    nameserver: str | None = None
    searchdomain: str | None = None
    tty: int = 2
    cmode: str = "tty"
    console: bool = True
    onboot: bool = False
    template: bool = False
    protection: bool = False
    lock: str | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    raw_lxc: tuple[tuple[str, str], ...] = ()
    mounts: tuple[MountConfig, ...] = ()
    devices: tuple[DeviceConfig, ...] = ()
    # Boolean features map to True/False; "mount" maps to a tuple of file system types.
    features: dict[str, bool | tuple[str, ...]] = field(default_factory=dict)
    startup: StartupConfig | None = None
    hookscript: str | None = None
    timezone: str | None = None
    debug: bool = False
    unused: tuple[UnusedVolume, ...] = ()

    def __post_init__(self) -> None:
        if not self.hostname:
            object.__setattr__(self, "hostname", f"CT{self.vmid}")


def settings_from_config(cfg: ContainerConfig, vmid: int) -> ContainerSettings:
    """Validate the main section of *cfg* and build the typed settings of container *vmid*.

    Raises ``ParameterError`` for a bad value of one key, and for keys that
    conflict with each other (two mount points on one path, two network
    devices with one interface name, ...).
    """
    settings = _settings_from_values(cfg, _validated_values(cfg, vmid), vmid)
    check_settings(settings)
    return settings


def validate_settings(source: ContainerSettings | ContainerConfig | Section, vmid: int) -> ContainerSettings:
    """Validate every key of *source* and the rules between keys; return the settings.

    *source* is a config, its main section, or settings built in code. The
    first problem raises ``ParameterError`` naming the key.
    """
    if isinstance(source, Section):
        source = ContainerConfig(main=source)
    if isinstance(source, ContainerConfig):
        return settings_from_config(source, vmid)
    if source.vmid != vmid:
        raise ParameterError("vmid", f"settings belong to CT {source.vmid}, not CT {vmid}", vmid)
    check_settings(source)
    return source


def _settings_from_values(cfg: ContainerConfig, values: dict[str, str], vmid: int) -> ContainerSettings:

    def text(key: str) -> str | None:
        return values.get(key)

    def boolean(key: str) -> bool:
        return values.get(key, OPTIONS[key].default) == "1"

    def integer(key: str) -> int | None:
        value = values.get(key, OPTIONS[key].default)
        return None if value is None else int(value)

    nets = tuple(sorted((_net_from_valid(values[key], int(key[3:]))
                         for key in values if lookup_option(key) is OPTIONS["net"]),
                        key=lambda net: net.index))
    mounts = tuple(sorted((parse_mount(key, values[key], vmid)
                           for key in values if lookup_option(key) is OPTIONS["mp"]),
                          key=lambda mount: int(mount.key[2:])))
    rootfs = parse_mount("rootfs", values["rootfs"], vmid) if "rootfs" in values else None

    return ContainerSettings(
        vmid=vmid,
        arch=values.get("arch") or host_arch(),
        hostname=values.get("hostname", ""),
        memory=integer("memory"),
        swap=integer("swap"),
        cores=integer("cores"),
        cpulimit=float(values.get("cpulimit", OPTIONS["cpulimit"].default)),
        cpuunits=integer("cpuunits"),
        nets=nets,
        rootfs=rootfs,
        ostype=text("ostype"),
        unprivileged=boolean("unprivileged"),
        nameserver=text("nameserver"),
        searchdomain=text("searchdomain"),
        tty=integer("tty"),
        cmode=values.get("cmode", OPTIONS["cmode"].default),
        console=boolean("console"),
        onboot=boolean("onboot"),
        template=boolean("template"),
        protection=boolean("protection"),
        lock=text("lock"),
        tags=tuple(values["tags"].split(";")) if "tags" in values else (),
        description=cfg.description,
        raw_lxc=tuple(cfg.main.raw_lxc()),
        mounts=mounts,
        devices=tuple(device_from_valid(key, values[key]) for key in _indexed_keys(values, "dev")),
        features=_features_from_valid(values["features"]) if "features" in values else {},
        startup=_startup_from_valid(values["startup"]) if "startup" in values else None,
        hookscript=text("hookscript"),
        timezone=text("timezone"),
        debug=boolean("debug"),
        unused=tuple(UnusedVolume(key, parse_propstring(values[key], UNUSED_FORMAT)["volume"])
                     for key in _indexed_keys(values, "unused")),
    )


def parse_net(value: str, index: int, vmid: int | None = None) -> NetConfig:
    """Parse and validate the value of ``net<index>``."""
    key = f"net{index}"
    if lookup_option(key) is not OPTIONS["net"]:
        raise ParameterError(key, "network device index must be between 0 and 31", vmid)
    return _net_from_valid(validate_option(key, value, vmid), index)


def parse_mount(key: str, value: str, vmid: int | None = None) -> MountConfig:
    """Parse and validate the value of ``rootfs`` or ``mp<n>``."""
    option = lookup_option(key)
    if option is OPTIONS["rootfs"]:
        fmt, mountpoint = ROOTFS_FORMAT, "/"
    elif option is OPTIONS["mp"]:
        fmt, mountpoint = MOUNT_POINT_FORMAT, None
    else:
        raise ParameterError(key, "not a mount point key (expected rootfs or mp0 to mp255)", vmid)

    try:
        values = parse_propstring(value, fmt)
    except PropertyValueError as exc:
        raise ParameterError(key, exc.reason, vmid) from None
    return MountConfig(
        key=key,
        volume=values["volume"],
        mountpoint=mountpoint or values["mp"],
        size=parse_size(values["size"]) if "size" in values else None,
        ro=values.get("ro") == "1",
        options={name: text for name, text in values.items() if name not in _MOUNT_FIELDS},
    )


def format_mount(mount: MountConfig) -> str:
    """Write *mount* back as the property string of its key, in canonical key order."""
    values = dict(mount.options)
    values["volume"] = mount.volume
    if mount.key == "rootfs":
        fmt = ROOTFS_FORMAT
    else:
        fmt = MOUNT_POINT_FORMAT
        values["mp"] = mount.mountpoint
    if mount.size is not None:
        values["size"] = format_size(mount.size)
    if mount.ro:
        values["ro"] = "1"
    return format_propstring(values, fmt)


def generate_hwaddr(rng: random.Random | None = None) -> str:
    """Return a random locally administered unicast MAC address in upper case."""
    rng = rng or random.SystemRandom()
    octets = [rng.randrange(256) for _ in range(6)]
    # Set the "locally administered" bit and clear the multicast bit.
    octets[0] = (octets[0] | 0x02) & 0xFE
    return ":".join(f"{octet:02X}" for octet in octets)


def host_arch() -> str:
    """Return the container architecture name of this host (``amd64`` on x86_64)."""
    machine = os.uname().machine
    return _HOST_ARCHES.get(machine, machine)


def _validated_values(cfg: ContainerConfig, vmid: int) -> dict[str, str]:
    """Validate every known key of the main section. Unknown keys stay out of the model."""
    values: dict[str, str] = {}
    for key, value in cfg.main.as_dict().items():
        if lookup_option(key) is None:
            continue
        values[key] = validate_option(key, value, vmid)
    return values


def _indexed_keys(values: dict[str, str], name: str) -> list[str]:
    """Return the keys of indexed option *name* present in *values*, by ascending index."""
    keys = [key for key in values if lookup_option(key) is OPTIONS[name]]
    return sorted(keys, key=lambda key: int(key[len(name):]))


def device_from_valid(key: str, value: str) -> DeviceConfig:
    """Return the device of a validated ``dev[n]`` value."""
    values = parse_propstring(value, DEV_FORMAT)
    return DeviceConfig(
        key=key,
        path=values["path"],
        uid=int(values["uid"]) if "uid" in values else None,
        gid=int(values["gid"]) if "gid" in values else None,
        mode=values.get("mode"),
        deny_write=values.get("deny-write") == "1",
    )


def _features_from_valid(value: str) -> dict[str, bool | tuple[str, ...]]:
    features: dict[str, bool | tuple[str, ...]] = {}
    for name, text in parse_propstring(value, FEATURES_FORMAT).items():
        features[name] = tuple(text.split(";")) if name == "mount" else text == "1"
    return features


def _startup_from_valid(value: str) -> StartupConfig:
    values = parse_propstring(value, STARTUP_FORMAT)
    return StartupConfig(**{name: int(text) for name, text in values.items()})


def _net_from_valid(value: str, index: int) -> NetConfig:
    """Build a ``NetConfig`` from a value the schema has already normalised."""
    values = parse_propstring(value, NET_FORMAT)

    def optional_int(name: str) -> int | None:
        return int(values[name]) if name in values else None

    return NetConfig(
        index=index,
        name=values["name"],
        bridge=values.get("bridge"),
        hwaddr=values.get("hwaddr"),
        ip=values.get("ip"),
        gw=values.get("gw"),
        ip6=values.get("ip6"),
        gw6=values.get("gw6"),
        mtu=optional_int("mtu"),
        type=values.get("type", "veth"),
        firewall=values.get("firewall") == "1",
        link_down=values.get("link_down") == "1",
        rate=float(values["rate"]) if "rate" in values else None,
        tag=optional_int("tag"),
        trunks=tuple(int(item) for item in values["trunks"].split(";")) if "trunks" in values else (),
    )
