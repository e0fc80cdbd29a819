"""Checks for string-typed option values: names, addresses, paths, volume ids.

Each check returns the normalised value, or raises ``ValueError`` when the
value is malformed. A plain ``ValueError`` becomes "value 'x' does not look
like a valid <kind>", while a ``PropertyValueError`` carries a more precise reason.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re

from pct.config.propstring import PropertyValueError

_DNS_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_STORAGE_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_SNAPSHOT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
_TAG_RE = re.compile(r"[a-z0-9_+.-]+")
_TIMEZONE_RE = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_FSTYPE_RE = re.compile(r"[a-z0-9_]+")
_MODE_RE = re.compile(r"0?[0-7]{3,4}")
_LIST_SEPARATORS_RE = re.compile(r"[\s,;]+")
# The allocation syntax of rootfs and mp[n]: STORAGE:SIZE_IN_GIB.
ALLOCATION_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*):(\d+(?:\.\d+)?)$")
_SIZE_ONLY_RE = re.compile(r"\d+(?:\.\d+)?")
_SNIPPET_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def check_dns_name(value: str) -> str:
    """Check a DNS name such as ``www`` or ``www.example.com``."""
    if len(value) > 253:
        raise PropertyValueError(f"value '{value}' is longer than 253 characters")
    labels = value.split(".")
    if not all(_DNS_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(value)
    return value


def check_unicast_mac(value: str) -> str:
    """Check a unicast MAC address and return it in upper case."""
    if not _MAC_RE.fullmatch(value):
        raise ValueError(value)
    if int(value[:2], 16) & 1:
        raise PropertyValueError(
            f"value '{value}' is a multicast MAC address (the lowest bit of the first octet must be 0)"
        )
    return value.upper()


def check_ipv4_config(value: str) -> str:
    """Check an IPv4 setting of a network device: ``dhcp``, ``manual`` or an address in CIDR form."""
    if value in ("dhcp", "manual"):
        return value
    return _check_cidr(value, ipaddress.IPv4Interface, "IPv4 address in CIDR form (or dhcp/manual)")


def check_ipv6_config(value: str) -> str:
    """Check an IPv6 setting: ``auto``, ``dhcp``, ``manual`` or an address in CIDR form."""
    if value in ("auto", "dhcp", "manual"):
        return value
    return _check_cidr(value, ipaddress.IPv6Interface, "IPv6 address in CIDR form (or auto/dhcp/manual)")


def check_ipv4_address(value: str) -> str:
    """Check a plain IPv4 address such as a gateway."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(value) from None


def check_ipv6_address(value: str) -> str:
    """Check a plain IPv6 address and return it in compressed form."""
    try:
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        raise ValueError(value) from None


def check_nameservers(value: str) -> str:
    """Check IP addresses separated by spaces, commas or semicolons, and return them space separated."""
    servers = _split_words(value)
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise PropertyValueError(f"value '{server}' is not an IPv4 or IPv6 address") from None
    return " ".join(servers)


def check_searchdomains(value: str) -> str:
    """Check DNS domains separated by spaces, commas or semicolons, and return them space separated."""
    domains = _split_words(value)
    for domain in domains:
        try:
            check_dns_name(domain)
        except ValueError:
            raise PropertyValueError(f"value '{domain}' is not a valid DNS domain") from None
    return " ".join(domains)


def check_tags(value: str) -> str:
    """Check tags made of ``a-z 0-9 _ + . -``, separated by ``;`` (``,`` and spaces also accepted)."""
    tags = _split_words(value)
    for tag in tags:
        check_tag(tag)
    return ";".join(tags)


def check_tag(tag: str) -> str:
    """Check one tag: ``a-z 0-9 _ + . -`` only, so no separator or space."""
    if not _TAG_RE.fullmatch(tag):
        raise PropertyValueError(
            f"tag '{tag}' contains characters other than a-z, 0-9, '_', '+', '.' and '-'"
        )
    return tag


