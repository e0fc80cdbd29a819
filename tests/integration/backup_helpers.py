"""Helpers shared by the backup and restore tests: archive listings and hand-built archives."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

ARCHIVE_PATTERN = r"vzdump-lxc-{vmid}-\d{{4}}_\d{{2}}_\d{{2}}-\d{{2}}_\d{{2}}_\d{{2}}\.tar{suffix}"


def dump_dir(host) -> Path:
    return host.root / "var/lib/vz/dump"


def archives(host, vmid: int) -> list[Path]:
    directory = dump_dir(host)
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if path.name.startswith(f"vzdump-lxc-{vmid}-")
                  and ".tar" in path.name and not path.name.endswith((".log", ".notes")))


def members(archive: Path) -> list[str]:
    """Return the member names of *archive* in order, read by GNU tar."""
    result = subprocess.run(["tar", "-tf", str(archive)], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def verbose_listing(archive: Path) -> dict[str, str]:
    """Return ``member -> 'mode uid/gid'`` from GNU tar's numeric listing."""
    result = subprocess.run(["tar", "-tvf", str(archive), "--numeric-owner"], capture_output=True, text=True,
                            check=True)
    listing = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        name = fields[5]
        listing[name] = f"{fields[0]} {fields[1]}"
    return listing


def make_config_member(text: str) -> tuple[tarfile.TarInfo, io.BytesIO]:
    data = text.encode()
    info = tarfile.TarInfo("./etc/vzdump/pct.conf")
    info.size = len(data)
    info.mode = 0o644
    return info, io.BytesIO(data)


def build_archive(path: Path, config: str | None, entries: list[tuple[tarfile.TarInfo, bytes | None]],
                  mode: str = "w:gz") -> Path:
    """Write a tar archive with the config first (unless None), then *entries*."""
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as archive:
        if config is not None:
            info, data = make_config_member(config)
            archive.addfile(info, data)
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_entry(name: str, data: bytes, mode: int = 0o644, uid: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.uid = info.gid = uid
    return info, data


def dir_entry(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def symlink_entry(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


def device_entry(name: str, major: int = 1, minor: int = 3) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = major, minor
    info.mode = 0o666
    return info, None


def assert_one_line_error(result, fragment: str) -> None:
    assert result.returncode != 0
    assert fragment in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
