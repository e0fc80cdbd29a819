"""The backup watchdog: clean-up after a killed process, nothing after a dismissal."""

import json
import signal
import subprocess
import sys
import textwrap
import time

from pct.backup.watchdog import group_members

# The process under watch: it starts a watchdog whose clean-up writes the
# events and the group's leftover processes to a file, starts a child in the
# watchdog's process group, and then either dismisses the watchdog or waits
# to be killed.
SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from pct.backup.watchdog import Watchdog, group_members
    from pct.run import spawn

    result, mode = sys.argv[1], sys.argv[2]

    def clean_up(events):
        with open(result, "w") as output:
            json.dump({"events": events, "left": group_members(os.getpid())}, output)

    watchdog = Watchdog()
    watchdog.start(clean_up)
    child = spawn(["sleep", "60"], process_group=watchdog.process_group)
    watchdog.note("archive", "/some/where.tmp")
    watchdog.note("frozen")
    print(watchdog.pid, child.pid, flush=True)
    if mode == "dismiss":
        child.kill()
        child.wait()
        watchdog.dismiss()
    else:
        time.sleep(60)
""")


def start_watched(tmp_path, mode):
    result = tmp_path / "result.json"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(result), mode], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    watchdog_pid, child_pid = map(int, process.stdout.readline().split())
    return process, result, watchdog_pid, child_pid


def wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_killed_process_cleaned_up(tmp_path):
    process, result, watchdog_pid, child_pid = start_watched(tmp_path, "kill")
    assert set(group_members(watchdog_pid)) == {watchdog_pid, child_pid}

    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    stderr = process.stderr.read()  # returns once the watchdog has exited

    assert wait_gone(watchdog_pid)
    assert wait_gone(child_pid)
    report = json.loads(result.read_text())
    assert report["events"] == [["archive", "/some/where.tmp"], ["frozen", ""]]
    assert report["left"] == [watchdog_pid]
    assert stderr == ""


def test_dismissed_watchdog_does_nothing(tmp_path):
    process, result, watchdog_pid, child_pid = start_watched(tmp_path, "dismiss")

    process.wait(timeout=10)

    assert process.returncode == 0, process.stderr.read()
    assert not result.exists()
    assert wait_gone(watchdog_pid)


CONFIG = "arch: amd64\nhostname: ct\nlock: backup\nostype: debian\n"


def clean_up_after_kill(tmp_path, events):
    """Run the backup's clean-up for a killed vzdump of CT 150 that left *events*; return the config after it."""
    from pct.backup.vzdump import BackupLog, _clean_up_killed_backup
    from pct.paths import Paths
    from pct.tasks import Task

    paths = Paths(tmp_path)
    paths.conf(150).parent.mkdir(parents=True)
    paths.conf(150).write_text(CONFIG)
    progress = Task(paths, "vzdump", 150, None)
    _clean_up_killed_backup(paths, 150, BackupLog(progress, tmp_path / "backup.log"), progress, 4242, events)
    return paths.conf(150).read_text(), (tmp_path / "backup.log").read_text()


def test_killed_backup_removes_noted_lock(tmp_path, capsys):
    config, log = clean_up_after_kill(tmp_path, [("locked", "")])

    assert "lock:" not in config
    assert "Backup of CT 150 failed - the vzdump process 4242 was killed" in log
    assert "CT 150: backup failed: the vzdump process 4242 was killed" in capsys.readouterr().err


def test_unnoted_lock_survives_kill(tmp_path):
    # The process died before it noted its lock, so this lock is another backup's.
    config, _log = clean_up_after_kill(tmp_path, [])

    assert config == CONFIG
