"""vzdump: archive name, content and order, logs, locks, retention and bad input."""

import os
import re
import subprocess
import tarfile
import time

import pytest

from backup_helpers import (ARCHIVE_PATTERN, archives, assert_one_line_error, dump_dir, members,
                            verbose_listing)
from conftest import _mounts_below, pct_command


def lxc_state(host, vmid):
    return host.pct("status", vmid).stdout.strip().removeprefix("status: ").upper()


def make_container(host, template, *extra):
    shared = host.root / "shared"
    shared.mkdir(exist_ok=True)
    (shared / "host-file").write_text("bind\n")
    vmid = host.new_vmid()
    host.pct("create", vmid, str(template), "--mp0", "local:1,mp=/data,backup=1", "--mp1", "local:0,mp=/skip",
             "--mp2", f"{shared},mp=/shared", *extra)
    return vmid


def test_stop_mode_archive_layout(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c",
             "echo data > /data/f; echo skip > /skip/g; echo root > /rootfile; chown 1000:1000 /rootfile; "
             "mkfifo /fifo; nc -lU /sock >/dev/null 2>&1 & sleep 0.3; echo scratch > /tmp/scratch")
    before = host.conf_text(vmid)

    result = host.pct("--storage", "local", "--mode", "stop", "--compress", "zstd", vmid, tool="vzdump")

    found = archives(host, vmid)
    assert len(found) == 1
    archive = found[0]
    assert re.fullmatch(ARCHIVE_PATTERN.format(vmid=vmid, suffix=r"\.zst"), archive.name)
    names = members(archive)
    assert names[0] == "./etc/vzdump/pct.conf"
    assert "./rootfile" in names
    assert "./data/f" in names
    assert "./fifo" in names
    assert not any(name.startswith("./skip/") and name != "./skip/" for name in names)
    assert not any(name.startswith("./shared/") and name != "./shared/" for name in names)
    assert "./sock" not in names
    assert "./tmp/scratch" not in names
    listing = verbose_listing(archive)
    assert listing["./rootfile"] == "-rw-r--r-- 1000/1000"
    assert listing["./data/f"].endswith(" 0/0")

    stored = subprocess.run(["tar", "-xOf", str(archive), "./etc/vzdump/pct.conf"], capture_output=True,
                            text=True, check=True).stdout
    assert stored == before
    log = archive.with_name(archive.name.replace(".tar.zst", ".log"))
    assert "Starting backup of CT" in log.read_text()
    assert lxc_state(host, vmid) == "RUNNING"
    assert "lock:" not in host.conf_text(vmid)
    assert "backup written to" in result.stderr


