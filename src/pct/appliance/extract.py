"""Unpack a template archive into a container's root directory.

GNU tar does the unpacking. It rejects member names containing ``..`` and
strips leading ``/`` from member names. Symlinks that point outside or
upwards are extracted as placeholders replaced only at the end, so a later
member cannot be written through them. For unprivileged containers tar runs inside a user
namespace mapped like the container, so owners land shifted into the
container's id range and device nodes, which that namespace cannot create, are
left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from pct.errors import CommandError, TemplateError
from pct.run import run_fed_from_file

# Magic bytes at the start of each compressed format, and tar's flag for it.
_COMPRESSION_MAGIC = [
    (b"\x1f\x8b", "--gzip"),
    (b"\xfd7zXZ\x00", "--xz"),
    (b"\x28\xb5\x2f\xfd", "--zstd"),
    (b"\x89LZO", "--lzop"),
    (b"BZh", "--bzip2"),
]
_TAR_MAGIC_OFFSET = 257
# The command that decompresses each format from stdin to stdout.
_DECOMPRESSORS = {
    "--gzip": ["gzip", "-d", "-c"],
    "--xz": ["xz", "-d", "-c"],
    "--zstd": ["zstd", "-d", "-c", "-q"],
    "--lzop": ["lzop", "-d", "-c"],
    "--bzip2": ["bzip2", "-d", "-c"],
}


# The name that gzip, zstd, lzop, xz and bzip2 give their standard input before a message.
_STDIN_PREFIX = re.compile(r"^(?:[a-z0-9]+: )?(?:stdin|<stdin>|\(stdin\)|/\*stdin\*\\)\s*: ")


def decompressor(flag: str | None) -> list[str] | None:
    """Return the command that decompresses a stream of tar's compression *flag*, None for a plain tar."""
    return list(_DECOMPRESSORS[flag]) if flag else None


def damaged_stream(error: CommandError, decompress: list[str] | None) -> str | None:
    """Return a one-line description when *error* is the failure of the *decompress* command, else None."""
    if decompress is None or error.argv != decompress:
        return None
    lines = [line.strip() for line in error.stderr.splitlines() if line.strip()]
    detail = _STDIN_PREFIX.sub("", lines[0]) if lines else f"exit status {error.returncode}"
    return f"the {decompress[0]} stream is damaged: {detail}"


def detect_compression(path: Path) -> str | None:
    """Return tar's decompression flag for *path*, None for a plain tar.

    Raise TemplateError when the file is neither a known compressed stream
    nor a tar archive.
    """
    with open(path, "rb") as archive:
        head = archive.read(512)
    for magic, flag in _COMPRESSION_MAGIC:
        if head.startswith(magic):
            return flag
    if head[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar":
        return None
    raise TemplateError(f"template '{path}' is not a tar archive (compressed with gzip, xz, zstd or lzo, or plain)")


def extract_template(archive: Path, rootfs: Path, id_map: tuple[int, int] | None, vmid: int) -> None:
    """Unpack *archive* into the empty directory *rootfs*.

    *id_map* is ``(host_id_of_root, count)`` for an unprivileged container.
    """
    if not archive.is_file():
        raise TemplateError(f"template '{archive}' does not exist", vmid)
    decompress = decompressor(detect_compression(archive))

    tar = ["tar", "-x", "-f", "-", "--numeric-owner", "--xattrs", "--xattrs-include=*",
           "--same-permissions", "--sparse", "-C", "."]
    if id_map is not None:
        host_id, count = id_map
        tar += ["--exclude=./dev/*"]
        tar = ["lxc-usernsexec", "-m", f"u:0:{host_id}:{count}", "-m", f"g:0:{host_id}:{count}", "--"] + tar

    # tar reads the archive from stdin and works in the current directory, so
    # the mapped user never needs to open the host paths leading to either.
    try:
        run_fed_from_file(tar, str(archive), cwd=rootfs, decompress=decompress)
    except CommandError as exc:
        detail = damaged_stream(exc, decompress) or _first_error(exc.stderr)
        raise TemplateError(f"unable to extract template '{archive.name}': {detail}", vmid) from exc


def _first_error(stderr: str) -> str:
    """Return tar's first error line, passing over its warnings about names it shortened."""
    for line in stderr.splitlines():
        line = line.strip().removeprefix("tar: ")
        if line and "Exiting with failure" not in line and not line.startswith("Removing leading"):
            return line
    return "tar failed"
