"""The ``pct`` command: create, configure, run and inspect containers."""

from __future__ import annotations

import argparse
import sys

from pct.cli.common import BOOLEAN_CHOICES, OUTPUT_FORMATS, argument_parser, print_output, run_tool
from pct.cli.backup_commands import BACKUP_COMMANDS
from pct.cli.volumes import VOLUME_COMMANDS
from pct.paths import Paths

# Commands that take the container options, where --debug is the config key.
OPTION_COMMANDS = frozenset({"create", "set"})


def main(argv: list[str] | None = None) -> int:
    return run_tool("pct", argv, dispatch, OPTION_COMMANDS)


def dispatch(argv: list[str]) -> int:
    parser = build_parser(_requested_command(argv))
    args, extras = parser.parse_known_args(argv)
    if extras:
        # argparse would name only "pct"; the hint should lead to the command's own help.
        prog = f"pct {args.command}" if args.command else "pct"
        parser.exit(2, f"{prog}: unrecognized arguments: {' '.join(extras)} (see '{prog} --help')\n")
    if args.command is None:
        parser.print_help()
        return 2
    paths = Paths(getattr(args, "root", None))
    return COMMANDS[args.command][1](paths, args)


def _requested_command(argv: list[str]) -> str | None:
    """Return the command name in *argv*, the first word that is not an option or its value."""
    position = 0
    while position < len(argv):
        token = argv[position]
        if token in COMMANDS:
            return token
        position += 2 if token == "--root" else 1
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the parser; only *command* gets its full option set, to keep start-up short."""
    parser = argument_parser("pct", "Manage Linux containers through LXC.")
    parser.add_argument("--root", help="directory that stands for / for pct's own files (default: $PCT_ROOT or /)")
    parser.add_argument("--debug", action="store_true", help="log every step and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (summary, _handler, add_arguments) in COMMANDS.items():
        if command is not None and name != command:
            continue  # argparse only needs the command being run
        parents = [] if name in OPTION_COMMANDS else [_global_options()]
        sub = commands.add_parser(name, help=summary, description=summary, parents=parents)
        if add_arguments:
            add_arguments(sub)
    return parser


def _global_options() -> argparse.ArgumentParser:
    """Return the options also accepted after the command name, as in ``pct start 100 --debug``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="log every step and show tracebacks")
    return common


