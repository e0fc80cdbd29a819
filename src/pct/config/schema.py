"""The container option schema: one declaration per config key.

Each ``Option`` carries the type, range, default and help of one key and
drives validation, ``--help`` and the typed model. Indexed options such as
``net[n]`` are declared once under their base name.

Every key of the config file format is declared so that files round-trip.
Options with ``settable=False`` (``lock``, ``parent``, ``snaptime``,
``snapstate``) are written by pct itself and cannot be changed by ``pct set``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from pct.config import checks
from pct.config.propstring import (
    PropertyValueError,
    PropFormat,
    PropKey,
    check_value,
    format_propstring,
    parse_propstring,
)
from pct.errors import ParameterError

UNKNOWN_KEY_REASON = "property is not defined in schema and the schema does not allow additional properties"
INTERNAL_DELETE_REASON = "option is managed by pct itself and cannot be removed with 'pct set'"
NOT_SETTABLE_REASON = "option is managed by pct itself and cannot be changed with 'pct set'"
UNPRIVILEGED_REASON = ("read-only option: the owners of the container's files follow it; back up and "
                       "'pct restore --unprivileged 0|1' to change it")
TEMPLATE_REASON = "read-only option: use 'pct template' to turn a container into a template"

ARCHES = ("amd64", "i386", "arm64", "armhf", "riscv32", "riscv64")
OSTYPES = ("alpine", "archlinux", "centos", "debian", "devuan", "fedora", "gentoo", "nixos",
           "opensuse", "ubuntu", "unmanaged")
LOCKS = ("backup", "create", "destroyed", "disk", "fstrim", "migrate", "mounted", "rollback",
         "snapshot", "snapshot-delete")
MOUNT_OPTIONS = ("noatime", "nodev", "noexec", "nosuid", "discard", "lazytime")

_INDEXED_KEY_RE = re.compile(r"([a-z]+)(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Option:
    """One config key: its value type, limits, default and help text.

    ``type`` is a scalar type of ``PropKey`` or ``propstring`` (then ``format``
    declares the keys). An indexed option (``indexed=True``) is written as
    ``<name>0`` to ``<name><max_index>``. ``hotplug`` is True when a change
    applies to a running container at once; other changes wait in
    ``[pve:pending]`` until the next start. ``set_refusal`` and
    ``delete_refusal``, when set, are the reasons ``pct set`` and ``pct set
    --delete`` reject the key.
    """

    name: str
    type: str
    description: str
    default: str | None = None
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    format: PropFormat | None = None
    check: Callable[[str], str] | None = None
    kind: str = ""
    indexed: bool = False
    max_index: int = 0
    hotplug: bool = False
    settable: bool = True
    set_refusal: str = ""
    delete_refusal: str = ""

    def normalise(self, value: str) -> str:
        """Validate *value* and return its canonical text, or raise ``PropertyValueError``."""
        if self.format is not None:
            return format_propstring(parse_propstring(value, self.format), self.format)
        spec = PropKey(type=self.type, choices=self.enum, minimum=self.minimum,
                       maximum=self.maximum, check=self.check, kind=self.kind)
        return check_value(spec, value)

    def synopsis(self) -> str:
        """Return the value format as shown in help text."""
        if self.format is not None:
            return self.format.summary()
        if self.enum:
            return "|".join(self.enum)
        if self.type == "boolean":
            return "1|0"
        if self.minimum is not None and self.maximum is not None:
            return f"{self.type} {_number_text(self.minimum)}-{_number_text(self.maximum)}"
        if self.minimum is not None:
            return f"{self.type} >= {_number_text(self.minimum)}"
        return self.kind or self.type


def _volume_key(required: bool = True) -> PropKey:
    return PropKey("string", required=required, check=checks.check_volume, kind="volume",
                   description="Storage volume (storage:name), 'storage:size in GiB' to allocate, or a host path")


def _mount_keys(with_mount_point: bool) -> dict[str, PropKey]:
    keys = {"volume": _volume_key()}
    if with_mount_point:
        keys["mp"] = PropKey("string", required=True, check=checks.check_mount_target, kind="path",
                             description="Path of the mount point inside the container")
    keys["acl"] = PropKey("boolean", description="Mount an ext4 image or a device with (1) or without (0) POSIX ACLs; "
                         "unset keeps the file system default")
    if with_mount_point:
        keys["backup"] = PropKey("boolean", description="Include the volume in backups")
    keys["mountoptions"] = PropKey("list", choices=MOUNT_OPTIONS, description="Extra mount options")
    keys["quota"] = PropKey("boolean", description="Turn on user and group quotas (ext4 image volumes only)")
    keys["replicate"] = PropKey("boolean", description="Include the volume in replication")
    keys["ro"] = PropKey("boolean", description="Mount read-only")
    keys["shared"] = PropKey("boolean", description="The volume is on storage shared between nodes")
    keys["size"] = PropKey("size", minimum=0, description="Volume size (K, M, G or T)")
    if with_mount_point:
        keys["keepattrs"] = PropKey("boolean", description="Keep owner and mode of the mount point directory")
    return keys


def _check_vlan_id(item: str) -> str:
    if not item.isdigit() or not 1 <= int(item) <= 4094:
        raise PropertyValueError(f"value '{item}' is not a VLAN id (1-4094)")
    return str(int(item))


ROOTFS_FORMAT = PropFormat(_mount_keys(with_mount_point=False), default_key="volume")
MOUNT_POINT_FORMAT = PropFormat(_mount_keys(with_mount_point=True), default_key="volume")
UNUSED_FORMAT = PropFormat({
    "volume": PropKey("string", required=True, check=checks.check_storage_volume, kind="storage volume id",
                      description="Storage volume (storage:name) no longer attached to the container"),
}, default_key="volume")
# The largest valid user or group id: (uid_t)-1 is reserved as "no id".
MAX_ID = 4294967294

NET_FORMAT = PropFormat({
    "name": PropKey("string", required=True, check=checks.check_ifname, kind="interface name",
                    description="Interface name inside the container"),
    "bridge": PropKey("string", check=checks.check_ifname, kind="bridge name",
                      description="Host bridge the host side joins"),
    "firewall": PropKey("boolean", description="Use the firewall on this interface"),
    "gw": PropKey("string", check=checks.check_ipv4_address, kind="IPv4 address",
                  description="IPv4 default gateway"),
    "gw6": PropKey("string", check=checks.check_ipv6_address, kind="IPv6 address",
                   description="IPv6 default gateway"),
    "hwaddr": PropKey("string", check=checks.check_unicast_mac, kind="unicast MAC address",
                      description="MAC address (generated when absent)"),
    "ip": PropKey("string", check=checks.check_ipv4_config, kind="IPv4 address in CIDR form",
                  description="IPv4 address in CIDR form, dhcp or manual"),
    "ip6": PropKey("string", check=checks.check_ipv6_config, kind="IPv6 address in CIDR form",
                   description="IPv6 address in CIDR form, auto, dhcp or manual"),
    "link_down": PropKey("boolean", description="Keep the host side of the interface down"),
    "mtu": PropKey("integer", minimum=64, maximum=65535, description="Maximum transfer unit"),
    "rate": PropKey("number", minimum=0, description="Rate limit in MB/s"),
    "tag": PropKey("integer", minimum=1, maximum=4094, description="VLAN tag"),
    "trunks": PropKey("list", check=_check_vlan_id, kind="VLAN id",
                      description="VLAN ids passed through, separated by ';'"),
    "type": PropKey("enum", choices=("veth",), description="Interface type"),
})

DEV_FORMAT = PropFormat({
    "path": PropKey("string", required=True, check=checks.check_device_path, kind="device path",
                    description="Host device to pass through"),
    "deny-write": PropKey("boolean", description="Pass the device read-only"),
    "gid": PropKey("integer", minimum=0, maximum=MAX_ID, description="Group id of the device node"),
    "mode": PropKey("string", check=checks.check_file_mode, kind="octal file mode",
                    description="Access mode of the device node"),
    "uid": PropKey("integer", minimum=0, maximum=MAX_ID, description="User id of the device node"),
}, default_key="path")

FEATURES_FORMAT = PropFormat({
    "force_rw_sys": PropKey("boolean", description="Mount /sys read-write in unprivileged containers"),
    "fuse": PropKey("boolean", description="Allow FUSE file systems"),
    "keyctl": PropKey("boolean", description="Allow the keyctl() system call"),
    "mknod": PropKey("boolean", description="Allow mknod() of some device nodes"),
    "mount": PropKey("list", check=checks.check_fstype, kind="file system type",
                     description="File system types allowed for mount, separated by ';'"),
    "nesting": PropKey("boolean", description="Allow nested containers"),
})

STARTUP_FORMAT = PropFormat({
    "order": PropKey("integer", minimum=0, description="Start order (ascending)"),
    "up": PropKey("integer", minimum=0, description="Seconds to wait after starting"),
    "down": PropKey("integer", minimum=0, description="Seconds to wait for shutdown"),
}, default_key="order", bare_default_key=False)


def _declare(*options: Option) -> dict[str, Option]:
    return {option.name: option for option in options}


OPTIONS: dict[str, Option] = _declare(
    Option("arch", "enum", "OS architecture", default="host", enum=ARCHES),
    Option("cmode", "enum", "What 'pct console' attaches to", default="tty",
           enum=("tty", "console", "shell"), hotplug=True),
    Option("console", "boolean", "Attach /dev/console", default="1"),
    Option("cores", "integer", "Number of host CPUs the container may use", minimum=1, maximum=8192,
           hotplug=True),
    Option("cpulimit", "number", "CPU time limit in cores (0 = no limit)", default="0", minimum=0,
           maximum=8192, hotplug=True),
    Option("cpuunits", "integer", "Relative CPU weight", minimum=0, maximum=500000, hotplug=True),
    Option("debug", "boolean", "Start LXC with debug logging", default="0"),
    Option("description", "string", "Free text shown as comments at the top of the config",
           check=checks.check_description, kind="description", hotplug=True),
    Option("dev", "propstring", "Device passed through to the container", format=DEV_FORMAT,
           indexed=True, max_index=255, hotplug=True),
    Option("features", "propstring", "Extra container features", format=FEATURES_FORMAT),
    Option("hookscript", "string", "Volume id of a script called at start and stop phases",
           check=checks.check_snippet_volume, kind="snippet volume id (storage:snippets/name)"),
    Option("hostname", "string", "Host name of the container (default CT<vmid>)",
           check=checks.check_dns_name, kind="DNS name", hotplug=True),
    Option("lock", "enum", "Lock set by a running action; cleared by 'pct unlock'", enum=LOCKS,
           settable=False),
    Option("memory", "integer", "Memory limit in MiB", default="512", minimum=16, hotplug=True),
    Option("mp", "propstring", "Mount point", format=MOUNT_POINT_FORMAT, indexed=True,
           max_index=255, hotplug=True),
    Option("nameserver", "string", "DNS servers, separated by spaces", check=checks.check_nameservers,
           kind="list of IP addresses", hotplug=True),
    Option("net", "propstring", "Network device", format=NET_FORMAT, indexed=True, max_index=31,
           hotplug=True),
    Option("onboot", "boolean", "Start the container when the host boots", default="0", hotplug=True),
    Option("ostype", "enum", "Distribution in the container (detected when absent)", enum=OSTYPES),
    Option("protection", "boolean", "Forbid removal of the container and its disks", default="0",
           hotplug=True),
    Option("rootfs", "propstring", "Root file system volume", format=ROOTFS_FORMAT,
           delete_refusal="the root file system cannot be removed"),
    Option("searchdomain", "string", "DNS search domains, separated by spaces",
           check=checks.check_searchdomains, kind="list of DNS domains", hotplug=True),
    Option("startup", "propstring", "Start and shutdown order", format=STARTUP_FORMAT,
           hotplug=True),
    Option("swap", "integer", "Swap limit in MiB", default="512", minimum=0, hotplug=True),
    Option("tags", "string", "Tags separated by ';'", check=checks.check_tags, kind="tag list",
           hotplug=True),
    Option("template", "boolean", "The container is a template", default="0", settable=False,
           set_refusal=TEMPLATE_REASON, delete_refusal=TEMPLATE_REASON),
    Option("timezone", "string", "Time zone of the container, or 'host'", check=checks.check_timezone,
           kind="time zone"),
    Option("tty", "integer", "Number of ttys", default="2", minimum=0, maximum=6),
    Option("unprivileged", "boolean", "Map ids with a user namespace. A config without the key is "
           "privileged; 'pct create' and 'pct restore' write 1 unless given --unprivileged 0", default="0",
           settable=False, set_refusal=UNPRIVILEGED_REASON, delete_refusal=UNPRIVILEGED_REASON),
    Option("unused", "propstring", "Volume detached from the container", format=UNUSED_FORMAT,
           indexed=True, max_index=255),
    # Keys written by the tool itself, never by the user.
    Option("parent", "string", "Snapshot the current state is based on",
           check=checks.check_snapshot_name, kind="snapshot name", settable=False,
           delete_refusal=INTERNAL_DELETE_REASON),
    Option("snaptime", "integer", "Time the snapshot was taken (Unix epoch)", minimum=0,
           settable=False, delete_refusal=INTERNAL_DELETE_REASON),
    Option("snapstate", "enum", "State of a snapshot being taken or removed",
           enum=("prepare", "delete"), settable=False, delete_refusal=INTERNAL_DELETE_REASON),
)

# Keys that 'pct set --delete' rejects, each for the reason its option declares.
UNDELETABLE_KEYS = frozenset(name for name, option in OPTIONS.items() if option.delete_refusal)


def lookup_option(key: str) -> Option | None:
    """Return the option declared for *key* (``net0`` finds ``net``), or None."""
    option = OPTIONS.get(key)
    if option is not None:
        return None if option.indexed else option

    match = _INDEXED_KEY_RE.fullmatch(key)
    if not match:
        return None
    option = OPTIONS.get(match.group(1))
    if option is None or not option.indexed or int(match.group(2)) > option.max_index:
        return None
    return option


def validate_option(key: str, value: str, vmid: int | None = None) -> str:
    """Validate *value* for *key* and return its normalised text.

    Raises ``ParameterError`` naming the key and the reason.
    """
    option = lookup_option(key)
    if option is None:
        raise ParameterError(key, UNKNOWN_KEY_REASON, vmid)
    if option.name != "description":
        value = value.strip()
    if value == "":
        raise ParameterError(key, "value is empty", vmid)
    try:
        normalised = option.normalise(value)
    except PropertyValueError as exc:
        raise ParameterError(key, exc.reason, vmid) from None
    # A property string of only commas normalises to nothing, which the file cannot store.
    if normalised == "":
        raise ParameterError(key, "value is empty", vmid)
    return normalised


def json_value(key: str, value: str) -> str | int | float:
    """Return *value* of *key* as JSON output shows it: integers, numbers and booleans as numbers."""
    option = lookup_option(key)
    if option is None or option.type not in ("integer", "number", "boolean"):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def is_settable(key: str) -> bool:
    """Return whether ``pct set`` may change *key*."""
    option = lookup_option(key)
    return option is not None and option.settable


def check_settable(key: str, vmid: int | None = None) -> Option:
    """Return the option of *key*, or raise ``ParameterError`` if ``pct set`` cannot change it."""
    option = lookup_option(key)
    if option is None:
        raise ParameterError(key, UNKNOWN_KEY_REASON, vmid)
    if not option.settable:
        raise ParameterError(key, option.set_refusal or NOT_SETTABLE_REASON, vmid)
    return option


def is_hotpluggable(key: str) -> bool:
    """Return whether a change of *key* applies to a running container without a restart.

    Unknown keys return False. A change of any other key waits in
    ``[pve:pending]`` until the next start.
    """
    option = lookup_option(key)
    return option is not None and option.hotplug


def check_deletable(key: str, vmid: int | None = None) -> Option:
    """Return the option of *key*, or raise ``ParameterError`` if ``pct set --delete`` must reject it.

    ``lock`` may be deleted, because that is what ``pct unlock`` does.
    """
    option = lookup_option(key)
    if option is None:
        raise ParameterError("delete", f"unknown option '{key}'", vmid)
    if option.delete_refusal:
        raise ParameterError(key, option.delete_refusal, vmid)
    return option


def option_help(name: str) -> str:
    """Return one help line for option *name* (``net`` or ``net0``)."""
    option = OPTIONS.get(name) or lookup_option(name)
    if option is None:
        raise KeyError(name)
    label = f"{option.name}[n]" if option.indexed else option.name
    text = f"{label} <{option.synopsis()}>: {option.description}"
    if option.default is not None:
        text += f" (default {option.default})"
    return text


def _number_text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
