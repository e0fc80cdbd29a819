"""Benchmark starting many containers with pct against raw LXC, and a Debian boot.

Run as root from the repository:

    /work/main/.venv/bin/python bench/density.py [--count N] [--json FILE]

1. Density: N busybox containers (``onboot 1``, ``memory 64``, no network
   device, directory volumes) are started with ``pct startall``. The script
   records the wall time, the drop of MemAvailable in /proc/meminfo divided by
   N, and the mean memory usage of the containers' cgroups. ``pct stopall``
   then shuts them down, also timed. The raw side does the same for the same
   containers: a bind mount of each directory volume and ``lxc-start -d`` with
   the LXC config that pct generated, then ``lxc-stop -k`` and ``umount``.
2. Debian boot: one container from the cached Debian 12 template, timed from
   the start command until ``systemctl is-system-running`` prints ``running``
   or ``degraded``. pct starts it with ``pct start`` and polls with ``pct
   exec``. The raw side loop-mounts the same image, runs ``lxc-start -d`` and
   polls with ``lxc-attach``. Both poll every 0.1 s, and the script reports
   the median of 3 boots each.

Everything lives below a private root ``/var/tmp/pct-density-XXXX`` (mode 755,
PCT_ROOT for pct and a separate lxcpath for the raw side). The containers use
ids 61000 to 61999 and have no network device. Containers, mounts, loop
devices and the root are removed at the end, also when the run fails or is
interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# The helpers of the pct-against-LXC benchmark next to this file.
from run import (ATTACH_OPTIONS, BUSYBOX_TEMPLATE, PCT, PVEAM, TEMPLATE_CACHE, BenchmarkError,
                 loop_devices_below, machine_description, mounts_below, output_of, running_names, timed,
                 unmount)

BENCH_BASE = Path("/var/tmp")
FIRST_VMID = 61000
DEBIAN_VMID = 61900
MAX_COUNT = DEBIAN_VMID - FIRST_VMID
DEFAULT_COUNT = 100
CONTAINER_MEMORY_MIB = 64
DEBIAN_ROOTFS_GIB = 4
DEBIAN_BOOTS = 3
MIB = 1024 ** 2

# Wait after the last start before memory is read, to give each init time to run its rcS.
SETTLE_SECONDS = 2.0
POLL_SECONDS = 0.1
BOOT_TIMEOUT_SECONDS = 120.0
BOOTED_STATES = ("running", "degraded")


@dataclass
class Row:
    """One line of the result table: a pct figure against the raw one, in *unit*."""

    name: str
    unit: str
    pct: float
    raw: float
    pct_samples: list[float] = field(default_factory=list)
    raw_samples: list[float] = field(default_factory=list)

    def as_json(self) -> dict:
        data = {"name": self.name, "unit": self.unit, "pct": round(self.pct, 2), "raw": round(self.raw, 2),
                "difference": round(self.pct - self.raw, 2),
                "ratio": round(self.pct / self.raw, 3) if self.raw else None}
        if self.pct_samples:
            data["pct_samples"] = [round(sample, 2) for sample in self.pct_samples]
            data["raw_samples"] = [round(sample, 2) for sample in self.raw_samples]
        return data


class Bench:
    """The private root, the pct runner and the cleanup of everything below the root."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pct-density-", dir=BENCH_BASE))
        # An unprivileged container's root user must be able to reach its rootfs.
        os.chmod(self.root, 0o755)
        # As in bench/run.py: pct runs from cached bytecode kept below the root.
        self.env = dict(os.environ, PCT_ROOT=str(self.root), PYTHONPYCACHEPREFIX=str(self.root / "pycache"))
        self.env.pop("PCT_DEBUG", None)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.lxc_path = self.root / "var/lib/lxc"
        self.raw_lxc_path = self.root / "raw-lxc"

    def pct(self, *args: str) -> float:
        """Run a pct command and return its wall time in seconds, raising BenchmarkError if it fails."""
        return timed([PCT, *args], env=self.env)

    def cleanup(self) -> None:
        """Stop the containers, unmount, detach loop devices and remove the root."""
        for lxc_path in (self.lxc_path, self.raw_lxc_path):
            for vmid in running_names(lxc_path):
                subprocess.run(["lxc-stop", "-P", str(lxc_path), "-n", vmid, "-k"], capture_output=True)
        for mount_point in sorted(mounts_below(self.root), key=len, reverse=True):
            if subprocess.run(["umount", mount_point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mount_point], capture_output=True)
        for device in loop_devices_below(self.root):
            subprocess.run(["losetup", "-d", device], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


# -- host and cgroup memory ------------------------------------------------------------

def mem_available() -> int:
    """Return MemAvailable from /proc/meminfo in bytes."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise BenchmarkError("MemAvailable missing from /proc/meminfo")


def cgroup_memory_usage(lxc_path: Path, vmid: int) -> int:
    """Return the memory usage in bytes of the cgroup that the container's init runs in.

    Reads memory.usage_in_bytes of the cgroup v1 memory controller, or
    memory.current where the memory controller is on cgroup v2.
    """
    pid = output_of(["lxc-info", "-P", str(lxc_path), "-n", str(vmid), "-p", "-H"]).strip()
    unified = None
    with open(f"/proc/{pid}/cgroup") as table:
        for line in table:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                directory = Path("/sys/fs/cgroup") / controllers / path.lstrip("/")
                return int((directory / "memory.usage_in_bytes").read_text())
            if not controllers:
                unified = path
    if unified is None:
        raise BenchmarkError(f"CT {vmid}: no memory cgroup found for init (PID {pid})")
    base = Path("/sys/fs/cgroup")
    if not (base / "cgroup.controllers").exists():
        base = base / "unified"
    return int((base / unified.lstrip("/") / "memory.current").read_text())


@dataclass
class DensitySample:
    """One side's start of all containers: wall time and memory figures."""

    start_seconds: float
    mem_available_drop: int
    cgroup_usage_total: int
    stop_seconds: float = 0.0


def measure_memory(lxc_path: Path, vmids: list[int], available_before: int) -> tuple[int, int]:
    """Return (MemAvailable drop, total cgroup usage) in bytes once the containers have settled."""
    time.sleep(SETTLE_SECONDS)
    drop = available_before - mem_available()
    usage = sum(cgroup_memory_usage(lxc_path, vmid) for vmid in vmids)
    return drop, usage


# -- density: pct startall against a raw lxc-start loop ---------------------------------

def create_busybox_containers(bench: Bench, count: int) -> list[int]:
    vmids = [FIRST_VMID + offset for offset in range(count)]
    for vmid in vmids:
        bench.pct("create", str(vmid), BUSYBOX_TEMPLATE, "--hostname", f"density-{vmid}", "--rootfs", "local:0",
                  "--memory", str(CONTAINER_MEMORY_MIB), "--onboot", "1")
    return vmids


def check_running(lxc_path: Path, vmids: list[int]) -> None:
    missing = sorted(set(map(str, vmids)) - set(running_names(lxc_path)))
    if missing:
        raise BenchmarkError(f"{len(missing)} containers are not running below {lxc_path}: {', '.join(missing)}")


def measure_pct_density(bench: Bench, vmids: list[int]) -> DensitySample:
    available_before = mem_available()
    start_seconds = bench.pct("startall")
    check_running(bench.lxc_path, vmids)
    drop, usage = measure_memory(bench.lxc_path, vmids, available_before)
    sample = DensitySample(start_seconds, drop, usage)
    sample.stop_seconds = bench.pct("stopall")
    if running_names(bench.lxc_path):
        raise BenchmarkError(f"containers still running after pct stopall: {running_names(bench.lxc_path)}")
    return sample


def directory_volume(bench: Bench, vmid: int) -> Path:
    """Return the directory of the container's ``local:0`` root volume."""
    volumes = sorted((bench.root / "var/lib/vz/images" / str(vmid)).glob("subvol-*"))
    if len(volumes) != 1 or not volumes[0].is_dir():
        raise BenchmarkError(f"expected one directory volume for CT {vmid}, found {volumes}")
    return volumes[0]


def prepare_raw_config(bench: Bench, vmid: int) -> Path:
    """Copy pct's generated LXC config to the raw lxcpath and return the raw rootfs directory.

    As in bench/run.py, the copy differs in two lines: ``lxc.rootfs.path``
    points into the raw lxcpath, and pct's post-stop hook is left out because
    the raw side unmounts with umount itself.
    """
    generated = (bench.lxc_path / str(vmid) / "config").read_text()
    raw_dir = bench.raw_lxc_path / str(vmid)
    rootfs = raw_dir / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    for directory in (bench.raw_lxc_path, raw_dir, rootfs):
        os.chmod(directory, 0o755)

    lines = []
    for line in generated.splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "lxc.hook.post-stop":
            continue
        if key == "lxc.rootfs.path":
            line = f"lxc.rootfs.path = {rootfs}"
        lines.append(line)
    (raw_dir / "config").write_text("\n".join(lines) + "\n")
    return rootfs


def measure_raw_density(bench: Bench, vmids: list[int]) -> DensitySample:
    """Bind-mount each volume and run ``lxc-start -d``, as pct does for directory volumes."""
    targets = {vmid: (directory_volume(bench, vmid), prepare_raw_config(bench, vmid)) for vmid in vmids}
    raw_path = str(bench.raw_lxc_path)

    available_before = mem_available()
    start = time.perf_counter()
    for vmid, (volume, rootfs) in targets.items():
        timed(["mount", "--bind", str(volume), str(rootfs)])
        timed(["lxc-start", "-P", raw_path, "-n", str(vmid), "-d"])
    start_seconds = time.perf_counter() - start
    check_running(bench.raw_lxc_path, vmids)
    drop, usage = measure_memory(bench.raw_lxc_path, vmids, available_before)
    sample = DensitySample(start_seconds, drop, usage)

    start = time.perf_counter()
    for vmid, (_, rootfs) in targets.items():
        timed(["lxc-stop", "-P", raw_path, "-n", str(vmid), "-k"])
        unmount(rootfs)
    sample.stop_seconds = time.perf_counter() - start
    return sample


def density_rows(count: int, pct: DensitySample, raw: DensitySample) -> list[Row]:
    return [
        Row(f"start {count} CTs (startall / lxc-start loop)", "s", pct.start_seconds, raw.start_seconds),
        Row("start, per container", "ms", pct.start_seconds / count * 1000, raw.start_seconds / count * 1000),
        Row("MemAvailable drop per container", "MiB", pct.mem_available_drop / count / MIB,
            raw.mem_available_drop / count / MIB),
        Row("cgroup memory usage per container", "MiB", pct.cgroup_usage_total / count / MIB,
            raw.cgroup_usage_total / count / MIB),
        Row(f"stop {count} CTs (stopall / lxc-stop -k loop)", "s", pct.stop_seconds, raw.stop_seconds),
    ]


# -- Debian boot to running ----------------------------------------------------------

def find_debian_template() -> Path | None:
    templates = sorted(TEMPLATE_CACHE.glob("debian-12-standard_*_amd64.tar.zst"))
    return templates[-1] if templates else None


def wait_booted(argv: list[str], env: dict[str, str] | None = None) -> None:
    """Run *argv* (``systemctl is-system-running`` in the guest) every 0.1 s until it prints a booted state."""
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    while True:
        result = subprocess.run(argv, env=env, capture_output=True, text=True)
        if result.stdout.strip() in BOOTED_STATES:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(f"boot timed out after {BOOT_TIMEOUT_SECONDS:.0f} s: {' '.join(argv)} "
                                 f"printed {result.stdout.strip()!r}, {result.stderr.strip()!r}")
        time.sleep(POLL_SECONDS)


def pct_boot(bench: Bench, vmid: int) -> float:
    # NOTE: each pct exec poll itself takes about 0.1 s, so pct's figure can be up to
    # about 0.2 s late where the raw lxc-attach poll is at most about 0.1 s late.
    start = time.perf_counter()
    bench.pct("start", str(vmid))
    wait_booted([PCT, "exec", str(vmid), "--", "systemctl", "is-system-running"], env=bench.env)
    elapsed = time.perf_counter() - start
    bench.pct("stop", str(vmid))
    return elapsed


def raw_boot(bench: Bench, vmid: int, image: Path, rootfs: Path) -> float:
    raw_path = str(bench.raw_lxc_path)
    start = time.perf_counter()
    timed(["mount", "-t", "ext4", "-o", "loop,rw", str(image), str(rootfs)])
    timed(["lxc-start", "-P", raw_path, "-n", str(vmid), "-d"])
    wait_booted(["lxc-attach", "-P", raw_path, "-n", str(vmid), *ATTACH_OPTIONS, "--",
                 "systemctl", "is-system-running"])
    elapsed = time.perf_counter() - start
    timed(["lxc-stop", "-P", raw_path, "-n", str(vmid), "-k"])
    unmount(rootfs)
    return elapsed


def measure_debian_boot(bench: Bench, template: Path) -> Row:
    vmid = DEBIAN_VMID
    bench.pct("create", str(vmid), str(template), "--hostname", "density-debian",
              "--rootfs", f"local:{DEBIAN_ROOTFS_GIB}")
    # One boot that is not counted writes the LXC config for the raw side and fills the page cache.
    pct_boot(bench, vmid)
    rootfs = prepare_raw_config(bench, vmid)
    images = sorted((bench.root / "var/lib/vz/images" / str(vmid)).glob("*.raw"))
    if len(images) != 1:
        raise BenchmarkError(f"expected one raw image for CT {vmid}, found {images}")

    row = Row("Debian 12 boot to running/degraded (median)", "ms", 0.0, 0.0)
    for _ in range(DEBIAN_BOOTS):
        row.pct_samples.append(pct_boot(bench, vmid) * 1000)
        row.raw_samples.append(raw_boot(bench, vmid, images[0], rootfs) * 1000)
    row.pct = statistics.median(row.pct_samples)
    row.raw = statistics.median(row.raw_samples)
    bench.pct("destroy", str(vmid))
    return row


# -- report -----------------------------------------------------------------------------

def format_table(rows: list[Row]) -> str:
    header = f"{'measurement':<48} {'unit':<4} {'pct':>9} {'raw':>9} {'pct - raw':>10} {'pct / raw':>10}"
    lines = [header, "-" * len(header)]
    for row in rows:
        decimals = 1 if row.unit == "ms" else 2
        ratio = f"{row.pct / row.raw:>10.2f}" if row.raw else f"{'-':>10}"
        lines.append(f"{row.name:<48} {row.unit:<4} {row.pct:>9.{decimals}f} {row.raw:>9.{decimals}f} "
                     f"{row.pct - row.raw:>10.{decimals}f} {ratio}")
    return "\n".join(lines)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark pct startall and a Debian boot against raw LXC "
                                                 "(needs root).")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help=f"busybox containers to start (default: {DEFAULT_COUNT})")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= MAX_COUNT:
        parser.error(f"--count must be between 1 and {MAX_COUNT}")
    return args


