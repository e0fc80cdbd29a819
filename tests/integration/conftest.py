"""Fixtures for tests that use real LXC, loop devices and bridges (root only).

Every test gets its own root directory, container ids and bridge, and cleans
up even when it fails. A leak check at the end of the session fails the run
when a container, mount, loop device or bridge of the tests survives.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# One directory and one bridge name prefix per test run, so that two runs on
# one machine neither share resources nor report each other's as leaks.
TEST_BASE = Path("/var/tmp/pct-tests") / f"run-{os.getpid()}"
TEMPLATE_CACHE = Path(os.environ.get("PCT_TEST_TEMPLATE_CACHE", "/var/cache/pct-tests"))
BRIDGE_PREFIX = f"pcttb{os.getpid() % 10000}x"
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration

if os.geteuid() != 0:
    pytest.skip("integration tests need root", allow_module_level=True)

_vmids = itertools.count(20000 + (os.getpid() % 400) * 100)
_allocated_vmids: set[int] = set()
_bridges = itertools.count(0)


def pct_command(tool: str = "pct") -> str:
    return str(VENV_BIN / tool)


class Host:
    """One test's private root, with a runner for the pct commands."""

    def __init__(self, root: Path):
        self.root = root
        self.vmids: list[int] = []
        self.env = dict(os.environ, PCT_ROOT=str(root))
        self.env.pop("PCT_DEBUG", None)

    def new_vmid(self) -> int:
        vmid = next(_vmids)
        self.vmids.append(vmid)
        _allocated_vmids.add(vmid)
        return vmid

    def pct(self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None,
            tool: str = "pct", cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([pct_command(tool), *map(str, args)], env=self.env, text=True,
                                capture_output=True, timeout=timeout, input=input, cwd=cwd)
        if check and result.returncode != 0:
            raise AssertionError(f"pct {' '.join(map(str, args))} failed ({result.returncode}): "
                                 f"{result.stderr.strip()}")
        return result

    def conf_path(self, vmid: int) -> Path:
        return self.root / "etc/pve/lxc" / f"{vmid}.conf"

    def conf_text(self, vmid: int) -> str:
        return self.conf_path(vmid).read_text()

    def images(self) -> list[str]:
        images = self.root / "var/lib/vz/images"
        if not images.exists():
            return []
        return sorted(str(p.relative_to(images)) for p in images.rglob("*") if p.parent != images)

    def cleanup(self) -> None:
        for vmid in self.vmids:
            subprocess.run(["lxc-stop", "-P", str(self.root / "var/lib/lxc"), "-n", str(vmid), "-k"],
                           capture_output=True)
        _unmount_below(self.root)


def _mounts_below(path: Path) -> list[str]:
    prefix = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(mount_point)
    return found


def _unmount_below(path: Path) -> None:
    for mount_point in sorted(_mounts_below(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], capture_output=True)


@pytest.fixture
def host(request):
    TEST_BASE.mkdir(parents=True, exist_ok=True)
    os.chmod(TEST_BASE.parent, 0o755)
    os.chmod(TEST_BASE, 0o755)
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in request.node.name[:40])
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=TEST_BASE))
    # An unprivileged container's root user must be able to reach its rootfs.
    os.chmod(root, 0o755)
    test_host = Host(root)
    yield test_host
    test_host.cleanup()
    shutil.rmtree(root, ignore_errors=True)


class NetworkBridge:
    """A bridge of the test's own, with the host at ``<prefix>.1/24``."""

    def __init__(self, number: int):
        self.name = f"{BRIDGE_PREFIX}{number}"[:15]
        self.prefix = f"10.250.{number % 250}"
        self.host_ip = f"{self.prefix}.1"

    def address(self, host_part: int) -> str:
        return f"{self.prefix}.{host_part}"


@pytest.fixture
def loop_device(host):
    """A loop device over a 1 MiB file below the test root, detached afterwards."""
    backing = host.root / "device.img"
    with open(backing, "wb") as image:
        image.truncate(1 << 20)
    device = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True,
                            check=True).stdout.strip()
    yield device
    subprocess.run(["losetup", "-d", device], capture_output=True)


@pytest.fixture
def bridge():
    """A bridge with no uplink, no NAT and no forwarding, deleted afterwards."""
    test_bridge = NetworkBridge(next(_bridges))
    subprocess.run(["ip", "link", "add", test_bridge.name, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", f"{test_bridge.host_ip}/24", "dev", test_bridge.name], check=True)
    subprocess.run(["ip", "link", "set", test_bridge.name, "up"], check=True)
    yield test_bridge
    subprocess.run(["ip", "link", "del", test_bridge.name], capture_output=True)


@pytest.fixture(scope="session")
def busybox_template():
    from pct.appliance.busybox import build_busybox_template

    directory = Path(tempfile.mkdtemp(prefix="busybox-template-", dir="/var/tmp"))
    os.chmod(directory, 0o755)
    template = build_busybox_template(directory / "busybox-test_1.0-1_amd64.tar.gz")
    yield template
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def debian_template():
    """The real Debian 12 template, built with debootstrap once and cached."""
    from pct.appliance.debian import build_debian_template

    existing = sorted(TEMPLATE_CACHE.glob("debian-12-standard_*_amd64.tar.zst"))
    if existing:
        return existing[-1]
    return build_debian_template(TEMPLATE_CACHE)


def _test_bridges() -> list[str]:
    return [name for name in os.listdir("/sys/class/net") if name.startswith(BRIDGE_PREFIX)]


def _test_veths() -> list[str]:
    """Return host-side veths (veth<vmid>i<n>) of containers this run created."""
    found = []
    for name in os.listdir("/sys/class/net"):
        vmid = name[4:].split("i", 1)[0]
        if name.startswith("veth") and vmid.isdigit() and int(vmid) in _allocated_vmids:
            found.append(name)
    return found


def _test_loop_devices() -> list[str]:
    result = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if str(TEST_BASE) in line]


def _test_containers() -> list[str]:
    with open("/proc/net/unix") as table:
        return [line.split()[-1] for line in table if f"@{TEST_BASE}/" in line]


@pytest.fixture(scope="session", autouse=True)
def leak_check():
    yield
    leaks = {
        "containers": _test_containers(),
        "mounts": _mounts_below(TEST_BASE) if TEST_BASE.exists() else [],
        "loop devices": _test_loop_devices(),
        "bridges": _test_bridges(),
        "veths": _test_veths(),
    }
    leaked = {kind: items for kind, items in leaks.items() if items}
    assert not leaked, f"integration tests left resources behind: {leaked}"
    shutil.rmtree(TEST_BASE, ignore_errors=True)
