"""Build a Debian "standard" template with debootstrap.

The packages come from the Debian mirror the host's apt already uses. The
result is named like Proxmox VE's templates:
``debian-<major>-standard_<version>-1_<arch>.tar.zst``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from pct.errors import TemplateError
from pct.run import run

DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITES = {"11": "bullseye", "12": "bookworm", "13": "trixie"}
PACKAGES = (
    "systemd-sysv", "ifupdown", "isc-dhcp-client", "iproute2", "iputils-ping", "openssh-server",
    "procps", "less", "nano", "cron", "ca-certificates", "locales", "tzdata", "dbus",
)


def host_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """Return the first Debian mirror URI the host's apt uses."""
    candidates = sorted((sources_dir / "sources.list.d").glob("*.sources")) + [sources_dir / "sources.list"]
    for source in candidates:
        try:
            text = source.read_text()
        except OSError:
            continue
        for match in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            uri = match.group(1)
            if "security" not in uri and uri.startswith(("http://", "https://")):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def build_debian_template(output_dir: Path, release: str = "12", arch: str = "amd64",
                          mirror: str | None = None) -> Path:
    """Bootstrap Debian *release* and pack it as a zstd template in *output_dir*."""
    if release not in SUITES:
        raise TemplateError(f"unknown Debian release '{release}'; known: {', '.join(SUITES)}")
    if shutil.which("debootstrap") is None:
        raise TemplateError("debootstrap not found: install the 'debootstrap' package")
    mirror = mirror or host_mirror()
    output_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="pct-debootstrap-", dir=output_dir) as workdir:
        tree = Path(workdir) / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--arch={arch}", f"--include={','.join(PACKAGES)}",
             SUITES[release], str(tree), mirror], timeout=3600)
        _clean_tree(tree)
        version = (tree / "etc/debian_version").read_text().strip()
        name = f"debian-{release}-standard_{version}-1_{arch}.tar.zst"
        output = output_dir / name
        partial = Path(workdir) / name
        run(["tar", "--zstd", "-cpf", str(partial), "--numeric-owner", "--xattrs", "--xattrs-include=*",
             "--sparse", "-C", str(tree), "."])
        os.replace(partial, output)
    return output


def index_fields(archive_name: str) -> dict[str, str]:
    """Return the local index fields of a template built here, from its file name."""
    match = re.match(r"^debian-(\d+)-standard_([^_]+)_([^_.]+)\.tar\.zst$", archive_name)
    if not match:
        raise TemplateError(f"'{archive_name}' is not named like a Debian standard template")
    release, version, arch = match.groups()
    suite = SUITES.get(release, "unknown")
    return {
        "Package": f"debian-{release}-standard", "Version": version, "Type": "lxc", "OS": f"debian-{release}",
        "Section": "system", "Maintainer": "pveam build (this host)", "Architecture": arch,
        "Description": f"Debian {release} {suite.capitalize()} (standard)\n"
                       "Built on this host with debootstrap from the mirror its apt uses.",
    }


def _clean_tree(tree: Path) -> None:
    """Remove what must be unique per container, download caches, apt lists and logs."""
    for pattern in ("etc/ssh/ssh_host_*", "var/cache/apt/archives/*.deb", "var/cache/apt/*.bin",
                    "var/lib/apt/lists/*_*", "var/log/**/*.log", "var/log/**/*.log.*"):
        for path in tree.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()
    for log in ("var/log/wtmp", "var/log/btmp", "var/log/lastlog", "var/log/faillog"):
        if (tree / log).is_file():
            (tree / log).write_bytes(b"")
    (tree / "etc/machine-id").write_text("")
    dbus_machine_id = tree / "var/lib/dbus/machine-id"
    if dbus_machine_id.is_file() and not dbus_machine_id.is_symlink():
        dbus_machine_id.unlink()
    (tree / "etc/hostname").write_text("localhost\n")
    resolv = tree / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("")
    # debootstrap copies some of these from the host, with the host's modes.
    for name, mode in (("etc/hostname", 0o644), ("etc/machine-id", 0o444), ("etc/resolv.conf", 0o644)):
        os.chmod(tree / name, mode)
