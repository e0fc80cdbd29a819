"""Features, device passthrough, hookscripts, VLAN tags, traffic limits and limits that hold."""

import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import _mounts_below


def create(host, template, *extra, vmid=None):
    vmid = vmid or host.new_vmid()
    host.pct("create", vmid, str(template), "--memory", "96", *extra)
    return vmid


def guest(host, vmid, *argv, check=True):
    return host.pct("exec", vmid, "--", *argv, check=check)


def test_fuse_and_nesting_features(host, busybox_template):
    vmid = create(host, busybox_template, "--features", "fuse=1,nesting=1")
    host.pct("start", vmid)
    assert guest(host, vmid, "ls", "-l", "/dev/fuse").stdout.startswith("c")
    mounts = guest(host, vmid, "cat", "/proc/mounts").stdout
    assert "/dev/.lxc/proc proc" in mounts
    assert "/dev/.lxc/sys sysfs" in mounts


def test_unprivileged_keyctl_follows_feature(host, debian_template):
    # keyctl(KEYCTL_GET_KEYRING_ID = 0, KEY_SPEC_SESSION_KEYRING = -3, create = 0); 250 on x86_64.
    probe = "syscall(250, 0, -3, 0); print $!+0"
    vmid = create(host, debian_template)
    host.pct("start", vmid)
    assert guest(host, vmid, "perl", "-e", probe).stdout == "38"
    host.pct("stop", vmid)

    host.pct("set", vmid, "--features", "keyctl=1")
    host.pct("start", vmid)
    assert guest(host, vmid, "perl", "-e", probe).stdout != "38"


@pytest.mark.parametrize("unprivileged", ["1", "0"])
def test_device_passthrough(host, busybox_template, loop_device, unprivileged):
    vmid = create(host, busybox_template, "--unprivileged", unprivileged,
                  "--dev0", f"{loop_device},uid=0,gid=6,mode=0640,deny-write=1")
    host.pct("start", vmid)
    listing = guest(host, vmid, "ls", "-ln", loop_device).stdout.split()
    assert listing[0] == "brw-r-----"
    assert listing[2:4] == ["0", "6"]
    read = guest(host, vmid, "dd", f"if={loop_device}", "of=/dev/null", "bs=512", "count=1", check=False)
    assert read.returncode == 0, read.stderr
    write = guest(host, vmid, "dd", "if=/dev/zero", f"of={loop_device}", "bs=512", "count=1", check=False)
    assert write.returncode != 0
    assert os.stat(loop_device).st_mode & 0o777 != 0o640 or os.stat(loop_device).st_gid != 6


@pytest.mark.parametrize("path,message", [("/dev/shm", "dev0: '/dev/shm' is not a device node"),
                                           ("/dev/pct-missing", "dev0: device '/dev/pct-missing' does not exist")])
def test_device_that_is_not_a_device(host, busybox_template, path, message):
    vmid = create(host, busybox_template, "--dev0", path)
    result = host.pct("start", vmid, check=False)
    assert message in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert _mounts_below(host.root) == []


def write_hookscript(host, body: str, executable: bool = True) -> str:
    snippets = host.root / "var/lib/vz/snippets"
    snippets.mkdir(parents=True, exist_ok=True)
    script = snippets / "hook.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755 if executable else 0o644)
    return "local:snippets/hook.sh"


def test_hookscript_phases(host, busybox_template):
    trace = host.root / "hook-trace"
    volume = write_hookscript(host, f'echo "$1 $2" >> {trace}\n')
    vmid = create(host, busybox_template, "--hookscript", volume)
    host.pct("start", vmid)
    host.pct("stop", vmid)
    deadline = time.monotonic() + 5
    while "post-stop" not in trace.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert trace.read_text().splitlines() == [f"{vmid} pre-start", f"{vmid} post-start",
                                              f"{vmid} pre-stop", f"{vmid} post-stop"]


