"""Restore of archives built by hand: Proxmox VE's layout made with plain tar, and hostile archives."""

import os
import stat
import subprocess
import tarfile

import pytest

from backup_helpers import (assert_one_line_error, build_archive, device_entry, dir_entry, file_entry,
                            symlink_entry)

PRIVILEGED_CONFIG = "arch: amd64\nhostname: handmade\nmemory: 256\nostype: debian\n" \
                    "rootfs: local-lvm:vm-100-disk-0,size=1G\nmp0: /srv/host-only,mp=/bind\n"
UNPRIVILEGED_CONFIG = PRIVILEGED_CONFIG + "unprivileged: 1\n"


def known_tree(base):
    """Lay out a tree with every file kind a container backup carries."""
    tree = base / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("handmade\n")
    (tree / "home/user").mkdir(parents=True)
    (tree / "home/user/notes").write_text("owned by 1000\n")
    os.chown(tree / "home/user/notes", 1000, 1001)
    os.chmod(tree / "home/user/notes", 0o600)
    os.link(tree / "home/user/notes", tree / "home/user/hardlink")
    os.symlink("/etc/hostname", tree / "home/user/abs")
    os.symlink("../../etc/hostname", tree / "home/user/rel")
    os.setxattr(tree / "etc/hostname", "user.origin", b"plain-tar")
    with open(tree / "sparse.img", "wb") as sparse:
        sparse.truncate(8 << 20)
        sparse.write(b"start")
    (tree / "dev").mkdir()
    os.mknod(tree / "dev/null-copy", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(tree / "nodes-outside-dev", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    return tree


def proxmox_style_archive(base, tree, config, compress_flag, suffix):
    """Write an archive the way Proxmox VE's vzdump lays it out, with plain GNU tar."""
    staging = base / "staging/etc/vzdump"
    staging.mkdir(parents=True)
    (staging / "pct.conf").write_text(config)
    archive = base / f"vzdump-lxc-100-2024_01_02-03_04_05.tar{suffix}"
    command = ["tar", "-c", "-f", str(archive), *compress_flag, "--numeric-owner", "--xattrs",
               "--xattrs-include=user.*", "--acls", "--sparse", "--format=posix",
               "-C", str(base / "staging"), "./etc/vzdump/pct.conf", "-C", str(tree), "."]
    subprocess.run(command, check=True)
    return archive


def restored_root(host, vmid):
    return host.root / "var/lib/vz/images" / str(vmid) / f"subvol-{vmid}-disk-0"


@pytest.mark.parametrize("compress_flag,suffix", [(["--gzip"], ".gz"), (["--zstd"], ".zst"), (["--lzop"], ".lzo"),
                                                   ([], "")])
def test_plain_tar_archive_privileged(host, compress_flag, suffix):
    tree = known_tree(host.root)
    archive = proxmox_style_archive(host.root, tree, PRIVILEGED_CONFIG, compress_flag, suffix)
    vmid = host.new_vmid()

    host.pct("restore", vmid, str(archive), "--rootfs", "local:0")

    text = host.conf_text(vmid)
    assert "hostname: handmade" in text
    assert f"rootfs: local:{vmid}/subvol-{vmid}-disk-0" in text
    assert "mp0:" not in text
    root = restored_root(host, vmid)
    notes = os.lstat(root / "home/user/notes")
    assert (notes.st_uid, notes.st_gid, stat.S_IMODE(notes.st_mode), notes.st_nlink) == (1000, 1001, 0o600, 2)
    assert os.path.samefile(root / "home/user/notes", root / "home/user/hardlink")
    assert os.readlink(root / "home/user/abs") == "/etc/hostname"
    assert os.readlink(root / "home/user/rel") == "../../etc/hostname"
    assert os.getxattr(root / "etc/hostname", "user.origin") == b"plain-tar"
    assert (root / "etc/hostname").read_bytes() == (tree / "etc/hostname").read_bytes()
    assert (root / "sparse.img").read_bytes() == (tree / "sparse.img").read_bytes()
    assert os.stat(root / "sparse.img").st_blocks * 512 < 1 << 20
    device = os.lstat(root / "dev/null-copy")
    assert stat.S_ISCHR(device.st_mode)
    assert device.st_rdev == os.makedev(1, 3)
    assert not (root / "etc/vzdump/pct.conf").exists()


def test_simple_mode_bind_as_config(host):
    tree = known_tree(host.root)
    archive = proxmox_style_archive(host.root, tree, PRIVILEGED_CONFIG, ["--gzip"], ".gz")
    vmid = host.new_vmid()

    host.pct("restore", vmid, str(archive))

    text = host.conf_text(vmid)
    assert f"rootfs: local:{vmid}/vm-{vmid}-disk-0.raw,size=1G" in text
    assert "mp0: /srv/host-only,mp=/bind" in text
    assert not os.path.exists("/srv/host-only")


def test_unprivileged_archive_is_shifted(host):
    tree = host.root / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/owned").write_text("x\n")
    os.chown(tree / "etc/owned", 33, 33)
    archive = proxmox_style_archive(host.root, tree, UNPRIVILEGED_CONFIG, ["--zstd"], ".zst")
    vmid = host.new_vmid()

    host.pct("restore", vmid, str(archive), "--rootfs", "local:0")

    owned = os.lstat(restored_root(host, vmid) / "etc/owned")
    assert (owned.st_uid, owned.st_gid) == (100033, 100033)
    assert os.lstat(restored_root(host, vmid)).st_uid == 100000


# -- hostile and broken archives -----------------------------------------------------

def assert_nothing_created(host, vmid):
    assert not host.conf_path(vmid).exists()
    assert not any(name.startswith(f"{vmid}/") for name in host.images())
    assert not (host.root / "var/lib/lxc" / str(vmid)).exists()


def test_member_with_dotdot_rejected(host):
    archive = build_archive(host.root / "dotdot.tar.gz", PRIVILEGED_CONFIG,
                            [dir_entry("./etc"), file_entry("./etc/../../escaped", b"evil")])
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), "--rootfs", "local:0", check=False)

    assert_one_line_error(result, "contains '..'")
    assert_nothing_created(host, vmid)
    assert not (host.root / "var/lib/vz/images/escaped").exists()


