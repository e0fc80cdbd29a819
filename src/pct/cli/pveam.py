"""The ``pveam`` command: build templates into a storage's template folder.

# Limitation: only ``pveam build`` exists; the template index, download and
# removal commands of Proxmox VE's pveam are not implemented yet.
"""

from __future__ import annotations

import argparse
import sys

from pct.cli.common import run_tool
from pct.paths import Paths

TEMPLATE_KINDS = ("debian", "busybox")


def main(argv: list[str] | None = None) -> int:
    return run_tool("pveam", sys.argv[1:] if argv is None else argv, dispatch)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pveam", description="Build and manage container templates.")
    parser.add_argument("--root", help="directory that stands for / for pct's own files (default: $PCT_ROOT or /)")
    parser.add_argument("--debug", action="store_true", help="log every step and show tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="<command>")
    build = commands.add_parser("build", help="build a template locally",
                                description="Build a template into the storage's template/cache folder.")
    build.add_argument("kind", choices=TEMPLATE_KINDS, help="debian (debootstrap) or busybox (tiny, for tests)")
    build.add_argument("--storage", default="local", help="storage that receives the template (default: local)")
    build.add_argument("--release", default="12", help="Debian release number (default: 12)")
    build.add_argument("--mirror", help="Debian mirror URL (default: the one the host's apt uses)")
    build.add_argument("--force", action="store_true", help="rebuild even if the template exists")
    return parser


def dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "build":
        parser.print_help()
        return 2
    paths = Paths(args.root)
    print(build_template(paths, args))
    return 0


def build_template(paths: Paths, args: argparse.Namespace) -> str:
    """Build the requested template, or reuse an existing one; return its volume id."""
    from pct.storage import get_storage

    storage = get_storage(paths, args.storage)
    cache = storage.template_path("vztmpl/x").parent
    if args.kind == "busybox":
        from pct.appliance.busybox import build_busybox_template

        output = cache / "busybox-test_1.0-1_amd64.tar.gz"
        if args.force or not output.exists():
            build_busybox_template(output)
        return f"{args.storage}:vztmpl/{output.name}"

    from pct.appliance.debian import build_debian_template

    existing = sorted(cache.glob(f"debian-{args.release}-standard_*_amd64.tar.zst"))
    if existing and not args.force:
        return f"{args.storage}:vztmpl/{existing[-1].name}"
    output = build_debian_template(cache, release=args.release, mirror=args.mirror)
    return f"{args.storage}:vztmpl/{output.name}"
