"""Benchmark pct's storage operations against the plain commands doing the same work.

Run as root from the repository:

    /work/main/.venv/bin/python bench/storage.py [--sizes 100M,2G] [--json FILE]

For each data size, one container on a btrfs storage gets that much data in
its root file system. The script then times, each next to the raw command that
does the same work on the same data:

- ``pct snapshot`` against ``btrfs subvolume snapshot -r``,
- ``pct clone`` of a template (a linked clone) against ``btrfs subvolume snapshot``,
- ``pct clone --full --storage local`` (a real copy into an ext4 image) and
  ``pct clone --full`` on btrfs (copied with ``--reflink=auto``) against
  ``cp -a --reflink=never`` of the same tree,
- ``pct resize +1G`` of the btrfs volume against ``btrfs qgroup limit``, and of a
  raw image against ``truncate`` plus ``resize2fs``.

Snapshot and linked-clone times should not grow with the data. Everything lives
below ``/var/tmp/pct-bench-storage-XXXX``: a btrfs file system on a loop file and
the ``local`` dir storage. No container is started. Mounts, the loop device and
the directory are removed at the end, also when the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
PCT = str(VENV_BIN / "pct")
PVEAM = str(VENV_BIN / "pveam")
TEMPLATE = "local:vztmpl/busybox-test_1.0-1_amd64.tar.gz"
FIRST_VMID = 32000
CHUNK = 64 * 1024 ** 2
SIZE_UNITS = {"M": 1024 ** 2, "G": 1024 ** 3}
STORAGE_CFG = """dir: local
\tpath /var/lib/vz
\tcontent vztmpl,rootdir,images

