"""File access inside a guest rootfs that no guest symlink can lead out of.

Every path is a guest-absolute string such as ``/etc/hostname`` and is
resolved as if the rootfs were ``/``. Parent directories are opened with
openat2(2) and ``RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS``, so absolute
symlinks are resolved relative to the rootfs and ``..`` stops at it. The final
component of a write is never followed: a new file is created under a
temporary name next to it and renamed over it, which replaces a symlink
instead of writing through it.

Kernels without openat2 (before 5.6) get a component-by-component walk with
``O_NOFOLLOW`` that rejects every symlink with a GuestError.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pct.errors import GuestError

# Largest file read_bytes() accepts. Guest config files are small, and a cap
# keeps a hostile guest from making the host read a huge file into memory.
MAX_READ_BYTES = 16 * 1024 * 1024

_SYS_OPENAT2 = 437  # the same number on every architecture that has it
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    """``struct open_how`` from linux/openat2.h."""

    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2(dir_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open *path* below *dir_fd* with openat2(2), resolving as if *dir_fd* were ``/``.

    Raises OSError, with ENOSYS on kernels that lack the system call.
    """
    how = _OpenHow(flags, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    encoded = os.fsencode(path)
    for _ in range(16):
        fd = _libc.syscall(
            _SYS_OPENAT2,
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(encoded),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        # EAGAIN means a concurrent rename raced with the lookup; try again.
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def _open_without_symlinks(dir_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open *path* below *dir_fd* one component at a time, rejecting symlinks.

    This is the fallback for kernels without openat2. The path is already
    normalised, so it contains no ``..`` component.
    """
    parts = [part for part in path.split("/") if part and part != "."]
    current = os.dup(dir_fd)
    try:
        for part in parts[:-1]:
            following = os.open(part, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=current)
            os.close(current)
            current = following
            if stat.S_ISLNK(os.fstat(current).st_mode):
                raise OSError(errno.ELOOP, "symbolic link rejected", path)
            if not stat.S_ISDIR(os.fstat(current).st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if not parts:
            return os.open(".", flags, mode, dir_fd=current)
        try:
            fd = os.open(parts[-1], flags | os.O_NOFOLLOW, mode, dir_fd=current)
        except OSError as exc:
            # O_NOFOLLOW reports a final symlink as ELOOP, or as ENOTDIR when
            # O_DIRECTORY is set too.
            if exc.errno == errno.ENOTDIR and _is_symlink_at(current, parts[-1]):
                raise OSError(errno.ELOOP, "symbolic link rejected", path) from exc
            raise
        if flags & os.O_PATH and stat.S_ISLNK(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.ELOOP, "symbolic link rejected", path)
        return fd
    finally:
        os.close(current)


def _is_symlink_at(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open *path* below *root_fd* with openat2, or with the fallback walk on ENOSYS."""
    try:
        return _openat2(root_fd, path, flags, mode)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
    return _open_without_symlinks(root_fd, path, flags, mode)


def _normalise(path: str) -> str:
    """Return *path* as a normalised guest-absolute path; raise ValueError when invalid."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise ValueError(f"invalid guest path {path!r}: expected an absolute path")
    normal = posixpath.normpath(path)
    # normpath keeps a leading '//' as POSIX allows it; the guest does not need it.
    return "/" + normal.lstrip("/")


class GuestRoot:
    """A guest rootfs mounted at *host_path*, seen from inside the guest.

    *uid_base* and *gid_base* are the host ids of the guest's uid and gid 0
    (100000 for a default unprivileged container). Files and directories this
    class creates are owned by ``base + uid``.
    """

    def __init__(
        self,
        host_path: Path,
        uid_base: int = 0,
        gid_base: int = 0,
        vmid: int | None = None,
    ):
        self.host_path = Path(host_path)
        self.uid_base = uid_base
        self.gid_base = gid_base
        self.vmid = vmid

    # -- reading -----------------------------------------------------------

    def read_bytes(self, path: str) -> bytes | None:
        """Return the content of the regular file at *path*, or None if it is missing.

        Symlinks on the way, the final one included, are followed inside the
        rootfs. Anything other than a regular file raises GuestError.
        """
        with self._open(path, _PATH_FLAGS, missing_ok=True, action="read") as fd:
            if fd is None:
                return None
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise self._error(f"unable to read {path}: not a regular file")
            if info.st_size > MAX_READ_BYTES:
                raise self._error(
                    f"unable to read {path}: file is larger than {MAX_READ_BYTES} bytes"
                )
            # Reopening through /proc/self/fd reads exactly the inode checked
            # above, and an O_PATH open never triggers a device or FIFO.
            with _closing(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)) as rfd:
                return _read_all(rfd, MAX_READ_BYTES + 1)

    def read_text(self, path: str) -> str | None:
        """Return the text of *path* (UTF-8), or None if it is missing.

        Bytes that are not UTF-8 survive a read_text/write_text round trip.
        """
        data = self.read_bytes(path)
        if data is None:
            return None
        return data.decode("utf-8", errors="surrogateescape")

    def exists(self, path: str) -> bool:
        """Return whether *path* exists, following symlinks inside the rootfs."""
        return self._stat(path) is not None

    def is_file(self, path: str) -> bool:
        info = self._stat(path)
        return info is not None and stat.S_ISREG(info.st_mode)

    def is_dir(self, path: str) -> bool:
        info = self._stat(path)
        return info is not None and stat.S_ISDIR(info.st_mode)

    def is_symlink(self, path: str) -> bool:
        """Return whether the final component of *path* is a symlink (not followed)."""
        return self.readlink(path) is not None

    def readlink(self, path: str) -> str | None:
        """Return the target of the symlink at *path*, or None if it is missing or no symlink."""
        parent, name = self._split(path)
        with self._open(parent, _PATH_FLAGS | os.O_DIRECTORY, missing_ok=True, action="read", subject=path) as dfd:
            if dfd is None:
                return None
            try:
                return os.readlink(name, dir_fd=dfd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EINVAL):
                    return None
                raise self._error(f"unable to read link {path}: {exc.strerror}") from exc

    def listdir(self, path: str) -> list[str]:
        """Return the sorted entry names of directory *path*, or [] if it is missing."""
        with self._open(path, _DIR_FLAGS, missing_ok=True, action="list") as fd:
            if fd is None:
                return []
            return sorted(os.listdir(fd))

    def ignored(self, path: str) -> bool:
        """Return whether ``/etc/.pve-ignore.<basename of path>`` exists in the guest."""
        name = posixpath.basename(_normalise(path))
        return self.exists(f"/etc/.pve-ignore.{name}")

    # -- writing -----------------------------------------------------------

    def write_bytes(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> bool:
        """Replace *path* atomically with *data*; return whether anything changed.

        An existing regular file keeps its mode and owner, and is left alone
        when its content already matches. Anything else at *path*, a symlink
        included, is replaced by a new file with *mode*, owned by the mapped
        ``uid``/``gid``. The parent directory must exist.
        """
        parent, name = self._split(path)
        with self._open(parent, _DIR_FLAGS, action="write", subject=path) as dfd:
            current = _lstat_at(dfd, name)
            if current is not None and stat.S_ISDIR(current.st_mode):
                raise self._error(f"unable to write {path}: a directory is in the way")
            if current is not None and stat.S_ISREG(current.st_mode):
                if self._content_equals(dfd, name, data):
                    return False
                mode = stat.S_IMODE(current.st_mode)
                owner = (current.st_uid, current.st_gid)
            else:
                owner = (self.uid_base + uid, self.gid_base + gid)
            self._replace_file(dfd, name, data, mode, owner, path)
            return True

    def write_text(self, path: str, text: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> bool:
        """Replace *path* atomically with *text* (UTF-8); see write_bytes()."""
        data = text.encode("utf-8", errors="surrogateescape")
        return self.write_bytes(path, data, mode=mode, uid=uid, gid=gid)

    def makedirs(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        """Create directory *path* and missing parents, owned by the mapped ``uid``/``gid``.

        Existing directories are left as they are. A symlink that resolves to
        a directory inside the rootfs counts as that directory.
        """
        normal = _normalise(path)
        prefix = "/"
        for part in [p for p in normal.split("/") if p]:
            current = posixpath.join(prefix, part)
            if not self.is_dir(current):
                self._mkdir(prefix, part, mode, uid, gid, current)
            prefix = current

    def unlink(self, path: str) -> bool:
        """Remove the file or symlink at *path* (never its target); return whether it existed."""
        parent, name = self._split(path)
        with self._open(parent, _PATH_FLAGS | os.O_DIRECTORY, missing_ok=True, action="remove", subject=path) as dfd:
            if dfd is None:
                return False
            try:
                os.unlink(name, dir_fd=dfd)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise self._error(f"unable to remove {path}: {exc.strerror}") from exc
            return True

    def symlink(self, target: str, path: str, uid: int = 0, gid: int = 0) -> bool:
        """Make *path* a symlink to *target*, replacing what is there; return whether anything changed.

        The target is stored as given. Reads through it later resolve inside
        the rootfs, so an absolute target is harmless.
        """
        if self.readlink(path) == target:
            return False
        parent, name = self._split(path)
        with self._open(parent, _PATH_FLAGS | os.O_DIRECTORY, action="create symlink", subject=path) as dfd:
            current = _lstat_at(dfd, name)
            if current is not None and stat.S_ISDIR(current.st_mode):
                raise self._error(f"unable to create symlink {path}: a directory is in the way")
            temp = _temp_name(name)
            try:
                os.symlink(target, temp, dir_fd=dfd)
                os.chown(temp, self.uid_base + uid, self.gid_base + gid, dir_fd=dfd, follow_symlinks=False)
                os.rename(temp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except OSError as exc:
                _unlink_quietly(dfd, temp)
                raise self._error(f"unable to create symlink {path}: {exc.strerror}") from exc
            return True

    def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits of *path*, following symlinks inside the rootfs."""
        with self._open(path, _PATH_FLAGS, action="change") as fd:
            if stat.S_IMODE(os.fstat(fd).st_mode) == mode:
                return
            # chmod through the O_PATH descriptor changes exactly that inode.
            os.chmod(f"/proc/self/fd/{fd}", mode)

    # -- helpers -----------------------------------------------------------

    def _split(self, path: str) -> tuple[str, str]:
        normal = self._checked(path)
        parent, name = posixpath.split(normal)
        if not name:
            raise self._error(f"invalid guest path {path!r}: names the root directory")
        return parent, name

    def _checked(self, path: str) -> str:
        try:
            return _normalise(path)
        except ValueError as exc:
            raise self._error(str(exc)) from None

    def _error(self, message: str) -> GuestError:
        return GuestError(message, vmid=self.vmid)

    @contextmanager
    def _open(
        self,
        path: str,
        flags: int,
        *,
        missing_ok: bool = False,
        action: str,
        subject: str | None = None,
    ) -> Iterator[int | None]:
        """Yield a descriptor for *path* opened inside the rootfs, or None when missing and *missing_ok*.

        Error messages name *subject*, the path the caller works on, which is
        a child of *path* when the caller opens its parent directory.
        """
        relative = "." + self._checked(path)
        subject = subject or path
        root_fd = os.open(self.host_path, _PATH_FLAGS | os.O_DIRECTORY)
        try:
            fd = _open_in_root(root_fd, relative, flags)
        except OSError as exc:
            if missing_ok and exc.errno in (errno.ENOENT, errno.ENOTDIR):
                fd = None
            elif exc.errno == errno.ELOOP:
                raise self._error(
                    f"unable to {action} {subject}: a symbolic link on the way was rejected"
                ) from exc
            else:
                raise self._error(f"unable to {action} {subject}: {exc.strerror}") from exc
        finally:
            os.close(root_fd)
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    def _stat(self, path: str) -> os.stat_result | None:
        with self._open(path, _PATH_FLAGS, missing_ok=True, action="read") as fd:
            return None if fd is None else os.fstat(fd)

    def _content_equals(self, dfd: int, name: str, data: bytes) -> bool:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError:
            return False
        with _closing(fd):
            return _read_all(fd, len(data) + 1) == data

    def _replace_file(
        self, dfd: int, name: str, data: bytes, mode: int, owner: tuple[int, int], path: str
    ) -> None:
        temp = _temp_name(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(temp, flags, 0o600, dir_fd=dfd)
            with _closing(fd):
                _write_all(fd, data)
                os.fchown(fd, *owner)
                os.fchmod(fd, mode)
                os.fsync(fd)
            os.rename(temp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.fsync(dfd)
        except OSError as exc:
            _unlink_quietly(dfd, temp)
            raise self._error(f"unable to write {path}: {exc.strerror}") from exc

    def _mkdir(self, parent: str, name: str, mode: int, uid: int, gid: int, path: str) -> None:
        with self._open(parent, _PATH_FLAGS | os.O_DIRECTORY, action="create directory", subject=path) as dfd:
            try:
                os.mkdir(name, mode, dir_fd=dfd)
            except FileExistsError as exc:
                raise self._error(
                    f"unable to create directory {path}: a file or a symlink that leads"
                    " to no directory inside the guest is in the way"
                ) from exc
            except OSError as exc:
                raise self._error(f"unable to create directory {path}: {exc.strerror}") from exc
            os.chown(name, self.uid_base + uid, self.gid_base + gid, dir_fd=dfd, follow_symlinks=False)
        # mkdir applies the umask, so set the requested mode explicitly.
        self.chmod(path, mode)


@contextmanager
def _closing(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _lstat_at(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _temp_name(name: str) -> str:
    return f".{name}.pct-{secrets.token_hex(4)}"


def _unlink_quietly(dfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        pass


def _read_all(fd: int, limit: int) -> bytes:
    chunks = []
    total = 0
    while total < limit:
        chunk = os.read(fd, min(65536, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
