"""Bad input gets one clear line on stderr and changes nothing."""

import io
import os
import signal
import subprocess
import tarfile
import threading
import time

import pytest

from conftest import _mounts_below, _test_loop_devices, pct_command


def snapshot(host):
    """Return the files below the test root with their contents, to compare later.

    Volume images are sparse files of gigabytes, so they are compared by size
    and modification time instead. Lock files and task logs change on every
    command and are left out.
    """
    files = {}
    for path in sorted(host.root.rglob("*")):
        relative = str(path.relative_to(host.root))
        if not path.is_file() or relative.startswith(("run/lock", "var/log/pve/tasks")):
            continue
        info = path.stat()
        files[relative] = (info.st_size, info.st_mtime_ns) if info.st_size > 1 << 20 else path.read_bytes()
    return files


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def create_args(template, bridge, *extra):
    return [str(template), "--net0", f"name=eth0,bridge={bridge.name},ip={bridge.address(5)}/24", *extra]


def test_vmid_below_100(host, busybox_template, bridge):
    result = host.pct("create", "99", *create_args(busybox_template, bridge), check=False)
    assert_one_line_error(result, "vmid: value must have a minimum value of 100")
    assert snapshot(host) == {}


def test_vmid_already_used(host, busybox_template, bridge):
    vmid = host.new_vmid()
    host.pct("create", vmid, *create_args(busybox_template, bridge))
    before = snapshot(host)
    result = host.pct("create", vmid, *create_args(busybox_template, bridge), check=False)
    assert_one_line_error(result, f"CT {vmid} already exists")
    assert snapshot(host) == before


def test_missing_template(host, bridge):
    vmid = host.new_vmid()
    result = host.pct("create", vmid, "local:vztmpl/nothing.tar.zst", check=False)
    assert_one_line_error(result, "template 'local:vztmpl/nothing.tar.zst' does not exist")
    assert not host.conf_path(vmid).exists()


def test_corrupt_template_leaves_nothing(host, tmp_path):
    vmid = host.new_vmid()
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b" + os.urandom(4096))
    result = host.pct("create", vmid, str(corrupt), check=False)
    assert_one_line_error(result, "unable to extract template 'corrupt.tar.gz': the gzip stream is damaged: ")
    assert not host.conf_path(vmid).exists()
    assert not (host.root / "var/lib/lxc" / str(vmid)).exists()
    assert host.images() == []
    assert _mounts_below(host.root) == []
    assert _test_loop_devices() == []


def test_dotdot_template_member_named(host, tmp_path):
    vmid = host.new_vmid()
    archive = tmp_path / "dotdot.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"ok\n"))

    result = host.pct("create", vmid, str(archive), check=False)

    assert_one_line_error(result, "unable to extract template 'dotdot.tar': ../escaped: Member name contains '..'")
    assert not (tmp_path.parent / "escaped").exists()
    assert not host.conf_path(vmid).exists()
    assert not (host.root / "var/lib/lxc" / str(vmid)).exists()


def test_escaping_template_leaves_nothing(host, tmp_path):
    vmid = host.new_vmid()
    victim = tmp_path / "victim"
    victim.write_text("host file\n")
    archive = tmp_path / "hostile.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("./etc/hostname")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"ok\n"))
        link = tarfile.TarInfo("./escape")
        link.type = tarfile.SYMTYPE
        link.linkname = str(tmp_path)
        tar.addfile(link)
        evil = tarfile.TarInfo("./escape/victim")
        evil.size = 6
        tar.addfile(evil, io.BytesIO(b"owned\n"))
    result = host.pct("create", vmid, str(archive), "--unprivileged", "0", check=False)
    assert_one_line_error(result, "unable to extract template 'hostile.tar'")
    assert victim.read_text() == "host file\n"
    assert not host.conf_path(vmid).exists()
    assert host.images() == []
    assert _mounts_below(host.root) == []


