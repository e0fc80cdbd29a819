"""Checks of raw lxc.idmap entries and of the host's subordinate id delegation."""

from types import SimpleNamespace

import pytest

from pct.errors import PctError
from pct.runtime.idmap import check_idmap, check_idmap_delegation, missing_subid_lines, raw_idmap

PASS_THROUGH = [
    ("u", 0, 100000, 1005), ("u", 1005, 1005, 1), ("u", 1006, 101006, 64530),
    ("g", 0, 100000, 1005), ("g", 1005, 1005, 1), ("g", 1006, 101006, 64530),
]


def test_pass_through_map_is_complete():
    check_idmap(PASS_THROUGH, 100)


def test_overlap_is_rejected():
    entries = PASS_THROUGH[:1] + [("u", 1000, 1005, 10)] + PASS_THROUGH[2:]
    with pytest.raises(PctError, match="container uid 1000 is mapped twice"):
        check_idmap(entries, 100)


def test_gap_is_rejected():
    entries = [e for e in PASS_THROUGH if e != ("g", 1005, 1005, 1)]
    with pytest.raises(PctError, match="container gids 1005-1005 are not mapped"):
        check_idmap(entries, 100)


def test_short_map_is_rejected():
    with pytest.raises(PctError, match="container uids 1000-65535 are not mapped"):
        check_idmap([("u", 0, 100000, 1000), ("g", 0, 100000, 65536)], 100)


def test_missing_delegation_names_the_lines(tmp_path):
    (tmp_path / "subuid").write_text("root:100000:65536\n")
    (tmp_path / "subgid").write_text("root:100000:65536\nroot:1005:1\n")
    with pytest.raises(PctError) as error:
        check_idmap_delegation(PASS_THROUGH, 100, etc=tmp_path)
    message = str(error.value)
    assert f"'root:1005:1' to {tmp_path}/subuid" in message
    assert "subgid" not in message


def test_default_range_delegation(tmp_path):
    assert missing_subid_lines(100000, 65536, etc=tmp_path) == [
        f"root:100000:65536 in {tmp_path}/subuid", f"root:100000:65536 in {tmp_path}/subgid"]
    (tmp_path / "subuid").write_text("root:100000:200000\n")
    (tmp_path / "subgid").write_text("root:100000:65536\n")
    assert missing_subid_lines(100000, 65536, etc=tmp_path) == []


def test_malformed_entry():
    settings = SimpleNamespace(vmid=100, raw_lxc=(("lxc.idmap", "u 0 100000"),))
    with pytest.raises(PctError, match="lxc.idmap: invalid entry 'u 0 100000'"):
        raw_idmap(settings)
