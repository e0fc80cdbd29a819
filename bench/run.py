"""Benchmark pct against raw LXC doing the same work, and print the medians.

Run as root from the repository:

    /work/main/.venv/bin/python bench/run.py [--runs N] [--creates N] [--json FILE]

Everything lives below a private root ``/var/tmp/pct-bench-XXXX`` (PCT_ROOT for
pct, a separate lxcpath for the raw LXC side). The containers use ids 31000 to
31999 and have no network device. Containers, mounts, loop devices and the root
are removed at the end, also when the run fails or is interrupted.

A target that is missed is printed as MISS; the exit status is 0 unless the
benchmark itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
PCT = str(VENV_BIN / "pct")
PVEAM = str(VENV_BIN / "pveam")
PYTHON = str(VENV_BIN / "python")

BENCH_BASE = Path("/var/tmp")
TEMPLATE_CACHE = Path("/var/cache/pct-tests")
BUSYBOX_TEMPLATE = "local:vztmpl/busybox-test_1.0-1_amd64.tar.gz"

START_VMID = 31000
LISTING_FIRST_VMID = 31001
CREATE_FIRST_VMID = 31900
CREATE_ROOTFS_GIB = 4
GIB = 1024 ** 3

# The busybox template has no "true" applet link, so both sides call busybox directly.
EXEC_COMMAND = ["/bin/busybox", "true"]
# pct exec runs lxc-attach with these options, so the raw side passes the same ones.
ATTACH_OPTIONS = ["--clear-env", "--set-var", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "--set-var", "HOME=/root"]
# pct create runs tar with these options (pct/appliance/extract.py).
TAR_OPTIONS = ["--numeric-owner", "--xattrs", "--xattrs-include=*", "--same-permissions", "--sparse"]
UMOUNT_BUSY_TIMEOUT = 5.0


class BenchmarkError(Exception):
    """A command the benchmark depends on failed, so its figures would be wrong."""


@dataclass
class Comparison:
    """One row of the result table: pct's samples against the raw side's, in seconds."""

    name: str
    pct_command: str
    raw_command: str
    target: str
    max_difference_ms: float | None = None
    max_pct_ms: float | None = None
    max_ratio: float | None = None
    pct: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)

    def pct_median_ms(self) -> float:
        return statistics.median(self.pct) * 1000

    def raw_median_ms(self) -> float:
        return statistics.median(self.raw) * 1000

    def verdict(self) -> str:
        pct_ms, raw_ms = self.pct_median_ms(), self.raw_median_ms()
        if self.max_difference_ms is not None:
            return "PASS" if pct_ms - raw_ms <= self.max_difference_ms else "MISS"
        if self.max_pct_ms is not None:
            return "PASS" if pct_ms < self.max_pct_ms else "MISS"
        if self.max_ratio is not None:
            return "PASS" if pct_ms / raw_ms <= self.max_ratio else "MISS"
        return "-"

    def as_json(self) -> dict:
        return {
            "name": self.name, "pct_command": self.pct_command, "raw_command": self.raw_command,
            "pct_ms": [round(s * 1000, 2) for s in self.pct], "raw_ms": [round(s * 1000, 2) for s in self.raw],
            "pct_median_ms": round(self.pct_median_ms(), 2), "raw_median_ms": round(self.raw_median_ms(), 2),
            "difference_ms": round(self.pct_median_ms() - self.raw_median_ms(), 2),
            "ratio": round(self.pct_median_ms() / self.raw_median_ms(), 3),
            "target": self.target, "verdict": self.verdict(),
        }


class Bench:
    """The private root, the pct runner and the record of what must be cleaned up."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pct-bench-", dir=BENCH_BASE))
        # An unprivileged container's root user must be able to reach its rootfs.
        os.chmod(self.root, 0o755)
        # Bytecode is cached below the root, as an installed package has its .pyc
        # files, without writing __pycache__ folders into the source tree.
        self.env = dict(os.environ, PCT_ROOT=str(self.root), PYTHONPYCACHEPREFIX=str(self.root / "pycache"))
        self.env.pop("PCT_DEBUG", None)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.lxc_path = self.root / "var/lib/lxc"
        self.raw_lxc_path = self.root / "raw-lxc"
        self.raw_images = self.root / "raw-images"

    def pct(self, *args: str, tool: str = PCT) -> float:
        """Run a pct command and return its wall time in seconds; raise if it fails."""
        return timed([tool, *args], env=self.env)

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


# -- process and system helpers ------------------------------------------------------

