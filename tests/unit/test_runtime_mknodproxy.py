"""The mknod proxy's message format, device list and seccomp rules."""

import errno
import os
import stat
import struct
from types import SimpleNamespace

import pytest

from pct.runtime.features import needs_seccomp_profile, seccomp_profile, wants_mknod_proxy
from pct.runtime.mknodproxy import (
    AT_FDCWD, HEADER, REQUEST, RESPONSE, SECCOMP_RULES, decode_request, device_allowed, handle_request, read_path,
    syscall_arguments,
)

X86_64 = 0xC000003E
I386 = 0x40000003
NULL_DEVICE = 0x103  # the kernel's encoding of 1:3


def request(number, arch, *args, request_id=7):
    args = list(args) + [0] * (6 - len(args))
    return REQUEST.pack(request_id, 4242, 0, number, arch, 0, *args)


def message(notification, cookie=b"secret"):
    header = HEADER.pack(0, 100, 101, REQUEST.size, RESPONSE.size, 64, len(cookie))
    return header + notification + RESPONSE.pack(0, 0, 0, 0) + cookie


def reply_error(reply):
    return RESPONSE.unpack_from(reply, HEADER.size + REQUEST.size)


@pytest.mark.parametrize("device", [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (0, 0)])
def test_safe_character_devices_allowed(device):
    assert device_allowed(stat.S_IFCHR | 0o666, os.makedev(*device))


@pytest.mark.parametrize("device", [(1, 1), (1, 2), (5, 1), (5, 2), (7, 0), (10, 229), (8, 0), (136, 0)])
def test_other_devices_denied(device):
    assert not device_allowed(stat.S_IFCHR | 0o666, os.makedev(*device))


def test_block_device_denied():
    assert not device_allowed(stat.S_IFBLK | 0o666, NULL_DEVICE)


def test_mknod_and_mknodat_arguments():
    mode = stat.S_IFCHR | 0o666
    assert syscall_arguments(request(133, X86_64, 0x1000, mode, NULL_DEVICE)) == (AT_FDCWD, 0x1000, mode, NULL_DEVICE)
    assert syscall_arguments(request(259, X86_64, 5, 0x2000, mode, NULL_DEVICE)) == (5, 0x2000, mode, NULL_DEVICE)
    assert syscall_arguments(request(297, I386, 0xFFFFFF9C, 0x2000, mode, NULL_DEVICE))[0] == AT_FDCWD


def test_unknown_syscall_or_arch_has_no_arguments():
    assert syscall_arguments(request(2, X86_64)) is None
    assert syscall_arguments(request(133, 0x12345678)) is None


def test_decode_splits_by_announced_sizes():
    notification = request(259, X86_64, AT_FDCWD & 0xFFFFFFFF, 0x2000)
    header, decoded, response = decode_request(message(notification))
    assert header[1:3] == (100, 101)
    assert decoded == notification
    assert len(response) == RESPONSE.size


def test_short_message_is_rejected():
    with pytest.raises((ValueError, struct.error)):
        decode_request(HEADER.pack(0, 1, 2, REQUEST.size, RESPONSE.size, 64, 0))


def test_wrong_cookie_gets_permission_error():
    notification = request(259, X86_64, 0, 0x2000, stat.S_IFCHR | 0o666, NULL_DEVICE, request_id=99)
    reply = handle_request(message(notification, cookie=b"forged"), [10, 11], b"secret")
    response_id, value, error, flags = reply_error(reply)
    assert (response_id, value, error, flags) == (99, 0, -errno.EPERM, 0)
    assert HEADER.unpack_from(reply, 0)[0] == 0
    assert len(reply) == HEADER.size + REQUEST.size + RESPONSE.size


def test_disallowed_device_gets_permission_error():
    notification = request(259, X86_64, 0, 0x2000, stat.S_IFCHR | 0o666, os.makedev(1, 1), request_id=5)
    assert reply_error(handle_request(message(notification), [10, 11], b"secret"))[2] == -errno.EPERM


def test_read_path_stops_at_nul(tmp_path):
    memory = tmp_path / "memory"
    memory.write_bytes(b"\xff" * 5000 + b"/dev/null\0garbage")
    fd = os.open(memory, os.O_RDONLY)
    try:
        assert read_path(fd, 5000) == b"/dev/null"
    finally:
        os.close(fd)


def test_read_path_rejects_unterminated_path(tmp_path):
    memory = tmp_path / "memory"
    memory.write_bytes(b"a" * 9000)
    fd = os.open(memory, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as excinfo:
            read_path(fd, 0)
    finally:
        os.close(fd)
    assert excinfo.value.errno == errno.ENAMETOOLONG


def settings(unprivileged=True, **features):
    return SimpleNamespace(unprivileged=unprivileged, features=features, vmid=101)


def test_mknod_rules_join_the_profile(tmp_path):
    base = tmp_path / "common.seccomp"
    base.write_text("2\ndenylist\n[all]\nkexec_load errno 1")
    profile = seccomp_profile(base, keyctl=True, mknod=True)
    assert profile.endswith("kexec_load errno 1\n" + SECCOMP_RULES)
    assert "keyctl" not in profile
    assert seccomp_profile(base).endswith("keyctl errno 38\n")


def test_proxy_only_for_unprivileged_mknod():
    assert wants_mknod_proxy(settings(mknod=True))
    assert not wants_mknod_proxy(settings(unprivileged=False, mknod=True))
    assert not wants_mknod_proxy(settings())
    assert needs_seccomp_profile(settings(keyctl=True, mknod=True))
    assert not needs_seccomp_profile(settings(keyctl=True))


def test_log_is_rate_limited(caplog, monkeypatch):
    from pct.runtime import mknodproxy

    clock = [1000.0]
    monkeypatch.setattr(mknodproxy.time, "monotonic", lambda: clock[0])
    limited = mknodproxy._RateLimitedLog()
    with caplog.at_level("INFO", logger="pct.runtime.mknodproxy"):
        for number in range(mknodproxy.LOG_LINES_PER_WINDOW + 5):
            limited(20, "line %d", number)
        clock[0] += mknodproxy.LOG_WINDOW_SECONDS
        limited(20, "after the window")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == mknodproxy.LOG_LINES_PER_WINDOW + 2
    assert messages[-2] == "5 further messages suppressed"
    assert messages[-1] == "after the window"