def test_failing_pre_start_aborts(host, busybox_template):
    volume = write_hookscript(host, '[ "$2" = pre-start ] && { echo "not today" >&2; exit 1; }\nexit 0\n')
    vmid = create(host, busybox_template, "--hookscript", volume)
    result = host.pct("start", vmid, check=False)
    assert result.returncode != 0
    assert "hookscript pre-start failed" in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    assert _mounts_below(host.root) == []


def test_hookscript_not_executable(host, busybox_template):
    volume = write_hookscript(host, "exit 0\n", executable=False)
    vmid = create(host, busybox_template, "--hookscript", volume)
    result = host.pct("start", vmid, check=False)
    assert "is not executable" in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"


def test_vlan_tag_needs_vlan_aware_bridge(host, busybox_template, bridge):
    vmid = create(host, busybox_template, "--net0", f"name=eth0,bridge={bridge.name},tag=20,ip=dhcp")
    result = host.pct("start", vmid, check=False)
    assert host.pct("status", vmid).stdout == "status: stopped\n"
    if not os.path.exists(f"/sys/class/net/{bridge.name}/bridge/vlan_filtering"):
        assert "needs bridge VLAN filtering, which this kernel lacks" in result.stderr
        pytest.skip("this kernel has no bridge VLAN filtering, so tagged NICs cannot start here")
    assert "needs a VLAN-aware bridge" in result.stderr

    subprocess.run(["ip", "link", "set", bridge.name, "type", "bridge", "vlan_filtering", "1"], check=True)
    host.pct("start", vmid)
    vlans = subprocess.run(["bridge", "vlan", "show", "dev", f"veth{vmid}i0"], capture_output=True,
                           text=True, check=True).stdout
    assert "20 PVID" in vlans.replace("Egress Untagged", "").replace("  ", " ") or "20 PVID" in vlans


def transfer_rate(address: str, port: int, seconds: float = 2.0) -> float:
    """Return bytes per second received from a sender in the guest over *seconds*."""
    received = 0
    with socket.create_connection((address, port), timeout=5) as connection:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += len(chunk)
        elapsed = time.monotonic() - start
    return received / elapsed


def test_rate_limit_holds(host, busybox_template, bridge):
    address = bridge.address(2)
    vmid = create(host, busybox_template,
                  "--net0", f"name=eth0,bridge={bridge.name},ip={address}/24,rate=1")
    host.pct("start", vmid)
    guest(host, vmid, "sh", "-c", "nc -l -p 5001 < /dev/zero > /dev/null 2>&1 &")
    time.sleep(0.5)
    rate = transfer_rate(address, 5001)
    assert 0.5e6 < rate < 1.5e6, f"{rate:.0f} bytes/s with rate=1 (1 MB/s)"

    host.pct("set", vmid, "--net0", f"name=eth0,bridge={bridge.name},ip={address}/24,rate=4")
    guest(host, vmid, "sh", "-c", "nc -l -p 5002 < /dev/zero > /dev/null 2>&1 &")
    time.sleep(0.5)
    faster = transfer_rate(address, 5002)
    assert 2.5e6 < faster < 5.5e6, f"{faster:.0f} bytes/s with rate=4"


def test_rate_limit_holds_towards_guest(host, busybox_template, bridge):
    address = bridge.address(2)
    vmid = create(host, busybox_template,
                  "--net0", f"name=eth0,bridge={bridge.name},ip={address}/24,rate=1")
    host.pct("start", vmid)
    server = socket.create_server((bridge.host_ip, 0))
    port = server.getsockname()[1]
    sent = []

    def serve():
        connection, _ = server.accept()
        total, payload, start = 0, b"\0" * 65536, time.monotonic()
        with connection:
            while time.monotonic() - start < 2.0:
                total += connection.send(payload)
        sent.append(total / (time.monotonic() - start))

    thread = threading.Thread(target=serve)
    thread.start()
    guest(host, vmid, "sh", "-c", f"nc {bridge.host_ip} {port} > /dev/null 2>&1 &")
    thread.join(timeout=20)
    server.close()
    assert sent, "the guest did not connect"
    assert 0.5e6 < sent[0] < 1.6e6, f"{sent[0]:.0f} bytes/s towards the guest with rate=1 (1 MB/s)"