@pytest.mark.parametrize("args,message", [
    (["--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--net0", "name=eth0,brige=vmbr0"], "net0: invalid format - unknown key 'brige'"),
    (["--memory", "8"], "memory: value '8' is below the minimum of 16"),
    (["--hostname", "bad_name!"], "400 Parameter verification failed. hostname:"),
])
def test_invalid_create_options(host, busybox_template, args, message):
    vmid = host.new_vmid()
    result = host.pct("create", vmid, str(busybox_template), *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not host.conf_path(vmid).exists()
    assert host.images() == []


def test_start_with_missing_bridge(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--net0", "name=eth0,bridge=pctnobr0,ip=dhcp")
    before = host.conf_text(vmid)
    result = host.pct("start", vmid, check=False)
    assert_one_line_error(result, "net0: bridge 'pctnobr0' does not exist")
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert _mounts_below(host.root) == []
    assert host.conf_text(vmid) == before


def test_start_with_mismatched_ostype(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    config = host.conf_path(vmid)
    config.write_text(config.read_text().replace("ostype: debian", "ostype: alpine"))
    result = host.pct("start", vmid, check=False)
    assert result.returncode != 0
    assert "alpine" in result.stderr
    assert "debian" in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert _mounts_below(host.root) == []


def test_start_template_is_refused(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    config = host.conf_path(vmid)
    config.write_text(config.read_text() + "template: 1\n")
    result = host.pct("start", vmid, check=False)
    assert_one_line_error(result, f"CT {vmid} is a template")
    assert _mounts_below(host.root) == []


def test_set_on_locked_container(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    config = host.conf_path(vmid)
    config.write_text(config.read_text() + "lock: backup\n")
    before = config.read_text()
    result = host.pct("set", vmid, "--memory", "1024", check=False)
    assert_one_line_error(result, f"CT {vmid} is locked (backup)")
    assert config.read_text() == before
    start = host.pct("start", vmid, check=False)
    assert_one_line_error(start, f"CT {vmid} is locked (backup)")

    host.pct("unlock", vmid)
    assert "lock:" not in config.read_text()
    host.pct("set", vmid, "--memory", "1024")
    assert "memory: 1024\n" in config.read_text()


def test_set_unknown_key_and_bad_value(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--features", "nesting=2", check=False)
    assert_one_line_error(result, "400 Parameter verification failed. features: invalid format")
    result = host.pct("set", vmid, "--delete", "nonsense", check=False)
    assert_one_line_error(result, "unknown option 'nonsense'")
    assert host.conf_text(vmid) == before


def test_destroy_running_refused(host, busybox_template, bridge):
    vmid = host.new_vmid()
    host.pct("create", vmid, *create_args(busybox_template, bridge))
    host.pct("start", vmid)
    result = host.pct("destroy", vmid, check=False)
    assert_one_line_error(result, f"CT {vmid} is running - destroy failed")
    assert host.conf_path(vmid).exists()
    assert host.pct("status", vmid).stdout == "status: running\n"


def test_destroy_protected_refused(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--protection", "1")
    result = host.pct("destroy", vmid, check=False)
    assert_one_line_error(result, f"can't remove CT {vmid} - protection mode enabled")
    assert host.images() == [f"{vmid}/vm-{vmid}-disk-0.raw"]
    host.pct("set", vmid, "--protection", "0")
    host.pct("destroy", vmid)
    assert host.images() == []


def test_missing_config(host):
    result = host.pct("start", "12345", check=False)
    assert_one_line_error(result, "12345.conf' does not exist")


def test_racing_sets_both_apply(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    errors = []

    def change(*args):
        try:
            host.pct("set", vmid, *args)
        except AssertionError as exc:
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=change, args=("--memory", "333")),
                   threading.Thread(target=change, args=("--swap", "77")),
                   threading.Thread(target=change, args=("--cores", "1"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    text = host.conf_text(vmid)
    assert "memory: 333\n" in text
    assert "swap: 77\n" in text
    assert "cores: 1\n" in text


def test_killed_create_can_be_cleaned_up(host, debian_template):
    """A create killed midway leaves the container locked or absent; destroy cleans it."""
    vmid = host.new_vmid()
    process = subprocess.Popen([pct_command(), "create", str(vmid), str(debian_template)],
                               env=host.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not host.images() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()

    if host.conf_path(vmid).exists():
        assert "lock: create" in host.conf_text(vmid)
        result = host.pct("start", vmid, check=False)
        assert f"CT {vmid} is locked (create)" in result.stderr
        host.pct("destroy", vmid)
    assert not host.conf_path(vmid).exists()
    assert host.images() == []
    assert _mounts_below(host.root) == []
    assert _test_loop_devices() == []


@pytest.mark.parametrize(("args", "fragment"), [
    (["--unprivileged", "0"], "unprivileged: read-only option"),
    (["--template", "1"], "template: read-only option: use 'pct template'"),
    (["--delete", "unprivileged"], "unprivileged: read-only option"),
    (["--rootfs", "local:1"], "'pct set' cannot allocate a new root volume ('local:1')"),
    ([], "no options specified"),
])
def test_set_refuses_creation_time_options(host, busybox_template, args, fragment):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    before = snapshot(host)

    result = host.pct("set", vmid, *args, check=False)

    assert_one_line_error(result, fragment)
    assert snapshot(host) == before


def test_set_rootfs_keeps_replaced_volume(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data")
    text = host.conf_text(vmid)
    old_root = text.split("rootfs: ", 1)[1].split(",", 1)[0]
    data_volume = text.split("mp0: ", 1)[1].split(",", 1)[0]

    host.pct("set", vmid, "--delete", "mp0")
    host.pct("set", vmid, "--rootfs", f"{data_volume},size=1G")

    text = host.conf_text(vmid)
    assert f"rootfs: {data_volume},size=1G" in text
    assert f"unused0: {old_root}" in text
    assert "unused1" not in text


@pytest.mark.parametrize(("path", "fragment"), [
    ("/dev/pct-test-missing", "dev0: device '/dev/pct-test-missing' does not exist"),
    ("/dev/shm", "dev0: '/dev/shm' is not a device node"),
])
def test_set_device_on_stopped_container(host, busybox_template, path, fragment):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    before = snapshot(host)

    result = host.pct("set", vmid, "--dev0", path, check=False)

    assert_one_line_error(result, fragment)
    assert snapshot(host) == before
