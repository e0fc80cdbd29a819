"""Mount points: storage volumes, directories and bind mounts, and hostile targets."""

import os
import subprocess
import threading
import time

from conftest import _mounts_below, _test_loop_devices


def mounted_at(path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mountinfo:
        return any(line.split()[4] == target for line in mountinfo)


def test_volume_and_bind_mounts_inside(host, busybox_template, tmp_path):
    shared = host.root / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host\n")
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--unprivileged", "0",
             "--mp0", "local:1,mp=/data", "--mp1", f"{shared},mp=/mnt/shared,ro=1")
    text = host.conf_text(vmid)
    assert f"mp0: local:{vmid}/vm-{vmid}-disk-1.raw,mp=/data,size=1G\n" in text

    host.pct("set", vmid, "--mp2", "local:0,mp=/data/sub")
    assert f"mp2: local:{vmid}/subvol-{vmid}-disk-2,mp=/data/sub" in host.conf_text(vmid)

    host.pct("start", vmid)
    mounts = host.pct("exec", vmid, "--", "cat", "/proc/mounts").stdout
    assert " /data ext4 " in mounts
    assert " /data/sub " in mounts
    assert host.pct("exec", vmid, "--", "cat", "/mnt/shared/hello.txt").stdout == "from the host\n"
    result = host.pct("exec", vmid, "--", "touch", "/mnt/shared/new", check=False)
    assert result.returncode != 0
    assert not (shared / "new").exists()

    host.pct("exec", vmid, "--", "sh", "-c", "echo kept > /data/file")
    host.pct("stop", vmid)
    assert _mounts_below(host.root) == []
    host.pct("start", vmid)
    assert host.pct("exec", vmid, "--", "cat", "/data/file").stdout == "kept\n"


def test_mount_point_added_live(host, busybox_template, tmp_path):
    shared = host.root / "shared-live"
    shared.mkdir()
    (shared / "note").write_text("live\n")
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    host.pct("start", vmid)

    host.pct("set", vmid, "--mp0", "local:1,mp=/later/data", "--mp1", f"{shared},mp=/host-share,ro=1")
    text = host.conf_text(vmid)
    assert "[pve:pending]" not in text
    assert f"mp0: local:{vmid}/vm-{vmid}-disk-1.raw,mp=/later/data,size=1G\n" in text
    mounts = host.pct("exec", vmid, "--", "cat", "/proc/mounts").stdout
    assert " /later/data ext4 " in mounts
    assert host.pct("exec", vmid, "--", "cat", "/host-share/note").stdout == "live\n"
    host.pct("exec", vmid, "--", "sh", "-c", "echo written > /later/data/file")
    assert host.pct("exec", vmid, "--", "touch", "/host-share/x", check=False).returncode != 0

    result = host.pct("set", vmid, "--delete", "mp0")
    assert "pending until the next start: mp0" in result.stderr
    host.pct("stop", vmid)
    assert _mounts_below(host.root) == []
    assert _test_loop_devices() == []
    host.pct("start", vmid)
    assert f"unused0: local:{vmid}/vm-{vmid}-disk-1.raw\n" in host.conf_text(vmid)
    assert " /later/data " not in host.pct("exec", vmid, "--", "cat", "/proc/mounts").stdout


