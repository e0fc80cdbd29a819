"""pct restore and pvesm extractconfig: round trips, id shifting, --force, and archives made with plain tar."""

import os
import subprocess

from backup_helpers import archives, assert_one_line_error
from conftest import pct_command

STAT_SCRIPT = ("cd / && find . -xdev \\( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run "
               "-o -name lost+found \\) -prune -o -print | sort | while read f; do "
               "stat -c '%n %u %g %a %h %F' \"$f\"; [ -f \"$f\" ] && [ ! -L \"$f\" ] && md5sum \"$f\"; done; true")


def tree_listing(host, vmid, directory="/"):
    script = STAT_SCRIPT.replace("cd /", f"cd {directory}")
    return host.pct("exec", vmid, "--", "sh", "-c", script).stdout


def back_up(host, vmid, *extra):
    host.pct(vmid, "--mode", "stop", "--compress", "zstd", *extra, tool="vzdump")
    return archives(host, vmid)[-1]


def populate(host, vmid):
    host.pct("exec", vmid, "--", "sh", "-c",
             "mkdir -p /srv/a && echo one > /srv/a/file && chown 1000:2000 /srv/a/file && chmod 640 /srv/a/file; "
             "ln /srv/a/file /srv/a/hard; ln -s /srv/a/file /srv/abs-link; ln -s a/file /srv/rel-link; "
             "chmod 4755 /srv/a; echo data > /data/f; chown 33:33 /data/f")


