"""Retention of backups: which archives the ``keep-*`` rules keep and which they remove.

The rules are applied in the order keep-last, keep-hourly, keep-daily,
keep-weekly, keep-monthly, keep-yearly, to one container's archives sorted
newest first. keep-last keeps the newest N archives. Each other rule splits
time into buckets (an hour, a day, an ISO week, a month, a year) and keeps
the newest archive of each of the N newest buckets. A bucket that already
contains an archive kept by an earlier rule is skipped, so that archive is not
counted twice. Archives that no rule keeps are removed; protected archives
are always kept. Without any rule, or with ``keep-all=1``, every archive is
kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from pct.backup.names import ArchiveName
from pct.errors import ParameterError

RULES = ("keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")

# Rule -> the bucket an archive's local start time falls in.
_BUCKETS: dict[str, Callable[[time.struct_time], str]] = {
    "keep-hourly": lambda t: time.strftime("%Y/%m/%d/%H", t),
    "keep-daily": lambda t: time.strftime("%Y/%m/%d", t),
    "keep-weekly": lambda t: time.strftime("%G/%V", t),
    "keep-monthly": lambda t: time.strftime("%Y/%m", t),
    "keep-yearly": lambda t: time.strftime("%Y", t),
}


@dataclass(frozen=True)
class PruneMark:
    """The decision for one archive: ``keep``, ``remove`` or ``protected``."""

    archive: ArchiveName
    mark: str


def parse_prune_options(text: str) -> dict[str, int]:
    """Parse ``keep-last=3,keep-daily=7``; raise ParameterError naming the bad part."""
    rules: dict[str, int] = {}
    for part in [part.strip() for part in text.split(",") if part.strip()]:
        key, _, value = part.partition("=")
        if key not in RULES and key != "keep-all":
            raise ParameterError("prune-backups", f"unknown key '{key}' (expected keep-all or {', '.join(RULES)})")
        if not value.isdigit():
            raise ParameterError("prune-backups", f"{key}: invalid value '{value}' (expected a whole number)")
        rules[key] = int(value)
    if rules.get("keep-all") and any(rules.get(rule) for rule in RULES):
        raise ParameterError("prune-backups", "keep-all=1 cannot be combined with other keep options")
    return rules


def keeps_everything(rules: dict[str, int]) -> bool:
    return bool(rules.get("keep-all")) or not any(rules.get(rule) for rule in RULES)


def mark_archives(archives: list[ArchiveName], rules: dict[str, int],
                  protected: Callable[[ArchiveName], bool] = lambda archive: False) -> list[PruneMark]:
    """Return a mark for each archive of one container, newest first."""
    ordered = sorted(archives, key=lambda archive: (archive.ctime, archive.name), reverse=True)
    marks: dict[str, str] = {archive.name: "protected" for archive in ordered if protected(archive)}
    if keeps_everything(rules):
        return [PruneMark(archive, marks.get(archive.name, "keep")) for archive in ordered]

    candidates = [archive for archive in ordered if archive.name not in marks]
    for archive in candidates[:rules.get("keep-last", 0)]:
        marks[archive.name] = "keep"
    for rule, bucket_of in _BUCKETS.items():
        _apply_bucket_rule(candidates, rules.get(rule, 0), bucket_of, marks)
    return [PruneMark(archive, marks.get(archive.name, "remove")) for archive in ordered]


def _apply_bucket_rule(candidates: list[ArchiveName], count: int, bucket_of: Callable[[time.struct_time], str],
                       marks: dict[str, str]) -> None:
    """Keep the newest unmarked archive of each of the *count* newest buckets not already covered."""
    if not count:
        return
    covered = {bucket_of(time.localtime(archive.ctime)) for archive in candidates
               if marks.get(archive.name) == "keep"}
    chosen: set[str] = set()
    for archive in candidates:
        if archive.name in marks:
            continue
        bucket = bucket_of(time.localtime(archive.ctime))
        if bucket in covered:
            continue
        if bucket in chosen:
            marks[archive.name] = "remove"
            continue
        if len(chosen) >= count:
            break
        chosen.add(bucket)
        marks[archive.name] = "keep"


def prune_directory(target, vmid: int | None, rules: dict[str, int], dry_run: bool = False) -> list[PruneMark]:
    """Apply *rules* to the archives in *target* (a BackupTarget), per container; return every mark.

    Unless *dry_run*, each archive marked ``remove`` is deleted with its
    ``.log`` and ``.notes``.
    """
    by_vmid: dict[int, list[ArchiveName]] = {}
    for archive in target.archives(vmid):
        by_vmid.setdefault(archive.vmid, []).append(archive)

    def protected(archive: ArchiveName) -> bool:
        return (target.directory / archive.protected_name).exists()

    marks: list[PruneMark] = []
    for owner in sorted(by_vmid):
        marks += mark_archives(by_vmid[owner], rules, protected)
    if not dry_run:
        for mark in marks:
            if mark.mark == "remove":
                for name in (mark.archive.name, mark.archive.log_name, mark.archive.notes_name):
                    (target.directory / name).unlink(missing_ok=True)
    return marks