def _raise_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        print("bench/density.py must be run as root", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)

    machine = machine_description()
    template = find_debian_template()
    bench = Bench()
    print(f"root: {bench.root}", flush=True)
    try:
        timed([PVEAM, "build", "busybox"], env=bench.env)
        print(f"creating {args.count} busybox containers ...", flush=True)
        vmids = create_busybox_containers(bench, args.count)
        print("measuring pct startall and pct stopall ...", flush=True)
        pct_sample = measure_pct_density(bench, vmids)
        print("measuring the raw lxc-start and lxc-stop -k loops ...", flush=True)
        raw_sample = measure_raw_density(bench, vmids)
        rows = density_rows(args.count, pct_sample, raw_sample)
        if template is None:
            print(f"skipping the Debian boot: no debian-12-standard_*_amd64.tar.zst in {TEMPLATE_CACHE}",
                  flush=True)
        else:
            print(f"measuring {DEBIAN_BOOTS} Debian boots each ...", flush=True)
            rows.append(measure_debian_boot(bench, template))
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmark interrupted", file=sys.stderr)
        return 130
    finally:
        bench.cleanup()

    print()
    print(format_table(rows))
    print("\npct stopall shuts each guest down cleanly; the raw side stops with lxc-stop -k.")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"machine": machine, "count": args.count, "memory_mib": CONTAINER_MEMORY_MIB,
                  "debian_template": template.name if template else None,
                  "results": [row.as_json() for row in rows]}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
