"""The ``acl`` and ``quota`` options of rootfs and ``mp[n]``: mount options and quota setup.

``acl=1`` mounts an ext4 image with ``acl``, ``acl=0`` with ``noacl``, and an
unset ``acl`` keeps the file system's default. ``quota=1`` mounts it with
journaled user and group quota files (``aquota.user``, ``aquota.group`` in
the volume's root), then creates or checks them with ``quotacheck`` and turns
quotas on with ``quotaon``. Limits are set with ``setquota`` or ``edquota``
on the host mount, or inside a privileged container.

Only ext4 image volumes (storage features ``acl`` and ``quota``) and, for
``acl``, devices take these options. A directory volume, a bind mount or a
device with ``quota=1`` is rejected. ``acl`` is ignored on directory volumes
and bind mounts because ACL support is a setting of the file system that
contains the directory.
"""

from __future__ import annotations

import os
import stat

from pct.errors import CommandError, PctError
from pct.paths import Paths
from pct.run import run
from pct.storage import get_storage, parse_volume_id

QUOTA_MOUNT_OPTIONS = ("usrjquota=aquota.user", "grpjquota=aquota.group", "jqfmt=vfsv0")
_KIND_NAMES = {"bind": "a bind mount", "device": "a device", "volume": "a directory volume"}


def mount_kind(volume: str) -> str:
    """Return ``bind``, ``device`` or ``volume`` for the volume of a mount point."""
    if not volume.startswith("/"):
        return "volume"
    try:
        return "device" if stat.S_ISBLK(os.stat(volume).st_mode) else "bind"
    except OSError:
        return "bind"


def _storage_supports(paths: Paths, volume: str, feature: str) -> bool:
    storage_id, volname = parse_volume_id(volume)
    return get_storage(paths, storage_id).supports(feature, volname)


def check_quota_support(paths: Paths, vmid: int, mount, kind: str) -> None:
    """Raise PctError naming the volume when *mount* has ``quota=1`` but is not an ext4 image.

    *kind* is ``volume``, ``bind`` or ``device``, as ``mount_kind`` returns it.
    """
    if mount.options.get("quota") != "1":
        return
    if kind == "volume" and _storage_supports(paths, mount.volume, "quota"):
        return
    raise PctError(f"CT {vmid}: {mount.key}: quota=1 needs an ext4 image volume, but '{mount.volume}' "
                   f"is {_KIND_NAMES[kind]}; remove quota=1 or use a raw image", vmid)


def check_quota_setting(paths: Paths, vmid: int, key: str, value: str) -> None:
    """Raise PctError when the ``rootfs`` or ``mp[n]`` *value* has ``quota=1`` on a volume that cannot take it."""
    from pct.config.model import parse_mount

    mount = parse_mount(key, value, vmid)
    check_quota_support(paths, vmid, mount, mount_kind(mount.volume))


def wants_quotas(mount) -> bool:
    """Return whether *mount* gets quotas: ``quota=1`` on a writable mount."""
    return mount.options.get("quota") == "1" and not mount.ro


def filesystem_options(paths: Paths, mount, kind: str) -> list[str]:
    """Return the mount options that ``acl`` and ``quota`` of *mount* ask for.

    Call ``check_quota_support`` first, because this returns the quota
    options for any writable mount with ``quota=1``.
    """
    options = []
    acl = mount.options.get("acl")
    if acl is not None and (kind == "device" or (kind == "volume" and _storage_supports(paths, mount.volume, "acl"))):
        options.append("acl" if acl == "1" else "noacl")
    if wants_quotas(mount):
        options += QUOTA_MOUNT_OPTIONS
    return options


def check_noacl_failure(exc: CommandError, options: list[str], vmid: int, key: str) -> None:
    """Raise a PctError that names acl=0 when a mount that asked for ``noacl`` failed.

    Returns without raising for other failures, so the caller re-raises *exc*.
    """
    if "noacl" in options:
        # Limitation: upstream ext4 dropped the noacl mount option (the 6.18
        # kernel of the development host rejects it), and ACLs stay on there.
        raise PctError(f"CT {vmid}: {key}: mounting with noacl (acl=0) failed; this kernel's ext4 may not "
                       "have the noacl option and keeps ACLs on, so remove acl=0", vmid) from exc


def enable_quotas(mount_path: str, vmid: int, key: str) -> None:
    """Create or check the quota files of the file system at *mount_path* and turn quotas on.

    *mount_path* must be the path that the mount table lists, because both
    tools look the file system up there.
    """
    try:
        # -c creates missing files, -m checks without remounting read-only.
        run(["quotacheck", "-c", "-u", "-g", "-m", mount_path])
        run(["quotaon", "-u", "-g", mount_path])
    except CommandError as exc:
        if exc.returncode == 127:
            raise PctError(f"CT {vmid}: {key}: quota=1 needs quotacheck and quotaon; "
                           "install the Debian package 'quota'", vmid) from exc
        raise PctError(f"CT {vmid}: {key}: turning on quotas failed: {_last_line(exc.stderr)}", vmid) from exc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"
