"""The one helper through which every external command runs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Sequence

from pct.errors import CommandError


def _debug(message: str, *args) -> None:
    """Log at debug level, if the caller set up logging at all.

    Importing the logging package costs about 10 ms here, which short
    commands such as ``pct exec`` avoid. Nothing can be shown at debug level
    before the command line has imported and configured it anyway.
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("pct.run").debug(message, *args)


def run(
    argv: Sequence[str],
    *,
    input: bytes | str | None = None,
    stdin=None,
    cwd=None,
    pass_fds: Sequence[int] = (),
    check: bool = True,
    capture: bool = True,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    process_group: int | None = None,
) -> subprocess.CompletedProcess:
    """Run *argv*, log it at debug level, and raise CommandError on failure.

    Output is captured as text unless *capture* is false, in which case it goes
    to the caller's stdout and stderr. *stdin* may be an open file to read from
    instead of *input*. With *process_group* the command joins that existing
    process group.
    """
    argv = [str(a) for a in argv]
    _debug("run: %s", shlex.join(argv))
    text = isinstance(input, str) or (input is None and stdin is None)
    try:
        result = subprocess.run(
            argv,
            input=input,
            stdin=stdin,
            cwd=cwd,
            pass_fds=tuple(pass_fds),
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            text=text,
            timeout=timeout,
            env=env,
            process_group=process_group,
        )
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout} s") from exc
    if check and result.returncode != 0:
        stderr = result.stderr if capture else ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        _debug("failed with status %d: %s", result.returncode, (stderr or "").strip())
        raise CommandError(argv, result.returncode, stderr or "")
    return result


def start(argv: Sequence[str]) -> subprocess.Popen:
    """Start *argv* in the background with its output captured; finish it with ``wait``."""
    argv = [str(a) for a in argv]
    _debug("start: %s", shlex.join(argv))
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from exc


def spawn_detached(argv: Sequence[str], *, log_file: str | os.PathLike, pass_fds: Sequence[int] = ()) -> int:
    """Start *argv* in a session of its own that outlives the caller; return its PID.

    Its stdin is /dev/null and its output is appended to *log_file*. No
    process waits for it, so it must exit by itself.
    """
    argv = [str(a) for a in argv]
    _debug("start detached: %s", shlex.join(argv))
    with open(log_file, "ab") as log, open(os.devnull, "rb") as null:
        try:
            process = subprocess.Popen(argv, stdin=null, stdout=log, stderr=subprocess.STDOUT,
                                       pass_fds=tuple(pass_fds), start_new_session=True)
        except FileNotFoundError as exc:
            raise CommandError(argv, 127, f"{argv[0]}: command not found") from exc
    return process.pid


def spawn(argv: Sequence[str], *, stdin=None, stdout=None, cwd=None,
          process_group: int | None = None) -> subprocess.Popen:
    """Start *argv* as one stage of a binary pipeline; its stderr is captured as bytes.

    *stdin* and *stdout* are open files, ``subprocess.PIPE`` or None. With
    *process_group* the process joins that existing process group. Finish the
    process with ``wait_spawned``.
    """
    argv = [str(a) for a in argv]
    _debug("start: %s", shlex.join(argv))
    try:
        return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd,
                                process_group=process_group)
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from exc


def wait_spawned(process: subprocess.Popen, stderr: bytes = b"") -> None:
    """Wait for a process from ``spawn``; raise CommandError with its stderr when it failed.

    *stderr* is what the caller already read from the process's stderr pipe.
    """
    returncode = process.wait()
    if process.stderr is not None and not process.stderr.closed:
        stderr += process.stderr.read()
        process.stderr.close()
    if returncode != 0:
        text = stderr.decode(errors="replace")
        _debug("failed with status %d: %s", returncode, text.strip())
        raise CommandError(list(process.args), returncode, text)


def wait(process: subprocess.Popen) -> str:
    """Wait for a process from ``start``; return its stdout or raise CommandError."""
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        _debug("failed with status %d: %s", process.returncode, stderr.strip())
        raise CommandError(list(process.args), process.returncode, stderr)
    return stdout


