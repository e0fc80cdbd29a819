"""The acl and quota options of mount points on real ext4 images, in real containers.

Both options depend on the kernel: recent ext4 has no ``noacl`` mount option,
and quotas need the quota format module (CONFIG_QFMT_V2). Each case probes
the running kernel and runs the test that fits it, so one of each pair is
skipped on any given host.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import _mounts_below, _test_loop_devices


def _kernel_accepts(options: str, quota: bool = False) -> bool:
    """Return whether an ext4 image mounts with *options* (and, with *quota*, turns quotas on)."""
    with tempfile.TemporaryDirectory(prefix="pct-probe-", dir="/var/tmp") as workdir:
        image, mount_point = Path(workdir) / "probe.img", Path(workdir) / "mnt"
        mount_point.mkdir()
        subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
        if subprocess.run(["mount", "-o", f"loop,{options}", str(image), str(mount_point)],
                          capture_output=True).returncode != 0:
            return False
        try:
            if not quota:
                return True
            subprocess.run(["quotacheck", "-cugm", str(mount_point)], capture_output=True)
            return subprocess.run(["quotaon", "-ug", str(mount_point)], capture_output=True).returncode == 0
        finally:
            subprocess.run(["umount", str(mount_point)], check=True)


NOACL_SUPPORTED = _kernel_accepts("noacl")
QUOTA_SUPPORTED = shutil.which("quotaon") is not None and _kernel_accepts(
    "usrjquota=aquota.user,grpjquota=aquota.group,jqfmt=vfsv0", quota=True)


def _host_mount(host, vmid: int, path: str) -> Path:
    return host.root / "var/lib/lxc" / str(vmid) / "rootfs" / path.lstrip("/")


def _push_acl_tools(host, vmid: int) -> None:
    """Copy the host's setfacl and getfacl into a Debian container, which has their library (libacl1)."""
    for tool in ("setfacl", "getfacl"):
        host.pct("push", vmid, shutil.which(tool), f"/usr/local/bin/{tool}", "--perms", "0755")


def test_acl_lets_setfacl_work_inside(host, debian_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(debian_template), "--mp0", "local:1,mp=/data,acl=1")
    host.pct("start", vmid)
    _push_acl_tools(host, vmid)

    host.pct("exec", vmid, "--", "touch", "/data/shared")
    host.pct("exec", vmid, "--", "setfacl", "-m", "u:1000:rw", "/data/shared")
    acl = host.pct("exec", vmid, "--", "getfacl", "-c", "/data/shared").stdout
    assert "user:1000:rw-" in acl


