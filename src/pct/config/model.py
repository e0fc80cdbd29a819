"""The typed container model, built once from a parsed config.

Runtime and guest setup consume ``ContainerSettings`` and never re-parse the
config strings. Every value is validated against the schema on the way in,
so a bad value fails here with a ``ParameterError`` naming the key.
"""

from __future__ import annotations

import platform
import random
from dataclasses import dataclass, field

from pct.config.format import ContainerConfig
from pct.config.propstring import PropertyValueError, format_propstring, format_size, parse_propstring, parse_size
from pct.config.schema import MOUNT_POINT_FORMAT, NET_FORMAT, OPTIONS, ROOTFS_FORMAT, lookup_option, validate_option
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

    def __post_init__(self) -> None:
        if not self.hostname:
            object.__setattr__(self, "hostname", f"CT{self.vmid}")


def settings_from_config(cfg: ContainerConfig, vmid: int) -> ContainerSettings:
    """Validate the main section of *cfg* and build the typed settings of container *vmid*."""
    values = _validated_values(cfg, vmid)

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
    machine = platform.machine()
    return _HOST_ARCHES.get(machine, machine)


def _validated_values(cfg: ContainerConfig, vmid: int) -> dict[str, str]:
    """Validate every known key of the main section. Unknown keys stay out of the model."""
    values: dict[str, str] = {}
    for key, value in cfg.main.as_dict().items():
        if lookup_option(key) is None:
            continue
        values[key] = validate_option(key, value, vmid)
    return values


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
