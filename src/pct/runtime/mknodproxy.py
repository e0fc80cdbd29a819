"""``features: mknod=1``: create a safe set of device nodes for unprivileged containers.

The kernel lets only a process with CAP_MKNOD in the initial user namespace
create device nodes, which an unprivileged container's root lacks. LXC 5 can
route a syscall to a supervisor instead: a seccomp rule with the ``notify``
action stops the calling process, and the LXC monitor forwards the request to
the unix socket named by ``lxc.seccomp.notify.proxy``. pct starts one proxy
process per container start, listening on an abstract socket, and the proxy
makes the node when the device is on the allowed list.

Wire format (LXC 5, ``struct seccomp_notify_proxy_msg`` in lxcseccomp.h): a
32-byte header, the kernel's ``struct seccomp_notif`` and
``struct seccomp_notif_resp`` and the cookie, with two file descriptors
attached: the caller's ``/proc/<pid>`` directory and its ``/proc/<pid>/mem``.
The proxy replies with the header, the request and the filled-in response.

The node is made by a child that joins the caller's mount namespace, takes
the caller's root, working directory (or ``mknodat`` directory), umask and
file system ids, and keeps CAP_MKNOD only. The path is resolved as the
caller's own mknod would resolve it, so it cannot reach outside the
container, and directory permissions are checked for the caller.
"""

from __future__ import annotations

import array
import ctypes
import errno
import logging
import os
import secrets
import socket
import stat
import struct
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Character devices an unprivileged container may create: the overlay
# whiteout 0:0, null 1:3, zero 1:5, full 1:7, random 1:8, urandom 1:9 and
# tty 5:0 (the opener's own terminal). The list must stay harmless to open,
# because an unprivileged container's devices cgroup allows every device
# (LXC's userns.conf clears the rules). So console 5:1, which would reach the
# host's console, and ptmx 5:2 are left out.
ALLOWED_DEVICES = frozenset({(0, 0), (1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)})

# The seccomp rules that send character device mknod calls to the proxy.
# The mode argument is masked with S_IFMT (61440) and compared with S_IFCHR
# (8192), so other node types never reach the proxy.
SECCOMP_RULES = ("mknod notify [1,8192,SCMP_CMP_MASKED_EQ,61440]\n"
                 "mknodat notify [2,8192,SCMP_CMP_MASKED_EQ,61440]\n")

# (mknod, mknodat) syscall numbers by audit architecture. None: no mknod.
# Limitation: calls from other architectures (x32, arm, ppc64le, ...) are
# failed with EPERM, as if the feature were off.
SYSCALLS = {
    0xC000003E: (133, 259),  # AUDIT_ARCH_X86_64
    0x40000003: (14, 297),  # AUDIT_ARCH_I386
    0xC00000B7: (None, 33),  # AUDIT_ARCH_AARCH64
}

HEADER = struct.Struct("<QiiHHHxxQ")  # __reserved, monitor_pid, init_pid, sizes (3 x u16), cookie_len
REQUEST = struct.Struct("<QIIiIQ6Q")  # id, pid, flags, nr, arch, instruction_pointer, args[6]
RESPONSE = struct.Struct("<QqiI")  # id, val, error, flags
AT_FDCWD = -100
PATH_MAX = 4096
CLONE_NEWNS = 0x00020000
CAP_MKNOD = 27
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_CAPGET = 125
SYS_CAPSET = 126
ACCEPT_TIMEOUT_SECONDS = 60
# LXC 5.0 connects to an abstract socket with a length that drops the last
# byte of the name, so the proxy listens on a file system socket. Its path
# must fit the 108 bytes of sun_path, which a directory below a test root
# may not, hence a fixed short directory.
SOCKET_DIRECTORY = Path("/run/pct-mknod")
MAX_MESSAGE = HEADER.size + 512 + 64

# The guest decides how often it calls mknod, so the log is rate-limited to
# keep it from filling the host's disk.
LOG_LINES_PER_WINDOW = 20
LOG_WINDOW_SECONDS = 60

_libc = ctypes.CDLL(None, use_errno=True)


class _RateLimitedLog:
    """Log at most LOG_LINES_PER_WINDOW lines per window and count the rest."""

    def __init__(self):
        self.window_start = time.monotonic()
        self.lines = 0
        self.suppressed = 0

    def __call__(self, level: int, message: str, *args) -> None:
        now = time.monotonic()
        if now - self.window_start >= LOG_WINDOW_SECONDS:
            if self.suppressed:
                log.warning("%d further messages suppressed", self.suppressed)
            self.window_start, self.lines, self.suppressed = now, 0, 0
        if self.lines >= LOG_LINES_PER_WINDOW:
            self.suppressed += 1
            return
        self.lines += 1
        log.log(level, message, *args)