@pytest.mark.skipif(NOACL_SUPPORTED, reason="this kernel's ext4 has the noacl mount option")
def test_acl_zero_without_noacl_fails_start(host, busybox_template):
    vmid = host.new_vmid()
    message = (f"CT {vmid}: mp0: mounting with noacl (acl=0) failed; this kernel's ext4 may not have "
               "the noacl option and keeps ACLs on, so remove acl=0")
    result = host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data,acl=0", check=False)
    assert message in result.stderr
    assert not host.conf_path(vmid).exists()
    assert host.images() == []

    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data")
    host.pct("set", vmid, "--mp0", f"local:{vmid}/vm-{vmid}-disk-1.raw,mp=/data,acl=0")
    before = host.conf_text(vmid)
    result = host.pct("start", vmid, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert host.conf_text(vmid) == before
    assert _mounts_below(host.root) == []
    assert _test_loop_devices() == []


@pytest.mark.skipif(not NOACL_SUPPORTED, reason="this kernel's ext4 rejects the noacl mount option")
def test_acl_zero_turns_acls_off(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data,acl=0")
    host.pct("mount", vmid)
    try:
        target = _host_mount(host, vmid, "/data")
        (target / "file").write_text("x")
        result = subprocess.run(["setfacl", "-m", "u:1000:rw", str(target / "file")], capture_output=True, text=True)
        assert result.returncode != 0
        assert "Operation not supported" in result.stderr
    finally:
        host.pct("unmount", vmid)


def test_quota_on_directory_volume_refused(host, busybox_template):
    vmid = host.new_vmid()
    result = host.pct("create", vmid, str(busybox_template), "--mp0", "local:0,mp=/data,quota=1", check=False)
    assert result.returncode != 0
    assert f"CT {vmid}: mp0: quota=1 needs an ext4 image volume, but 'local:{vmid}/subvol-{vmid}-disk-1'" \
           " is a directory volume; remove quota=1 or use a raw image" in result.stderr
    assert not host.conf_path(vmid).exists()
    assert host.images() == []

    host.pct("create", vmid, str(busybox_template))
    before, images = host.conf_text(vmid), host.images()
    result = host.pct("set", vmid, "--mp0", "local:0,mp=/data,quota=1", check=False)
    assert "is a directory volume; remove quota=1 or use a raw image" in result.stderr
    assert host.conf_text(vmid) == before
    assert host.images() == images

    shared = host.root / "shared"
    shared.mkdir()
    result = host.pct("set", vmid, "--mp0", f"{shared},mp=/shared,quota=1", check=False)
    assert f"CT {vmid}: mp0: quota=1 needs an ext4 image volume, but '{shared}' is a bind mount" in result.stderr
    assert host.conf_text(vmid) == before


def test_quota_on_bind_refused_by_start(host, busybox_template):
    """A config edited by hand bypasses pct set, so the start checks again."""
    shared = host.root / "shared"
    shared.mkdir()
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    with open(host.conf_path(vmid), "a") as config:
        config.write(f"mp0: {shared},mp=/shared,quota=1\n")
    before = host.conf_text(vmid)

    result = host.pct("start", vmid, check=False)
    assert result.returncode != 0
    assert f"CT {vmid}: mp0: quota=1 needs an ext4 image volume, but '{shared}' is a bind mount" in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert host.conf_text(vmid) == before
    assert _mounts_below(host.root) == []


@pytest.mark.skipif(QUOTA_SUPPORTED, reason="this kernel supports journaled quotas")
def test_quota_without_kernel_support_fails_cleanly(host, busybox_template):
    vmid = host.new_vmid()
    message = f"CT {vmid}: mp0: turning on quotas failed: quotaon: Quota format not supported in kernel."
    result = host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data,quota=1", check=False)
    assert message in result.stderr
    assert not host.conf_path(vmid).exists()

    host.pct("create", vmid, str(busybox_template), "--mp0", "local:1,mp=/data")
    host.pct("set", vmid, "--mp0", f"local:{vmid}/vm-{vmid}-disk-1.raw,mp=/data,quota=1")
    before = host.conf_text(vmid)

    result = host.pct("start", vmid, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert host.conf_text(vmid) == before
    assert _mounts_below(host.root) == []
    assert _test_loop_devices() == []

    # Hot plug fails the same way and leaves the running container as it was.
    host.pct("set", vmid, "--delete", "mp0")
    host.pct("start", vmid)
    before, images = host.conf_text(vmid), host.images()
    result = host.pct("set", vmid, "--mp1", "local:1,mp=/data,quota=1", check=False)
    assert f"CT {vmid}: mp1: turning on quotas failed" in result.stderr
    assert host.conf_text(vmid) == before
    assert host.images() == images
    assert " /data " not in host.pct("exec", vmid, "--", "cat", "/proc/mounts").stdout
    assert not (host.root / "var/lib/lxc" / str(vmid) / "hotplug").exists()


# NOTE: the development host's kernel lacks CONFIG_QFMT_V2, so this test was
# never run there; it runs where the probe finds working quotas.
@pytest.mark.skipif(not QUOTA_SUPPORTED, reason="this kernel has no journaled quota support (CONFIG_QFMT_V2)")
def test_quota_limit_stops_write(host, debian_template):
    """A privileged container, because there the host's setquota uses the same user ids as the guest."""
    vmid = host.new_vmid()
    host.pct("create", vmid, str(debian_template), "--unprivileged", "0", "--mp0", "local:1,mp=/data,quota=1")
    host.pct("start", vmid)
    target = str(_host_mount(host, vmid, "/data"))

    state = subprocess.run(["quotaon", "-p", target], capture_output=True, text=True).stdout
    assert f"user quota on {target}" in state
    assert "is on" in state
    subprocess.run(["setquota", "-u", "1000", "0", "200", "0", "0", target], check=True)
    report = subprocess.run(["repquota", "-u", target], capture_output=True, text=True, check=True).stdout
    assert "#1000" in report or "1000" in report

    host.pct("exec", vmid, "--", "install", "-d", "-o", "1000", "-g", "1000", "/data/user")
    write = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
             "dd", "if=/dev/zero", "of=/data/user/blob", "bs=1K", "count=1024", "conv=fsync"]
    result = host.pct("exec", vmid, "--", *write, check=False)
    assert result.returncode != 0
    assert "Disk quota exceeded" in result.stderr
