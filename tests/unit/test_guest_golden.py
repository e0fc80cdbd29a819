"""Golden tests: each tests/fixtures/guest/<distro>-NNN case is set up twice.

tests/fixtures/guest/README.md describes the layout of a case. The loading
and running of cases lives in tests/fixtures/guest/golden.py, which also
writes the expected tree of a new case.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from pct.guest.model import KNOWN_OSTYPES

CASES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "guest"
sys.path.insert(0, str(CASES_DIR))
from golden import run_case, snapshot  # noqa: E402

CASES = sorted(path.name for path in CASES_DIR.iterdir() if (path / "config.json").exists())


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

    run_case(case, tree, phase="start")

    assert snapshot(tree) == first
    assert {p: os.lstat(tree / p).st_mtime_ns for p in first} == first_mtimes


def test_golden_cases_cover_each_family():
    assert {name.rsplit("-", 1)[0] for name in CASES} == set(KNOWN_OSTYPES) - {"unmanaged"}