def test_write_through_absolute_symlink_rejected(host):
    outside = host.root / "outside"
    outside.mkdir()
    archive = build_archive(host.root / "symlink.tar.gz", PRIVILEGED_CONFIG,
                            [symlink_entry("./escape", str(outside)), file_entry("./escape/planted", b"evil")])
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), "--rootfs", "local:0", check=False)

    assert_one_line_error(result, "unable to restore archive 'symlink.tar.gz'")
    assert list(outside.iterdir()) == []
    assert_nothing_created(host, vmid)


def test_device_node_in_unprivileged_restore(host):
    archive = build_archive(host.root / "device.tar.gz", UNPRIVILEGED_CONFIG,
                            [dir_entry("./etc"), device_entry("./etc/kmem", 1, 2)])
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), "--rootfs", "local:0", check=False)

    assert_one_line_error(result, "device node './etc/kmem' cannot be created in an unprivileged container")
    assert_nothing_created(host, vmid)

    ignored = host.pct("restore", vmid, str(archive), "--rootfs", "local:0", "--ignore-unpack-errors")
    assert f"CT {vmid}: skipped while unpacking: " in ignored.stderr
    assert "./etc/kmem" in ignored.stderr
    assert not (restored_root(host, vmid) / "etc/kmem").exists()
    assert host.conf_path(vmid).exists()


def test_archive_without_config(host):
    archive = build_archive(host.root / "noconf.tar.gz", None, [file_entry("./etc/hostname", b"x\n")])
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), check=False)

    assert_one_line_error(result, "contains no './etc/vzdump/pct.conf'; it is not a container backup")
    assert_nothing_created(host, vmid)


def test_corrupt_compressed_stream(host):
    archive = build_archive(host.root / "corrupt.tar.gz", PRIVILEGED_CONFIG, [file_entry("./a", b"a" * 100000)])
    data = bytearray(archive.read_bytes())
    data[20:60] = b"\xff" * 40
    archive.write_bytes(bytes(data))
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), check=False)

    assert_one_line_error(result, "archive 'corrupt.tar.gz'")
    assert_nothing_created(host, vmid)


def test_zstd_checksum_error_detected(host):
    # Random data is stored in raw zstd blocks, so a changed byte there is
    # noticed only by the frame's checksum at the end. The zeros after the
    # archive's end marker, as tar's 1 MiB records leave them, make tar stop
    # reading before the decompressor gets to that checksum.
    plain = build_archive(host.root / "sum.tar", PRIVILEGED_CONFIG, [file_entry("./random", os.urandom(300000))],
                          mode="w")
    with open(plain, "ab") as archive:
        archive.write(bytes(2 << 20))
    subprocess.run(["zstd", "-q", "--rm", str(plain)], check=True)
    archive = host.root / "sum.tar.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), "--rootfs", "local:0", check=False)

    assert_one_line_error(result, "unable to restore archive 'sum.tar.zst': the zstd stream is damaged: ")
    assert "checksum" in result.stderr
    assert_nothing_created(host, vmid)


def test_not_an_archive(host):
    archive = host.root / "notes.txt"
    archive.write_text("just text\n" * 100)
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), check=False)

    assert_one_line_error(result, "is not a tar archive")
    assert_nothing_created(host, vmid)


def test_unknown_storage_rejected(host):
    archive = build_archive(host.root / "ok.tar.gz", PRIVILEGED_CONFIG, [file_entry("./a", b"a")])
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), "--storage", "nosuch", check=False)

    assert_one_line_error(result, "storage 'nosuch' does not exist")
    assert_nothing_created(host, vmid)


def test_hard_link_outside_root_rejected(host):
    target = host.root / "secret"
    target.write_text("host secret\n")
    link = tarfile.TarInfo("./stolen")
    link.type = tarfile.LNKTYPE
    link.linkname = str(target)
    archive = build_archive(host.root / "hardlink.tar.gz", PRIVILEGED_CONFIG,
                            [(link, None), file_entry("./after", b"x")])
    vmid = host.new_vmid()

    result = host.pct("restore", vmid, str(archive), "--rootfs", "local:0", check=False)

    assert_one_line_error(result, "unable to restore archive 'hardlink.tar.gz'")
    assert target.read_text() == "host secret\n"
    assert os.stat(target).st_nlink == 1
    assert_nothing_created(host, vmid)


def test_absolute_member_stays_inside(host):
    archive = build_archive(host.root / "absolute.tar.gz", PRIVILEGED_CONFIG,
                            [file_entry(str(host.root / "planted"), b"evil")])
    vmid = host.new_vmid()

    host.pct("restore", vmid, str(archive), "--rootfs", "local:0")

    assert not (host.root / "planted").exists()
    inside = restored_root(host, vmid) / str(host.root).lstrip("/") / "planted"
    assert inside.read_bytes() == b"evil"
