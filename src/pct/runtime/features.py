"""The ``features`` option as LXC keys: nesting, keyctl, fuse, mknod, mount, force_rw_sys."""

from __future__ import annotations

import logging
from pathlib import Path

from pct.paths import Paths

log = logging.getLogger(__name__)

LXC_SECCOMP = Path("/usr/share/lxc/config/common.seccomp")
SECCOMP_FILE = "seccomp"
FUSE_DEVICE = "c 10:229 rwm"


def feature_keys(settings, paths: Paths, unified: bool, apparmor: bool) -> list[tuple[str, str]]:
    """Return the LXC keys for the features of *settings*."""
    features = settings.features
    keys: list[tuple[str, str]] = []
    if features.get("nesting"):
        keys += _nesting_keys(apparmor)
    if features.get("fuse"):
        prefix = "lxc.cgroup2" if unified else "lxc.cgroup"
        keys += [(f"{prefix}.devices.allow", FUSE_DEVICE),
                 ("lxc.mount.entry", "/dev/fuse dev/fuse none bind,create=file,optional 0 0")]
    if features.get("force_rw_sys"):
        keys.append(("lxc.mount.auto", "sys:rw"))
    if needs_seccomp_profile(settings):
        keys.append(("lxc.seccomp.profile", str(seccomp_profile_path(paths, settings.vmid))))
    return keys


def needs_seccomp_profile(settings) -> bool:
    """Return whether the container gets pct's seccomp profile instead of LXC's default one."""
    features = settings.features
    return settings.unprivileged and (not features.get("keyctl") or bool(features.get("mknod")))


def wants_mknod_proxy(settings) -> bool:
    """Return whether mknod calls of the container go to the mknod proxy (unprivileged and mknod=1)."""
    return settings.unprivileged and bool(settings.features.get("mknod"))


def _nesting_keys(apparmor: bool) -> list[tuple[str, str]]:
    # A nested container manager needs its own /proc and /sys mounts, and
    # cgroups it can write to.
    keys = [("lxc.mount.entry", "proc dev/.lxc/proc proc create=dir,optional 0 0"),
            ("lxc.mount.entry", "sys dev/.lxc/sys sysfs create=dir,optional 0 0"),
            ("lxc.mount.auto", "cgroup:rw:force")]
    if apparmor:
        keys.append(("lxc.apparmor.allow_nesting", "1"))
    return keys


def seccomp_profile_path(paths: Paths, vmid: int) -> Path:
    return paths.lxc_dir(vmid) / SECCOMP_FILE


def seccomp_profile(base: Path = LXC_SECCOMP, keyctl: bool = False, mknod: bool = False) -> str:
    """Return LXC's default seccomp policy plus pct's rules.

    Without *keyctl* the keyctl syscall fails with ENOSYS: the kernel keyring
    is not namespaced, and systemd falls back cleanly when keyctl is missing.
    With *mknod* character device mknod calls go to the mknod proxy.
    """
    from pct.runtime.mknodproxy import SECCOMP_RULES

    text = base.read_text()
    if not text.endswith("\n"):
        text += "\n"
    if not keyctl:
        text += "keyctl errno 38\n"
    if mknod:
        text += SECCOMP_RULES
    return text


def feature_warnings(settings) -> list[str]:
    """Return notices about features that this host or container type cannot honour."""
    features = settings.features
    notices = []
    if features.get("nesting") and not settings.unprivileged:
        notices.append(f"CT {settings.vmid}: nesting in a privileged container gives it full access "
                       "to the host; prefer an unprivileged container")
    # Limitation: mount=... is enforced through AppArmor rules; without them
    # the kernel decides (privileged containers may mount, unprivileged ones
    # only file systems allowed in user namespaces).
    if features.get("mount") and settings.unprivileged:
        notices.append(f"CT {settings.vmid}: features mount={';'.join(features['mount'])}: the kernel lets "
                       "unprivileged containers mount only file systems allowed in user namespaces")
    return notices
