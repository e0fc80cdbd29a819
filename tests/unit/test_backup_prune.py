"""Retention rules: which archives the keep-* options keep, and their parsing."""

import time

import pytest

from pct.backup.names import ArchiveName, archive_name, parse_archive_name
from pct.backup.prune import mark_archives, parse_prune_options
from pct.errors import ParameterError


def archive_at(stamp: str, vmid: int = 100) -> ArchiveName:
    """Return the archive of *vmid* started at local time ``YYYY-MM-DD HH:MM``."""
    ctime = int(time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M")))
    return archive_name(vmid, ctime, "zstd")


def kept(archives, options: str, protected=()):
    marks = mark_archives(archives, parse_prune_options(options), lambda archive: archive.name in protected)
    return {time.strftime("%Y-%m-%d %H:%M", time.localtime(mark.archive.ctime)): mark.mark for mark in marks}


DAYS = [archive_at(stamp) for stamp in
        ("2024-03-01 10:00", "2024-03-01 12:00", "2024-03-02 09:00", "2024-03-03 08:00", "2024-03-03 20:00")]


def test_keep_last():
    marks = kept(DAYS, "keep-last=3")
    assert [marks[s] for s in sorted(marks)] == ["remove", "remove", "keep", "keep", "keep"]


def test_keep_daily_keeps_newest_per_day():
    marks = kept(DAYS, "keep-daily=2")
    assert marks["2024-03-03 20:00"] == "keep"
    assert marks["2024-03-03 08:00"] == "remove"
    assert marks["2024-03-02 09:00"] == "keep"
    assert marks["2024-03-01 12:00"] == "remove"
    assert marks["2024-03-01 10:00"] == "remove"


def test_rule_skips_bucket_kept_by_earlier_rule():
    marks = kept(DAYS, "keep-last=1,keep-daily=2")
    assert marks["2024-03-03 20:00"] == "keep"
    assert marks["2024-03-03 08:00"] == "remove"
    assert marks["2024-03-02 09:00"] == "keep"
    assert marks["2024-03-01 12:00"] == "keep"
    assert marks["2024-03-01 10:00"] == "remove"


def test_keep_weekly_and_monthly():
    archives = [archive_at(stamp) for stamp in
                ("2024-01-15 01:00", "2024-02-05 01:00", "2024-02-06 01:00", "2024-02-20 01:00")]
    marks = kept(archives, "keep-weekly=2,keep-monthly=2")
    assert marks["2024-02-20 01:00"] == "keep"
    assert marks["2024-02-06 01:00"] == "keep"
    assert marks["2024-02-05 01:00"] == "remove"
    assert marks["2024-01-15 01:00"] == "keep"


def test_keep_hourly_and_yearly():
    archives = [archive_at(stamp) for stamp in
                ("2022-06-01 10:00", "2023-06-01 10:00", "2024-06-01 10:05", "2024-06-01 10:40", "2024-06-01 11:00")]
    marks = kept(archives, "keep-hourly=1,keep-yearly=3")
    assert marks["2024-06-01 11:00"] == "keep"
    assert marks["2024-06-01 10:40"] == "remove"
    assert marks["2024-06-01 10:05"] == "remove"
    assert marks["2023-06-01 10:00"] == "keep"
    assert marks["2022-06-01 10:00"] == "keep"


def test_protected_archive_kept_and_not_counted():
    marks = kept(DAYS, "keep-last=1", protected={DAYS[-1].name})
    assert marks["2024-03-03 20:00"] == "protected"
    assert marks["2024-03-03 08:00"] == "keep"
    assert marks["2024-03-02 09:00"] == "remove"


def test_no_rule_or_keep_all_keeps_everything():
    assert set(kept(DAYS, "").values()) == {"keep"}
    assert set(kept(DAYS, "keep-all=1").values()) == {"keep"}


@pytest.mark.parametrize("text,fragment", [
    ("keep-often=2", "unknown key 'keep-often'"),
    ("keep-last=two", "keep-last: invalid value 'two'"),
    ("keep-all=1,keep-last=2", "cannot be combined"),
])
def test_invalid_prune_options(text, fragment):
    with pytest.raises(ParameterError) as error:
        parse_prune_options(text)
    assert fragment in str(error.value)


def test_archive_name_round_trip():
    name = archive_at("2024-03-03 20:00", vmid=12345)
    assert name.name == "vzdump-lxc-12345-2024_03_03-20_00_00.tar.zst"
    assert name.log_name == "vzdump-lxc-12345-2024_03_03-20_00_00.log"
    parsed = parse_archive_name(name.name)
    assert (parsed.vmid, parsed.ctime) == (12345, name.ctime)
    assert parse_archive_name("vzdump-qemu-100-2024_03_03-20_00_00.vma.zst") is None
    assert parse_archive_name("vzdump-lxc-100-2024_03_03-20_00_00.tar.zst.tmp") is None
