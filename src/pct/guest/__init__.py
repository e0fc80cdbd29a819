"""Guest OS setup: detection and per-distribution edits inside a container's rootfs."""

from pct.guest.detect import check_ostype, detect_ostype
from pct.guest.model import GuestConfig, GuestNet
from pct.guest.rootfs import GuestRoot
from pct.guest.setup import FAMILIES, setup_guest

__all__ = [
    "FAMILIES",
    "GuestConfig",
    "GuestNet",
    "GuestRoot",
    "check_ostype",
    "detect_ostype",
    "setup_guest",
]
