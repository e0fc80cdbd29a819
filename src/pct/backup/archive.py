"""Write and read container backup archives with GNU tar.

An archive is a POSIX (pax) tar stream. Its first member is
``./etc/vzdump/pct.conf``, which this module writes from the config text.
The members after it are GNU tar's archive of the container's mounted tree.
The config member has no end-of-archive blocks, so the two streams join into
one valid archive. Owners are numeric, xattrs and ACLs are kept, files are
stored sparse, and sockets are left out (tar skips them). For an unprivileged container tar runs in a user
namespace mapped like the container, so the archive stores the ids as the
container has them, not the shifted host ids.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from pct.backup.names import COMPRESSORS, normalise_compress
from pct.errors import CommandError, PctError
from pct.run import run, spawn, wait_spawned
from pct.appliance.extract import damaged_stream, decompressor, detect_compression

CONFIG_MEMBER = "./etc/vzdump/pct.conf"
FIREWALL_MEMBER = "./etc/vzdump/pct.fw"
# Paths whose content a backup leaves out by default: scratch space and PID files.
DEFAULT_EXCLUDES = ("./tmp/?*", "./var/tmp/?*", "./var/run/?*.pid")
CHUNK = 1 << 20
PROGRESS_SECONDS = 10.0
# GNU tar's exit status when a file changed while it was read; the archive is complete.
TAR_FILE_CHANGED = 1
# tar writes the archive, and reads each file, in records of this size. Its
# default of 10 KiB made a backup of the Debian 12 template in bench/backup.py
# about 8 % slower through the extra read and write calls. Readers of the
# archive do not depend on the record size.
TAR_RECORD_SIZE = 1 << 20
# In POSIX format GNU tar 1.34 stores each member's atime and ctime in a pax
# header. A restore cannot set the ctime and has no use for the atime, and
# those headers made the tar stream of the Debian 12 template in
# bench/backup.py 4.6 % larger (209.5 MB against 200.3 MB). The mtime keeps
# its nanoseconds.
_PAX_TIMES = "--pax-option=delete=atime,delete=ctime"


class ArchiveError(PctError):
    """A backup archive that cannot be written, read or unpacked."""


@dataclass
class ArchiveSource:
    """A mounted container tree to archive.

    *members* are the paths below *directory* given to tar: ``.`` and each
    mount point on another file system, which ``--one-file-system`` would
    otherwise skip. *id_map* is ``(host id of root, count)`` for an
    unprivileged container.
    """

    directory: Path
    members: list[str] = field(default_factory=lambda: ["."])
    id_map: tuple[int, int] | None = None
    exclude_paths: list[str] = field(default_factory=list)


@dataclass
class StreamOptions:
    """Compression and pacing of the tar stream; ``bwlimit`` is in KiB/s, 0 for no limit.

    With *process_group* tar and the compressor join that process group, so a
    watchdog can end them when the backup process is killed.
    """

    compress: str = "0"
    zstd_threads: int = 1
    bwlimit: int = 0
    progress: Callable[[int, float], None] | None = None
    process_group: int | None = None


# -- writing ---------------------------------------------------------------------------

def tar_create_command(source: ArchiveSource) -> list[str]:
    """Return the tar command that writes the tree of *source* to stdout."""
    argv = ["tar", "-c", "-f", "-", f"--record-size={TAR_RECORD_SIZE}", "--format=posix", _PAX_TIMES,
            "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--sparse", "--one-file-system",
            "--warning=no-file-ignored", "--warning=no-file-changed", "--anchored"]
    for pattern in DEFAULT_EXCLUDES:
        argv.append(f"--exclude={pattern}")
    # mkfs creates lost+found owned by host root, which an unprivileged container's tar cannot read.
    argv += ["--no-anchored", "--exclude=lost+found", "--anchored"]
    argv += exclude_options(source.exclude_paths)
    argv += ["--"] + source.members
    if source.id_map is not None:
        host_id, count = source.id_map
        argv = ["lxc-usernsexec", "-m", f"u:0:{host_id}:{count}", "-m", f"g:0:{host_id}:{count}", "--"] + argv
    return argv


def exclude_options(patterns: list[str]) -> list[str]:
    """Return tar options for ``--exclude-path`` patterns.

    A pattern that starts with ``/`` matches from the container's root only;
    any other pattern matches at any depth, as tar's unanchored patterns do.
    """
    options = []
    for pattern in patterns:
        if pattern.startswith("/"):
            options += ["--anchored", f"--exclude=.{pattern.rstrip('/') or '/'}"]
        else:
            options += ["--no-anchored", f"--exclude={pattern.rstrip('/')}"]
    return options


def compressor_command(compress: str, zstd_threads: int) -> list[str] | None:
    """Return the compressor that reads tar on stdin, or None to store the tar as it is."""
    command = COMPRESSORS[normalise_compress(compress)][1]
    if command is None:
        return None
    command = list(command)
    if command[0] == "zstd":
        threads = zstd_threads if zstd_threads > 0 else max(1, (os.cpu_count() or 2) // 2)
        command.append(f"-T{threads}")
    return command


def config_member(text: str, name: str = CONFIG_MEMBER) -> bytes:
    """Return one tar member holding *text*, padded to whole blocks, without an end-of-archive marker."""
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
    padding = (tarfile.BLOCKSIZE - len(data) % tarfile.BLOCKSIZE) % tarfile.BLOCKSIZE
    return header + data + b"\0" * padding


def write_archive(source: ArchiveSource, head: bytes, output: BinaryIO, options: StreamOptions) -> int:
    """Write *head* (the config members) and the tar of *source* to the open file *output*.

    Returns the number of uncompressed bytes when the stream is paced by
    ``bwlimit``, and otherwise the size of *output* (0 for a pipe). The
    caller fsyncs *output* if it must be durable. On failure the caller
    removes what reached *output*.
    """
    compressor = compressor_command(options.compress, options.zstd_threads)
    stages = _Pipeline(options.process_group)
    try:
        sink = output
        if compressor:
            output.flush()
            sink = stages.start(compressor, stdin=subprocess.PIPE, stdout=output).stdin
        if options.bwlimit:
            tar = stages.start(tar_create_command(source), stdout=subprocess.PIPE, cwd=source.directory)
            written = _copy_stream(head, tar.stdout, sink, options)
        else:
            # Without a rate limit tar writes straight into the compressor or
            # the file, after the head, which saves a copy through this process.
            sink.write(head)
            sink.flush()
            tar = stages.start(tar_create_command(source), stdout=sink, cwd=source.directory)
            if compressor:
                # tar has its own end of the pipe, so the compressor reads end
                # of input as soon as tar exits.
                sink.close()
            written = _wait_with_progress(tar, output, options)
        if compressor and not sink.closed:
            sink.close()
        try:
            stages.finish(allowed={id(tar): TAR_FILE_CHANGED})
        except ArchiveError as exc:
            # tar reports a full file system as a short write ("Wrote only N of M bytes").
            if _file_system_full(output):
                raise ArchiveError("writing the archive failed: No space left on device") from exc
            raise
    except BrokenPipeError:
        # The compressor or the reader of stdout exited; its own error explains why.
        stages.kill(tar_only=True)
        stages.finish(allowed={})
        raise ArchiveError("writing the archive failed: the compressor or the reader stopped early") from None
    except OSError as exc:
        stages.kill()
        raise ArchiveError(f"writing the archive failed: {exc.strerror or exc}") from exc
    except BaseException:
        stages.kill()
        raise
    output.flush()
    return written


def _copy_stream(head: bytes, source, sink, options: StreamOptions) -> int:
    """Copy *head* then *source* into *sink*, paced to ``bwlimit`` and reporting progress."""
    rate = options.bwlimit * 1024
    started = last_report = time.monotonic()
    sink.write(head)
    written = len(head)
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            break
        sink.write(chunk)
        written += len(chunk)
        now = time.monotonic()
        if rate and written / rate > now - started:
            time.sleep(written / rate - (now - started))
        if options.progress and now - last_report >= PROGRESS_SECONDS:
            options.progress(written, now - started)
            last_report = now
    sink.flush()
    return written


def _wait_with_progress(tar: subprocess.Popen, output: BinaryIO, options: StreamOptions) -> int:
    """Wait for tar, reporting the size of *output* as progress; return that size at the end.

    A thread reports the progress, so this thread can block in ``waitpid``:
    ``Popen.wait`` with a timeout polls and notices the exit up to 50 ms late.
    """
    finished = threading.Event()
    started = time.monotonic()

    def report() -> None:
        while not finished.wait(PROGRESS_SECONDS):
            options.progress(_written_size(output), time.monotonic() - started)

    reporter = threading.Thread(target=report, daemon=True) if options.progress else None
    if reporter is not None:
        reporter.start()
    try:
        tar.wait()
    finally:
        finished.set()
        if reporter is not None:
            reporter.join()
    return _written_size(output)


def fsync_if_file(output: BinaryIO) -> None:
    """Flush *output* to disk when it is a regular file; pipes and terminals are left alone."""
    if stat.S_ISREG(os.fstat(output.fileno()).st_mode):
        os.fsync(output.fileno())


def _file_system_full(output: BinaryIO) -> bool:
    """Return whether the file system of *output* has less than one tar record left for users.

    tar of an unprivileged container runs as a mapped user, so the blocks
    that ext4 reserves for root do not count.
    """
    try:
        info = os.fstatvfs(output.fileno())
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < TAR_RECORD_SIZE


def _written_size(output: BinaryIO) -> int:
    try:
        return os.fstat(output.fileno()).st_size
    except OSError:
        return 0


class _Pipeline:
    """The processes of one archive stream, with their stderr drained in the background."""

    def __init__(self, process_group: int | None = None) -> None:
        self.processes: list[tuple[subprocess.Popen, list[bytes], threading.Thread]] = []
        self.process_group = process_group

    def start(self, argv: list[str], **kwargs) -> subprocess.Popen:
        process = spawn(argv, process_group=self.process_group, **kwargs)
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.append(process.stderr.read()), daemon=True)
        reader.start()
        self.processes.append((process, chunks, reader))
        return process

    def finish(self, allowed: dict[int, int]) -> None:
        """Wait for every stage; raise ArchiveError for the first that failed, the compressor before tar."""
        failure = None
        for process, chunks, reader in self.processes:
            process.wait()
            reader.join()
            process.stderr.close()
            if process.returncode in (0, allowed.get(id(process))):
                continue
            try:
                wait_spawned(process, b"".join(chunks))
            except CommandError as exc:
                failure = failure or exc
        if failure is not None:
            raise ArchiveError(f"writing the archive failed: {first_error(failure.stderr)}") from failure

    def kill(self, tar_only: bool = False) -> None:
        for process, _chunks, reader in self.processes:
            if tar_only and "tar" not in process.args:
                continue
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join(timeout=5)


# -- reading ---------------------------------------------------------------------------

def decompress_flag(archive: Path) -> list[str]:
    """Return tar's decompression option for *archive*; raise ArchiveError for a non-archive."""
    try:
        flag = detect_compression(archive)
    except PctError:
        raise ArchiveError(f"'{archive.name}' is not a tar archive (compressed with gzip, zstd or lzo, or plain)") from None
    return [flag] if flag else []