def check_ifname(value: str) -> str:
    """Check a network interface name: 1 to 15 of ``A-Z a-z 0-9 _ . -``."""
    if not _IFNAME_RE.fullmatch(value) or value in (".", ".."):
        raise ValueError(value)
    return value


def check_volume(value: str) -> str:
    """Check a volume: ``<storage>:<volume name or size>`` or an absolute host path."""
    if value.startswith("/"):
        return check_absolute_path(value)
    storage, sep, volname = value.partition(":")
    if not sep or not _STORAGE_ID_RE.fullmatch(storage) or not volname or any(c.isspace() for c in volname):
        raise ValueError(value)
    return value


def check_storage_volume(value: str) -> str:
    """Check a storage volume id ``<storage>:<volume name>``; host paths and sizes are rejected."""
    check_volume(value)
    if value.startswith("/"):
        raise PropertyValueError(f"value '{value}' is a host path, not a storage volume id (storage:name)")
    if _SIZE_ONLY_RE.fullmatch(value.partition(":")[2]):
        raise PropertyValueError(f"value '{value}' is an allocation size, not a storage volume id (storage:name)")
    return value


def check_snippet_volume(value: str) -> str:
    """Check the volume id of a snippet such as a hook script: ``<storage>:snippets/<file name>``."""
    check_storage_volume(value)
    volname = value.partition(":")[2]
    directory, _, filename = volname.partition("/")
    if directory != "snippets" or not _SNIPPET_NAME_RE.fullmatch(filename):
        raise PropertyValueError(
            f"value '{value}' is not a snippet volume id (expected storage:snippets/<file name>)"
        )
    return value


def check_absolute_path(value: str) -> str:
    """Check an absolute, normalised path without ``.`` or ``..`` components."""
    if not value.startswith("/") or "\0" in value:
        raise ValueError(value)
    if posixpath.normpath(value) != value or value.startswith("//"):
        raise PropertyValueError(f"path '{value}' is not normalised (no '.', '..', '//' or trailing '/')")
    return value


def check_mount_target(value: str) -> str:
    """Check a mount point path inside the container. ``/`` is rejected because it belongs to rootfs."""
    check_absolute_path(value)
    if value == "/":
        raise PropertyValueError("path '/' is the root file system; use rootfs for it")
    return value


def check_device_path(value: str) -> str:
    """Check a host device path below ``/dev/``."""
    check_absolute_path(value)
    if not value.startswith("/dev/"):
        raise PropertyValueError(f"path '{value}' is not below /dev/")
    return value


def check_snapshot_name(value: str) -> str:
    """Check a snapshot name: a letter first, then ``A-Z a-z 0-9 _ -``, at most 40 characters."""
    if not _SNAPSHOT_NAME_RE.fullmatch(value):
        raise ValueError(value)
    return value


def check_timezone(value: str) -> str:
    """Check a zone name such as ``Europe/Vienna``, or ``host``."""
    if not _TIMEZONE_RE.fullmatch(value):
        raise ValueError(value)
    return value


def check_fstype(value: str) -> str:
    """Check a file system type name such as ``nfs`` or ``cifs``."""
    if not _FSTYPE_RE.fullmatch(value):
        raise ValueError(value)
    return value


def check_file_mode(value: str) -> str:
    """Check an octal file mode such as ``0660``."""
    if not _MODE_RE.fullmatch(value):
        raise ValueError(value)
    return value


def check_description(value: str) -> str:
    """Check a description: free text of at most 8 KiB."""
    if len(value.encode("utf-8")) > 8192:
        raise PropertyValueError("description is longer than 8192 bytes")
    return value


def _check_cidr(value: str, interface_type: type, kind: str) -> str:
    if "/" not in value:
        raise PropertyValueError(f"value '{value}' does not look like a valid {kind}")
    try:
        return str(interface_type(value))
    except ValueError:
        raise PropertyValueError(f"value '{value}' does not look like a valid {kind}") from None


def _split_words(value: str) -> list[str]:
    words = [word for word in _LIST_SEPARATORS_RE.split(value.strip()) if word]
    if not words:
        raise PropertyValueError("value is empty")
    return words
