"""Detect the distribution of a guest rootfs from its release files."""

from __future__ import annotations

import re

from pct.errors import GuestError
from pct.guest.rootfs import GuestRoot

# openSUSE writes one of these as ID in /etc/os-release.
_OS_RELEASE_LINE = re.compile(r"^[A-Z_][A-Z0-9_]*=[^\x00-\x08\x0b-\x1f]*$")

_OPENSUSE_IDS = ("opensuse", "opensuse-leap", "opensuse-tumbleweed", "opensuse-microos", "opensuse-slowroll")


def check_etc(root: GuestRoot) -> None:
    """Raise GuestError unless the guest's /etc is a real directory.

    A symlinked /etc would make every guest file resolve somewhere the guest
    chose, so guest setup does not work with one even though the links stay
    inside the rootfs.
    """
    target = root.readlink("/etc")
    if target is not None:
        raise GuestError(f"unable to set up the guest: its /etc is a symbolic link to {target!r}; expected a directory",
                         vmid=root.vmid)
    if not root.is_dir("/etc"):
        raise GuestError("unable to set up the guest: its /etc is missing or not a directory", vmid=root.vmid)


def detect_ostype(root: GuestRoot) -> str:
    """Return the ostype of the guest at *root*; raise GuestError when none matches.

    The order matters: Ubuntu and Devuan also ship /etc/debian_version, and
    Fedora also ships /etc/redhat-release.
    """
    if _key_value(root.read_text("/etc/lsb-release"), "DISTRIB_ID") == "Ubuntu":
        return "ubuntu"
    if root.exists("/etc/devuan_version"):
        return "devuan"
    if root.exists("/etc/debian_version"):
        return "debian"
    if root.exists("/etc/fedora-release"):
        return "fedora"
    if root.exists("/etc/redhat-release") or root.exists("/etc/centos-release"):
        return "centos"
    if root.exists("/etc/arch-release"):
        return "archlinux"
    if root.exists("/etc/alpine-release"):
        return "alpine"
    if root.exists("/etc/gentoo-release"):
        return "gentoo"

    os_id = _os_release_id(root)
    if root.exists("/etc/SuSE-brand") or os_id in _OPENSUSE_IDS:
        return "opensuse"
    if os_id == "nixos":
        return "nixos"
    raise GuestError(
        "unable to detect OS distribution: no known release file such as"
        " /etc/debian_version or /etc/os-release in the rootfs",
        vmid=root.vmid,
    )


def check_ostype(configured: str | None, detected: str, vmid: int | None) -> None:
    """Raise GuestError when the configured ostype differs from the detected one.

    No configured ostype and ``unmanaged`` accept any guest.
    """
    if configured is None or configured == "unmanaged" or configured == detected:
        return
    raise GuestError(
        f"ostype mismatch: configured '{configured}', but the rootfs contains '{detected}';"
        f" set ostype to '{detected}' or use another template",
        vmid=vmid,
    )


def _os_release_id(root: GuestRoot) -> str | None:
    """Return ID from /etc/os-release; raise GuestError when the file is not KEY=value text."""
    text = root.read_text("/etc/os-release")
    if text is None:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not _OS_RELEASE_LINE.match(stripped):
            shown = stripped[:40].encode("ascii", "backslashreplace").decode()
            raise GuestError(
                f"unable to detect OS distribution: /etc/os-release line {number} is not KEY=value: {shown!r}",
                vmid=root.vmid,
            )
    return _key_value(text, "ID")


def _key_value(text: str | None, key: str) -> str | None:
    """Return the value of ``KEY=value`` in a shell-style release file, quotes removed."""
    if text is None:
        return None
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name == key:
            return value.strip().strip("'\"")
    return None
