"""``pct push`` and ``pct pull``: copy files into and out of a running container.

Guest paths are resolved inside the container, never on the host:

- push runs ``sh`` inside the container with ``lxc-attach``, as the guest's
  root user in the guest's namespaces, and feeds it the file on standard
  input. A symlink in the guest can only point at another guest file, owner
  names are looked up in the guest's ``/etc/passwd``, and an unprivileged
  container maps the owner to its host ids on its own.
- pull opens the file from the host below ``/proc/<init pid>/root`` with
  ``RESOLVE_IN_ROOT`` (see ``GuestRoot``), so absolute symlinks and ``..``
  stay inside the container's root and its mounts.

A destination whose last component is a symlink is rejected on push: the
new file would replace the link, and the user most likely meant its target.
"""

from __future__ import annotations

import contextlib
import grp
import os
import posixpath
import pwd
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from pct.config.format import load_config
from pct.errors import CommandError, GuestError, ParameterError, PctError
from pct.guest.rootfs import GuestRoot
from pct.paths import Paths
from pct.run import run_fed_from_file
from pct.runtime.state import init_pid, is_running

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PERMS = re.compile(r"(0x[0-9a-fA-F]+|[0-7]+)")

# Limitation: push needs sh, cat, chown, chgrp, chmod and mv in the guest;
# a container without a shell can only receive files through ``pct mount``.
# Runs inside the guest as root: "$1" destination, "$2" owner, "$3" group,
# "$4" octal mode. The data goes to a new file next to the destination,
# which then replaces it by rename, so a reader never sees half a file.
_PUSH_SCRIPT = r"""
dest=$1
if [ -L "$dest" ]; then exit 10; fi
if [ -d "$dest" ]; then exit 11; fi
dir=${dest%/*}
[ -n "$dir" ] || dir=/
if [ ! -d "$dir" ]; then exit 12; fi
tmp="$dir/.pct-push.$$"
trap 'rm -f "$tmp"' EXIT
set -e -C
cat > "$tmp"
if [ -n "$2" ]; then chown "$2" "$tmp"; fi
if [ -n "$3" ]; then chgrp "$3" "$tmp"; fi
chmod "$4" "$tmp"
mv -f "$tmp" "$dest"
trap - EXIT
"""
_PUSH_FAILURES = {
    10: "is a symbolic link inside the container; give the path it points to instead",
    11: "is a directory; give the full path of the file",
    12: "has no parent directory inside the container",
}


class GuestFiles(GuestRoot):
    """GuestRoot with descriptors for reading files of any size and for inspecting directories."""

    @contextlib.contextmanager
    def open_path(self, path: str, action: str) -> Iterator[int]:
        """Yield an ``O_PATH`` descriptor of *path*, resolved inside the root."""
        with self._open(path, os.O_PATH | os.O_CLOEXEC, action=action) as fd:
            yield fd

    @contextlib.contextmanager
    def open_regular_file(self, path: str) -> Iterator[tuple[int, os.stat_result]]:
        """Yield a read descriptor and the status of the regular file *path*.

        The file's type is checked on an ``O_PATH`` descriptor before it is
        opened for reading, so a FIFO or device planted in the guest is never opened.
        """
        with self.open_path(path, "read") as path_fd:
            info = os.fstat(path_fd)
            if not stat.S_ISREG(info.st_mode):
                raise self._error(f"unable to read {path}: not a regular file")
            fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            yield fd, info
        finally:
            os.close(fd)


def running_guest(paths: Paths, vmid: int) -> GuestFiles:
    """Return the file view of running container *vmid*, its mounts included."""
    load_config(paths, vmid)
    pid = init_pid(paths, vmid) if is_running(paths, vmid) else None
    if pid is None:
        raise PctError(f"CT {vmid} not running", vmid)
    return GuestFiles(Path(f"/proc/{pid}/root"), vmid=vmid)


def parse_perms(text: str | None, vmid: int) -> int | None:
    """Return the mode bits of ``--perms``: octal by default, hexadecimal with ``0x``."""
    if text is None:
        return None
    if not _PERMS.fullmatch(text):
        raise ParameterError("perms", f"invalid mode '{text}' (expected octal such as 0644, or 0x1a4)", vmid)
    mode = int(text, 16) if text.startswith("0x") else int(text, 8)
    if mode > 0o7777:
        raise ParameterError("perms", f"mode '{text}' is above 07777", vmid)
    return mode