def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Run *argv* with its output captured and return its wall time in seconds."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchmarkError(f"command failed with status {result.returncode}: {' '.join(argv)}\n"
                             f"{(result.stderr or result.stdout).strip()}")
    return elapsed


def output_of(argv: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchmarkError(f"command failed with status {result.returncode}: {' '.join(argv)}\n"
                             f"{result.stderr.strip()}")
    return result.stdout


def unmount(mount_point: Path) -> None:
    """Unmount, retrying while an exiting process keeps the mount busy, as pct does."""
    deadline = time.monotonic() + UMOUNT_BUSY_TIMEOUT
    while True:
        result = subprocess.run(["umount", str(mount_point)], capture_output=True, text=True)
        if result.returncode == 0:
            return
        if "busy" not in result.stderr or time.monotonic() > deadline:
            raise BenchmarkError(f"umount {mount_point} failed: {result.stderr.strip()}")
        time.sleep(0.02)


def mounts_below(path: Path) -> list[str]:
    prefix = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(mount_point)
    return found


def loop_devices_below(path: Path) -> list[str]:
    result = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True)
    prefix = os.path.realpath(path) + "/"
    return [line.split()[0] for line in result.stdout.splitlines()
            if len(line.split()) > 1 and line.split(None, 1)[1].startswith(prefix)]


def running_names(lxc_path: Path) -> list[str]:
    """Return the names of the containers whose LXC monitor listens below *lxc_path*."""
    prefix = f"@{lxc_path}/"
    names = []
    with open("/proc/net/unix") as table:
        for line in table:
            name = line.rstrip("\n").rsplit(" ", 1)[-1]
            if name.startswith(prefix) and name.endswith("/command"):
                names.append(name[len(prefix):-len("/command")])
    return names


def machine_description() -> dict:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    lxc_version = output_of(["lxc-start", "--version"]).strip()
    cpu_model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu_model": cpu_model, "memory_gib": round(total_kib / 1024 ** 2, 1),
            "kernel": platform.release(), "lxc_version": lxc_version, "python": platform.python_version()}


# -- start, stop and exec ---------------------------------------------------------------

def prepare_raw_container(bench: Bench, vmid: int) -> tuple[Path, Path]:
    """Copy pct's generated LXC config to the raw lxcpath and return (image, rootfs).

    The copy differs in two lines only: the rootfs path points into the raw
    lxcpath, and pct's post-stop hook (a Python process that unmounts the
    volume) is left out because the raw side unmounts with umount itself.
    """
    generated = (bench.lxc_path / str(vmid) / "config").read_text()
    raw_dir = bench.raw_lxc_path / str(vmid)
    rootfs = raw_dir / "rootfs"
    rootfs.mkdir(parents=True)
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

    images = sorted((bench.root / "var/lib/vz/images" / str(vmid)).glob("*.raw"))
    if len(images) != 1:
        raise BenchmarkError(f"expected one raw image for CT {vmid}, found {images}")
    return images[0], rootfs


def raw_start(bench: Bench, vmid: int, image: Path, rootfs: Path) -> float:
    start = time.perf_counter()
    timed(["mount", "-t", "ext4", "-o", "loop,rw", str(image), str(rootfs)])
    timed(["lxc-start", "-P", str(bench.raw_lxc_path), "-n", str(vmid), "-d"])
    timed(["lxc-wait", "-P", str(bench.raw_lxc_path), "-n", str(vmid), "-s", "RUNNING", "-t", "30"])
    return time.perf_counter() - start


def raw_stop(bench: Bench, vmid: int, rootfs: Path) -> float:
    start = time.perf_counter()
    timed(["lxc-stop", "-P", str(bench.raw_lxc_path), "-n", str(vmid), "-k"])
    unmount(rootfs)
    return time.perf_counter() - start


def measure_lifecycle(bench: Bench, runs: int) -> list[Comparison]:
    """Alternate pct start/exec/stop and the raw LXC equivalents on one busybox container."""
    vmid = str(START_VMID)
    start = Comparison("start", "pct start", "mount -o loop + lxc-start -d + lxc-wait -s RUNNING",
                       "pct - raw <= 100 ms", max_difference_ms=100)
    stop = Comparison("stop", "pct stop", "lxc-stop -k + umount", "pct - raw <= 100 ms", max_difference_ms=100)
    exec_row = Comparison("exec", "pct exec -- busybox true", "lxc-attach -- busybox true",
                          "pct - raw <= 50 ms", max_difference_ms=50)

    bench.pct("create", vmid, BUSYBOX_TEMPLATE, "--hostname", "bench-start", "--rootfs", "local:0.1")
    # One start writes the LXC config that the raw side copies; it is not counted.
    bench.pct("start", vmid)
    bench.pct("stop", vmid)
    image, raw_rootfs = prepare_raw_container(bench, START_VMID)

    attach = ["lxc-attach", "-P", str(bench.lxc_path), "-n", vmid, *ATTACH_OPTIONS, "--", *EXEC_COMMAND]
    for _ in range(runs):
        start.pct.append(bench.pct("start", vmid))
        exec_row.pct.append(bench.pct("exec", vmid, "--", *EXEC_COMMAND))
        exec_row.raw.append(timed(attach))
        stop.pct.append(bench.pct("stop", vmid))

        start.raw.append(raw_start(bench, START_VMID, image, raw_rootfs))
        stop.raw.append(raw_stop(bench, START_VMID, raw_rootfs))
    return [start, stop, exec_row]


