"""Tests that every corpus config loads, round-trips and yields its golden LXC config.

The golden files are ``tests/fixtures/lxc/<name>.v1.conf`` (legacy cgroup
layout with memsw) and ``<name>.v2.conf`` (unified layout). After a
deliberate change of the generated LXC config, rewrite them with
``PCT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_config_corpus.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from pct.config.format import format_config, parse_config
from pct.config.model import settings_from_config
from pct.paths import Paths
from pct.runtime import cgroups, lxcconf
from pct.runtime.cgroups import CgroupLayout
from pct.runtime.lxcconf import generate_lxc_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CONFIGS = sorted((FIXTURES / "configs").glob("*.conf"))
GOLDEN_DIR = FIXTURES / "lxc"
UPDATE_GOLDEN = os.environ.get("PCT_UPDATE_GOLDEN") == "1"
LAYOUTS = {
    "v1": CgroupLayout(unified=False, has_memsw=True),
    "v2": CgroupLayout(unified=True),
}
# The include files that Debian's lxc package (LXC 5) installs in
# /usr/share/lxc/config, so the goldens do not depend on the test host.
LXC_INCLUDE_FILES = frozenset(
    f"{distribution}.{kind}.conf"
    for distribution in ("alpine", "archlinux", "centos", "debian", "devuan", "fedora", "gentoo",
                         "opensuse", "ubuntu")
    for kind in ("common", "userns")
) | {"common.conf", "userns.conf"}
HOST_CPUS = 16


class _FixedIncludePath(PurePosixPath):
    """A path below the LXC config directory whose existence is fixed by ``LXC_INCLUDE_FILES``."""

    def exists(self) -> bool:
        return self.name in LXC_INCLUDE_FILES


@pytest.fixture
def fixed_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the generated LXC config independent of AppArmor, LXC's files and the CPU count."""
    monkeypatch.setattr(lxcconf, "_host_has_apparmor", lambda: False)
    monkeypatch.setattr(lxcconf, "LXC_CONFIG_DIR", _FixedIncludePath("/usr/share/lxc/config"))
    monkeypatch.setattr(cgroups.os, "cpu_count", lambda: HOST_CPUS)


def is_hand_written(path: Path) -> bool:
    """Hand-written files use spellings that the writer normalises, so they round-trip by meaning."""
    return "-hand-" in path.name


def vmid_of(path: Path) -> int:
    return int(path.name.split("-", 1)[0])


def test_corpus_has_thirty_files():
    assert len(CONFIGS) >= 30


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_corpus_file_round_trips(path: Path):
    text = path.read_text(encoding="utf-8")
    cfg = parse_config(text, vmid_of(path))
    written = format_config(cfg)

    if is_hand_written(path):
        assert written != text
        reread = parse_config(written, vmid_of(path))
        assert reread.description == cfg.description
        assert reread.main == cfg.main
        assert reread.pending == cfg.pending
        assert reread.snapshots == cfg.snapshots
        assert format_config(reread) == written
    else:
        assert written == text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_corpus_file_loads_into_settings(path: Path):
    cfg = parse_config(path.read_text(encoding="utf-8"), vmid_of(path))

    settings = settings_from_config(cfg, vmid_of(path))

    assert settings.vmid == vmid_of(path)
    assert settings.rootfs is not None


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_corpus_lxc_config_matches_golden(path: Path, layout_name: str, fixed_host: None):
    cfg = parse_config(path.read_text(encoding="utf-8"), vmid_of(path))
    settings = settings_from_config(cfg, vmid_of(path))
    golden = GOLDEN_DIR / f"{path.stem}.{layout_name}.conf"

    generated = generate_lxc_config(settings, Paths(Path("/srv/pct")), LAYOUTS[layout_name], settings.ostype)

    if UPDATE_GOLDEN:
        golden.write_text(generated, encoding="utf-8")
    assert golden.exists(), f"missing golden file {golden.name}; run with PCT_UPDATE_GOLDEN=1"
    assert generated == golden.read_text(encoding="utf-8")


def test_golden_files_have_a_config():
    stems = {path.stem for path in CONFIGS}
    orphans = [golden.name for golden in GOLDEN_DIR.glob("*.conf")
               if golden.name.rsplit(".", 2)[0] not in stems]

    assert orphans == []
