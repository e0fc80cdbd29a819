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


CONTAINER_IDS = 65536


def raw_idmap(settings) -> list[tuple[str, int, int, int]]:
    """Return the raw ``lxc.idmap`` entries of *settings* as (u|g, container id, host id, count)."""
    entries = []
    for key, value in settings.raw_lxc:
        if key != "lxc.idmap":
            continue
        fields = value.split()
        if len(fields) != 4 or fields[0] not in ("u", "g") or not all(f.isdigit() for f in fields[1:]):
            raise PctError(f"CT {settings.vmid}: lxc.idmap: invalid entry '{value}'; expected "
                           "'u|g <container id> <host id> <count>'", settings.vmid)
        entries.append((fields[0], int(fields[1]), int(fields[2]), int(fields[3])))
    return entries


def check_idmap(entries: list[tuple[str, int, int, int]], vmid: int) -> None:
    """Raise PctError when the entries overlap or leave container ids 0-65535 unmapped."""
    for kind, name in (("u", "uid"), ("g", "gid")):
        ranges = sorted((start, count) for k, start, _, count in entries if k == kind)
        expected = 0
        for start, count in ranges:
            if start < expected:
                raise PctError(f"CT {vmid}: lxc.idmap: container {name} {start} is mapped twice", vmid)
            if start > expected:
                raise PctError(f"CT {vmid}: lxc.idmap: container {name}s {expected}-{start - 1} are not mapped",
                               vmid)
            expected = start + count
        if expected < CONTAINER_IDS:
            raise PctError(f"CT {vmid}: lxc.idmap: container {name}s {expected}-{CONTAINER_IDS - 1} "
                           "are not mapped", vmid)


def check_idmap_delegation(entries: list[tuple[str, int, int, int]], vmid: int, etc: Path = Path("/etc")) -> None:
    """Raise PctError listing every /etc/subuid or /etc/subgid line root needs for the entries."""
    missing = []
    for kind, _, host_id, count in entries:
        name = "subuid" if kind == "u" else "subgid"
        if not _range_delegated(etc / name, host_id, count):
            missing.append(f"'root:{host_id}:{count}' to {etc / name}")
    if missing:
        raise PctError(f"CT {vmid}: lxc.idmap maps host ids that root may not use: add "
                       + " and ".join(missing), vmid)
