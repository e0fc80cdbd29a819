"""pct push and pct pull: files into and out of running containers, and hostile guest paths."""

import os
import stat


def running_container(host, template, unprivileged="0"):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(template), "--unprivileged", unprivileged, "--mp0", "local:1,mp=/data")
    host.pct("start", vmid)
    return vmid


def rootfs(host, vmid):
    return host.root / "var/lib/lxc" / str(vmid) / "rootfs"


def test_push_pull_round_trip(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    source = tmp_path / "blob"
    source.write_bytes(os.urandom(3 << 20) + b"\0\n")
    source.chmod(0o640)

    host.pct("push", vmid, source, "/data/blob")
    listing = host.pct("exec", vmid, "--", "stat", "-c", "%a %u %g %s", "/data/blob").stdout.split()
    assert listing == ["640", "0", "0", str(source.stat().st_size)]

    back = tmp_path / "back"
    host.pct("pull", vmid, "/data/blob", back, "--perms", "0600", "--user", "nobody", "--group", "12")
    assert back.read_bytes() == source.read_bytes()
    info = back.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (65534, 12)

    host.pct("pull", vmid, "/etc/hostname", tmp_path)
    assert (tmp_path / "hostname").read_text() == f"CT{vmid}\n"


def test_push_owner_unprivileged(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template, unprivileged="1")
    source = tmp_path / "note"
    source.write_text("mapped\n")

    host.pct("push", vmid, source, "/root/note", "--user", "1000", "--group", "1001", "--perms", "0x1a0")
    assert host.pct("exec", vmid, "--", "stat", "-c", "%a %u %g", "/root/note").stdout.split() == \
        ["640", "1000", "1001"]
    host_side = os.stat(rootfs(host, vmid) / "root/note")
    assert (host_side.st_uid, host_side.st_gid) == (101000, 101001)

    host.pct("push", vmid, source, "/root/named", "--user", "root", "--group", "root")
    assert host.pct("exec", vmid, "--", "stat", "-c", "%u %g", "/root/named").stdout.split() == ["0", "0"]
    assert os.stat(rootfs(host, vmid) / "root/named").st_uid == 100000


def test_push_replaces_existing_file(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    source = tmp_path / "motd"
    source.write_text("new text\n")
    host.pct("exec", vmid, "--", "sh", "-c", "echo old > /etc/motd")
    host.pct("push", vmid, source, "/etc/motd")
    assert host.pct("exec", vmid, "--", "cat", "/etc/motd").stdout == "new text\n"
    assert host.pct("exec", vmid, "--", "sh", "-c", "ls -a /etc | grep -c pct-push || true").stdout == "0\n"


def test_push_to_planted_symlink_refused(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    host_file = tmp_path / "host-secret"
    host_file.write_text("host data\n")
    source = tmp_path / "payload"
    source.write_text("guest data\n")
    host.pct("exec", vmid, "--", "ln", "-s", str(host_file), "/root/evil")
    host.pct("exec", vmid, "--", "ln", "-s", "../../../../../../../../.." + str(host_file), "/root/climb")

    for link in ("/root/evil", "/root/climb"):
        result = host.pct("push", vmid, source, link, check=False)
        assert result.returncode != 0
        assert result.stderr.strip() == (f"CT {vmid}: unable to push to '{link}': it is a symbolic link inside "
                                         "the container; give the path it points to instead")
        assert host.pct("exec", vmid, "--", "sh", "-c", f"[ -L {link} ]").returncode == 0
    assert host_file.read_text() == "host data\n"


def test_push_through_planted_directory_symlink(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    source = tmp_path / "payload"
    source.write_text("guest data\n")
    host.pct("exec", vmid, "--", "ln", "-s", str(host_dir), "/evil")

    result = host.pct("push", vmid, source, "/evil/dropped", check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == (f"CT {vmid}: unable to push to '/evil/dropped': it has no parent "
                                     "directory inside the container")
    assert list(host_dir.iterdir()) == []


def test_push_bad_input(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    source = tmp_path / "payload"
    source.write_text("x\n")
    cases = [
        (("push", vmid, tmp_path / "missing", "/root/x"),
         f"unable to read '{tmp_path / 'missing'}': No such file or directory"),
        (("push", vmid, tmp_path, "/root/x"), f"unable to push '{tmp_path}': not a regular file"),
        (("push", vmid, source, "root/x"),
         "400 Parameter verification failed. destination: 'root/x' is not an absolute path inside the container"),
        (("push", vmid, source, "/root"),
         f"CT {vmid}: unable to push to '/root': it is a directory; give the full path of the file"),
        (("push", vmid, source, "/root/x", "--perms", "0999"),
         "400 Parameter verification failed. perms: invalid mode '0999' (expected octal such as 0644, or 0x1a4)"),
    ]
    for args, message in cases:
        result = host.pct(*args, check=False)
        assert result.returncode != 0, args
        assert result.stderr.strip() == message
    assert host.pct("exec", vmid, "--", "sh", "-c", "[ -e /root/x ]", check=False).returncode == 1

    result = host.pct("push", vmid, source, "/root/x", "--user", "nosuchuser", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().startswith(f"CT {vmid}: unable to push to '/root/x': ")
    assert "nosuchuser" in result.stderr
    assert host.pct("exec", vmid, "--", "ls", "-a", "/root").stdout.split() == [".", ".."]


def test_pull_missing_file(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    target = tmp_path / "target"
    result = host.pct("pull", vmid, "/nonexistent", target, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == f"CT {vmid}: unable to read /nonexistent: No such file or directory"
    assert list(tmp_path.iterdir()) == []


def test_pull_through_planted_symlink(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    host_file = tmp_path / "host-secret"
    host_file.write_text("host data\n")
    out = tmp_path / "out"
    out.mkdir()
    host.pct("exec", vmid, "--", "ln", "-s", str(host_file), "/root/evil")
    host.pct("exec", vmid, "--", "ln", "-s", "../../../../../../../.." + str(host_file), "/root/climb")

    for link in ("/root/evil", "/root/climb"):
        result = host.pct("pull", vmid, link, out / "copy", check=False)
        assert result.returncode != 0
        assert result.stderr.strip() == f"CT {vmid}: unable to read {link}: No such file or directory"
    assert list(out.iterdir()) == []

    # A symlink that stays inside the guest is followed there.
    host.pct("exec", vmid, "--", "sh", "-c", "echo inside > /data/real; ln -s /data/real /root/good")
    host.pct("pull", vmid, "/root/good", out / "copy")
    assert (out / "copy").read_text() == "inside\n"


def test_pull_fifo_refused(host, busybox_template, tmp_path):
    vmid = running_container(host, busybox_template)
    host.pct("exec", vmid, "--", "sh", "-c", "mkfifo /root/pipe")
    result = host.pct("pull", vmid, "/root/pipe", tmp_path / "pipe", check=False, timeout=30)
    assert result.stderr.strip() == f"CT {vmid}: unable to read /root/pipe: not a regular file"
    assert list(tmp_path.iterdir()) == []


def test_transfer_needs_running_container(host, busybox_template, tmp_path):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template))
    source = tmp_path / "payload"
    source.write_text("x\n")
    for args in (("push", vmid, source, "/root/x"), ("pull", vmid, "/etc/hostname", tmp_path / "y")):
        result = host.pct(*args, check=False)
        assert result.returncode != 0
        assert result.stderr.strip() == f"CT {vmid} not running"
    assert not (tmp_path / "y").exists()
