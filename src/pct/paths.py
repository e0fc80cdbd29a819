"""The root directory and every path the toolkit keeps below it.

All of the toolkit's own files hang off one root, ``/`` by default, moved by
the ``PCT_ROOT`` environment variable or the ``--root`` option, so tests and
simulated nodes use a private tree.
"""

from __future__ import annotations

import os
from pathlib import Path


class Paths:
    """The file layout below one root."""

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            root = os.environ.get("PCT_ROOT", "/")
        self.root = Path(root).resolve()

    def under_root(self, path: str | os.PathLike) -> Path:
        """Return *path*, read as if the root were ``/``."""
        return self.root / str(path).lstrip("/")

    @property
    def lxc_conf_dir(self) -> Path:
        return self.under_root("etc/pve/lxc")

    def conf(self, vmid: int) -> Path:
        return self.lxc_conf_dir / f"{vmid}.conf"

    @property
    def storage_cfg(self) -> Path:
        return self.under_root("etc/pve/storage.cfg")

    @property
    def lxc_path(self) -> Path:
        """The directory passed to LXC as ``-P``: one subdirectory per container."""
        return self.under_root("var/lib/lxc")

    def lxc_dir(self, vmid: int) -> Path:
        return self.lxc_path / str(vmid)

    def lxc_config(self, vmid: int) -> Path:
        return self.lxc_dir(vmid) / "config"

    def rootfs_mount(self, vmid: int) -> Path:
        return self.lxc_dir(vmid) / "rootfs"

    @property
    def lock_dir(self) -> Path:
        return self.under_root("run/lock/lxc")

    def lock_file(self, vmid: int) -> Path:
        return self.lock_dir / f"pve-config-{vmid}.lock"

    @property
    def task_dir(self) -> Path:
        return self.under_root("var/log/pve/tasks")