def read_config(archive: Path, vmid: int | None = None) -> str:
    """Return the container config stored in *archive*."""
    argv = ["tar", "-x", "-O", "--occurrence=1", *decompress_flag(archive), "-f", str(archive), CONFIG_MEMBER]
    try:
        return run(argv).stdout
    except CommandError as exc:
        if "Not found in archive" in exc.stderr:
            raise ArchiveError(f"archive '{archive.name}' contains no '{CONFIG_MEMBER}'; "
                               "it is not a container backup", vmid) from exc
        raise ArchiveError(f"unable to read archive '{archive.name}': {first_error(exc.stderr)}", vmid) from exc


def extract_archive(archive: Path, rootfs: Path, id_map: tuple[int, int] | None, vmid: int,
                    ignore_errors: bool = False) -> list[str]:
    """Unpack the container tree of *archive* into the mounted, empty *rootfs*.

    GNU tar rejects members whose names contain ``..``, strips a leading
    ``/``, and creates symlinks that point outside or upwards only at the
    end, so no member is written through them. With *id_map* tar runs in a
    user namespace mapped like the unprivileged container, which shifts the
    owners and cannot create device nodes. With *ignore_errors* the errors of
    single members are returned as warnings instead of raised.
    """
    flags = decompress_flag(archive)
    decompress = decompressor(flags[0] if flags else None)
    argv = ["tar", "-x", "-f", "-", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
            "--same-permissions", "--sparse", "--anchored", f"--exclude={CONFIG_MEMBER}",
            f"--exclude={FIREWALL_MEMBER}", "-C", "."]
    if id_map is not None:
        host_id, count = id_map
        # LXC mounts a fresh /dev into an unprivileged container, so its nodes are not needed.
        argv.append("--exclude=./dev/*")
        argv = ["lxc-usernsexec", "-m", f"u:0:{host_id}:{count}", "-m", f"g:0:{host_id}:{count}", "--"] + argv
    try:
        from pct.run import run_fed_from_file

        run_fed_from_file(argv, str(archive), cwd=rootfs, decompress=decompress)
    except CommandError as exc:
        errors = error_lines(exc.stderr)
        damage = damaged_stream(exc, decompress)
        if damage:
            raise ArchiveError(f"CT {vmid}: unable to restore archive '{archive.name}': {damage}", vmid) from exc
        if ignore_errors and errors and not any(_is_stream_error(line) for line in errors):
            return errors
        raise ArchiveError(f"CT {vmid}: unable to restore archive '{archive.name}': "
                           f"{describe_error(errors, id_map)}", vmid) from exc
    return []


