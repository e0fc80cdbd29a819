"""GuestRoot: file access that stays inside the rootfs, hostile symlinks included."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from pct.errors import GuestError
from pct.guest import GuestConfig, GuestNet, GuestRoot, rootfs, setup_guest


def make_guest(tmp_path: Path) -> Path:
    """Create a minimal Debian rootfs with the directories guest setup writes to."""
    guest = tmp_path / "guest"
    for directory in ("etc/network", "etc/ssh", "root", "tmp"):
        (guest / directory).mkdir(parents=True)
    (guest / "etc/debian_version").write_text("12.5\n")
    (guest / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    return guest


def make_host_secrets(tmp_path: Path) -> Path:
    """Create files and a directory outside the guest that a hostile guest aims at."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "host-secret").write_text("host secret\n")
    (host / "etc/interfaces").write_text("host network config\n")
    (host / "ssh").mkdir()
    (host / "ssh/authorized_keys").write_text("host key\n")
    return host


def tree_state(tree: Path) -> dict[str, tuple]:
    state = {}
    for path in sorted(tree.rglob("*")):
        info = path.lstat()
        content = None
        if stat.S_ISREG(info.st_mode):
            content = path.read_bytes()
        elif stat.S_ISLNK(info.st_mode):
            content = os.readlink(path)
        state[str(path)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, content)
    return state


CONFIG = GuestConfig(
    vmid=100,
    hostname="ct",
    nets=(GuestNet("eth0", ip="192.0.2.5/24", gw="192.0.2.1"),),
    nameserver="192.0.2.53",
    searchdomain="example.com",
)


@pytest.fixture(params=["openat2", "fallback"])
def resolver(request, monkeypatch):
    """Run a test with openat2 and again with the fallback walk for kernels that lack it."""
    if request.param == "fallback":

        def no_openat2(*args, **kwargs):
            raise OSError(errno.ENOSYS, "openat2 not available")

        monkeypatch.setattr(rootfs, "_openat2", no_openat2)
    return request.param


# -- ordinary use -------------------------------------------------------------


def test_write_text_creates_file_with_mode(tmp_path, resolver):
    guest = make_guest(tmp_path)
    root = GuestRoot(guest)

    assert root.write_text("/etc/motd", "hello\n", mode=0o640) is True

    assert (guest / "etc/motd").read_text() == "hello\n"
    assert stat.S_IMODE((guest / "etc/motd").stat().st_mode) == 0o640
    assert [p.name for p in (guest / "etc").iterdir() if p.name.startswith(".motd")] == []


def test_write_text_keeps_existing_mode_and_owner(tmp_path):
    guest = make_guest(tmp_path)
    target = guest / "etc/shadow"
    os.chown(target, 0, 42)
    os.chmod(target, 0o640)

    GuestRoot(guest, uid_base=100000, gid_base=100000).write_text("/etc/shadow", "root:x:1::::::\n")

    info = target.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, info.st_gid) == (0, 42)


def test_write_text_same_content_is_no_change(tmp_path):
    guest = make_guest(tmp_path)
    root = GuestRoot(guest)
    root.write_text("/etc/motd", "hello\n")
    before = os.stat(guest / "etc/motd").st_ino

    assert root.write_text("/etc/motd", "hello\n") is False
    assert os.stat(guest / "etc/motd").st_ino == before


def test_read_text_missing_is_none(tmp_path, resolver):
    assert GuestRoot(make_guest(tmp_path)).read_text("/etc/nothing") is None


def test_read_text_rejects_fifo(tmp_path):
    guest = make_guest(tmp_path)
    os.mkfifo(guest / "etc/hosts")

    with pytest.raises(GuestError, match="unable to read /etc/hosts: not a regular file"):
        GuestRoot(guest).read_text("/etc/hosts")


def test_read_text_follows_symlink_inside_root(tmp_path):
    guest = make_guest(tmp_path)
    (guest / "run").mkdir()
    (guest / "run/real.conf").write_text("inside\n")
    (guest / "etc/resolv.conf").symlink_to("../run/real.conf")

    assert GuestRoot(guest).read_text("/etc/resolv.conf") == "inside\n"


def test_makedirs_unlink_listdir_symlink(tmp_path, resolver):
    guest = make_guest(tmp_path)
    root = GuestRoot(guest)

    root.makedirs("/var/lib/thing", mode=0o700)
    root.symlink("/var/lib/thing", "/etc/thing-link")

    assert stat.S_IMODE((guest / "var/lib/thing").stat().st_mode) == 0o700
    assert root.is_dir("/var/lib/thing")
    assert root.readlink("/etc/thing-link") == "/var/lib/thing"
    assert "thing-link" in root.listdir("/etc")
    assert root.listdir("/missing") == []
    assert root.unlink("/etc/thing-link") is True
    assert root.unlink("/etc/thing-link") is False
    assert root.exists("/var/lib/thing")


def test_ignored_checks_pve_ignore_file(tmp_path):
    guest = make_guest(tmp_path)
    (guest / "etc/.pve-ignore.hosts").touch()
    root = GuestRoot(guest)

    assert root.ignored("/etc/hosts") is True
    assert root.ignored("/etc/hostname") is False


def test_relative_path_rejected(tmp_path):
    guest = make_guest(tmp_path)

    with pytest.raises(GuestError, match="invalid guest path 'etc/hosts': expected an absolute path"):
        GuestRoot(guest, vmid=100).write_text("etc/hosts", "x")
    assert not (guest / "etc/hosts").exists()


