"""The one helper through which every external command runs."""

from __future__ import annotations

import logging
import shlex
import subprocess
from typing import Sequence

from pct.errors import CommandError

log = logging.getLogger("pct.run")


def run(
    argv: Sequence[str],
    *,
    input: bytes | str | None = None,
    stdin=None,
    cwd=None,
    check: bool = True,
    capture: bool = True,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run *argv*, log it at debug level, and raise CommandError on failure.

    Output is captured as text unless *capture* is false, in which case it goes
    to the caller's stdout and stderr. *stdin* may be an open file to read from
    instead of *input*.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s", shlex.join(argv))
    text = isinstance(input, str) or (input is None and stdin is None)
    try:
        result = subprocess.run(
            argv,
            input=input,
            stdin=stdin,
            cwd=cwd,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            text=text,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout} s") from exc
    if check and result.returncode != 0:
        stderr = result.stderr if capture else ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        log.debug("failed with status %d: %s", result.returncode, (stderr or "").strip())
        raise CommandError(argv, result.returncode, stderr or "")
    return result