# Parts of tar's and the decompressors' messages about a broken archive stream,
# which --ignore-unpack-errors must not turn into warnings.
_STREAM_ERRORS = ("unexpected eof", "unexpected end", "not in gzip format", "decoding error",
                  "error is not recoverable", "child returned status")


def _is_stream_error(line: str) -> bool:
    lowered = line.lower()
    return any(marker in lowered for marker in _STREAM_ERRORS)


def describe_error(errors: list[str], id_map: tuple[int, int] | None) -> str:
    """Return the one line that best explains a failed extraction."""
    for line in errors:
        if ": Cannot mknod" in line and id_map is not None:
            member = line.split(": Cannot mknod", 1)[0]
            return (f"device node '{member}' cannot be created in an unprivileged container; "
                    "restore with --unprivileged 0, or with --ignore-unpack-errors to skip it")
        if ": Member name contains '..'" in line:
            member = line.split(": Member name contains", 1)[0]
            return f"member '{member}' contains '..'; member names must stay below the container's root"
    return errors[0] if errors else "tar failed"


def error_lines(stderr: str) -> list[str]:
    lines = []
    for line in stderr.splitlines():
        line = line.strip().removeprefix("tar: ")
        if line and "Exiting with failure" not in line and "Exiting with failure status" not in line:
            lines.append(line)
    return lines


def first_error(stderr: str) -> str:
    lines = error_lines(stderr)
    return lines[0] if lines else "failed"
