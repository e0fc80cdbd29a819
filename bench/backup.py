"""Benchmark vzdump and pct restore against plain tar and zstd on the same tree.

Run as root from the repository:

    /work/main/.venv/bin/python bench/backup.py [--runs 3] [--json FILE]

One privileged container is created from the Debian 12 template below a
private root ``/var/tmp/pct-bench-backup-XXXX``, with id 33000. The script then
times, in alternating rounds:

- ``vzdump 33000 --mode stop --compress zstd --zstd <CPUs>`` (the container
  is stopped) against a read-only loop mount of the container's image,
  ``tar --numeric-owner -cpf - . | zstd -T0`` of that tree and ``umount``;
  both sides mount the volume and compress with one thread per CPU,
- ``pct restore 33001 <archive> --storage local`` against a new 4 GiB image
  (truncate, ``mkfs.ext4``, loop mount) plus ``zstd -dc <archive> | tar -xpf -``
  and ``umount``.

vzdump also stores extended attributes and ACLs and writes a log and the
config entry, which the plain tar does not. Everything is
removed at the end, also when the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402  (the sibling benchmark's helpers)
    BenchmarkError,
    Comparison,
    find_debian_template,
    format_table,
    machine_description,
    mounts_below,
    timed,
    unmount,
)

VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
VMID = 33000
RESTORED = 33001


class BackupBench:
    """A private root with one Debian container and a dump directory."""

    def __init__(self, root: Path):
        self.root = root
        self.env = dict(os.environ, PCT_ROOT=str(root))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.dumps = root / "dumps"
        self.dumps.mkdir()
        self.mount_point = root / "raw-mount"
        self.mount_point.mkdir()

    def tool(self, name: str, *args: str) -> list[str]:
        return [str(VENV_BIN / name), *map(str, args)]

    def image(self, vmid: int) -> Path:
        return self.root / f"var/lib/vz/images/{vmid}/vm-{vmid}-disk-0.raw"

    def clear_dumps(self) -> None:
        for path in self.dumps.iterdir():
            path.unlink()

    def archive(self) -> Path:
        return next(path for path in self.dumps.iterdir() if path.name.endswith(".tar.zst"))


def raw_backup(bench: BackupBench, output: Path) -> float:
    """Return the time to mount the image read-only, archive it with tar and zstd, and unmount."""
    started = time.perf_counter()
    subprocess.run(["mount", "-o", "loop,ro", str(bench.image(VMID)), str(bench.mount_point)], check=True)
    try:
        command = f"tar --numeric-owner -cpf - . | zstd -q -T0 > {output}"
        subprocess.run(["sh", "-c", command], cwd=bench.mount_point, check=True)
    finally:
        unmount(bench.mount_point)
    return time.perf_counter() - started


def raw_restore(bench: BackupBench, archive: Path) -> float:
    image = bench.root / "raw-restore.raw"
    started = time.perf_counter()
    with open(image, "wb") as sparse:
        sparse.truncate(4 << 30)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(bench.mount_point)], check=True)
    try:
        subprocess.run(["sh", "-c", f"zstd -dc {archive} | tar -xpf -"], cwd=bench.mount_point, check=True)
    finally:
        unmount(bench.mount_point)
    elapsed = time.perf_counter() - started
    image.unlink()
    return elapsed


def measure(bench: BackupBench, runs: int) -> list[Comparison]:
    threads = str(os.cpu_count() or 1)
    backup = Comparison("vzdump stop zstd vs tar | zstd -T0", f"vzdump --mode stop --compress zstd --zstd {threads}",
                        "tar --numeric-owner -cpf - . | zstd -T0", "pct / raw <= 1.2", max_ratio=1.2)
    restore = Comparison("pct restore vs zstd -dc | tar -x", "pct restore --storage local",
                         "new image + zstd -dc | tar -xpf -", "pct / raw <= 1.3", max_ratio=1.3)
    raw_archive = bench.root / "raw.tar.zst"
    for _ in range(runs):
        bench.clear_dumps()
        backup.raw.append(raw_backup(bench, raw_archive))
        raw_archive.unlink()
        backup.pct.append(timed(bench.tool("vzdump", VMID, "--mode", "stop", "--compress", "zstd",
                                           "--zstd", threads, "--dumpdir", bench.dumps), bench.env))
        archive = bench.archive()
        restore.raw.append(raw_restore(bench, archive))
        restore.pct.append(timed(bench.tool("pct", "restore", RESTORED, archive, "--storage", "local"),
                                 bench.env))
        timed(bench.tool("pct", "destroy", RESTORED), bench.env)
    return [backup, restore]


def clean_up(bench: BackupBench) -> None:
    for vmid in (VMID, RESTORED):
        subprocess.run(bench.tool("pct", "destroy", vmid, "--force", "1"), env=bench.env, capture_output=True)
    for mount_point in sorted(mounts_below(bench.root), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], capture_output=True)
    shutil.rmtree(bench.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="samples of each measurement (default 3)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    template = find_debian_template()
    root = Path(tempfile.mkdtemp(prefix="pct-bench-backup-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    bench = BackupBench(root)
    try:
        timed(bench.tool("pct", "create", VMID, template, "--unprivileged", "0"), bench.env)
        subprocess.run(["cat", str(template)], stdout=subprocess.DEVNULL, check=True)
        rows = measure(bench, args.runs)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        clean_up(bench)

    print(format_table(rows))
    if args.json:
        results = {"machine": machine_description(),
                   "rows": [{"name": row.name, "pct_ms": row.pct_median_ms(), "raw_ms": row.raw_median_ms(),
                             "pct": row.pct, "raw": row.raw, "target": row.target, "result": row.verdict()}
                            for row in rows]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
