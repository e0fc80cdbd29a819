"""A vzdump process killed mid-backup: no partial archive, no lock, the container as it was."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from backup_helpers import dump_dir
from conftest import pct_command
from storage_fixtures import btrfs  # noqa: F401  (fixture)

START_TIMEOUT = 90
BTRFS_WITH_BACKUPS = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,backup,rootdir,images

btrfs: btr
\tpath /mnt/btr
\tcontent rootdir,images
"""


def lxc_state(host, vmid):
    result = subprocess.run(["lxc-info", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "-s", "-H"],
                            capture_output=True, text=True)
    return result.stdout.strip()


def init_pid(host, vmid):
    result = subprocess.run(["lxc-info", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "-p", "-H"],
                            capture_output=True, text=True)
    return result.stdout.strip()


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def start_vzdump(host, vmid, *options):
    return subprocess.Popen([pct_command("vzdump"), str(vmid), *options], env=host.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process, description: str, timeout: float = START_TIMEOUT, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"vzdump ended before {description}: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"timed out waiting for {description}"
        time.sleep(interval)


def partial_archive_written(host) -> bool:
    for name in listing(dump_dir(host)):
        if name.endswith(".tmp") and (dump_dir(host) / name).stat().st_size > 0:
            return True
    return False


def processes_using(path: Path) -> list[str]:
    """Return ``pid: link`` for each process whose working directory or open file is below *path*."""
    prefix = os.path.realpath(path)
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        links = [f"/proc/{entry.name}/cwd"]
        try:
            links += [f"/proc/{entry.name}/fd/{fd}" for fd in os.listdir(f"/proc/{entry.name}/fd")]
        except OSError:
            continue
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target == prefix or target.startswith(prefix + "/"):
                found.append(f"{entry.name}: {target}")
    return found


def finish_killed(process) -> str:
    """Wait for the killed vzdump and its watchdog, which keeps vzdump's stderr open until it has cleaned up."""
    process.wait(timeout=30)
    return process.stderr.read()


def assert_cleaned_up(host, vmid, stderr: str) -> None:
    left = listing(dump_dir(host))
    assert len(left) == 1, left
    assert left[0].endswith(".log")
    log = (dump_dir(host) / left[0]).read_text()
    assert "was killed" in log
    assert "cleaned up after the killed backup" in log
    assert "failed:" not in log.split("was killed", 1)[1], log
    assert "lock:" not in host.conf_text(vmid)
    assert processes_using(dump_dir(host)) == []
    assert "the watchdog removed the partial archive and the lock" in stderr
    task_logs = [path for path in (host.root / "var/log/pve/tasks").rglob("UPID:*:vzdump:*")]
    assert len(task_logs) == 1
    assert task_logs[0].read_text().splitlines()[-1].startswith("TASK ERROR: the vzdump process")


def test_sigkill_in_stop_mode(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=80 2>/dev/null")
    init_before = init_pid(host, vmid)
    process = start_vzdump(host, vmid, "--mode", "stop", "--compress", "gzip")
    wait_for(lambda: partial_archive_written(host), process, "the partial archive")
    assert lxc_state(host, vmid) == "STOPPED"
    assert "lock: backup" in host.conf_text(vmid)

    process.kill()
    stderr = finish_killed(process)

    assert process.returncode == -signal.SIGKILL
    assert_cleaned_up(host, vmid, stderr)
    assert lxc_state(host, vmid) == "RUNNING"
    assert init_pid(host, vmid) != init_before
    # tar and gzip ran in the rootfs mount and wrote the archive; none of them is left.
    assert processes_using(host.root / "var/lib/lxc" / str(vmid) / "rootfs") == []
    assert host.pct("exec", vmid, "--", "cat", "/proc/1/cmdline").returncode == 0


def test_sigkill_of_stopped_container_backup(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1", "--unprivileged", "0")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=80 2>/dev/null")
    host.pct("stop", vmid)
    process = start_vzdump(host, vmid, "--mode", "stop", "--compress", "gzip")
    wait_for(lambda: partial_archive_written(host), process, "the partial archive")

    process.kill()
    stderr = finish_killed(process)

    assert_cleaned_up(host, vmid, stderr)
    assert lxc_state(host, vmid) == "STOPPED"
    rootfs = host.root / "var/lib/lxc" / str(vmid) / "rootfs"
    assert not os.path.ismount(rootfs)
    # The container starts as before, so nothing of the backup is left mounted.
    host.pct("start", vmid)
    assert lxc_state(host, vmid) == "RUNNING"


def test_sigkill_while_frozen_in_suspend_mode(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1", "--unprivileged", "0")
    host.pct("start", vmid)
    # Many small files make the second rsync pass, which runs while the container
    # is frozen, take long enough to kill vzdump in it.
    many = host.root / "var/lib/lxc" / str(vmid) / "rootfs" / "many"
    many.mkdir()
    for index in range(40000):
        (many / f"f{index}").write_bytes(b"x")
    scratch = host.root / "scratch"
    process = start_vzdump(host, vmid, "--mode", "suspend", "--tmpdir", str(scratch))
    wait_for(lambda: lxc_state(host, vmid) == "FROZEN", process, "the container to be frozen", interval=0.02)

    process.kill()
    stderr = finish_killed(process)

    assert_cleaned_up(host, vmid, stderr)
    assert lxc_state(host, vmid) == "RUNNING"
    assert listing(scratch) == []
    assert processes_using(scratch) == []
    assert host.pct("exec", vmid, "--", "touch", "/after-kill").returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_clean_up(host, busybox_template, signum):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "local:1")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=80 2>/dev/null")
    process = start_vzdump(host, vmid, "--mode", "stop", "--compress", "gzip")
    wait_for(lambda: partial_archive_written(host), process, "the partial archive")

    process.send_signal(signum)
    process.wait(timeout=120)
    stderr = process.stderr.read()

    assert process.returncode != 0
    assert "interrupted" in stderr
    assert "watchdog" not in stderr
    left = listing(dump_dir(host))
    assert len(left) == 1, left
    assert left[0].endswith(".log")
    assert "lock:" not in host.conf_text(vmid)
    assert lxc_state(host, vmid) == "RUNNING"
    assert processes_using(dump_dir(host)) == []


def test_sigkill_in_snapshot_mode_on_btrfs(host, btrfs, busybox_template):
    (host.root / "etc/pve/storage.cfg").write_text(BTRFS_WITH_BACKUPS)
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--rootfs", "btr:1", "--unprivileged", "0")
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=80 2>/dev/null")
    init_before = init_pid(host, vmid)
    process = start_vzdump(host, vmid, "--mode", "snapshot", "--compress", "gzip")
    wait_for(lambda: partial_archive_written(host), process, "the partial archive")
    assert any("@vzdump" in subvolume for subvolume in btrfs.subvolumes())

    process.kill()
    stderr = finish_killed(process)

    assert_cleaned_up(host, vmid, stderr)
    assert not any("@vzdump" in subvolume for subvolume in btrfs.subvolumes())
    assert lxc_state(host, vmid) == "RUNNING"
    assert init_pid(host, vmid) == init_before
    assert [entry for entry in listing(dump_dir(host)) if entry.startswith("vzdumptmp")] == []
