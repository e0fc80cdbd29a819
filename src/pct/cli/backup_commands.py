"""``pct`` commands for backups (``pct restore``), merged into pct's command table.

Each entry maps a command name to (summary, handler, argument adder), like
``COMMANDS`` in ``pct.cli.pct``.
"""

from __future__ import annotations

import argparse
import re

from pct.cli.common import BOOLEAN_CHOICES, BOOLEAN_TRUE
from pct.paths import Paths

_MOUNT_KEY = re.compile(r"rootfs|mp\d+")


def _restore_arguments(sub: argparse.ArgumentParser) -> None:
    from pct.config.schema import OPTIONS

    sub.add_argument("vmid", type=int, help="id of the restored container (100 to 999999999)")
    sub.add_argument("ostemplate", metavar="archive",
                     help="backup archive: a volume id like local:backup/vzdump-lxc-100-....tar.zst or a path")
    sub.add_argument("--storage", help="storage for the volumes in simple mode (default: local)")
    sub.add_argument("--force", nargs="?", const="1", default="0",
                     help="replace an existing stopped container once the restored one is complete")
    sub.add_argument("--ignore-unpack-errors", nargs="?", const="1", default="0",
                     help="report files that cannot be unpacked as warnings instead of failing")
    sub.add_argument("--start", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="start the container once it is restored")
    sub.add_argument("--unique", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="give each network device a new random MAC address")
    group = sub.add_argument_group("container options (override the archive's config)")
    # --debug stays the tool's own flag here; the container's debug option is set with pct set.
    for option in OPTIONS.values():
        if option.name in ("lock", "debug", "parent", "snaptime", "snapstate"):
            continue
        names = [f"{option.name}{i}" for i in range(option.max_index + 1)] if option.indexed else [option.name]
        for position, name in enumerate(names):
            shown = option.description if position == 0 else argparse.SUPPRESS
            if option.type == "boolean":
                group.add_argument(f"--{name}", dest=f"opt_{name}", nargs="?", const="1", metavar="0|1", help=shown)
            else:
                group.add_argument(f"--{name}", dest=f"opt_{name}", metavar="VALUE", help=shown)


def cmd_restore(paths: Paths, args: argparse.Namespace) -> int:
    from pct.backup.restore import RestoreRequest, restore_container

    overrides = {key[4:]: value for key, value in vars(args).items() if key.startswith("opt_") and value is not None}
    request = RestoreRequest(
        vmid=args.vmid,
        archive=args.ostemplate,
        storage=args.storage,
        mounts={key: value for key, value in overrides.items() if _MOUNT_KEY.fullmatch(key)},
        options={key: value for key, value in overrides.items() if not _MOUNT_KEY.fullmatch(key)},
        force=args.force in BOOLEAN_TRUE,
        ignore_unpack_errors=args.ignore_unpack_errors in BOOLEAN_TRUE,
        unique=args.unique in BOOLEAN_TRUE,
    )
    restore_container(paths, request)
    if args.start in BOOLEAN_TRUE:
        from pct.runtime.lifecycle import start_container

        start_container(paths, args.vmid)
    return 0


BACKUP_COMMANDS: dict = {
    "restore": ("create a container from a backup archive", cmd_restore, _restore_arguments),
}