btrfs: btr
\tpath /mnt/btr
\tcontent rootdir,images
"""


class Bench:
    """A private root with a btrfs storage, and the commands run against it."""

    def __init__(self, root: Path):
        self.root = root
        self.env = dict(os.environ, PCT_ROOT=str(root))
        self.image = root / "btrfs.img"
        self.btrfs = root / "mnt/btr"
        self.vmid = FIRST_VMID

    def run(self, *argv) -> float:
        """Run a command and return its wall-clock time in seconds."""
        started = time.perf_counter()
        subprocess.run([str(arg) for arg in argv], env=self.env, check=True, capture_output=True)
        return time.perf_counter() - started

    def new_vmid(self) -> int:
        self.vmid += 1
        return self.vmid

    def set_up(self, btrfs_size: str) -> None:
        self.btrfs.mkdir(parents=True)
        (self.root / "etc/pve").mkdir(parents=True)
        (self.root / "etc/pve/storage.cfg").write_text(STORAGE_CFG)
        subprocess.run(["truncate", "-s", btrfs_size, self.image], check=True)
        subprocess.run(["mkfs.btrfs", "-q", self.image], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", self.image, self.btrfs], check=True)
        self.run(PVEAM, "build", "busybox")

    def tear_down(self) -> None:
        mounts = []
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                point = line.split()[4]
                if point.startswith(str(self.root) + "/"):
                    mounts.append(point)
        for point in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", point], capture_output=True)
        for device in subprocess.run(["losetup", "-n", "-O", "NAME", "-j", self.image],
                                     capture_output=True, text=True).stdout.split():
            subprocess.run(["losetup", "-d", device], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def subvolume(self, vmid: int, name: str) -> Path:
        return self.btrfs / "images" / str(vmid) / name


def fill(directory: Path, size: int) -> None:
    """Write *size* bytes of incompressible data in 64 MiB files, then flush them to disk."""
    block = os.urandom(CHUNK)
    for number in range(max(1, size // CHUNK)):
        (directory / f"data-{number:04d}").write_bytes(block[: min(CHUNK, size)])
    os.sync()


def measure(bench: Bench, size: int) -> dict[str, float]:
    """Return the times of every pct operation and its raw counterpart for one data size."""
    gib = size // 1024 ** 3 + 2
    vmid = bench.new_vmid()
    bench.run(PCT, "create", vmid, TEMPLATE, "--rootfs", f"btr:{gib}", "--unprivileged", "0")
    rootfs = bench.subvolume(vmid, f"subvol-{vmid}-disk-0")
    fill(rootfs, size)

    times = {}
    times["pct snapshot"] = bench.run(PCT, "snapshot", vmid, "bench")
    times["btrfs subvolume snapshot -r"] = bench.run(
        "btrfs", "subvolume", "snapshot", "-r", rootfs, rootfs.with_name("raw-snapshot"))
    bench.run("btrfs", "subvolume", "delete", rootfs.with_name("raw-snapshot"))
    bench.run(PCT, "delsnapshot", vmid, "bench")

    times["pct resize +1G (btrfs qgroup)"] = bench.run(PCT, "resize", vmid, "rootfs", "+1G")
    times["btrfs qgroup limit"] = bench.run("btrfs", "qgroup", "limit", f"{gib + 2}G", rootfs)

    copy_target = bench.btrfs / f"copy-{vmid}"
    times["cp -a --reflink=never"] = bench.run("cp", "-a", "--reflink=never", f"{rootfs}/.", f"{copy_target}/")
    shutil.rmtree(copy_target)
    os.sync()

    full = bench.new_vmid()
    times["pct clone --full (btrfs, reflink)"] = bench.run(PCT, "clone", vmid, full, "--full")
    bench.run(PCT, "destroy", full)
    full_dir = bench.new_vmid()
    times["pct clone --full --storage local"] = bench.run(PCT, "clone", vmid, full_dir, "--full",
                                                          "--storage", "local")
    image = bench.root / f"var/lib/vz/images/{full_dir}/vm-{full_dir}-disk-0.raw"
    times["pct resize +1G (raw image)"] = bench.run(PCT, "resize", full_dir, "rootfs", "+1G")
    bench.run("truncate", "-s", "+1G", image)
    times["e2fsck + resize2fs"] = (bench.run("e2fsck", "-f", "-p", image)
                                   + bench.run("resize2fs", image))
    bench.run(PCT, "destroy", full_dir)

    bench.run(PCT, "template", vmid)
    linked = bench.new_vmid()
    base = bench.subvolume(vmid, f"basevol-{vmid}-disk-0")
    times["pct clone (linked)"] = bench.run(PCT, "clone", vmid, linked)
    times["btrfs subvolume snapshot"] = bench.run("btrfs", "subvolume", "snapshot", base,
                                                  base.with_name("raw-clone"))
    bench.run("btrfs", "subvolume", "delete", base.with_name("raw-clone"))
    bench.run(PCT, "destroy", linked)
    bench.run(PCT, "destroy", vmid)
    return times


PAIRS = [
    ("pct snapshot", "btrfs subvolume snapshot -r"),
    ("pct clone (linked)", "btrfs subvolume snapshot"),
    ("pct clone --full --storage local", "cp -a --reflink=never"),
    ("pct clone --full (btrfs, reflink)", "cp -a --reflink=never"),
    ("pct resize +1G (btrfs qgroup)", "btrfs qgroup limit"),
    ("pct resize +1G (raw image)", "e2fsck + resize2fs"),
]


def report(results: dict[str, dict[str, float]]) -> str:
    lines = [f"{'operation':<36} {'data':>6} {'pct s':>8} {'raw s':>8} {'ratio':>7}  raw command"]
    for label, raw in PAIRS:
        for size, times in results.items():
            ratio = times[label] / times[raw] if times[raw] else float("inf")
            lines.append(f"{label:<36} {size:>6} {times[label]:>8.3f} {times[raw]:>8.3f} {ratio:>7.2f}  {raw}")
    return "\n".join(lines)


def parse_size(text: str) -> int:
    return int(text[:-1]) * SIZE_UNITS[text[-1]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100M,2G", help="data sizes to test, comma separated (unit M or G)")
    parser.add_argument("--json", help="also write the times to this file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/storage.py: must be run as root", file=sys.stderr)
        return 1

    sizes = args.sizes.split(",")
    largest = max(parse_size(size) for size in sizes)
    root = Path(tempfile.mkdtemp(prefix="pct-bench-storage-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    bench = Bench(root)
    try:
        bench.set_up(f"{4 * largest // 1024 ** 3 + 4}G")
        results = {size: measure(bench, parse_size(size)) for size in sizes}
    finally:
        bench.tear_down()

    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
