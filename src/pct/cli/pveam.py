"""The ``pveam`` command: the template index, downloads, and the local template builder."""

from __future__ import annotations

import argparse
import sys

from pct.cli.common import OUTPUT_FORMATS, argument_parser, print_output, run_tool
from pct.paths import Paths

# ``busybox`` is the older name of ``minimal``; both build the same archive.
TEMPLATE_KINDS = ("debian", "minimal", "busybox")
MINIMAL_TEMPLATE = "busybox-test_1.0-1_amd64.tar.gz"


def main(argv: list[str] | None = None) -> int:
    return run_tool("pveam", argv, dispatch)


def build_parser() -> argparse.ArgumentParser:
    parser = argument_parser("pveam", "Build, download and manage container templates.")
    parser.add_argument("--root", help="directory that stands for / for pct's own files (default: $PCT_ROOT or /)")
    parser.add_argument("--debug", action="store_true", help="log every step and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="<command>")

    commands.add_parser("update", help="fetch every index source listed in etc/pve/pveam-sources.cfg")
    available = commands.add_parser("available", help="list the templates of the fetched indexes")
    available.add_argument("--section", help="show only this section (system, turnkeylinux, mail, ...)")
    available.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text")

    download = commands.add_parser("download", help="download a template into a storage")
    download.add_argument("storage", help="storage with 'vztmpl' content")
    download.add_argument("template", help="template file name, as 'pveam available' prints it")

    listing = commands.add_parser("list", help="list the templates of a storage")
    listing.add_argument("storage")
    listing.add_argument("--output-format", choices=OUTPUT_FORMATS, default="text")

    remove = commands.add_parser("remove", help="delete a template volume")
    remove.add_argument("volid", help="volume id such as local:vztmpl/<file>")

    build = commands.add_parser("build", help="build a template locally",
                                description="Build a template into the storage's template/cache folder "
                                            "and enter it into the local index.")
    build.add_argument("kind", choices=TEMPLATE_KINDS,
                       help="debian (debootstrap) or minimal (tiny busybox system for tests; alias busybox)")
    build.add_argument("--storage", default="local", help="storage that receives the template (default: local)")
    build.add_argument("--release", default="12", help="Debian release number: 11, 12 or 13 (default: 12)")
    build.add_argument("--mirror", help="Debian mirror URL (default: the one the host's apt uses)")
    build.add_argument("--force", action="store_true", help="rebuild even if the template exists")
    return parser


def dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS.get(args.command)
    if handler is None:
        parser.print_help()
        return 2
    return handler(Paths(args.root), args)


def command_update(paths: Paths, args: argparse.Namespace) -> int:
    from pct.appliance.sources import update_sources

    report = update_sources(paths)
    for line in report.changes or (["no changes"] if not report.errors else []):
        print(line)
    for line in report.errors:
        print(line, file=sys.stderr)
    return 1 if report.errors else 0


def command_available(paths: Paths, args: argparse.Namespace) -> int:
    from pct.appliance.catalog import available_templates

    rows = [{"section": item.entry.section, "template": item.name, "package": item.entry.package,
             "version": item.entry.version, "source": item.source_id}
            for item in available_templates(paths)
            if args.section is None or item.entry.section == args.section]
    print_output(rows, args.output_format,
                 lambda data: "\n".join(f"{row['section']:<15} {row['template']}" for row in data))
    return 0


def command_download(paths: Paths, args: argparse.Namespace) -> int:
    from pct.appliance.download import download_template

    volid, downloaded = download_template(paths, args.storage, args.template)
    print(f"downloaded {volid}" if downloaded else f"{volid} is already present with the expected checksum")
    return 0


def command_list(paths: Paths, args: argparse.Namespace) -> int:
    from pct.appliance.download import template_storage

    storage = template_storage(paths, args.storage)
    rows = [{"volid": f"{args.storage}:{volume.volname}", "size": volume.size, "format": volume.format}
            for volume in storage.list_content() if volume.content == "vztmpl"]
    print_output(rows, args.output_format, _format_list)
    return 0


def _format_list(rows) -> str:
    width = max([len(row["volid"]) for row in rows] + [4])
    lines = [f"{'NAME':<{width}} {'SIZE':>10}"]
    lines += [f"{row['volid']:<{width}} {row['size'] / 1024 ** 2:>8.2f}MB" for row in rows]
    return "\n".join(lines)


def command_remove(paths: Paths, args: argparse.Namespace) -> int:
    from pct.appliance.catalog import forget_build
    from pct.errors import TemplateError
    from pct.storage import get_storage, parse_volume_id

    storage_id, volname = parse_volume_id(args.volid)
    if not volname.startswith("vztmpl/"):
        raise TemplateError(f"volume '{args.volid}' is not a template (expected <storage>:vztmpl/<file>); "
                            "use 'pvesm free' for other volumes")
    path = get_storage(paths, storage_id).template_path(volname)
    if not path.is_file():
        raise TemplateError(f"template '{args.volid}' does not exist")
    forget_build(paths, path)
    path.unlink()
    print(f"removed {args.volid}")
    return 0


def command_build(paths: Paths, args: argparse.Namespace) -> int:
    print(build_template(paths, args))
    return 0


def build_template(paths: Paths, args: argparse.Namespace) -> str:
    """Build the requested template, or reuse an existing one; return its volume id."""
    from pct.appliance.download import template_storage

    storage = template_storage(paths, args.storage)
    cache = storage.template_path("vztmpl/x").parent
    if args.kind in ("minimal", "busybox"):
        output = _build_minimal(cache, args.force)
    else:
        output = _build_debian(cache, args)
    _register(paths, output, args)
    return f"{args.storage}:vztmpl/{output.name}"


def _build_minimal(cache, force: bool):
    from pct.appliance.busybox import build_busybox_template

    output = cache / MINIMAL_TEMPLATE
    if force or not output.exists():
        build_busybox_template(output)
    return output


def _build_debian(cache, args: argparse.Namespace):
    from pct.appliance.debian import build_debian_template

    existing = sorted(cache.glob(f"debian-{args.release}-standard_*_amd64.tar.zst"))
    if existing and not args.force:
        return existing[-1]
    return build_debian_template(cache, release=args.release, mirror=args.mirror)


def _register(paths: Paths, output, args: argparse.Namespace) -> None:
    from pct.appliance.catalog import register_build

    if args.kind == "debian":
        from pct.appliance.debian import index_fields

        fields = index_fields(output.name)
    else:
        fields = {"Package": "minimal", "Version": "1.0-1", "Type": "lxc", "OS": "busybox",
                  "Section": "system", "Maintainer": "pveam build (this host)", "Architecture": "amd64",
                  "Description": "Minimal busybox system\nA tiny template for tests and quick demos."}
    register_build(paths, output, fields)


COMMANDS = {
    "update": command_update,
    "available": command_available,
    "download": command_download,
    "list": command_list,
    "remove": command_remove,
    "build": command_build,
}
