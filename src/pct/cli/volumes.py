"""``pct`` commands that work on a container's volumes (snapshots, clones, resize, ...).

Each entry maps a command name to (summary, handler, argument adder), like
``COMMANDS`` in ``pct.cli.pct``, which merges this table into its own.
"""

from __future__ import annotations

import argparse
import re

from pct.cli.common import BOOLEAN_CHOICES, OUTPUT_FORMATS, print_output
from pct.paths import Paths

_TRUE = ("1", "yes", "on", "true")


def _vmid(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("vmid", type=int, help="container id (100 to 999999999)")


def _flag(sub: argparse.ArgumentParser, name: str, help_text: str) -> None:
    sub.add_argument(name, nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES, help=help_text)


# -- snapshots ------------------------------------------------------------------------

def _snapshot_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("snapname", help="snapshot name: a letter, then letters, digits, '_' or '-'")
    sub.add_argument("--description", default="", help="text stored with the snapshot")


def cmd_snapshot(paths: Paths, args: argparse.Namespace) -> int:
    from pct.snapshots import create_snapshot

    create_snapshot(paths, args.vmid, args.snapname, args.description)
    return 0


def _listsnapshot_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text", help="output format")


def cmd_listsnapshot(paths: Paths, args: argparse.Namespace) -> int:
    from pct.snapshots import format_tree, list_snapshots

    snapshots = list_snapshots(paths, args.vmid)
    rows = [{key: value for key, value in vars(info).items() if value not in (None, "")} for info in snapshots]
    print_output(rows, args.output_format, lambda _rows: format_tree(snapshots))
    return 0


def _rollback_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("snapname", help="snapshot to return to")
    _flag(sub, "--start", "start the container after the rollback")


def cmd_rollback(paths: Paths, args: argparse.Namespace) -> int:
    from pct.snapshots import rollback_snapshot

    rollback_snapshot(paths, args.vmid, args.snapname, start=args.start in _TRUE)
    return 0


def _delsnapshot_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("snapname", help="snapshot to remove")
    _flag(sub, "--force", "remove the config section even when a volume snapshot cannot be removed")


def cmd_delsnapshot(paths: Paths, args: argparse.Namespace) -> int:
    from pct.snapshots import delete_snapshot

    delete_snapshot(paths, args.vmid, args.snapname, force=args.force in _TRUE)
    return 0


# -- templates and clones ------------------------------------------------------------------

def cmd_template(paths: Paths, args: argparse.Namespace) -> int:
    from pct.clone import make_template

    make_template(paths, args.vmid)
    return 0


def _clone_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("newid", type=int, help="id of the new container")
    sub.add_argument("--full", nargs="?", const="1", default=None, choices=BOOLEAN_CHOICES,
                     help="copy every volume (default: linked clone of a template where the storage "
                     "can, full copy otherwise)")
    sub.add_argument("--hostname", help="host name of the new container")
    sub.add_argument("--storage", help="storage for the copied volumes (full clones only)")
    sub.add_argument("--snapname", help="clone the container as it was in this snapshot")
    sub.add_argument("--description", help="description of the new container")


def cmd_clone(paths: Paths, args: argparse.Namespace) -> int:
    from pct.clone import CloneRequest, clone_container

    full = None if args.full is None else args.full in _TRUE
    clone_container(paths, CloneRequest(vmid=args.vmid, newid=args.newid, full=full, hostname=args.hostname,
                                        storage=args.storage, snapname=args.snapname,
                                        description=args.description))
    return 0


# -- resize and move -----------------------------------------------------------------------

def _resize_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("disk", help="rootfs or mp0 to mp255")
    sub.add_argument("size", help="new size, or +size to grow by; unit K, M, G or T (a bare number is bytes)")
    # Take "-1G" as a size, which is then rejected as shrinking, instead of as an unknown option.
    sub._negative_number_matcher = re.compile(r"^-\d+(\.\d+)?[KMGT]?$")


def cmd_resize(paths: Paths, args: argparse.Namespace) -> int:
    from pct.resize import resize_disk

    resize_disk(paths, args.vmid, args.disk, args.size)
    return 0


def _move_volume_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("volume", help="rootfs, mp[n] or unused[n]")
    sub.add_argument("storage", nargs="?", help="storage to copy the volume to")
    _flag(sub, "--delete", "remove the old volume after the copy instead of keeping it as unused[n]")
    sub.add_argument("--target-vmid", type=int, help="container that receives the volume")
    sub.add_argument("--target-volume", help="key of the volume in the receiving container (mp[n] or unused[n])")


def cmd_move_volume(paths: Paths, args: argparse.Namespace) -> int:
    from pct.errors import ParameterError
    from pct.move import move_volume, reassign_volume

    if args.target_vmid is not None:
        if args.storage is not None:
            raise ParameterError("storage", "give either a storage or --target-vmid, not both", args.vmid)
        reassign_volume(paths, args.vmid, args.volume, args.target_vmid, args.target_volume or args.volume)
    elif args.storage is None:
        raise ParameterError("storage", "missing target: give a storage or --target-vmid", args.vmid)
    else:
        move_volume(paths, args.vmid, args.volume, args.storage, delete=args.delete in _TRUE)
    return 0


# -- rescue access, file transfer and rescan --------------------------------------------------

def cmd_mount(paths: Paths, args: argparse.Namespace) -> int:
    from pct.rescue import mount_container

    target = mount_container(paths, args.vmid)
    print(f"mounted CT {args.vmid} in '{target}'")
    return 0


def cmd_unmount(paths: Paths, args: argparse.Namespace) -> int:
    from pct.rescue import unmount_container

    unmount_container(paths, args.vmid)
    return 0


def _df_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text", help="output format")


def cmd_df(paths: Paths, args: argparse.Namespace) -> int:
    from pct.rescue import disk_usage, format_usage

    rows = disk_usage(paths, args.vmid)
    data = [{"mp": row.key, "volume": row.volume, "path": row.path, "total": row.total, "used": row.used,
             "avail": row.available} for row in rows]
    print_output(data, args.output_format, lambda _data: format_usage(rows))
    return 0


def _fsck_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--device", default="rootfs", help="volume to check: rootfs (default) or mp0 to mp255")
    _flag(sub, "--force", "check the file system even when it is marked clean")


def cmd_fsck(paths: Paths, args: argparse.Namespace) -> int:
    from pct.rescue import check_filesystem

    output = check_filesystem(paths, args.vmid, args.device, force=args.force in _TRUE)
    if output:
        print(output)
    return 0


def _fstrim_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    _flag(sub, "--ignore-mountpoints", "trim the root volume only")


def cmd_fstrim(paths: Paths, args: argparse.Namespace) -> int:
    from pct.rescue import trim_container

    for line in trim_container(paths, args.vmid, ignore_mountpoints=args.ignore_mountpoints in _TRUE):
        print(line)
    return 0


def _owner_arguments(sub: argparse.ArgumentParser, where: str) -> None:
    sub.add_argument("--user", help=f"owner of the new file, a name or id {where} (default: root)")
    sub.add_argument("--group", help=f"group of the new file, a name or id {where} (default: root)")
    sub.add_argument("--perms", help="mode of the new file, octal (0644) or hexadecimal with 0x "
                     "(default: the mode of the copied file)")


def _push_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("file", help="file on the host to copy")
    sub.add_argument("destination", help="absolute path of the new file inside the container")
    _owner_arguments(sub, "inside the container")


def cmd_push(paths: Paths, args: argparse.Namespace) -> int:
    from pct.transfer import push_file

    push_file(paths, args.vmid, args.file, args.destination, user=args.user, group=args.group, perms=args.perms)
    return 0


def _pull_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("path", help="absolute path of the file inside the container")
    sub.add_argument("destination", help="path of the new file on the host, or a directory to put it in")
    _owner_arguments(sub, "on the host")


def cmd_pull(paths: Paths, args: argparse.Namespace) -> int:
    from pct.transfer import pull_file

    pull_file(paths, args.vmid, args.path, args.destination, user=args.user, group=args.group, perms=args.perms)
    return 0


def _rescan_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--vmid", type=int, help="look only for volumes of this container")
    _flag(sub, "--dryrun", "show what would be added without changing any config")


def cmd_rescan(paths: Paths, args: argparse.Namespace) -> int:
    from pct.rescan import rescan

    dryrun = args.dryrun in _TRUE
    found = rescan(paths, args.vmid, dryrun=dryrun)
    verb = "would add" if dryrun else "add"
    for volume in found:
        print(f"CT {volume.vmid}: {verb} unreferenced volume '{volume.volid}' as '{volume.key}' to config")
    if not found:
        print("no unreferenced volumes found")
    return 0


VOLUME_COMMANDS: dict = {
    "snapshot": ("take a snapshot of a container's volumes and config", cmd_snapshot, _snapshot_arguments),
    "listsnapshot": ("show a container's snapshot tree", cmd_listsnapshot, _listsnapshot_arguments),
    "rollback": ("return a container to a snapshot", cmd_rollback, _rollback_arguments),
    "delsnapshot": ("remove a snapshot", cmd_delsnapshot, _delsnapshot_arguments),
    "template": ("turn a stopped container into a read-only template", cmd_template, _vmid),
    "clone": ("create a container as a copy of another", cmd_clone, _clone_arguments),
    "resize": ("grow a container's volume", cmd_resize, _resize_arguments),
    "move-volume": ("move a volume to another storage or container", cmd_move_volume, _move_volume_arguments),
    "mount": ("mount a stopped container's volumes on the host for rescue work", cmd_mount, _vmid),
    "unmount": ("unmount what 'pct mount' mounted and clear its lock", cmd_unmount, _vmid),
    "df": ("show the space used on each of a container's volumes", cmd_df, _df_arguments),
    "fsck": ("check the file system of a stopped container's volume", cmd_fsck, _fsck_arguments),
    "fstrim": ("discard unused blocks of a running container's ext4 volumes", cmd_fstrim, _fstrim_arguments),
    "push": ("copy a file into a running container", cmd_push, _push_arguments),
    "pull": ("copy a file out of a running container", cmd_pull, _pull_arguments),
    "rescan": ("add volumes that no config refers to as unused[n] of their owner", cmd_rescan,
               _rescan_arguments),
}