_log_limited = _RateLimitedLog()


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def start_mknod_proxy(paths, vmid: int) -> list[tuple[str, str]]:
    """Start the proxy for one start of *vmid*; return the LXC keys that point LXC to it.

    pct binds the listening socket itself and hands it to the proxy, so it
    listens before ``lxc-start`` connects. Each start gets a fresh socket
    and cookie, so a proxy left from an earlier start cannot collide.
    """
    from pct.run import spawn_detached

    token = secrets.token_hex(8)
    SOCKET_DIRECTORY.mkdir(mode=0o700, exist_ok=True)
    path = SOCKET_DIRECTORY / f"{vmid}-{token}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(4)
        log_file = paths.lxc_dir(vmid) / "mknod-proxy.log"
        spawn_detached([sys.executable, "-m", "pct.runtime.mknodproxy", str(listener.fileno()), token],
                       log_file=log_file, pass_fds=(listener.fileno(),))
    finally:
        listener.close()
    return [("lxc.seccomp.notify.proxy", f"unix:{path}"), ("lxc.seccomp.notify.cookie", token)]


def device_allowed(mode: int, device: int) -> bool:
    """Return whether a character device node of *device* (kernel ``dev`` argument) may be made."""
    if not stat.S_ISCHR(mode):
        return False
    return (os.major(device), os.minor(device)) in ALLOWED_DEVICES


def decode_request(data: bytes) -> tuple[tuple, bytes, bytes]:
    """Split a proxy message into its header fields, request bytes and response bytes."""
    header = HEADER.unpack_from(data, 0)
    notif_size, response_size = header[3], header[4]
    request = data[HEADER.size:HEADER.size + notif_size]
    response = data[HEADER.size + notif_size:HEADER.size + notif_size + response_size]
    if len(request) < REQUEST.size or len(response) < RESPONSE.size:
        raise ValueError("short seccomp proxy message")
    return header, request, response


def syscall_arguments(request: bytes) -> tuple[int, int, int, int] | None:
    """Return (directory fd, path address, mode, device) of a mknod or mknodat request."""
    _, _, _, number, arch, _, *args = REQUEST.unpack_from(request, 0)
    mknod, mknodat = SYSCALLS.get(arch, (None, None))
    if number == mknod and mknod is not None:
        return AT_FDCWD, args[0], args[1] & 0xFFFFFFFF, args[2] & 0xFFFFFFFF
    if number == mknodat:
        directory = ctypes.c_int32(args[0] & 0xFFFFFFFF).value
        return directory, args[1], args[2] & 0xFFFFFFFF, args[3] & 0xFFFFFFFF
    return None


def encode_reply(header: tuple, request: bytes, request_id: int, error: int) -> bytes:
    """Return the reply: the header with zero reserved bytes, the request and the response."""
    reply_header = HEADER.pack(0, *header[1:])
    return reply_header + request + RESPONSE.pack(request_id, 0, error, 0)


def read_path(memory_fd: int, address: int) -> bytes:
    """Read a NUL-terminated path of at most PATH_MAX bytes from the caller's memory."""
    data = b""
    while len(data) < PATH_MAX:
        chunk_size = min(PATH_MAX - len(data), 4096 - (address + len(data)) % 4096)
        chunk = os.pread(memory_fd, chunk_size, address + len(data))
        if not chunk:
            break
        end = chunk.find(b"\0")
        if end >= 0:
            return data + chunk[:end]
        data += chunk
    raise OSError(errno.ENAMETOOLONG, "path too long")


def _process_ids(process_fd: int) -> tuple[int, int, list[int], int]:
    """Return the caller's file system uid and gid, its groups and its umask, from /proc/<pid>/status."""
    status_fd = os.open("status", os.O_RDONLY | os.O_CLOEXEC, dir_fd=process_fd)
    try:
        text = os.read(status_fd, 65536).decode()
    finally:
        os.close(status_fd)
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    uid = int(fields["Uid"].split()[3])
    gid = int(fields["Gid"].split()[3])
    groups = [int(group) for group in fields.get("Groups", "").split()]
    umask = int(fields["Umask"].strip(), 8)
    return uid, gid, groups, umask