def test_live_mount_refuses_planted_symlink(host, busybox_template, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    host.pct("start", vmid)
    host.pct("exec", vmid, "--", "ln", "-s", str(outside), "/evil")
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--mp0", "local:0,mp=/evil/x", check=False)
    assert result.returncode != 0
    assert "leads through a symlink" in result.stderr
    assert result.stderr.count(f"CT {vmid}: ") == 1
    assert os.listdir(outside) == []
    assert host.conf_text(vmid) == before


def test_planted_symlink_target_is_refused(host, busybox_template, tmp_path):
    """A symlink inside the guest must never make a mount land on the host."""
    outside = tmp_path / "host-dir"
    outside.mkdir()
    (outside / "keep").write_text("host\n")
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--unprivileged", "0", "--rootfs", "local:0")
    rootfs = host.root / f"var/lib/vz/images/{vmid}/subvol-{vmid}-disk-0"
    (rootfs / "evil").symlink_to(str(outside))
    (rootfs / "relative").symlink_to("../../../../../../../../.." + str(outside))
    before = host.conf_text(vmid)

    for target in ("/evil", "/evil/sub", "/relative/x"):
        host.pct("set", vmid, "--mp0", f"local:0,mp={target}")
        result = host.pct("start", vmid, check=False)
        assert result.returncode != 0
        assert "leads through a symlink" in result.stderr
        assert not mounted_at(outside)
        assert sorted(os.listdir(outside)) == ["keep"]
        assert _mounts_below(host.root) == []
        assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert host.conf_text(vmid) != before


def test_bind_mount_of_system_directory_refused(host, busybox_template):
    vmid = host.new_vmid()
    message = f"CT {vmid}: mp0: bind mounting the host system directory '/etc' is not allowed without --force"
    result = host.pct("create", vmid, str(busybox_template), "--mp0", "/etc,mp=/hostetc", check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert not host.conf_path(vmid).exists()
    assert host.images() == []

    host.pct("create", vmid, str(busybox_template))
    before = host.conf_text(vmid)
    for source in ("/etc", "/var", "/"):
        result = host.pct("set", vmid, "--mp0", f"{source},mp=/hostetc", check=False)
        assert result.returncode != 0
        assert "is not allowed without --force" in result.stderr
        assert host.conf_text(vmid) == before

    host.pct("start", vmid)
    result = host.pct("set", vmid, "--mp1", "/usr,mp=/hostusr,ro=1", check=False)
    assert "bind mounting the host system directory '/usr' is not allowed without --force" in result.stderr
    assert host.conf_text(vmid) == before
    assert " /hostusr " not in host.pct("exec", vmid, "--", "cat", "/proc/mounts").stdout


def test_bind_mount_of_system_directory_forced(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--force", "--mp0", "/etc,mp=/hostetc,ro=1")
    assert "mp0: /etc,mp=/hostetc,ro=1\n" in host.conf_text(vmid)

    result = host.pct("start", vmid)
    assert (f"CT {vmid}: mp0: bind-mounting the host system directory '/etc', which was added with --force"
            in result.stderr)
    hostname = open("/etc/hostname").read()
    assert host.pct("exec", vmid, "--", "cat", "/hostetc/hostname").stdout == hostname
    assert host.pct("exec", vmid, "--", "touch", "/hostetc/pct-test", check=False).returncode != 0
    assert not os.path.exists("/etc/pct-test")

    # Hot plug into the running container, forced too.
    host.pct("set", vmid, "--force", "1", "--mp1", "/usr,mp=/hostusr,ro=1")
    assert "mp1: /usr,mp=/hostusr,ro=1\n" in host.conf_text(vmid)
    assert host.pct("exec", vmid, "--", "ls", "/hostusr/bin").returncode == 0

    host.pct("stop", vmid)
    assert _mounts_below(host.root) == []


def test_missing_volume_is_refused_by_set(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--mp0", f"local:{vmid}/vm-{vmid}-disk-9.raw,mp=/x", check=False)
    assert f"mp0: volume 'local:{vmid}/vm-{vmid}-disk-9.raw' does not exist" in result.stderr
    assert host.conf_text(vmid) == before


def test_removed_mount_point_is_kept_as_unused(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data")
    volume = f"local:{vmid}/vm-{vmid}-disk-1.raw"
    host.pct("set", vmid, "--delete", "mp0")
    text = host.conf_text(vmid)
    assert "mp0:" not in text
    assert f"unused0: {volume}\n" in text
    assert f"{vmid}/vm-{vmid}-disk-1.raw" in host.images()

    host.pct("set", vmid, "--protection", "1")
    result = host.pct("set", vmid, "--delete", "unused0", check=False)
    assert f"can't remove CT {vmid} disk 'unused0' - protection mode enabled" in result.stderr
    assert f"{vmid}/vm-{vmid}-disk-1.raw" in host.images()

    host.pct("set", vmid, "--protection", "0")
    host.pct("set", vmid, "--delete", "unused0")
    assert "unused0" not in host.conf_text(vmid)
    assert f"{vmid}/vm-{vmid}-disk-1.raw" not in host.images()


def test_bind_mount_removal_leaves_no_unused(host, busybox_template):
    shared = host.root / "shared"
    shared.mkdir()
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", f"{shared},mp=/shared")
    host.pct("set", vmid, "--delete", "mp0")
    assert "unused" not in host.conf_text(vmid)
    assert shared.is_dir()



def test_mount_waits_for_detaching_loop_device(host):
    # A loop device that a process keeps open after the unmount stays
    # attached, as one that the kernel is still detaching does.
    from pct.paths import Paths
    from pct.storage import get_storage
    from pct.storage.dir import detaching_loop_devices

    storage = get_storage(Paths(host.root), "local")
    volname = storage.alloc_volume(host.new_vmid(), 64 << 20, unprivileged=False)
    image = storage.volume_path(volname)
    target = host.root / "mnt"
    target.mkdir()
    try:
        storage.mount_volume(volname, target)
        device = _source_of(target)
        holder = os.open(device, os.O_RDONLY)
        subprocess.run(["umount", str(target)], check=True)
        assert detaching_loop_devices(image) == [device]

        threading.Timer(0.5, os.close, [holder]).start()
        started = time.monotonic()
        storage.mount_volume(volname, target, read_only=True)
        waited = time.monotonic() - started

        assert waited >= 0.4
        assert detaching_loop_devices(image) == []
        assert _source_of(target) != ""
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)
        storage.free_volume(volname)


def _source_of(mount_point) -> str:
    result = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mount_point)], capture_output=True, text=True)
    return result.stdout.strip()