def test_unprivileged_round_trip(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data,backup=1", "--hostname", "orig")
    host.pct("start", vmid)
    populate(host, vmid)
    expected_root, expected_data = tree_listing(host, vmid), tree_listing(host, vmid, "/data")
    assert "./srv/a/file 1000 2000 640 2 regular file" in expected_root
    assert "./srv/abs-link 0 0 777 1 symbolic link" in expected_root
    assert "./f 33 33 644 1 regular file" in expected_data
    archive = back_up(host, vmid)

    restored = host.new_vmid()
    host.pct("restore", restored, str(archive), "--storage", "local")

    text = host.conf_text(restored)
    assert f"rootfs: local:{restored}/vm-{restored}-disk-0.raw,size=4G" in text
    assert f"mp0: local:{restored}/vm-{restored}-disk-1.raw,mp=/data,backup=1,size=1G" in text
    assert "hostname: orig" in text
    assert "lock:" not in text
    host.pct("start", restored)
    assert tree_listing(host, restored) == expected_root
    assert tree_listing(host, restored, "/data") == expected_data
    host_view = host.root / "var/lib/lxc" / str(restored) / "rootfs/srv/a/file"
    assert (os.stat(host_view).st_uid, os.stat(host_view).st_gid) == (101000, 102000)


def test_privileged_archive_into_unprivileged(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--unprivileged", "0")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo x > /owned && chown 1000:1000 /owned")
    archive = back_up(host, vmid)
    assert "0/0" in subprocess.run(["tar", "-tvf", str(archive), "--numeric-owner", "./bin/busybox"],
                                   capture_output=True, text=True).stdout

    restored = host.new_vmid()
    host.pct("restore", restored, str(archive), "--unprivileged", "1")

    assert "unprivileged: 1" in host.conf_text(restored)
    host.pct("start", restored)
    assert host.pct("exec", restored, "--", "stat", "-c", "%u:%g", "/owned").stdout.strip() == "1000:1000"
    on_host = os.stat(host.root / "var/lib/lxc" / str(restored) / "rootfs/owned")
    assert (on_host.st_uid, on_host.st_gid) == (101000, 101000)
    assert os.stat(host.root / "var/lib/lxc" / str(restored) / "rootfs/bin/busybox").st_uid == 100000


def test_extractconfig_by_volume_id(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--memory", "256")
    expected = host.conf_text(vmid)
    archive = back_up(host, vmid)

    result = host.pct("extractconfig", f"local:backup/{archive.name}", tool="pvesm")

    assert result.stdout == expected
    missing = host.pct("extractconfig", "local:backup/vzdump-lxc-1-2020_01_01-00_00_00.tar", check=False,
                       tool="pvesm")
    assert_one_line_error(missing, "does not exist")


def test_archive_named_relative_to_working_directory(host, busybox_template):
    source = host.new_vmid()
    host.pct("create", source, str(busybox_template), "--hostname", "relative")
    archive = back_up(host, source)
    target = host.new_vmid()

    config = host.pct("extractconfig", archive.name, tool="pvesm", cwd=archive.parent).stdout
    host.pct("restore", target, archive.name, cwd=archive.parent)
    missing = host.pct("restore", host.new_vmid(), "missing.tar.zst", cwd=archive.parent, check=False)

    assert "hostname: relative" in config
    assert "hostname: relative" in host.conf_text(target)
    assert_one_line_error(missing, "backup archive 'missing.tar.zst' does not exist")


def test_restore_from_standard_input(host, busybox_template):
    source = host.new_vmid()
    host.pct("create", source, str(busybox_template), "--hostname", "piped")
    stream = host.root / "stream.tar.zst"
    with open(stream, "wb") as output:
        subprocess.run([pct_command("vzdump"), str(source), "--stdout", "--compress", "zstd"], env=host.env,
                       stdout=output, check=True)
    target, empty = host.new_vmid(), host.new_vmid()

    with open(stream, "rb") as archive:
        subprocess.run([pct_command("pct"), "restore", str(target), "-"], env=host.env, stdin=archive,
                       capture_output=True, check=True)
    with open(os.devnull, "rb") as nothing:
        rejected = subprocess.run([pct_command("pct"), "restore", str(empty), "-"], env=host.env, stdin=nothing,
                                 capture_output=True, text=True)

    assert "hostname: piped" in host.conf_text(target)
    assert_one_line_error(rejected, "'stdin' is not a tar archive")
    assert not host.conf_path(empty).exists()
    assert list((host.root / "var/tmp").iterdir()) == []


def test_existing_id_needs_force_and_stopped(host, busybox_template):
    source = host.new_vmid()
    host.pct("create", source, str(busybox_template), "--hostname", "from-backup")
    archive = back_up(host, source)
    target = host.new_vmid()
    host.pct("create", target, str(busybox_template), "--hostname", "old")
    old_text, old_images = host.conf_text(target), host.images()

    refused = host.pct("restore", target, str(archive), check=False)
    assert_one_line_error(refused, f"CT {target} already exists; use --force")
    assert host.conf_text(target) == old_text
    assert host.images() == old_images

    host.pct("start", target)
    running = host.pct("restore", target, str(archive), "--force", check=False)
    assert_one_line_error(running, f"CT {target} is running")
    assert host.conf_text(target) == old_text
    assert host.images() == old_images
    host.pct("stop", target)

    host.pct("restore", target, str(archive), "--force")
    text = host.conf_text(target)
    assert "hostname: from-backup" in text
    assert f"local:{target}/vm-{target}-disk-1.raw" in text
    assert f"{target}/vm-{target}-disk-0.raw" not in host.images()


def test_failed_force_restore_keeps_old_container(host, busybox_template):
    source = host.new_vmid()
    host.pct("create", source, str(busybox_template))
    archive = back_up(host, source)
    truncated = host.root / "truncated.tar.zst"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    target = host.new_vmid()
    host.pct("create", target, str(busybox_template), "--hostname", "old")
    old_text, old_images = host.conf_text(target), host.images()

    result = host.pct("restore", target, str(truncated), "--force", check=False)

    assert_one_line_error(result, "unable to restore archive 'truncated.tar.zst'")
    assert host.conf_text(target) == old_text
    assert host.images() == old_images
    host.pct("start", target)
    assert host.pct("exec", target, "--", "hostname").stdout.strip() == "old"


def test_advanced_mode_uses_only_given_volumes(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data,backup=1",
             "--mp1", "local:1,mp=/other")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo d > /data/d")
    archive = back_up(host, vmid)

    restored = host.new_vmid()
    host.pct("restore", restored, str(archive), "--rootfs", "local:2", "--mp0", "local:0,mp=/data",
             "--memory", "128")

    text = host.conf_text(restored)
    assert f"rootfs: local:{restored}/vm-{restored}-disk-0.raw,size=2G" in text
    assert f"mp0: local:{restored}/subvol-{restored}-disk-1,mp=/data" in text
    assert "mp1:" not in text
    assert "memory: 128" in text
    data = host.root / "var/lib/vz/images" / str(restored) / f"subvol-{restored}-disk-1/d"
    assert data.read_text() == "d\n"
    assert os.stat(data).st_uid == 100000


def test_mount_point_without_rootfs_rejected(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    archive = back_up(host, vmid)
    restored = host.new_vmid()

    result = host.pct("restore", restored, str(archive), "--mp0", "local:0,mp=/data", check=False)

    assert_one_line_error(result, "mp0: mount points can only be given together with --rootfs")
    assert not host.conf_path(restored).exists()


def test_xattrs_and_acls_survive_unprivileged(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:0")
    root = host.root / "var/lib/vz/images" / str(vmid) / f"subvol-{vmid}-disk-0"
    marked = root / "etc/marked"
    marked.write_text("x\n")
    os.chown(marked, 101000, 101000)
    os.setxattr(marked, "user.purpose", b"backup-test")
    subprocess.run(["setfacl", "-m", "u:101002:r", str(marked)], check=True)
    archive = back_up(host, vmid)

    restored = host.new_vmid()
    host.pct("restore", restored, str(archive), "--rootfs", "local:0")

    copy = host.root / "var/lib/vz/images" / str(restored) / f"subvol-{restored}-disk-0/etc/marked"
    assert os.getxattr(copy, "user.purpose") == b"backup-test"
    acl = subprocess.run(["getfacl", "-n", "-p", str(copy)], capture_output=True, text=True, check=True).stdout
    assert "user:101002:r--" in acl
    assert os.stat(copy).st_uid == 101000


def test_restore_unique_and_start(host, busybox_template, bridge):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--net0", f"name=eth0,bridge={bridge.name},ip=dhcp")
    archive = back_up(host, vmid)
    original_mac = host.conf_text(vmid).split("hwaddr=", 1)[1][:17]

    same, unique = host.new_vmid(), host.new_vmid()
    host.pct("restore", same, str(archive))
    host.pct("restore", unique, str(archive), "--unique", "--start", "1")

    assert f"hwaddr={original_mac}" in host.conf_text(same)
    assert f"hwaddr={original_mac}" not in host.conf_text(unique)
    assert "hwaddr=" in host.conf_text(unique)
    assert "startup:" not in host.conf_text(unique)
    assert host.pct("status", same).stdout.strip() == "status: stopped"
    assert host.pct("status", unique).stdout.strip() == "status: running"