# -- status, config and list ----------------------------------------------------------------

def define_containers(bench: Bench, count: int) -> None:
    """Create *count* - 1 busybox containers next to the start container.

    They get directory volumes, which are faster to create than ext4 images.
    """
    for offset in range(count - 1):
        vmid = LISTING_FIRST_VMID + offset
        bench.pct("create", str(vmid), BUSYBOX_TEMPLATE, "--hostname", f"bench-{vmid}", "--rootfs", "local:0")


def measure_inspection(bench: Bench, runs: int, count: int) -> list[Comparison]:
    define_containers(bench, count)
    vmid = str(START_VMID)
    baseline = "python -c pass"
    rows = [
        Comparison("status", f"pct status ({count} CTs)", baseline, "pct < 100 ms", max_pct_ms=100),
        Comparison("config", f"pct config ({count} CTs)", baseline, "pct < 100 ms", max_pct_ms=100),
        Comparison("list", f"pct list ({count} CTs)", baseline, "pct < 100 ms", max_pct_ms=100),
    ]
    arguments = {"status": ["status", vmid], "config": ["config", vmid], "list": ["list"]}
    for _ in range(runs):
        for row in rows:
            row.pct.append(bench.pct(*arguments[row.name]))
            row.raw.append(timed([PYTHON, "-c", "pass"], env=bench.env))
    return rows


def profile_imports(bench: Bench, limit: int = 12) -> list[dict]:
    """Return the modules with the largest cumulative import time during ``pct status``."""
    result = subprocess.run([PYTHON, "-X", "importtime", PCT, "status", str(START_VMID)], env=bench.env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchmarkError(f"pct status with -X importtime failed: {result.stderr.strip()[-500:]}")
    entries = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        # "import time: SELF | CUMULATIVE | NAME", NAME indented two spaces per nesting level.
        self_field, cumulative_field, name_field = line.split("|", 2)
        entries.append({"module": name_field[1:].rstrip(), "self_us": int(self_field.split(":")[1]),
                        "cumulative_us": int(cumulative_field)})
    top_level = [entry for entry in entries if not entry["module"].startswith(" ")]
    top_level.sort(key=lambda entry: entry["cumulative_us"], reverse=True)
    return top_level[:limit]


# -- create -----------------------------------------------------------------------------

def find_debian_template() -> Path:
    existing = sorted(TEMPLATE_CACHE.glob("debian-12-standard_*_amd64.tar.zst"))
    if existing:
        return existing[-1]
    from pct.appliance.debian import build_debian_template

    return build_debian_template(TEMPLATE_CACHE)


def raw_create(bench: Bench, template: Path, number: int) -> tuple[float, float]:
    """Make an ext4 image, loop-mount it, unpack the template and unmount it.

    Returns the seconds of the whole sequence and of the unpacking alone.
    """
    bench.raw_images.mkdir(exist_ok=True)
    image = bench.raw_images / f"raw-{number}.raw"
    mount_point = bench.raw_images / f"mnt-{number}"
    mount_point.mkdir()

    start = time.perf_counter()
    with open(image, "xb") as handle:
        handle.truncate(CREATE_ROOTFS_GIB * GIB)
    timed(["mkfs.ext4", "-q", "-F", str(image)])
    timed(["mount", "-t", "ext4", "-o", "loop,rw", str(image), str(mount_point)])
    extract_start = time.perf_counter()
    decompress = subprocess.Popen(["zstd", "-dc", str(template)], stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "-x", "-f", "-", *TAR_OPTIONS, "-C", str(mount_point)],
                         stdin=decompress.stdout, capture_output=True, text=True)
    decompress.stdout.close()
    if decompress.wait() != 0 or tar.returncode != 0:
        raise BenchmarkError(f"zstd -dc {template} | tar -x failed: {tar.stderr.strip()}")
    extract = time.perf_counter() - extract_start
    unmount(mount_point)
    total = time.perf_counter() - start

    image.unlink()
    mount_point.rmdir()
    return total, extract


