"""pct startall and stopall: onboot, startup order, up delays, reverse shutdown."""

import os
import time
from pathlib import Path

import pytest

from conftest import _mounts_below


def test_startall_and_stopall_follow_order(host, busybox_template):
    first, second, unordered, manual = (host.new_vmid() for _ in range(4))
    host.pct("create", second, str(busybox_template), "--onboot", "1", "--startup", "order=2")
    host.pct("create", first, str(busybox_template), "--onboot", "1", "--startup", "order=1,up=2")
    host.pct("create", unordered, str(busybox_template), "--onboot", "1")
    host.pct("create", manual, str(busybox_template))

    started = time.monotonic()
    result = host.pct("startall")
    elapsed = time.monotonic() - started
    assert result.stdout.splitlines() == [f"started CT {first}", f"started CT {second}",
                                          f"started CT {unordered}"]
    assert elapsed >= 2, "the up=2 delay after the first container was skipped"
    for vmid in (first, second, unordered):
        assert host.pct("status", vmid).stdout == "status: running\n"
    assert host.pct("status", manual).stdout == "status: stopped\n"

    assert host.pct("startall").stdout == ""

    result = host.pct("stopall", "--timeout", "20")
    assert result.stdout.splitlines() == [f"stopped CT {unordered}", f"stopped CT {second}",
                                          f"stopped CT {first}"]
    for vmid in (first, second, unordered):
        assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert _mounts_below(host.root) == []


def test_stopall_forces_containers_that_ignore_shutdown(host, busybox_template):
    vmid = host.new_vmid()
    host.pct("create", vmid, str(busybox_template), "--onboot", "1", "--startup", "down=1")
    host.pct("start", vmid)
    rootfs = host.root / f"var/lib/lxc/{vmid}/rootfs"
    # An init that ignores the power-off signal.
    inittab = (rootfs / "etc/inittab").read_text().replace("::powerfail:/sbin/poweroff\n", "")
    (rootfs / "etc/inittab").write_text(inittab)
    host.pct("exec", vmid, "--", "kill", "-HUP", "1")
    time.sleep(0.5)

    result = host.pct("stopall", check=False)
    assert result.returncode == 1
    assert f"CT {vmid}: CT {vmid}: shutdown timed out after 1 s" in result.stderr
    assert "stopped it" in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"


def test_systemd_unit_runs_startall_and_stopall():
    unit = (Path(__file__).parents[2] / "contrib/pct-guests.service").read_text()
    assert "ExecStart=@PCT@ startall\n" in unit
    assert "ExecStop=@PCT@ stopall\n" in unit
    assert "WantedBy=multi-user.target" in unit


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs at least two CPUs to spread over")
def test_cpusets_spread_containers(host, busybox_template):
    vmids = [host.new_vmid() for _ in range(2)]
    for vmid in vmids:
        host.pct("create", vmid, str(busybox_template), "--cores", "1")
        host.pct("start", vmid)
    lines = host.pct("cpusets").stdout.splitlines()
    assert lines[0].startswith("---")
    assert lines[-1].startswith("---")
    cpus = dict(line.split(": ") for line in lines[1:-1])
    assert sorted(cpus) == sorted(str(vmid) for vmid in vmids)
    assert cpus[str(vmids[0])] != cpus[str(vmids[1])], "both containers were put on the same CPU"