def _guest_path(path: str, name: str, vmid: int) -> str:
    if not path.startswith("/") or "\0" in path:
        raise ParameterError(name, f"'{path}' is not an absolute path inside the container", vmid)
    return "/" + posixpath.normpath(path).lstrip("/")


# -- push -----------------------------------------------------------------------------

def push_file(paths: Paths, vmid: int, source: str, destination: str, user: str | None = None,
              group: str | None = None, perms: str | None = None) -> None:
    """Copy the host file *source* to *destination* inside running container *vmid*.

    The new file gets mode *perms* (default: the source's mode) and owner
    *user*/*group* as the guest names or numbers them (default: root).
    """
    target = _guest_path(destination, "destination", vmid)
    mode = parse_perms(perms, vmid)
    if mode is None:
        mode = stat.S_IMODE(_source_status(source, vmid).st_mode)
    else:
        _source_status(source, vmid)
    running_guest(paths, vmid)

    argv = ["lxc-attach", "-P", paths.lxc_path, "-n", str(vmid), "--clear-env",
            "--set-var", f"PATH={GUEST_PATH}", "--", "/bin/sh", "-c", _PUSH_SCRIPT, "pct-push",
            target, user or "", group or "", f"{mode:o}"]
    try:
        run_fed_from_file(argv, source)
    except CommandError as exc:
        reason = _PUSH_FAILURES.get(exc.returncode)
        if reason:
            raise PctError(f"CT {vmid}: unable to push to '{target}': it {reason}", vmid) from exc
        detail = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else f"exit status {exc.returncode}"
        raise PctError(f"CT {vmid}: unable to push to '{target}': {detail}", vmid) from exc


def _source_status(source: str, vmid: int) -> os.stat_result:
    try:
        info = os.stat(source)
    except OSError as exc:
        raise PctError(f"unable to read '{source}': {exc.strerror}", vmid) from exc
    if not stat.S_ISREG(info.st_mode):
        raise PctError(f"unable to push '{source}': not a regular file", vmid)
    if not os.access(source, os.R_OK):
        raise PctError(f"unable to read '{source}': permission denied", vmid)
    return info


# -- pull -----------------------------------------------------------------------------

def pull_file(paths: Paths, vmid: int, path: str, destination: str, user: str | None = None,
              group: str | None = None, perms: str | None = None) -> Path:
    """Copy the file *path* of running container *vmid* to the host path *destination*; return it.

    A *destination* that is a directory receives the file under its own
    name. The host file gets mode *perms* (default: the guest file's mode)
    and owner *user*/*group* as the host names them (default: root).
    """
    source = _guest_path(path, "path", vmid)
    mode = parse_perms(perms, vmid)
    uid = _host_id(user, pwd.getpwnam, "user", vmid)
    gid = _host_id(group, grp.getgrnam, "group", vmid)
    target = Path(destination)
    if target.is_dir():
        target = target / posixpath.basename(source)
    if not target.parent.is_dir():
        raise PctError(f"unable to write '{target}': directory '{target.parent}' does not exist", vmid)

    guest = running_guest(paths, vmid)
    try:
        with guest.open_regular_file(source) as (fd, info):
            _write_host_file(fd, target, mode if mode is not None else stat.S_IMODE(info.st_mode), uid, gid)
    except GuestError as exc:
        raise GuestError(f"CT {vmid}: {exc.message}", vmid) from exc
    return target


def _host_id(name: str | None, lookup, option: str, vmid: int) -> int:
    if name is None:
        return 0
    if name.isdigit():
        return int(name)
    try:
        entry = lookup(name)
    except KeyError:
        raise ParameterError(option, f"{option} '{name}' does not exist on the host", vmid) from None
    return entry.pw_uid if option == "user" else entry.gr_gid


def _write_host_file(source_fd: int, target: Path, mode: int, uid: int, gid: int) -> None:
    """Copy *source_fd* to a new file next to *target*, set mode and owner, rename it over *target*."""
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".pct-pull", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as output, os.fdopen(os.dup(source_fd), "rb") as data:
            while chunk := data.read(1 << 20):
                output.write(chunk)
            output.flush()
            os.fchown(output.fileno(), uid, gid)
            os.fchmod(output.fileno(), mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