def measure_create(bench: Bench, creates: int) -> list[Comparison]:
    template = find_debian_template()
    # Read the template once so that no side pays for the first read from disk.
    with open(template, "rb") as handle:
        while handle.read(1 << 24):
            pass

    raw_full = "truncate + mkfs.ext4 + mount -o loop + zstd -dc | tar -x + umount"
    unprivileged = Comparison("create (unprivileged, default)", "pct create (Debian 12)", raw_full,
                              "pct / raw <= 1.3", max_ratio=1.3)
    privileged = Comparison("create --unprivileged 0", "pct create --unprivileged 0 (Debian 12)", raw_full,
                            "pct / raw <= 1.3", max_ratio=1.3)
    extract_only = Comparison("create --unprivileged 0 vs extract only", "pct create --unprivileged 0",
                              "zstd -dc | tar -x only", "none (for information)")

    rootfs = f"local:{CREATE_ROOTFS_GIB}"
    for number in range(creates):
        total, extract = raw_create(bench, template, number)
        unprivileged.raw.append(total)
        privileged.raw.append(total)
        extract_only.raw.append(extract)

        vmid = str(CREATE_FIRST_VMID + 2 * number)
        unprivileged.pct.append(bench.pct("create", vmid, str(template), "--hostname", "bench-create",
                                          "--rootfs", rootfs))
        bench.pct("destroy", vmid)

        vmid = str(CREATE_FIRST_VMID + 2 * number + 1)
        elapsed = bench.pct("create", vmid, str(template), "--hostname", "bench-create",
                            "--rootfs", rootfs, "--unprivileged", "0")
        privileged.pct.append(elapsed)
        extract_only.pct.append(elapsed)
        bench.pct("destroy", vmid)
    return [unprivileged, privileged, extract_only]


# -- report -----------------------------------------------------------------------------

def format_table(rows: list[Comparison]) -> str:
    header = f"{'operation':<42} {'pct ms':>9} {'raw ms':>9} {'diff ms':>9} {'ratio':>7}  {'target':<22} result"
    lines = [header, "-" * len(header)]
    for row in rows:
        pct_ms, raw_ms = row.pct_median_ms(), row.raw_median_ms()
        lines.append(f"{row.name:<42} {pct_ms:>9.1f} {raw_ms:>9.1f} {pct_ms - raw_ms:>9.1f} "
                     f"{pct_ms / raw_ms:>7.2f}  {row.target:<22} {row.verdict()}")
    return "\n".join(lines)


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark pct against raw LXC doing the same work (needs root).")
    parser.add_argument("--runs", type=int, default=5,
                        help="samples per start, stop, exec, status, config and list measurement (default: 5)")
    parser.add_argument("--creates", type=int, default=3,
                        help="samples per create measurement, where 0 skips the Debian creates (default: 3)")
    parser.add_argument("--containers", type=int, default=50,
                        help="containers defined while status, config and list run (default: 50)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.creates < 0 or args.containers < 1:
        parser.error("--runs and --containers must be at least 1, --creates at least 0")
    if args.containers > CREATE_FIRST_VMID - START_VMID:
        parser.error(f"--containers must be at most {CREATE_FIRST_VMID - START_VMID}")
    return args


def _raise_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        print("bench/run.py must be run as root", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)

    machine = machine_description()
    bench = Bench()
    print(f"root: {bench.root}", flush=True)
    try:
        timed([PVEAM, "build", "busybox"], env=bench.env)
        print("measuring start, stop and exec ...", flush=True)
        rows = measure_lifecycle(bench, args.runs)
        print(f"defining {args.containers} containers, measuring status, config and list ...", flush=True)
        rows += measure_inspection(bench, args.runs, args.containers)
        imports = profile_imports(bench)
        if args.creates:
            print("measuring create from the Debian 12 template ...", flush=True)
            rows += measure_create(bench, args.creates)
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
    print()
    print("largest imports of 'pct status' (cumulative ms):")
    for entry in imports:
        print(f"  {entry['cumulative_us'] / 1000:7.1f}  {entry['module']}")
    misses = [row.name for row in rows if row.verdict() == "MISS"]
    print(f"\nmissed targets: {', '.join(misses) if misses else 'none'}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"machine": machine, "runs": args.runs, "creates": args.creates, "containers": args.containers,
                  "results": [row.as_json() for row in rows], "status_imports": imports, "missed": misses}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
