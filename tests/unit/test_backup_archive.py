"""Archive writer pieces: tar options for --exclude-path, the compressor, the config member."""

import io
import tarfile

import pytest

from pct.backup.archive import ArchiveSource, compressor_command, config_member, exclude_options, tar_create_command
from pct.errors import ParameterError


def test_exclude_path_anchoring():
    assert exclude_options(["/var/cache/", "*.tmp"]) == [
        "--anchored", "--exclude=./var/cache", "--no-anchored", "--exclude=*.tmp"]


def test_unprivileged_tar_runs_in_user_namespace():
    argv = tar_create_command(ArchiveSource(directory=None, id_map=(100000, 65536)))
    assert argv[:6] == ["lxc-usernsexec", "-m", "u:0:100000:65536", "-m", "g:0:100000:65536", "--"]
    for option in ("--numeric-owner", "--xattrs", "--acls", "--sparse", "--one-file-system", "--format=posix"):
        assert option in argv
    assert argv[-2:] == ["--", "."]


def test_compressor_commands():
    assert compressor_command("0", 1) is None
    assert compressor_command("gzip", 1) == ["gzip", "-c"]
    assert compressor_command("zstd", 4) == ["zstd", "-q", "-c", "-T4"]
    with pytest.raises(ParameterError):
        compressor_command("bzip9", 1)


def test_config_member_is_first_tar_entry():
    head = config_member("arch: amd64\n")
    assert len(head) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(head + b"\0" * 1024)) as archive:
        member = archive.getmembers()[0]
        assert member.name == "./etc/vzdump/pct.conf"
        assert archive.extractfile(member).read() == b"arch: amd64\n"