def run_fed_from_file(argv: Sequence[str], source: str, *, cwd=None,
                      decompress: Sequence[str] | None = None) -> None:
    """Run *argv* with the content of the file *source* written to its stdin.

    The caller writes the data itself, rather than handing over the open file,
    so that the command reads end of input and exits when the caller is killed
    midway instead of running on unsupervised.

    With *decompress* the file goes through that command (``zstd -dc``, for
    example) on its way to *argv*. Once *argv* has exited, the rest of the
    decompressed stream is read and discarded, so the decompressor reaches
    the end of its input and checks it. Otherwise, a checksum error at the
    end of a stream would go unnoticed, because tar stops reading at the
    archive's end marker. A failed decompressor is reported before *argv*.
    """
    argv = [str(a) for a in argv]
    if decompress is None:
        _debug("run: %s < %s", shlex.join(argv), source)
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, cwd=cwd)
        errors = _StderrReader(process)
        _feed(source, process.stdin)
        _raise_if_failed(argv, process.wait(), errors.text())
    else:
        _run_decompressed(argv, source, cwd, [str(a) for a in decompress])


def _run_decompressed(argv: list[str], source: str, cwd, decompress: list[str]) -> None:
    """Run ``decompress < source | argv``, and read the rest of the decompressed stream once *argv* exits."""
    _debug("run: %s < %s | %s", shlex.join(decompress), source, shlex.join(argv))
    stages = []
    try:
        first = subprocess.Popen(decompress, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        stages.append(first)
        second = subprocess.Popen(argv, stdin=first.stdout, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, cwd=cwd)
        stages.append(second)
        first_errors = _StderrReader(first)
        second_errors = _StderrReader(second)
        import threading

        feeder = threading.Thread(target=_feed, args=(source, first.stdin), daemon=True)
        feeder.start()
        second_status = second.wait()
        _drain(first.stdout)
        first_status = first.wait()
        feeder.join()
    finally:
        for process in stages:
            if process.poll() is None:
                process.kill()
                process.wait()
    _raise_if_failed(decompress, first_status, first_errors.text())
    _raise_if_failed(argv, second_status, second_errors.text())


class _StderrReader:
    """Read a process's stderr in a thread, so that a full pipe never stops it."""

    def __init__(self, process: subprocess.Popen):
        import threading

        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=lambda: self._chunks.append(process.stderr.read()), daemon=True)
        self._thread.start()

    def text(self) -> str:
        self._thread.join()
        return b"".join(self._chunks).decode(errors="replace")


def _feed(source: str, pipe) -> None:
    """Write the file *source* into *pipe* and close it; a reader that stopped early is not an error here."""
    try:
        _copy_to_pipe(source, pipe)
    except BrokenPipeError:
        pass  # the command stopped reading, and its exit status gives the reason
    finally:
        try:
            pipe.close()
        except BrokenPipeError:
            pass


def _drain(pipe) -> None:
    """Read *pipe* to its end, discarding the data, and close it."""
    while pipe.read(1 << 20):
        pass
    pipe.close()


def _raise_if_failed(argv: list[str], returncode: int, stderr: str) -> None:
    if returncode != 0:
        _debug("failed with status %d: %s", returncode, stderr.strip())
        raise CommandError(argv, returncode, stderr)


def _copy_to_pipe(source: str, pipe) -> None:
    with open(source, "rb") as data:
        size = os.fstat(data.fileno()).st_size
        offset = 0
        while offset < size:
            sent = os.sendfile(pipe.fileno(), data.fileno(), offset, min(size - offset, 1 << 22))
            if sent == 0:
                break
            offset += sent


def exec_replacing(argv: Sequence[str]) -> None:
    """Replace the current process with *argv*, so its terminal and exit status pass through."""
    argv = [str(a) for a in argv]
    _debug("exec: %s", shlex.join(argv))
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from exc
