"""Release detection and the range of releases guest setup supports per ostype.

A release newer than the newest one listed here is configured like that
newest one, with one warning per process and release. A release older than
the oldest supported one is rejected, because its tools read other files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pct.errors import GuestError
from pct.guest.rootfs import GuestRoot

log = logging.getLogger("pct.guest")

Version = tuple[int, ...]


@dataclass(frozen=True)
class SupportedRange:
    """The oldest release guest setup can configure and the newest one it was written for."""

    oldest: Version
    newest: Version


SUPPORTED: dict[str, SupportedRange] = {
    "debian": SupportedRange((10,), (13,)),
    "devuan": SupportedRange((3,), (6,)),
    "ubuntu": SupportedRange((16, 4), (25, 4)),
    "fedora": SupportedRange((30,), (42,)),
    "centos": SupportedRange((7,), (10,)),
    "alpine": SupportedRange((3, 10), (3, 21)),
    "opensuse": SupportedRange((15, 0), (16, 0)),
}

# Devuan's /etc/devuan_version holds a code name; "ceres" is its unstable branch.
_DEVUAN_CODENAMES = {"jessie": 1, "ascii": 2, "beowulf": 3, "chimaera": 4, "daedalus": 5, "excalibur": 6}

_warned: set[tuple[str, Version]] = set()


@dataclass(frozen=True)
class Release:
    """The detected release of a guest.

    ``version`` is None for rolling distributions (Arch, Gentoo, NixOS,
    openSUSE Tumbleweed). ``effective`` is the version guest setup configures
    the guest as: the detected one, or the newest known one for a newer release.
    """

    ostype: str
    version: Version | None = None
    effective: Version | None = None
    variant: str | None = None

    def at_least(self, *version: int) -> bool:
        """Return whether the effective version is *version* or later; rolling releases always are."""
        return self.effective is None or self.effective >= version


def detect_release(root: GuestRoot, ostype: str) -> Release:
    """Read the release of the *ostype* guest at *root* and check it against SUPPORTED.

    Raises GuestError for a release file that cannot be parsed and for a
    release older than the supported range.
    """
    reader = _READERS.get(ostype)
    version, variant = reader(root) if reader else (None, None)
    supported = SUPPORTED.get(ostype)
    if version is None or supported is None:
        return Release(ostype, version, version, variant)
    if version < supported.oldest:
        shown = f"42.{version[1]}" if ostype == "opensuse" and version[0] == 14 else _format(ostype, version)
        raise GuestError(
            f"{ostype} {shown} is too old for guest setup: supported releases are"
            f" {_format(ostype, supported.oldest)} to {_format(ostype, supported.newest)} and newer ones;"
            f" set ostype to 'unmanaged' to configure the guest yourself",
            vmid=root.vmid,
        )
    if version > supported.newest:
        _warn_newer(root, ostype, version, supported.newest)
        return Release(ostype, version, supported.newest, variant)
    return Release(ostype, version, version, variant)


def _warn_newer(root: GuestRoot, ostype: str, version: Version, newest: Version) -> None:
    if (ostype, version) in _warned:
        return
    _warned.add((ostype, version))
    log.warning(
        "CT %s: %s %s is newer than the newest release guest setup was written for (%s); configuring it like %s %s",
        root.vmid, ostype, _format(ostype, version), _format(ostype, newest), ostype, _format(ostype, newest),
    )


def _format(ostype: str, version: Version) -> str:
    if ostype == "ubuntu" and len(version) == 2:
        # Ubuntu writes the month of a release with two digits: 24.04.
        return f"{version[0]}.{version[1]:02d}"
    return ".".join(str(part) for part in version)


# -- readers: each returns (version or None, variant or None) -----------------


def _read_debian(root: GuestRoot) -> tuple[Version | None, None]:
    text = _first_line(root, "/etc/debian_version")
    if "/" in text or text in ("sid", "testing", "unstable"):
        # A testing or unstable system such as "trixie/sid" is configured like a rolling release.
        return None, None
    return _parse_number(root, "/etc/debian_version", text, r"(\d+)(?:\.(\d+))?", "a number such as 12.5"), None


def _read_devuan(root: GuestRoot) -> tuple[Version | None, None]:
    text = _first_line(root, "/etc/devuan_version")
    codename = text.split("/")[0].strip().lower()
    if codename in _DEVUAN_CODENAMES and "/" not in text:
        return (_DEVUAN_CODENAMES[codename],), None
    if "/" in text or codename == "ceres":
        return None, None
    return _parse_number(root, "/etc/devuan_version", text, r"(\d+)(?:\.(\d+))?", "a code name such as daedalus"), None


def _read_ubuntu(root: GuestRoot) -> tuple[Version | None, None]:
    text = _shell_value(root, "/etc/lsb-release", "DISTRIB_RELEASE") or ""
    return _parse_number(root, "/etc/lsb-release", text, r"(\d+)\.(\d+)", "DISTRIB_RELEASE=24.04"), None


def _read_fedora(root: GuestRoot) -> tuple[Version | None, None]:
    text = _first_line(root, "/etc/fedora-release")
    return _parse_number(root, "/etc/fedora-release", text, r"Fedora .*release (\d+)", "'Fedora release 41'"), None


def _read_centos(root: GuestRoot) -> tuple[Version | None, str]:
    path = "/etc/redhat-release" if root.exists("/etc/redhat-release") else "/etc/centos-release"
    text = _first_line(root, path)
    version = _parse_number(root, path, text, r".*?\brelease (\d+)(?:\.(\d+))?", "'Rocky Linux release 9.4'")
    return version, text.split(" release ")[0]


def _read_alpine(root: GuestRoot) -> tuple[Version | None, None]:
    text = _first_line(root, "/etc/alpine-release")
    return _parse_number(root, "/etc/alpine-release", text, r"(\d+)\.(\d+)", "a version such as 3.20.3"), None


def _read_opensuse(root: GuestRoot) -> tuple[Version | None, str]:
    os_id = _shell_value(root, "/etc/os-release", "ID") or ""
    if os_id != "opensuse-leap":
        # Tumbleweed, Slowroll and MicroOS are rolling releases.
        return None, os_id or "opensuse"
    text = _shell_value(root, "/etc/os-release", "VERSION_ID") or ""
    version = _parse_number(root, "/etc/os-release", text, r"(\d+)\.(\d+)", "VERSION_ID=\"15.6\"")
    if version[0] == 42:
        # Leap 42.1 to 42.3 came before Leap 15.0, so they compare as older.
        version = (14, version[1])
    return version, os_id


_READERS = {
    "debian": _read_debian,
    "devuan": _read_devuan,
    "ubuntu": _read_ubuntu,
    "fedora": _read_fedora,
    "centos": _read_centos,
    "alpine": _read_alpine,
    "opensuse": _read_opensuse,
}


def _first_line(root: GuestRoot, path: str) -> str:
    text = root.read_text(path) or ""
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def _shell_value(root: GuestRoot, path: str, key: str) -> str | None:
    for line in (root.read_text(path) or "").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name == key:
            return value.strip().strip("'\"")
    return None


def _parse_number(root: GuestRoot, path: str, text: str, pattern: str, expected: str) -> Version:
    match = re.match(pattern, text)
    if match is None:
        shown = text[:40].encode("ascii", "backslashreplace").decode()
        raise GuestError(
            f"unable to read the release from {path} in the guest: found {shown!r}, expected {expected}",
            vmid=root.vmid,
        )
    return tuple(int(part) for part in match.groups() if part is not None)
