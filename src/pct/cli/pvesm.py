"""The ``pvesm`` command: the storage library from the command line."""

from __future__ import annotations

import argparse
import re
import sys

from pct.cli.common import OUTPUT_FORMATS, argument_parser, print_output, run_tool
from pct.errors import ParameterError, PctError, StorageError
from pct.paths import Paths

_ALLOC_SIZE = re.compile(r"(\d+)([KMGT]?)")
_UNITS = {"": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def main(argv: list[str] | None = None) -> int:
    return run_tool("pvesm", argv, dispatch)


def build_parser() -> argparse.ArgumentParser:
    parser = argument_parser("pvesm", "Inspect storages and manage their volumes.")
    parser.add_argument("--root", help="directory that stands for / for pct's own files (default: $PCT_ROOT or /)")
    parser.add_argument("--debug", action="store_true", help="log every step and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="<command>")

    status = commands.add_parser("status", help="show each storage's type, state and capacity")
    status.add_argument("--storage", help="show only this storage")
    status.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text", help="output format")

    listing = commands.add_parser("list", help="list the volumes of a storage")
    listing.add_argument("storage", help="storage id")
    listing.add_argument("--content", choices=("images", "rootdir", "vztmpl", "backup"), help="only this content type")
    listing.add_argument("--vmid", type=int, help="only the volumes of this container")
    listing.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text", help="output format")

    alloc = commands.add_parser("alloc", help="allocate a volume for a container")
    alloc.add_argument("storage", help="storage id")
    alloc.add_argument("vmid", type=int, help="container that owns the volume")
    alloc.add_argument("filename", help="vm-<vmid>-disk-<n>.raw for an image, subvol-<vmid>-disk-<n> for a directory")
    alloc.add_argument("size", help="size in KiB, or with unit M, G or T (0 for an unlimited directory)")

    free = commands.add_parser("free", help="remove a volume that no container uses")
    free.add_argument("volume", help="volume id, storage:name")

    path = commands.add_parser("path", help="show the host path of a volume")
    path.add_argument("volume", help="volume id, storage:name")

    extract = commands.add_parser("extractconfig", help="print the container config stored in a backup")
    extract.add_argument("volume", help="backup volume id (storage:backup/<file name>) or archive path")

    prune = commands.add_parser("prune-backups", help="remove old backups by the keep-* retention rules")
    prune.add_argument("storage", help="storage id")
    prune.add_argument("--vmid", type=int, help="only the backups of this container")
    prune.add_argument("--dry-run", nargs="?", const="1", default="0", help="only show what would be removed")
    prune.add_argument("--keep-all", type=int, metavar="0|1", help="keep every backup (1) or not (0)")
    for rule in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        prune.add_argument(f"--keep-{rule}", type=int, metavar="N",
                           help=_keep_help(rule))
    prune.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text", help="output format")
    return parser


_PERIODS = {"hourly": "hours", "daily": "days", "weekly": "weeks", "monthly": "months", "yearly": "years"}


def _keep_help(rule: str) -> str:
    if rule == "last":
        return "keep the newest N backups"
    period = _PERIODS[rule]
    return f"keep the newest backup in each of the N newest {period} that have backups"


def dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    paths = Paths(args.root)
    return HANDLERS[args.command](paths, args)


def cmd_status(paths: Paths, args: argparse.Namespace) -> int:
    from pct.storage import load_storage_config
    from pct.storage.plugins import make_storage

    rows = []
    for storage_id, definition in load_storage_config(paths).items():
        if args.storage and storage_id != args.storage:
            continue
        row = {"name": storage_id, "type": definition.type, "status": "disabled",
               "total": 0, "used": 0, "avail": 0}
        if not definition.disabled:
            try:
                status = make_storage(paths, definition).status()
                row.update(status="active", total=status.total, used=status.used, avail=status.available)
            except StorageError:
                row["status"] = "inactive"
        rows.append(row)
    if args.storage and not rows:
        raise StorageError(f"storage '{args.storage}' does not exist")
    print_output(rows, args.output_format, _format_status)
    return 0


def _format_status(rows) -> str:
    lines = [f"{'Name':<16} {'Type':<10} {'Status':<9} {'Total':>14} {'Used':>14} {'Available':>14} {'%':>7}"]
    for row in rows:
        percent = f"{100 * row['used'] / row['total']:.2f}%" if row["total"] else "0.00%"
        lines.append(f"{row['name']:<16} {row['type']:<10} {row['status']:<9} {row['total'] // 1024:>14} "
                     f"{row['used'] // 1024:>14} {row['avail'] // 1024:>14} {percent:>7}")
    return "\n".join(lines)


def cmd_list(paths: Paths, args: argparse.Namespace) -> int:
    from pct.storage import get_storage

    storage = get_storage(paths, args.storage)
    rows = []
    for info in storage.list_content(args.vmid):
        if args.content and info.content != args.content:
            continue
        row = {"volid": f"{storage.storage_id}:{info.volname}", "format": info.format,
               "content": info.content, "size": info.size}
        if info.vmid is not None:
            row["vmid"] = info.vmid
        rows.append(row)
    print_output(rows, args.output_format, _format_list)
    return 0


def _format_list(rows) -> str:
    lines = [f"{'Volid':<60} {'Format':<8} {'Type':<8} {'Size':>14} VMID"]
    for row in rows:
        lines.append(f"{row['volid']:<60} {row['format']:<8} {row['content']:<8} {row['size']:>14} "
                     f"{row.get('vmid', '')}".rstrip())
    return "\n".join(lines)


def parse_alloc_size(text: str) -> int:
    """Return the bytes of an allocation size: KiB by default, or with unit K, M, G or T."""
    match = _ALLOC_SIZE.fullmatch(text.strip())
    if not match:
        raise ParameterError("size", f"invalid size '{text}' (expected a number of KiB, or with unit M, G or T)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def cmd_alloc(paths: Paths, args: argparse.Namespace) -> int:
    from pct.container import check_vmid
    from pct.storage import get_storage

    check_vmid(args.vmid)
    size = parse_alloc_size(args.size)
    storage = get_storage(paths, args.storage)
    if "images" not in storage.capabilities and "rootdir" not in storage.capabilities:
        raise StorageError(f"storage '{args.storage}' does not hold container volumes", args.vmid)
    volname = storage.alloc_volume(args.vmid, size, unprivileged=False, name=args.filename)
    print(f"successfully created '{storage.storage_id}:{volname}'")
    return 0


def cmd_free(paths: Paths, args: argparse.Namespace) -> int:
    from pct.protection import check_volume_free
    from pct.storage import get_storage, parse_volume_id
    from pct.volumes import volume_users

    storage_id, volname = parse_volume_id(args.volume)
    storage = get_storage(paths, storage_id)
    if not storage.volume_path(volname).exists():
        raise StorageError(f"volume '{args.volume}' does not exist")
    check_volume_free(paths, volname, args.volume)
    storage.check_no_linked_clones(volname)
    users = volume_users(paths, args.volume)
    if users:
        raise PctError(f"volume '{args.volume}' is in use by {', '.join(users)}; detach it first")
    storage.free_volume(volname)
    return 0


def cmd_path(paths: Paths, args: argparse.Namespace) -> int:
    from pct.storage import get_storage, parse_volume_id

    storage_id, volname = parse_volume_id(args.volume)
    print(get_storage(paths, storage_id).volume_path(volname))
    return 0


def cmd_extractconfig(paths: Paths, args: argparse.Namespace) -> int:
    from pct.backup.archive import read_config
    from pct.backup.target import resolve_archive

    sys.stdout.write(read_config(resolve_archive(paths, args.volume)))
    return 0


def cmd_prune_backups(paths: Paths, args: argparse.Namespace) -> int:
    from pct.backup.prune import RULES, parse_prune_options, prune_directory
    from pct.backup.target import storage_target

    target = storage_target(paths, args.storage)
    requested_rules = {key: getattr(args, key.replace("-", "_")) for key in ("keep-all",) + RULES}
    text = ",".join(f"{key}={value}" for key, value in requested_rules.items() if value is not None)
    if not text:
        text = target_prune_setting(paths, args.storage)
    marks = prune_directory(target, args.vmid, parse_prune_options(text), dry_run=args.dry_run in ("1", "yes", "on", "true"))
    rows = [{"volid": target.volid(mark.archive.name), "vmid": mark.archive.vmid, "ctime": mark.archive.ctime,
             "mark": mark.mark, "type": "lxc"} for mark in marks]
    print_output(rows, args.output_format, _format_prune)
    return 0


def target_prune_setting(paths: Paths, storage_id: str) -> str:
    """Return the storage's ``prune-backups`` property, or keep-all=1 when it has none."""
    from pct.storage import load_storage_config

    definition = load_storage_config(paths)[storage_id]
    return definition.properties.get("prune-backups", "keep-all=1")


def _format_prune(rows) -> str:
    import time

    lines = [f"{'Backup':<70} {'Backup-ID':<10} {'Time':<20} Mark"]
    for row in rows:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["ctime"]))
        lines.append(f"{row['volid']:<70} {row['vmid']:<10} {stamp:<20} {row['mark']}")
    return "\n".join(lines)


HANDLERS = {"status": cmd_status, "list": cmd_list, "alloc": cmd_alloc, "free": cmd_free, "path": cmd_path,
            "extractconfig": cmd_extractconfig, "prune-backups": cmd_prune_backups}
