"""The ``vzdump`` command: back up containers into archives."""

from __future__ import annotations

import argparse
import signal
import sys

from pct.cli.common import argument_parser, run_tool
from pct.errors import ParameterError, PctError
from pct.paths import Paths

BOOLEAN_TRUE = ("1", "yes", "on", "true")


class Interrupted(PctError):
    """The backup received SIGTERM or SIGHUP."""


def main(argv: list[str] | None = None) -> int:
    return run_tool("vzdump", argv, dispatch)


def build_parser() -> argparse.ArgumentParser:
    parser = argument_parser("vzdump", "Back up containers into tar archives.")
    parser.add_argument("vmids", nargs="*", type=int, metavar="vmid", help="containers to back up")
    parser.add_argument("--all", action="store_true", help="back up every container of this node")
    parser.add_argument("--exclude", default="", help="with --all: comma-separated ids to leave out")
    parser.add_argument("--mode", choices=("stop", "suspend", "snapshot"), help="backup mode (default: snapshot)")
    parser.add_argument("--compress", help="compression: 0, gzip, zstd or lzo (default: 0)")
    parser.add_argument("--zstd", type=int, help="zstd threads; 0 uses half of the CPUs (default: 1)")
    parser.add_argument("--storage", help="storage to write the archive to (default: local)")
    parser.add_argument("--dumpdir", help="directory to write the archive to, instead of a storage")
    parser.add_argument("--exclude-path", action="append", default=None, metavar="PATTERN",
                        help="leave out files matching PATTERN; a leading / anchors it at the container's root "
                             "(repeatable)")
    parser.add_argument("--stdout", nargs="?", const="1", default="0", help="write the archive to standard output")
    parser.add_argument("--remove", help="prune old backups after a successful one, 0 or 1 (default: 1)")
    parser.add_argument("--prune-backups", help="retention, e.g. keep-last=3,keep-daily=7 "
                                                "(default: the storage's setting, or keep-all=1)")
    parser.add_argument("--notes-template", help="notes for the backup; {{guestname}}, {{vmid}}, {{node}} "
                                                 "and {{cluster}} are replaced")
    parser.add_argument("--bwlimit", type=int, help="limit the archive stream to this many KiB/s (0: no limit)")
    parser.add_argument("--tmpdir", help="directory for the temporary copy of suspend mode (default: the dump directory)")
    parser.add_argument("--root", help="directory that stands for / for pct's own files (default: $PCT_ROOT or /)")
    parser.add_argument("--debug", action="store_true", help="log every step and show tracebacks")
    return parser


def dispatch(argv: list[str]) -> int:
    from pct.backup.defaults import load_vzdump_defaults

    args = build_parser().parse_args(argv)
    paths = Paths(args.root)
    defaults = load_vzdump_defaults(paths)
    vmids = _selected_vmids(paths, args)
    to_stdout = args.stdout in BOOLEAN_TRUE
    if to_stdout and len(vmids) != 1:
        raise ParameterError("stdout", "writing to standard output needs exactly one container")
    options = _backup_options(args, defaults)
    options.check()
    if args.prune_backups is not None:
        from pct.backup.prune import parse_prune_options

        parse_prune_options(args.prune_backups)
    target = None if to_stdout else _target(paths, args, defaults)

    _handle_termination()
    failed = 0
    for vmid in vmids:
        try:
            _back_up_one(paths, vmid, options, target, args, defaults)
        except PctError as exc:
            if args.debug:
                raise
            print(f"CT {vmid}: backup failed: {exc.message.removeprefix(f'CT {vmid}: ')}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _selected_vmids(paths: Paths, args: argparse.Namespace) -> list[int]:
    if args.all:
        excluded = {int(part) for part in args.exclude.split(",") if part.strip().isdigit()}
        found = sorted(int(conf.stem) for conf in paths.lxc_conf_dir.glob("*.conf") if conf.stem.isdigit())
        return [vmid for vmid in found if vmid not in excluded]
    if not args.vmids:
        raise ParameterError("vmid", "give at least one container id, or --all")
    return args.vmids


def _setting(args: argparse.Namespace, defaults: dict, name: str, default):
    value = getattr(args, name.replace("-", "_"))
    if value is not None:
        return value
    return defaults.get(name, default)


def _backup_options(args: argparse.Namespace, defaults: dict):
    from pct.backup.vzdump import BackupOptions

    return BackupOptions(
        mode=_setting(args, defaults, "mode", "snapshot"),
        default_mode=args.mode is None and "mode" not in defaults,
        compress=str(_setting(args, defaults, "compress", "0")),
        zstd=int(_setting(args, defaults, "zstd", 1)),
        bwlimit=int(_setting(args, defaults, "bwlimit", 0)),
        exclude_path=list(_setting(args, defaults, "exclude-path", [])),
        tmpdir=_setting(args, defaults, "tmpdir", None),
        notes_template=_setting(args, defaults, "notes-template", None),
    )


def _target(paths: Paths, args: argparse.Namespace, defaults: dict):
    from pct.backup.target import dumpdir_target, storage_target

    if args.storage and args.dumpdir:
        raise ParameterError("dumpdir", "--storage and --dumpdir cannot be used together")
    if args.dumpdir:
        return dumpdir_target(args.dumpdir)
    if args.storage:
        return storage_target(paths, args.storage)
    if defaults.get("dumpdir"):
        return dumpdir_target(str(defaults["dumpdir"]))
    return storage_target(paths, str(defaults.get("storage", "local")))


def _back_up_one(paths: Paths, vmid: int, options, target, args: argparse.Namespace, defaults: dict) -> None:
    from pct.backup.vzdump import backup_container

    result = backup_container(paths, vmid, options, target)
    if result.archive is not None:
        print(f"CT {vmid}: backup written to '{result.archive}'", file=sys.stderr)
    if target is not None and str(_setting(args, defaults, "remove", "1")) in BOOLEAN_TRUE:
        _prune_after_backup(paths, vmid, target, args, defaults)


def _prune_after_backup(paths: Paths, vmid: int, target, args: argparse.Namespace, defaults: dict) -> None:
    from pct.backup.prune import keeps_everything, parse_prune_options, prune_directory
    from pct.storage.cfg import load_storage_config

    text = args.prune_backups
    if text is None and target.storage_id:
        definition = load_storage_config(paths).get(target.storage_id)
        text = definition.properties.get("prune-backups") if definition else None
    if text is None:
        text = defaults.get("prune-backups", "keep-all=1")
    rules = parse_prune_options(str(text))
    if keeps_everything(rules):
        return  # nothing to remove, so the archives need not be listed
    for mark in prune_directory(target, vmid, rules):
        if mark.mark == "remove":
            print(f"CT {vmid}: pruned '{mark.archive.name}'", file=sys.stderr)


def _handle_termination() -> None:
    """Turn SIGTERM and SIGHUP into an exception, so a killed backup removes its partial archive and unlocks."""
    def interrupt(signum, _frame):
        raise Interrupted(f"interrupted by signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