def test_memory_limit_kills_inside_only(host, busybox_template):
    vmid = create(host, busybox_template, "--swap", "0")
    host.pct("start", vmid)
    # A shell variable that doubles until it passes the 96 MiB limit.
    hog = 'x=0123456789abcdef; while true; do x="$x$x"; done'
    result = guest(host, vmid, "sh", "-c", hog, check=False)
    assert result.returncode == 137, "the memory hog was not killed by SIGKILL"
    assert host.pct("status", vmid).stdout == "status: running\n"
    assert guest(host, vmid, "echo", "alive").stdout == "alive\n"
    peak = subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid),
                           "memory.max_usage_in_bytes"], capture_output=True, text=True, check=True).stdout
    assert 0.9 * (96 << 20) <= int(peak) <= 96 << 20


def cpu_usage_seconds(host, vmid) -> float:
    usage = subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid),
                            "cpuacct.usage"], capture_output=True, text=True, check=True).stdout
    return int(usage) / 1e9


def test_cpulimit_holds_busy_loop(host, busybox_template):
    vmid = create(host, busybox_template, "--cpulimit", "0.5")
    host.pct("start", vmid)
    guest(host, vmid, "sh", "-c", "while :; do :; done > /dev/null 2>&1 &")
    time.sleep(0.5)
    before, started = cpu_usage_seconds(host, vmid), time.monotonic()
    time.sleep(3)
    share = (cpu_usage_seconds(host, vmid) - before) / (time.monotonic() - started)
    assert 0.35 < share < 0.6, f"busy loop used {share:.2f} cores with cpulimit 0.5"


def test_cores_pin_to_one_cpu(host, busybox_template):
    vmid = create(host, busybox_template, "--cores", "1")
    host.pct("start", vmid)
    status = guest(host, vmid, "cat", "/proc/self/status").stdout
    allowed = [line.split()[1] for line in status.splitlines() if line.startswith("Cpus_allowed_list")]
    assert allowed == ["0"]


def test_debug_start_writes_lxc_log(host, busybox_template):
    vmid = create(host, busybox_template)
    host.pct("start", vmid, "--debug")
    log = host.root / f"tmp/lxc-{vmid}.log"
    assert " DEBUG " in log.read_text()


@pytest.fixture
def delegated_host_id():
    """Delegate host id 1005 to root in /etc/subuid and /etc/subgid, as Proxmox VE's manual describes for passing a host user through."""
    added = []
    for name in ("subuid", "subgid"):
        path = f"/etc/{name}"
        with open(path) as existing:
            lines = existing.read().splitlines()
        if "root:1005:1" not in lines:
            with open(path, "a") as appended:
                appended.write("root:1005:1\n")
            added.append(path)
    yield 1005
    for path in added:
        with open(path) as existing:
            lines = existing.read().splitlines()
        lines.remove("root:1005:1")
        with open(path, "w") as rewritten:
            rewritten.write("".join(line + "\n" for line in lines))


def test_idmap_passes_host_id_through(host, busybox_template, delegated_host_id):
    shared = host.root / "shared"
    shared.mkdir()
    (shared / "owned").write_text("data\n")
    os.chown(shared / "owned", delegated_host_id, delegated_host_id)
    vmid = create(host, busybox_template, "--mp0", f"{shared},mp=/shared")
    config = host.conf_path(vmid)
    config.write_text(config.read_text() + "".join(
        f"lxc.idmap: {kind} 0 100000 1005\nlxc.idmap: {kind} 1005 1005 1\nlxc.idmap: {kind} 1006 101006 64530\n"
        for kind in ("u", "g")))
    host.pct("start", vmid)
    assert guest(host, vmid, "stat", "-c", "%u %g", "/shared/owned").stdout == "1005 1005\n"
    assert guest(host, vmid, "cat", "/proc/self/uid_map").stdout.split() == \
        ["0", "100000", "1005", "1005", "1005", "1", "1006", "101006", "64530"]