# -- unprivileged ownership ---------------------------------------------------


def test_unprivileged_files_get_mapped_owner(tmp_path):
    guest = make_guest(tmp_path)
    root = GuestRoot(guest, uid_base=100000, gid_base=100000, vmid=100)

    setup_guest(root, CONFIG, phase="create", password="pw", ssh_public_keys="ssh-ed25519 AAAAC3 test", host_resolv_conf=tmp_path / "none")

    for created in ("etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/network/interfaces", "root/.ssh", "root/.ssh/authorized_keys", "etc/ssh/ssh_host_ed25519_key"):
        info = (guest / created).lstat()
        assert (info.st_uid, info.st_gid) == (100000, 100000), created


def test_unprivileged_symlink_and_dir_owner(tmp_path):
    guest = make_guest(tmp_path)
    root = GuestRoot(guest, uid_base=100000, gid_base=100000)

    root.makedirs("/var/new")
    root.symlink("/var/new", "/etc/new-link")

    assert (guest / "var/new").stat().st_uid == 100000
    assert (guest / "etc/new-link").lstat().st_uid == 100000


# -- hostile symlinks ---------------------------------------------------------


def run_setup_safely(root: GuestRoot, tmp_path: Path) -> GuestError | None:
    """Run create-phase setup and return its GuestError, if any."""
    try:
        setup_guest(
            root, CONFIG, phase="create", password="pw", ssh_public_keys="ssh-ed25519 AAAAC3 test",
            host_resolv_conf=tmp_path / "none",
        )
    except GuestError as exc:
        return exc
    return None


@pytest.mark.parametrize(
    "link, target",
    [
        ("etc/hostname", "{host}/host-secret"),
        ("etc/hostname", "../../../../../../../../..{host}/host-secret"),
        ("etc/hosts", "{host}/host-secret"),
        ("etc/hosts", "../../../../../../../../..{host}/host-secret"),
        ("etc/resolv.conf", "{host}/host-secret"),
        ("etc/shadow", "{host}/host-secret"),
        ("etc/network", "{host}/etc"),
        ("etc/network", "../../../../../../../../..{host}/etc"),
        ("root/.ssh", "{host}/ssh"),
        ("root/.ssh", "../../../../../../../../..{host}/ssh"),
        ("etc/ssh", "{host}/ssh"),
    ],
)
def test_hostile_symlink_never_writes_outside(tmp_path, resolver, link, target):
    guest = make_guest(tmp_path)
    host = make_host_secrets(tmp_path)
    planted = guest / link
    if planted.is_dir():
        planted.rmdir()
    elif planted.exists():
        planted.unlink()
    planted_target = target.format(host=host)
    planted.symlink_to(planted_target)
    host_before = tree_state(host)

    error = run_setup_safely(GuestRoot(guest, vmid=100), tmp_path)

    assert tree_state(host) == host_before
    if error is not None:
        assert "\n" not in str(error)
        assert error.vmid == 100
    else:
        # Setup either replaced the planted link with a file of its own or
        # left it alone; the unchanged host tree shows nothing went through it.
        assert not (guest / link).is_symlink() or os.readlink(guest / link) == planted_target


def test_hostile_file_symlink_replaced_inside(tmp_path):
    guest = make_guest(tmp_path)
    host = make_host_secrets(tmp_path)
    (guest / "etc/hostname").symlink_to(f"{host}/host-secret")

    setup_guest(GuestRoot(guest, vmid=100), CONFIG, phase="start", host_resolv_conf=tmp_path / "none")

    assert (host / "host-secret").read_text() == "host secret\n"
    assert not (guest / "etc/hostname").is_symlink()
    assert (guest / "etc/hostname").read_text() == "ct\n"


def test_hostile_symlinked_directory_write_lands_inside(tmp_path):
    guest = make_guest(tmp_path)
    host = make_host_secrets(tmp_path)
    (guest / "etc/network").rmdir()
    (guest / "etc/network").symlink_to(f"{host}/etc")
    # The same absolute path inside the guest exists, so the link resolves there.
    (guest / str(host).lstrip("/") / "etc").mkdir(parents=True)

    setup_guest(GuestRoot(guest, vmid=100), CONFIG, phase="start", host_resolv_conf=tmp_path / "none")

    assert (host / "etc/interfaces").read_text() == "host network config\n"
    inside = guest / str(host).lstrip("/") / "etc/interfaces"
    assert "iface eth0 inet static" in inside.read_text()


def test_fallback_rejects_symlinked_directory(tmp_path, monkeypatch):
    def no_openat2(*args, **kwargs):
        raise OSError(errno.ENOSYS, "openat2 not available")

    monkeypatch.setattr(rootfs, "_openat2", no_openat2)
    guest = make_guest(tmp_path)
    (guest / "etc/real").mkdir()
    (guest / "etc/link").symlink_to("real")

    with pytest.raises(GuestError, match="unable to write /etc/link/file: a symbolic link on the way was rejected"):
        GuestRoot(guest).write_text("/etc/link/file", "x")
    assert list((guest / "etc/real").iterdir()) == []


def test_openat2_is_used_on_this_kernel(tmp_path):
    guest = make_guest(tmp_path)
    fd = os.open(guest, os.O_PATH | os.O_DIRECTORY)
    try:
        inner = rootfs._openat2(fd, "etc/debian_version", os.O_PATH)
        os.close(inner)
    finally:
        os.close(fd)