def test_stopped_container_stays_stopped(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.pct(vmid, "--dumpdir", str(host.root / "elsewhere"), "--mode", "stop", tool="vzdump")

    produced = sorted(os.listdir(host.root / "elsewhere"))
    assert len(produced) == 2
    assert produced[0].endswith(".log")
    assert re.fullmatch(ARCHIVE_PATTERN.format(vmid=vmid, suffix=""), produced[1])
    assert lxc_state(host, vmid) == "STOPPED"
    assert _mounts_below(host.root) == []


def test_gzip_and_exclude_path(host, busybox_template):
    vmid = make_container(host, busybox_template, "--unprivileged", "0")
    rootfs_files = {"/cache/big.bin": "x", "/keep/cache.txt": "y", "/data/cache.txt": "z"}
    host.pct("start", vmid)
    for path, text in rootfs_files.items():
        host.pct("exec", vmid, "--", "sh", "-c", f"mkdir -p $(dirname {path}); echo {text} > {path}")
    host.pct("stop", vmid)

    host.pct(vmid, "--mode", "stop", "--compress", "gzip", "--exclude-path", "/cache",
             "--exclude-path", "cache.txt", tool="vzdump")

    archive = archives(host, vmid)[0]
    assert archive.name.endswith(".tar.gz")
    names = members(archive)
    assert "./cache/big.bin" not in names
    assert "./keep/cache.txt" not in names
    assert "./data/cache.txt" not in names
    assert "./keep/" in names


def test_archive_keeps_mtime_not_atime(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--unprivileged", "0")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "echo x > /stamped")
    seconds = host.pct("exec", vmid, "--", "stat", "-c", "%Y", "/stamped").stdout.strip()
    host.pct("stop", vmid)

    host.pct(vmid, "--mode", "stop", tool="vzdump")

    with tarfile.open(archives(host, vmid)[0]) as archive:
        stamped = archive.getmember("./stamped")
        records = [member.pax_headers for member in archive.getmembers()]
    # The file was written with a nanosecond timestamp, which the archive
    # keeps; tar leaves out the fraction's trailing zeros.
    whole, _, fraction = stamped.pax_headers["mtime"].partition(".")
    assert whole == seconds
    assert 1 <= len(fraction) <= 9
    assert fraction.isdigit()
    assert not fraction.endswith("0")
    assert not any("atime" in headers for headers in records)
    assert not any("ctime" in headers for headers in records)


def test_stdout_and_notes(host, busybox_template):
    vmid = make_container(host, busybox_template, "--hostname", "notes-ct")
    output = host.root / "stream.tar"
    with open(output, "wb") as sink:
        result = subprocess.run([_tool(), str(vmid), "--mode", "stop", "--stdout"],
                                env=host.env, stdout=sink, stderr=subprocess.PIPE, text=False)
    assert result.returncode == 0, result.stderr
    assert members(output)[0] == "./etc/vzdump/pct.conf"
    assert archives(host, vmid) == []

    host.pct(vmid, "--mode", "stop", "--notes-template", "{{guestname}} ({{vmid}})", tool="vzdump")
    archive = archives(host, vmid)[0]
    notes = archive.with_name(archive.name + ".notes")
    assert notes.read_text() == f"notes-ct ({vmid})\n"


def _tool():
    from conftest import pct_command

    return pct_command("vzdump")


def test_prune_backups_after_backup(host, busybox_template):
    vmid = make_container(host, busybox_template)
    for _ in range(3):
        host.pct(vmid, "--mode", "stop", "--prune-backups", "keep-last=2", tool="vzdump")
        time.sleep(1.1)
    remaining = archives(host, vmid)
    assert len(remaining) == 2
    logs = [name for name in os.listdir(dump_dir(host)) if name.endswith(".log")]
    assert len(logs) == 2


def test_backup_of_locked_container_rejected(host, busybox_template):
    vmid = make_container(host, busybox_template)
    config = host.conf_path(vmid)
    config.write_text(config.read_text() + "lock: migrate\n")
    before = config.read_text()

    result = host.pct(vmid, "--mode", "stop", check=False, tool="vzdump")

    assert_one_line_error(result, f"CT {vmid} is locked (migrate)")
    assert config.read_text() == before
    assert not dump_dir(host).exists() or archives(host, vmid) == []


def test_second_backup_gets_own_log(host, busybox_template):
    # The first backup is paced, so the second starts while it holds the lock.
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    first = subprocess.Popen([pct_command("vzdump"), str(vmid), "--mode", "stop", "--bwlimit", "1024"],
                             env=host.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while "lock: backup" not in host.conf_text(vmid):
        assert first.poll() is None, first.stderr.read()
        time.sleep(0.02)

    rejected = host.pct(vmid, "--mode", "stop", check=False, tool="vzdump")
    assert first.wait(timeout=120) == 0
    again = host.pct(vmid, "--mode", "stop", tool="vzdump")

    assert_one_line_error(rejected, f"CT {vmid} is locked (backup)")
    logs = sorted(path for path in dump_dir(host).iterdir() if path.suffix == ".log")
    assert len(logs) == 3
    texts = [path.read_text() for path in logs]
    assert "Finished backup" in texts[0]
    assert "locked" not in texts[0]
    assert "is locked (backup)" in texts[1]
    assert "Finished backup" in texts[2]
    assert len(archives(host, vmid)) == 2
    assert again.returncode == 0


def test_snapshot_mode_rejected_on_dir_storage(host, busybox_template):
    vmid = make_container(host, busybox_template)
    before = host.conf_text(vmid)

    result = host.pct(vmid, "--mode", "snapshot", check=False, tool="vzdump")

    assert_one_line_error(result, f"volume 'local:{vmid}/vm-{vmid}-disk-0.raw' (rootfs)")
    assert "without snapshots" in result.stderr
    assert host.conf_text(vmid) == before
    assert archives(host, vmid) == []


def test_storage_without_backup_content_rejected(host, busybox_template):
    vmid = make_container(host, busybox_template)
    cfg = host.root / "etc/pve/storage.cfg"
    cfg.write_text("dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl,backup,rootdir,images\n\n"
                   "dir: images-only\n\tpath /srv/images\n\tcontent rootdir,images\n")

    result = host.pct(vmid, "--storage", "images-only", "--mode", "stop", check=False, tool="vzdump")

    assert_one_line_error(result, "storage 'images-only' does not allow backups")
    assert "lock:" not in host.conf_text(vmid)


@pytest.mark.parametrize("mode", ["stop", "suspend"])
def test_full_backup_storage(host, busybox_template, mode):
    vmid = make_container(host, busybox_template)
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=40 2>/dev/null")
    small = host.root / "small"
    small.mkdir()
    image = host.root / "small.img"
    subprocess.run(["truncate", "-s", "24M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(small)], check=True)
    try:
        cfg = host.root / "etc/pve/storage.cfg"
        cfg.write_text("dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl,backup,rootdir,images\n\n"
                       "dir: small\n\tpath /small\n\tcontent backup\n")

        result = host.pct(vmid, "--storage", "small", "--mode", mode, check=False, tool="vzdump")

        assert_one_line_error(result, "No space left on device")
        dump = small / "dump"
        left = sorted(os.listdir(dump))
        assert len(left) == 1
        assert left[0].endswith(".log")
        assert "failed" in (dump / left[0]).read_text()
        assert lxc_state(host, vmid) == "RUNNING"
        assert "lock:" not in host.conf_text(vmid)
    finally:
        host.cleanup()
        subprocess.run(["umount", str(small)], capture_output=True)


def test_killed_backup_leaves_no_archive(host, busybox_template):
    vmid = make_container(host, busybox_template, "--unprivileged", "0")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=20 2>/dev/null")
    process = subprocess.Popen([_tool(), str(vmid), "--mode", "stop", "--bwlimit", "1024"], env=host.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(name.endswith(".tmp") for name in _listing(dump_dir(host))):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "lock: backup" in host.conf_text(vmid)

    process.terminate()
    process.wait(timeout=120)

    assert process.returncode != 0
    assert "interrupted by signal SIGTERM" in process.stderr.read()
    left = _listing(dump_dir(host))
    assert len(left) == 1
    assert left[0].endswith(".log")
    assert "lock:" not in host.conf_text(vmid)
    assert lxc_state(host, vmid) == "RUNNING"


def _listing(directory):
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def test_pvesm_prune_backups_dry_run(host):
    dump = dump_dir(host)
    dump.mkdir(parents=True)
    stamps = ["2024_03_01-10_00_00", "2024_03_02-10_00_00", "2024_03_03-10_00_00"]
    for vmid in (100, 101):
        for stamp in stamps:
            (dump / f"vzdump-lxc-{vmid}-{stamp}.tar.zst").write_bytes(b"")
            (dump / f"vzdump-lxc-{vmid}-{stamp}.log").write_text("log\n")
    (dump / "vzdump-lxc-100-2024_03_01-10_00_00.tar.zst.protected").write_text("")
    before = sorted(os.listdir(dump))

    dry = host.pct("prune-backups", "local", "--vmid", "100", "--keep-last", "1", "--dry-run", tool="pvesm")

    lines = dry.stdout.splitlines()
    assert lines[1].split()[0] == "local:backup/vzdump-lxc-100-2024_03_03-10_00_00.tar.zst"
    assert lines[1].split()[-1] == "keep"
    assert lines[2].split()[-1] == "remove"
    assert lines[3].split()[-1] == "protected"
    assert len(lines) == 4
    assert sorted(os.listdir(dump)) == before

    host.pct("prune-backups", "local", "--vmid", "100", "--keep-last", "1", tool="pvesm")
    left = sorted(name for name in os.listdir(dump) if name.startswith("vzdump-lxc-100-"))
    assert "vzdump-lxc-100-2024_03_02-10_00_00.tar.zst" not in left
    assert "vzdump-lxc-100-2024_03_02-10_00_00.log" not in left
    assert "vzdump-lxc-100-2024_03_01-10_00_00.tar.zst" in left
    assert len([name for name in os.listdir(dump) if name.startswith("vzdump-lxc-101-")]) == 6


def test_prune_rules_from_storage_config(host):
    cfg = host.root / "etc/pve/storage.cfg"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("dir: local\n\tpath /var/lib/vz\n\tcontent vztmpl,backup,rootdir,images\n"
                   "\tprune-backups keep-daily=1\n")
    dump = dump_dir(host)
    dump.mkdir(parents=True)
    for stamp in ("2024_03_03-09_00_00", "2024_03_03-10_00_00"):
        (dump / f"vzdump-lxc-100-{stamp}.tar").write_bytes(b"")

    result = host.pct("prune-backups", "local", "--dry-run", "--output-format", "json", tool="pvesm")

    import json

    marks = {row["volid"].rsplit("-", 2)[-1]: row["mark"] for row in json.loads(result.stdout)}
    assert marks == {"10_00_00.tar": "keep", "09_00_00.tar": "remove"}


def test_invalid_prune_option_rejected_before_backup(host, busybox_template):
    vmid = make_container(host, busybox_template)

    result = host.pct(vmid, "--mode", "stop", "--prune-backups", "keep-often=1", check=False, tool="vzdump")

    assert_one_line_error(result, "unknown key 'keep-often'")
    assert archives(host, vmid) == []


def test_vzdump_conf_defaults_and_all(host, busybox_template):
    first = make_container(host, busybox_template)
    second = host.new_vmid()
    host.pct("create", second, str(busybox_template))
    skipped = host.new_vmid()
    host.pct("create", skipped, str(busybox_template))
    (host.root / "etc/vzdump.conf").write_text(
        "# site defaults\nmode: stop\ncompress: lzo\nexclude-path: /etc/hostname /srv\n"
        f"dumpdir: {host.root / 'nightly'}\n")

    host.pct("--all", "--exclude", str(skipped), tool="vzdump")

    produced = sorted(os.listdir(host.root / "nightly"))
    archives_made = [name for name in produced if name.endswith(".tar.lzo")]
    assert [name.split("-")[2] for name in archives_made] == [str(first), str(second)]
    names = members(host.root / "nightly" / archives_made[0])
    assert "./etc/hostname" not in names
    assert "./etc/vzdump/pct.conf" in names

    (host.root / "etc/vzdump.conf").write_text("compress: bzip9\n")
    result = host.pct(first, check=False, tool="vzdump")
    assert_one_line_error(result, "compress: value 'bzip9' does not have a value in the enumeration")


def test_lzo_round_trip_and_task_log(host, busybox_template):
    vmid = make_container(host, busybox_template, "--hostname", "lzo-ct")
    host.pct(vmid, "--mode", "stop", "--compress", "lzo", tool="vzdump")
    archive = archives(host, vmid)[0]
    assert archive.name.endswith(".tar.lzo")
    index = (host.root / "var/log/pve/tasks/index").read_text()
    assert f":vzdump:{vmid}:root@pam:" in index
    assert any(line.endswith(" OK") for line in index.splitlines() if f":vzdump:{vmid}:" in line)

    restored = host.new_vmid()
    host.pct("restore", restored, f"local:backup/{archive.name}")
    host.pct("start", restored)
    assert host.pct("exec", restored, "--", "cat", "/etc/hostname").stdout.strip() == "lzo-ct"


def test_remove_zero_keeps_old_backups(host, busybox_template):
    vmid = make_container(host, busybox_template)
    host.pct(vmid, "--mode", "stop", tool="vzdump")
    time.sleep(1.1)
    host.pct(vmid, "--mode", "stop", "--prune-backups", "keep-last=1", "--remove", "0", tool="vzdump")
    assert len(archives(host, vmid)) == 2
