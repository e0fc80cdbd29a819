"""Mount point sources that are rejected before anything is created."""

import pytest


@pytest.mark.parametrize("source, message", [
    ("/dev/null", "'/dev/null' is not a block device, a directory or a file"),
    ("/", "bind mounting the host system directory '/' is not allowed without --force"),
])
def test_mount_source_rejected_at_create(host, busybox_template, source, message):
    vmid = host.new_vmid()
    result = host.pct("create", vmid, str(busybox_template), "--mp0", f"{source},mp=/x", check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert not host.conf_path(vmid).exists()
    assert host.images() == []


def test_character_device_rejected_at_start(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    host.pct("set", vmid, "--mp0", "/dev/zero,mp=/zero")
    before = host.conf_text(vmid)
    result = host.pct("start", vmid, check=False)
    assert "'/dev/zero' is not a block device, a directory or a file" in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert host.conf_text(vmid) == before
