"""Golden tests: each tests/fixtures/guest/<distro>-NNN case is set up twice.

A case contains config.json (GuestConfig fields), the input tree in/, the
expected tree out/ and optionally host-resolv.conf, the host's resolv.conf.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pct.guest import GuestConfig, GuestNet, GuestRoot, setup_guest

CASES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "guest"
CASES = sorted(path.name for path in CASES_DIR.iterdir() if (path / "config.json").exists())


def snapshot(tree: Path) -> dict[str, tuple]:
    """Return every entry below *tree* as type plus content, link target or nothing."""
    entries: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            relative = str(path.relative_to(tree))
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[relative] = ("dir",)
            else:
                entries[relative] = ("file", path.read_bytes())
    return entries


def load_config(case: Path) -> GuestConfig:
    data = json.loads((case / "config.json").read_text())
    data["nets"] = tuple(GuestNet(**net) for net in data.get("nets", []))
    return GuestConfig(**data)


def run_case(case: Path, tree: Path) -> str:
    conf = load_config(case)
    root = GuestRoot(tree, vmid=conf.vmid)
    return setup_guest(root, conf, phase="start", host_resolv_conf=case / "host-resolv.conf")


@pytest.mark.parametrize("name", CASES)
def test_golden_case_matches_expected_tree(name, tmp_path):
    case = CASES_DIR / name
    tree = tmp_path / "rootfs"
    shutil.copytree(case / "in", tree, symlinks=True)

    ostype = run_case(case, tree)

    assert ostype == name.rsplit("-", 1)[0]
    expected = snapshot(case / "out")
    actual = snapshot(tree)
    assert sorted(actual) == sorted(expected)
    for path in expected:
        assert actual[path] == expected[path], path


@pytest.mark.parametrize("name", CASES)
def test_golden_case_second_run_changes_nothing(name, tmp_path):
    case = CASES_DIR / name
    tree = tmp_path / "rootfs"
    shutil.copytree(case / "in", tree, symlinks=True)
    run_case(case, tree)
    first = snapshot(tree)
    first_mtimes = {p: os.lstat(tree / p).st_mtime_ns for p in first}

    run_case(case, tree)

    assert snapshot(tree) == first
    assert {p: os.lstat(tree / p).st_mtime_ns for p in first} == first_mtimes


def test_golden_cases_cover_each_family():
    assert {name.rsplit("-", 1)[0] for name in CASES} == {"debian", "devuan", "ubuntu"}
