"""Template extraction: formats, owners, and hostile archives that must not escape."""

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from pct.appliance.extract import detect_compression, extract_template
from pct.errors import TemplateError


def add_file(archive: tarfile.TarFile, name: str, data: bytes = b"x", uid: int = 0, mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.uid = uid
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


def add_link(archive: tarfile.TarFile, name: str, target: str, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    archive.addfile(info)


def make_tar(path: Path, build, mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as archive:
        build(archive)
    return path


@pytest.fixture
def outside(tmp_path):
    victim = tmp_path / "outside"
    victim.mkdir()
    (victim / "secret").write_text("host data\n")
    return victim


@pytest.fixture
def rootfs(tmp_path):
    target = tmp_path / "rootfs"
    target.mkdir()
    return target


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tar.xz", "w:xz")])
def test_formats_extract(tmp_path, rootfs, suffix, mode):
    archive = make_tar(tmp_path / f"t{suffix}", lambda a: add_file(a, "./etc/hostname", b"tmpl\n", uid=33), mode)
    extract_template(archive, rootfs, None, 100)
    assert (rootfs / "etc/hostname").read_text() == "tmpl\n"
    if os.geteuid() == 0:
        assert (rootfs / "etc/hostname").stat().st_uid == 33


def test_zstd_extracts(tmp_path, rootfs):
    plain = make_tar(tmp_path / "t.tar", lambda a: add_file(a, "./etc/os", b"zstd\n"))
    subprocess.run(["zstd", "-q", str(plain), "-o", str(tmp_path / "t.tar.zst")], check=True)
    assert detect_compression(tmp_path / "t.tar.zst") == "--zstd"
    extract_template(tmp_path / "t.tar.zst", rootfs, None, 100)
    assert (rootfs / "etc/os").read_text() == "zstd\n"


def test_corrupt_template_is_rejected(tmp_path, rootfs):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is no archive" * 50)
    with pytest.raises(TemplateError, match="is not a tar archive"):
        extract_template(bad, rootfs, None, 100)


def test_truncated_template_is_rejected(tmp_path, rootfs):
    good = make_tar(tmp_path / "t.tar.gz", lambda a: add_file(a, "./big", os.urandom(200000)), "w:gz")
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(TemplateError, match="unable to extract template 'cut.tar.gz'"):
        extract_template(truncated, rootfs, None, 100)


def test_missing_template(tmp_path, rootfs):
    with pytest.raises(TemplateError, match="does not exist"):
        extract_template(tmp_path / "none.tar", rootfs, None, 100)


def test_dotdot_member_never_lands_outside(tmp_path, rootfs, outside):
    archive = make_tar(tmp_path / "t.tar", lambda a: add_file(a, "../outside/secret", b"owned\n"))
    with pytest.raises(TemplateError, match="unable to extract"):
        extract_template(archive, rootfs, None, 100)
    assert (outside / "secret").read_text() == "host data\n"


def test_absolute_member_lands_inside(tmp_path, rootfs, outside):
    archive = make_tar(tmp_path / "t.tar", lambda a: add_file(a, f"{outside}/secret", b"owned\n"))
    extract_template(archive, rootfs, None, 100)
    assert (outside / "secret").read_text() == "host data\n"
    assert (rootfs / str(outside).lstrip("/") / "secret").read_text() == "owned\n"


def test_write_through_planted_symlink_is_blocked(tmp_path, rootfs, outside):
    def build(archive):
        add_link(archive, "./escape", str(outside))
        add_file(archive, "./escape/secret", b"owned\n")
    archive = make_tar(tmp_path / "t.tar", build)
    with pytest.raises(TemplateError):
        extract_template(archive, rootfs, None, 100)
    assert (outside / "secret").read_text() == "host data\n"


def test_write_through_relative_symlink_is_blocked(tmp_path, rootfs, outside):
    def build(archive):
        add_link(archive, "./up", "../outside")
        add_file(archive, "./up/secret", b"owned\n")
    archive = make_tar(tmp_path / "t.tar", build)
    with pytest.raises(TemplateError):
        extract_template(archive, rootfs, None, 100)
    assert (outside / "secret").read_text() == "host data\n"


def test_hardlink_to_host_file_stays_inside(tmp_path, rootfs, outside):
    def build(archive):
        add_link(archive, "./shadow", f"{outside}/secret", kind=tarfile.LNKTYPE)
    archive = make_tar(tmp_path / "t.tar", build)
    with pytest.raises(TemplateError):
        extract_template(archive, rootfs, None, 100)
    secret = outside / "secret"
    assert secret.read_text() == "host data\n"
    assert secret.stat().st_nlink == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes need root")
def test_device_nodes_kept_for_privileged(tmp_path, rootfs):
    def build(archive):
        info = tarfile.TarInfo("./dev/null")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        info.mode = 0o666
        archive.addfile(info)
    archive = make_tar(tmp_path / "t.tar", build)
    extract_template(archive, rootfs, None, 100)
    assert os.major((rootfs / "dev/null").stat().st_rdev) == 1