def test_idmap_with_gap_is_refused(host, busybox_template):
    vmid = create(host, busybox_template)
    config = host.conf_path(vmid)
    config.write_text(config.read_text() + "lxc.idmap: u 0 100000 1000\nlxc.idmap: g 0 100000 65536\n")
    result = host.pct("start", vmid, check=False)
    assert "lxc.idmap: container uids 1000-65535 are not mapped" in result.stderr
    assert host.pct("status", vmid).stdout == "status: stopped\n"


@pytest.mark.skipif(not os.path.ismount("/var/lib/lxcfs"), reason="lxcfs is not running on this host")
def test_lxcfs_shows_container_limits(host, busybox_template):
    vmid = create(host, busybox_template, "--memory", "200", "--cores", "1")
    host.pct("start", vmid)
    meminfo = guest(host, vmid, "cat", "/proc/meminfo").stdout
    assert "MemTotal:         204800 kB" in meminfo
    cpuinfo = guest(host, vmid, "cat", "/proc/cpuinfo").stdout
    assert cpuinfo.count("processor\t:") == 1
    uptime = float(guest(host, vmid, "cat", "/proc/uptime").stdout.split()[0])
    host_uptime = float(open("/proc/uptime").read().split()[0])
    assert uptime < 60 < host_uptime


def test_set_refuses_missing_hookscript(host, busybox_template):
    vmid = create(host, busybox_template)
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--hookscript", "local:snippets/missing.sh", check=False)
    assert f"CT {vmid}: hookscript 'local:snippets/missing.sh' does not exist" in result.stderr
    assert host.conf_text(vmid) == before
    volume = write_hookscript(host, "exit 0\n", executable=False)
    result = host.pct("set", vmid, "--hookscript", volume, check=False)
    assert "is not executable" in result.stderr
    assert host.conf_text(vmid) == before


def test_memory_below_usage_is_refused_live(host, busybox_template):
    vmid = create(host, busybox_template, "--memory", "256", "--swap", "0")
    host.pct("start", vmid)
    # A shell holding a 64 MiB string (16 bytes doubled 22 times), kept running.
    hog = 'x=0123456789abcdef; i=0; while [ $i -lt 22 ]; do x="$x$x"; i=$((i+1)); done; sleep 600; echo ${#x}'
    guest(host, vmid, "sh", "-c", f"(sh -c '{hog}') > /dev/null 2>&1 &")
    time.sleep(2)
    before = host.conf_text(vmid)
    result = host.pct("set", vmid, "--memory", "16", check=False)
    assert result.returncode != 0
    assert "unable to set memory.limit_in_bytes" in result.stderr
    assert host.conf_text(vmid) == before
    assert host.pct("status", vmid).stdout == "status: running\n"
    limit = subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid),
                            "memory.limit_in_bytes"], capture_output=True, text=True, check=True).stdout
    assert int(limit) == 256 << 20


def test_cpuunits_share_cpu_in_proportion(host, busybox_template):
    heavy = create(host, busybox_template, "--cpuunits", "1024")
    light = create(host, busybox_template, "--cpuunits", "256")
    for vmid in (heavy, light):
        host.pct("start", vmid)
        # Both on CPU 0, so that the two busy loops compete for one CPU.
        subprocess.run(["lxc-cgroup", "-P", str(host.root / "var/lib/lxc"), "-n", str(vmid), "cpuset.cpus", "0"],
                       check=True)
    for vmid in (heavy, light):
        guest(host, vmid, "sh", "-c", "(while :; do :; done) > /dev/null 2>&1 &")
    time.sleep(1)
    before = {vmid: cpu_usage_seconds(host, vmid) for vmid in (heavy, light)}
    time.sleep(4)
    used = {vmid: cpu_usage_seconds(host, vmid) - before[vmid] for vmid in (heavy, light)}
    ratio = used[heavy] / used[light]
    assert 2.0 < ratio < 8.0, f"cpuunits 1024 against 256 gave a CPU time ratio of {ratio:.2f} (expected about 4)"