def _vmid(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("vmid", type=int, help="container id (100 to 999999999)")


def _output_format(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text", help="output format")


def _schema_options(sub: argparse.ArgumentParser) -> None:
    """Add one option per config key, from the option schema."""
    from pct.config.schema import OPTIONS

    group = sub.add_argument_group("container options")
    offered = _cli_options()
    for option in OPTIONS.values():
        if option.name == "lock" or option.name not in offered:
            continue
        names = [f"{option.name}{i}" for i in range(option.max_index + 1)] if option.indexed else [option.name]
        for position, name in enumerate(names):
            shown = option.description if position == 0 else argparse.SUPPRESS
            metavar = option.synopsis() if hasattr(option, "synopsis") else "VALUE"
            if option.indexed and position == 0:
                shown = f"{option.description} (also {option.name}1 to {option.name}{option.max_index})"
            if option.type == "boolean":
                group.add_argument(f"--{name}", dest=f"opt_{name}", nargs="?", const="1",
                                   metavar="0|1", help=shown)
            else:
                group.add_argument(f"--{name}", dest=f"opt_{name}", metavar=metavar, help=shown)


def _cli_options() -> set[str]:
    """Return the schema options offered on the command line.

    Options that ``pct set`` cannot change yet are still accepted, so the
    library rejects them with a message naming the key.
    """
    from pct.config.schema import OPTIONS

    internal = {"parent", "snaptime", "snapstate"}
    return {name for name in OPTIONS if name not in internal}


def _collected_options(args: argparse.Namespace) -> dict[str, str]:
    return {key[4:]: value for key, value in vars(args).items() if key.startswith("opt_") and value is not None}


# -- create -----------------------------------------------------------------

def _create_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("ostemplate", help="template: a volume id like local:vztmpl/NAME or an absolute path")
    sub.add_argument("--storage", default="local", help="storage for the root volume (default: local)")
    sub.add_argument("--password", help="root password set inside the container")
    sub.add_argument("--ssh-public-keys", metavar="FILE", help="file of public keys for root's authorized_keys")
    sub.add_argument("--start", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="start the container once it is created")
    _force_argument(sub)
    _schema_options(sub)


def _force_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--force", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="allow mp[n] bind mounts of host system directories (/, /etc, /var, /usr, ...)")


def cmd_create(paths: Paths, args: argparse.Namespace) -> int:
    from pct.container import CreateRequest, create_container
    from pct.errors import PctError
    from pct.runtime.lifecycle import start_container

    keys = None
    if args.ssh_public_keys:
        try:
            with open(args.ssh_public_keys, encoding="utf-8") as key_file:
                keys = key_file.read()
        except OSError as exc:
            raise PctError(f"unable to read ssh public keys from '{args.ssh_public_keys}': {exc.strerror}") from exc
    request = CreateRequest(vmid=args.vmid, template=args.ostemplate, options=_collected_options(args),
                            storage=args.storage, password=args.password, ssh_public_keys=keys,
                            force=args.force in ("1", "yes", "on", "true"))
    create_container(paths, request)
    if args.start in ("1", "yes", "on", "true"):
        start_container(paths, args.vmid)
    return 0


# -- lifecycle ----------------------------------------------------------------

def cmd_start(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.lifecycle import start_container

    start_container(paths, args.vmid, debug=args.debug)
    return 0


def cmd_stop(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.lifecycle import stop_container

    stop_container(paths, args.vmid)
    return 0


def _shutdown_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--timeout", type=int, default=60, help="seconds to wait for the guest to power off")
    sub.add_argument("--forceStop", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="stop the container at once when the timeout expires")


def cmd_shutdown(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.lifecycle import shutdown_container

    shutdown_container(paths, args.vmid, timeout=args.timeout,
                       force_stop=args.forceStop in ("1", "yes", "on", "true"))
    return 0


def _reboot_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--timeout", type=int, default=60, help="seconds to wait for the guest to power off")


def cmd_reboot(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.lifecycle import reboot_container

    reboot_container(paths, args.vmid, timeout=args.timeout)
    return 0


# -- inspection -----------------------------------------------------------------

def _status_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--verbose", action="store_true", help="add cpu, memory, disk, network, uptime and pid")
    _output_format(sub)


def cmd_status(paths: Paths, args: argparse.Namespace) -> int:
    from pct.config.format import load_config
    from pct.config.model import settings_from_config
    from pct.runtime.status import container_status

    settings = settings_from_config(load_config(paths, args.vmid), args.vmid)
    status = container_status(paths, settings, verbose=args.verbose)
    if args.verbose:
        print_output(status, args.output_format, _format_fields)
    else:
        print_output(status, args.output_format, lambda data: f"status: {data['status']}")
    return 0


def _format_fields(data) -> str:
    return "\n".join(f"{key}: {value}" for key, value in sorted(data.items()))


def cmd_list(paths: Paths, args: argparse.Namespace) -> int:
    from pct.listing import list_containers

    rows = list_containers(paths)
    print_output(rows, args.output_format, _format_list)
    return 0


def _format_list(rows) -> str:
    if not rows:
        return ""
    lines = [f"{'VMID':<10} {'Status':<10} {'Lock':<9} Name"]
    for row in rows:
        lines.append(f"{row['vmid']:<10} {row['status']:<10} {row.get('lock', ''):<9} {row['name']}")
    return "\n".join(lines)


def _config_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--current", action="store_true",
                     help="show the values in effect, without pending changes")
    sub.add_argument("--snapshot", metavar="NAME", help="show the config as it was in this snapshot")
    _output_format(sub)


def cmd_config(paths: Paths, args: argparse.Namespace) -> int:
    from pct.config.format import load_config
    from pct.config.schema import json_value
    from pct.errors import PctError
    from pct.update import fold_pending

    config = load_config(paths, args.vmid)
    if args.snapshot:
        section = config.snapshots.get(args.snapshot)
        if section is None:
            raise PctError(f"CT {args.vmid}: snapshot '{args.snapshot}' does not exist", args.vmid)
        description = section.get("description") or ""
        entries = [(key, value) for key, value in section.entries if key != "description"]
    else:
        if not args.current:
            fold_pending(config)
        description, entries = config.description, list(config.main.entries)

    if args.output_format == "text":
        lines = [f"description: {description}".replace("\n", "\\n")] if description else []
        lines += [f"{key}: {value}" for key, value in entries]
        print("\n".join(lines))
        return 0
    data = {key: json_value(key, value) for key, value in entries if not key.startswith("lxc.")}
    raw = [[key, value] for key, value in entries if key.startswith("lxc.")]
    if raw:
        data["lxc"] = raw
    if description:
        data["description"] = description
    print_output(data, args.output_format, str)
    return 0


# -- changes -------------------------------------------------------------------------

def _set_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--delete", action="append", default=[], metavar="KEY[,KEY...]",
                     help="remove these options from the config")
    sub.add_argument("--revert", action="append", default=[], metavar="KEY[,KEY...]",
                     help="drop the pending changes of these options")
    sub.add_argument("--digest", help="SHA1 of the config the change is based on; refuse if the file differs")
    _force_argument(sub)
    _schema_options(sub)


def _key_list(items: list[str]) -> list[str]:
    return [key.strip() for item in items for key in item.split(",") if key.strip()]


def cmd_set(paths: Paths, args: argparse.Namespace) -> int:
    from pct.update import UpdateRequest, update_container

    request = UpdateRequest(changes=_collected_options(args), delete=_key_list(args.delete),
                            revert=_key_list(args.revert), digest=args.digest,
                            force=args.force in ("1", "yes", "on", "true"))
    pending = update_container(paths, args.vmid, request)
    if pending:
        print(f"pending until the next start: {', '.join(pending)}", file=sys.stderr)
    return 0


def _pending_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    _output_format(sub)


def cmd_pending(paths: Paths, args: argparse.Namespace) -> int:
    from pct.config.format import load_config
    from pct.update import pending_rows

    rows = pending_rows(load_config(paths, args.vmid))
    print_output(rows, args.output_format, _format_pending)
    return 0


def _format_pending(rows) -> str:
    lines = []
    for row in rows:
        if "delete" in row:
            lines.append(f"del {row['key']}: {row.get('value', '')}")
        elif "pending" in row:
            if "value" in row:
                lines.append(f"cur {row['key']}: {row['value']}")
            lines.append(f"new {row['key']}: {row['pending']}")
        else:
            lines.append(f"cur {row['key']}: {row['value']}")
    return "\n".join(line.replace("\n", "\\n") for line in lines)


def _destroy_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--purge", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="also remove the container from other configurations (nothing else refers to it yet)")
    sub.add_argument("--force", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="stop a running container before destroying it")


def cmd_destroy(paths: Paths, args: argparse.Namespace) -> int:
    from pct.container import destroy_container

    destroy_container(paths, args.vmid, force=args.force in ("1", "yes", "on", "true"))
    return 0


def cmd_unlock(paths: Paths, args: argparse.Namespace) -> int:
    from pct.container import unlock_container

    unlock_container(paths, args.vmid)
    return 0


# -- attaching -------------------------------------------------------------------------

def _exec_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("extra", nargs=argparse.REMAINDER, help="-- command and its arguments")


def cmd_exec(paths: Paths, args: argparse.Namespace) -> int:
    from pct.errors import PctError
    from pct.runtime.attach import exec_in_container

    command = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    if not command:
        raise PctError("missing command: use 'pct exec <vmid> -- <command> [args...]'", args.vmid)
    return exec_in_container(paths, args.vmid, command)


def cmd_enter(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.attach import enter_container

    return enter_container(paths, args.vmid)


def _console_arguments(sub: argparse.ArgumentParser) -> None:
    _vmid(sub)
    sub.add_argument("--escape", default="^a", help="escape sequence prefix (default ^a, then q to leave)")


def cmd_console(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.attach import open_console

    return open_console(paths, args.vmid, escape=args.escape)


def cmd_startall(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.bootorder import start_all

    return _report_order(start_all(paths), "started")


def _stopall_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--timeout", type=int, help="seconds each container gets to shut down "
                     "(default: its startup down= value, else 60)")


def cmd_stopall(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.bootorder import stop_all

    return _report_order(stop_all(paths, timeout=args.timeout), "stopped")


def _report_order(result, verb: str) -> int:
    for vmid in result.done:
        print(f"{verb} CT {vmid}")
    for vmid, message in result.failed.items():
        print(f"CT {vmid}: {message}", file=sys.stderr)
    return 1 if result.failed else 0


def _cpusets_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--rebalance", nargs="?", const="1", default="0", choices=BOOLEAN_CHOICES,
                     help="first move running containers with 'cores' onto the least used CPUs "
                          "(a pct extension)")


def cmd_cpusets(paths: Paths, args: argparse.Namespace) -> int:
    from pct.runtime.cpusets import rebalance, running_cpusets

    if args.rebalance in ("1", "yes", "on", "true"):
        rebalance(paths)
    cpusets = running_cpusets(paths)
    if not cpusets:
        return 0
    lines = [f"{vmid}: {' '.join(str(cpu) for cpu in cpus)}" for vmid, cpus in sorted(cpusets.items())]
    width = max(len(line) for line in lines)
    print("-" * width)
    print("\n".join(lines))
    print("-" * width)
    return 0


def _help_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("extra", nargs="?", metavar="command", help="the command to describe")


def cmd_help(paths: Paths, args: argparse.Namespace) -> int:
    from pct.errors import PctError

    name = args.extra
    if name is None:
        build_parser().print_help()
        return 0
    if name not in COMMANDS:
        raise PctError(f"no such command '{name}'; commands: {', '.join(COMMANDS)}")
    parser = build_parser(name)
    try:
        parser.parse_args([name, "--help"])
    except SystemExit:  # argparse ends --help this way
        pass
    return 0


COMMANDS = {
    "create": ("create a container from a template", cmd_create, _create_arguments),
    "start": ("start a container", cmd_start, _vmid),
    "stop": ("stop a container at once", cmd_stop, _vmid),
    "shutdown": ("shut a container down through its init", cmd_shutdown, _shutdown_arguments),
    "reboot": ("shut a container down and start it again", cmd_reboot, _reboot_arguments),
    "status": ("show whether a container runs", cmd_status, _status_arguments),
    "list": ("list containers", cmd_list, _output_format),
    "config": ("show a container's config", cmd_config, _config_arguments),
    "set": ("change a container's options", cmd_set, _set_arguments),
    "pending": ("show current and pending values of a container's options", cmd_pending, _pending_arguments),
    "destroy": ("remove a container and its volumes", cmd_destroy, _destroy_arguments),
    "unlock": ("clear a container's lock", cmd_unlock, _vmid),
    "exec": ("run a command inside a container", cmd_exec, _exec_arguments),
    "enter": ("open a shell inside a container", cmd_enter, _vmid),
    "console": ("attach to a container's console", cmd_console, _console_arguments),
    "startall": ("start the onboot containers in boot order", cmd_startall, None),
    "stopall": ("shut all running containers down in reverse boot order", cmd_stopall, _stopall_arguments),
    "cpusets": ("show the CPUs of each running container", cmd_cpusets, _cpusets_arguments),
    "help": ("show the options of a command", cmd_help, _help_arguments),
}
COMMANDS.update(VOLUME_COMMANDS)
COMMANDS.update(BACKUP_COMMANDS)
