"""Checks that the host delegates the id ranges unprivileged containers use."""

from __future__ import annotations

from pathlib import Path

from pct.errors import PctError


def missing_subid_lines(host_id: int, count: int, etc: Path = Path("/etc")) -> list[str]:
    """Return the ``/etc/subuid``/``/etc/subgid`` lines root needs and lacks."""
    missing = []
    for name in ("subuid", "subgid"):
        if not _range_delegated(etc / name, host_id, count):
            missing.append(f"root:{host_id}:{count} in {etc / name}")
    return missing


def _range_delegated(path: Path, host_id: int, count: int) -> bool:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return False
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in ("root", "0"):
            continue
        try:
            start, length = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if start <= host_id and host_id + count <= start + length:
            return True
    return False


def check_subid_ranges(host_id: int, count: int, vmid: int | None = None) -> None:
    """Raise PctError naming the missing lines when root may not map the range."""
    missing = missing_subid_lines(host_id, count)
    if missing:
        raise PctError("unprivileged containers need the host id range delegated to root: add "
                       + " and ".join(f"'{line}'" for line in missing), vmid)