def _keep_only_mknod_capability() -> None:
    """Make CAP_MKNOD the only effective capability, as setfsuid() dropped it with the others."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.syscall(SYS_CAPGET, ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective = 1 << CAP_MKNOD
    data[1].effective = 0
    if _libc.syscall(SYS_CAPSET, ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def make_node_as_caller(process_fd: int, directory: int, path: bytes, mode: int, device: int) -> int:
    """Create the node for the caller of *process_fd*; return 0 or a negative errno."""
    try:
        uid, gid, groups, umask = _process_ids(process_fd)
        namespace_fd = os.open("ns/mnt", os.O_RDONLY | os.O_CLOEXEC, dir_fd=process_fd)
        root_fd = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=process_fd)
        start = "cwd" if directory == AT_FDCWD else f"fd/{directory}"
        start_fd = os.open(start, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=process_fd)
    except FileNotFoundError:
        return -errno.ESRCH if directory == AT_FDCWD else -errno.EBADF
    except NotADirectoryError:
        return -errno.ENOTDIR
    except OSError as exc:
        return -(exc.errno or errno.EPERM)

    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 0
        try:
            if _libc.setns(namespace_fd, CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            os.fchdir(root_fd)
            os.chroot(".")
            os.fchdir(start_fd)
            os.setgroups(groups)
            _libc.setfsgid(gid)
            _libc.setfsuid(uid)
            _keep_only_mknod_capability()
            os.umask(umask)
            os.mknod(path, mode, os.makedev(os.major(device), os.minor(device)))
        except OSError as exc:
            code = exc.errno or errno.EPERM
        except BaseException:
            code = errno.EPERM
        os._exit(code)

    for fd in (namespace_fd, root_fd, start_fd):
        os.close(fd)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # the child died from a signal
        return -errno.EPERM
    return -code


def handle_request(data: bytes, fds: list[int], cookie: bytes) -> bytes:
    """Handle one forwarded request and return the reply to send."""
    header, request, _ = decode_request(data)
    request_id = REQUEST.unpack_from(request, 0)[0]
    cookie_length = header[6]
    sent_cookie = data[len(data) - cookie_length:] if cookie_length else b""
    arguments = syscall_arguments(request)
    if len(fds) != 2 or sent_cookie != cookie or arguments is None:
        _log_limited(logging.WARNING, "rejected a request with %d file descriptors, a %s cookie, "
                     "syscall arguments %s", len(fds), "matching" if sent_cookie == cookie else "wrong", arguments)
        return encode_reply(header, request, request_id, -errno.EPERM)

    directory, address, mode, device = arguments
    if not device_allowed(mode, device):
        _log_limited(logging.INFO, "denied mknod of mode %o device %d:%d", mode, os.major(device),
                     os.minor(device))
        return encode_reply(header, request, request_id, -errno.EPERM)
    process_fd, memory_fd = fds
    try:
        path = read_path(memory_fd, address)
    except OSError as exc:
        return encode_reply(header, request, request_id, -(exc.errno or errno.EFAULT))
    if not path:
        return encode_reply(header, request, request_id, -errno.ENOENT)
    error = make_node_as_caller(process_fd, directory, path, mode, device)
    _log_limited(logging.INFO, "mknod %r %o %d:%d for pid %d: %s", path, mode, os.major(device),
                 os.minor(device), REQUEST.unpack_from(request, 0)[1], os.strerror(-error) if error else "done")
    return encode_reply(header, request, request_id, error)


def _receive(connection: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(2 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _peer_is_root(connection: socket.socket) -> bool:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return uid == 0


def serve(connection: socket.socket, cookie: bytes) -> None:
    """Reply to requests on one LXC monitor connection until it closes."""
    while True:
        data, fds = _receive(connection)
        if not data:
            return
        try:
            reply = handle_request(data, fds, cookie)
        except (ValueError, struct.error) as exc:
            _log_limited(logging.WARNING, "malformed seccomp proxy message: %s", exc)
            return
        finally:
            for fd in fds:
                os.close(fd)
        connection.sendmsg([reply])


def run_proxy(listener: socket.socket, cookie: bytes) -> None:
    """Serve LXC monitor connections until none arrives for ACCEPT_TIMEOUT_SECONDS.

    LXC connects at each start of the container, including a reboot from
    inside the guest, so the proxy stays while connections keep coming.
    """
    listener.settimeout(ACCEPT_TIMEOUT_SECONDS)
    while True:
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            return
        with connection:
            connection.settimeout(None)
            if not _peer_is_root(connection):
                _log_limited(logging.WARNING, "rejected a connection from a process not running as root")
                continue
            serve(connection, cookie)


def main(argv: list[str]) -> int:
    """Run ``python -m pct.runtime.mknodproxy FD COOKIE`` with the listening socket as FD."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: python -m pct.runtime.mknodproxy FD COOKIE", file=sys.stderr)
        return 2
    listener = socket.socket(fileno=int(argv[0]))
    path = listener.getsockname()
    try:
        run_proxy(listener, argv[1].encode())
    finally:
        listener.close()
        if isinstance(path, str) and path.startswith(str(SOCKET_DIRECTORY) + "/"):
            os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
