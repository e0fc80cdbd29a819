"""Guest setup entry point and the table of distribution families.

Adding a distribution means one module with a GuestSetup subclass and one
entry in FAMILIES.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Callable

from pct.errors import GuestError
from pct.guest.base import PHASES, CreateInput, GuestSetup, HostFiles
from pct.guest.credentials import HostKey
from pct.guest.alpine import AlpineSetup
from pct.guest.arch import ArchSetup
from pct.guest.debian import DebianSetup, DevuanSetup, UbuntuSetup
from pct.guest.detect import check_etc, check_ostype, detect_ostype
from pct.guest.gentoo import GentooSetup
from pct.guest.model import GuestConfig, validate_guest_config
from pct.guest.nixos import NixOSSetup
from pct.guest.opensuse import OpenSUSESetup
from pct.guest.redhat import CentOSSetup, FedoraSetup
from pct.guest.rootfs import GuestRoot
from pct.guest.versions import detect_release

log = logging.getLogger("pct.guest")

FAMILIES: dict[str, type[GuestSetup]] = {
    "debian": DebianSetup,
    "devuan": DevuanSetup,
    "ubuntu": UbuntuSetup,
    "fedora": FedoraSetup,
    "centos": CentOSSetup,
    "archlinux": ArchSetup,
    "alpine": AlpineSetup,
    "gentoo": GentooSetup,
    "opensuse": OpenSUSESetup,
    "nixos": NixOSSetup,
}


def setup_guest(
    root: GuestRoot,
    conf: GuestConfig,
    *,
    phase: str,
    password: str | None = None,
    ssh_public_keys: str | None = None,
    host_resolv_conf: Path = Path("/etc/resolv.conf"),
    host_localtime: Path = Path("/etc/localtime"),
    rng: random.Random | None = None,
    host_keys: Callable[[], list[HostKey]] | None = None,
) -> str:
    """Edit the files of the guest at *root* so that it boots as configured in *conf*; return the ostype.

    *phase* is ``'start'`` (hostname, hosts, network, DNS, gettys, timezone)
    or ``'create'``, which also sets the root password, root's
    authorized_keys, new ssh host keys and random crontab times. *rng* picks
    the crontab times and defaults to the system's random source.
    *host_keys* returns keys generated in advance (see
    ``start_host_key_generation``); without it the keys are generated here. Input is
    checked before the first write, so invalid input changes nothing.
    An ostype of ``unmanaged`` returns at once without touching the guest.
    """
    if phase not in PHASES:
        raise GuestError(f"invalid guest setup phase {phase!r}; expected 'create' or 'start'", vmid=conf.vmid)
    validate_guest_config(conf)
    if conf.ostype == "unmanaged":
        return "unmanaged"

    check_etc(root)
    ostype = detect_ostype(root)
    check_ostype(conf.ostype, ostype, conf.vmid)
    family = FAMILIES.get(ostype)
    if family is None:
        raise GuestError(f"guest setup for {ostype} is not supported yet", vmid=conf.vmid)
    release = detect_release(root, ostype)

    log.debug("CT %s: %s guest setup for %s", conf.vmid, phase, ostype)
    create = CreateInput(password=password, ssh_public_keys=ssh_public_keys, host_keys=host_keys)
    if rng is not None:
        create.rng = rng
    family(root, conf, HostFiles(host_resolv_conf, host_localtime), release).run(phase, create)
    return ostype
