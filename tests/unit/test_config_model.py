"""Tests for the typed container model built from a parsed config."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from pct.config.checks import check_unicast_mac
from pct.config.format import ContainerConfig, Section, parse_config
from pct.config.model import (
    ContainerSettings,
    MountConfig,
    NetConfig,
    format_mount,
    generate_hwaddr,
    host_arch,
    parse_mount,
    parse_net,
    settings_from_config,
)
from pct.errors import ParameterError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "configs"


def load_fixture(name: str) -> ContainerConfig:
    return parse_config((FIXTURES / name).read_text(encoding="utf-8"))


# --- settings -------------------------------------------------------------------


def test_settings_defaults_for_empty_config():
    settings = settings_from_config(ContainerConfig(), 100)

    assert settings.vmid == 100
    assert settings.arch == host_arch()
    assert settings.hostname == "CT100"
    assert settings.memory == 512
    assert settings.swap == 512
    assert settings.cores is None
    assert settings.cpulimit == 0.0
    assert settings.cpuunits is None
    assert settings.nets == ()
    assert settings.rootfs is None
    assert settings.ostype is None
    assert settings.unprivileged is False
    assert settings.tty == 2
    assert settings.cmode == "tty"
    assert settings.console is True
    assert settings.onboot is False
    assert settings.template is False
    assert settings.protection is False
    assert settings.lock is None
    assert settings.tags == ()
    assert settings.description == ""
    assert settings.raw_lxc == ()


def test_settings_from_full_fixture():
    settings = settings_from_config(load_fixture("108-full.conf"), 108)

    assert settings.arch == "arm64"
    assert settings.hostname == "ci-runner-1"
    assert settings.memory == 16384
    assert settings.swap == 2048
    assert settings.cores == 8
    assert settings.cpulimit == 6.5
    assert settings.cpuunits == 2048
    assert settings.ostype == "fedora"
    assert settings.unprivileged is True
    assert settings.nameserver == "192.0.2.53"
    assert settings.searchdomain == "ci.example.com"
    assert settings.tty == 4
    assert settings.cmode == "shell"
    assert settings.console is False
    assert settings.onboot is True
    assert settings.protection is False
    assert settings.tags == ("ci", "runner")
    assert settings.description == 'CI runner\nsee runbook "ci-runners"'
    assert settings.raw_lxc == (("lxc.apparmor.profile", "unconfined"), ("lxc.prlimit.nofile", "1048576"))
    assert settings.rootfs == MountConfig("rootfs", "local:108/vm-108-disk-0.raw", "/", 40 * 1024**3,
                                          False, {"acl": "1"})
    assert settings.nets == (NetConfig(0, "eth0", bridge="vmbr0", hwaddr="BC:24:11:C1:00:08",
                                       ip="192.0.2.80/24", gw="192.0.2.1"),)


def test_settings_ignore_pending_and_snapshots():
    settings = settings_from_config(load_fixture("108-full.conf"), 108)

    assert settings.cores == 8
    assert settings.memory == 16384


def test_settings_template_and_lock():
    template = settings_from_config(load_fixture("107-template.conf"), 107)
    locked = settings_from_config(load_fixture("110-locked.conf"), 110)

    assert template.template is True
    assert template.protection is True
    assert template.tags == ("golden", "debian", "v12")
    assert locked.lock == "backup"
    assert locked.tty == 0
    assert locked.arch == "i386"
    assert locked.rootfs.size == 1536 * 1024**2


def test_settings_nets_sorted_by_index():
    cfg = ContainerConfig(main=Section([
        ("net10", "name=eth10"),
        ("net2", "name=eth2"),
        ("net0", "name=eth0"),
    ]))

    settings = settings_from_config(cfg, 100)

    assert [net.index for net in settings.nets] == [0, 2, 10]
    assert [net.name for net in settings.nets] == ["eth0", "eth2", "eth10"]


def test_settings_many_nets_fixture():
    settings = settings_from_config(load_fixture("105-many-nets.conf"), 105)

    assert [net.index for net in settings.nets] == [0, 1, 2, 3, 4, 5, 31]
    nets = {net.index: net for net in settings.nets}
    assert nets[0].firewall is True
    assert nets[1].ip6 == "2001:db8:1::2/64"
    assert nets[1].gw6 == "2001:db8:1::1"
    assert nets[2].mtu == 1492
    assert nets[3].link_down is True
    assert nets[4].rate == 12.5
    assert nets[4].tag == 100
    assert nets[5].trunks == (10, 20, 30)
    assert settings.nameserver == "192.0.2.53 2001:db8::53"


def test_settings_mount_points_fixture():
    settings = settings_from_config(load_fixture("106-mountpoints.conf"), 106)

    assert [mount.key for mount in settings.mounts] == ["mp0", "mp1", "mp2"]
    assert settings.mounts[0].mountpoint == "/srv/data"
    assert settings.mounts[0].options == {"backup": "1"}
    assert settings.mounts[1].volume == "/mnt/host/media"
    assert settings.mounts[1].ro is True
    assert settings.mounts[2].size == 512 * 1024**2


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.conf")), ids=lambda path: path.name)
def test_settings_build_for_every_fixture(path: Path):
    cfg = parse_config(path.read_text(encoding="utf-8"))

    settings = settings_from_config(cfg, 100)

    assert settings.rootfs is not None
    assert settings.nets


def test_settings_skip_unknown_keys():
    settings = settings_from_config(load_fixture("109-newer-version.conf"), 109)

    assert settings.hostname == "future"


@pytest.mark.parametrize("key, value, reason", [
    ("memory", "8", "value '8' is below the minimum of 16"),
    ("tty", "7", "value '7' is above the maximum of 6"),
    ("net0", "name=eth0,brige=vmbr0", "invalid format - unknown key 'brige'"),
    ("rootfs", "local:8,size=huge", "invalid format - size: value 'huge' does not look like a valid size "
                                    "(a number with optional unit K, M, G or T)"),
    ("mp0", "local:8", "invalid format - missing required key 'mp'"),
    ("onboot", "perhaps", "value 'perhaps' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
])
def test_settings_reject_bad_value(key: str, value: str, reason: str):
    cfg = ContainerConfig(main=Section([("hostname", "ok"), (key, value)]))
    before = dataclasses.replace(cfg, main=Section(list(cfg.main.entries)))

    with pytest.raises(ParameterError) as excinfo:
        settings_from_config(cfg, 321)

    assert excinfo.value.key == key
    assert excinfo.value.reason == reason
    assert excinfo.value.vmid == 321
    assert cfg == before


def test_settings_are_frozen():
    settings = settings_from_config(ContainerConfig(), 100)

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.memory = 1024


def test_settings_explicit_hostname_is_kept():
    assert ContainerSettings(vmid=5, arch="amd64", hostname="x").hostname == "x"
    assert ContainerSettings(vmid=5, arch="amd64").hostname == "CT5"


# --- net --------------------------------------------------------------------------


def test_parse_net_all_keys():
    net = parse_net("name=eth1,bridge=vmbr0,firewall=1,gw=192.0.2.1,gw6=2001:db8::1,"
                    "hwaddr=02:00:00:00:00:01,ip=192.0.2.2/24,ip6=2001:db8::2/64,link_down=1,"
                    "mtu=9000,rate=100,tag=42,trunks=1;2,type=veth", 1)

    assert net == NetConfig(index=1, name="eth1", bridge="vmbr0", hwaddr="02:00:00:00:00:01",
                            ip="192.0.2.2/24", gw="192.0.2.1", ip6="2001:db8::2/64", gw6="2001:db8::1",
                            mtu=9000, type="veth", firewall=True, link_down=True, rate=100.0, tag=42,
                            trunks=(1, 2))
    assert net.key == "net1"


def test_parse_net_minimal():
    net = parse_net("name=eth0", 0)

    assert net == NetConfig(index=0, name="eth0", bridge=None, hwaddr=None, ip=None, gw=None,
                            ip6=None, gw6=None, mtu=None)
    assert net.type == "veth"


def test_parse_net_rejects_bad_index_and_value():
    with pytest.raises(ParameterError) as excinfo:
        parse_net("name=eth0", 32)
    assert excinfo.value.reason == "network device index must be between 0 and 31"

    with pytest.raises(ParameterError) as excinfo:
        parse_net("name=eth0,hwaddr=01:02:03:04:05:06", 0)
    assert excinfo.value.key == "net0"
    assert "multicast MAC address" in excinfo.value.reason


# --- mounts -------------------------------------------------------------------------


def test_parse_mount_rootfs():
    mount = parse_mount("rootfs", "local:100/vm-100-disk-0.raw,size=8G,acl=1,mountoptions=noatime")

    assert mount == MountConfig(key="rootfs", volume="local:100/vm-100-disk-0.raw", mountpoint="/",
                                size=8 * 1024**3, ro=False, options={"acl": "1", "mountoptions": "noatime"})


def test_parse_mount_point():
    mount = parse_mount("mp4", "volume=btr:100/subvol-100-disk-1,mp=/data,ro=1,backup=1")

    assert mount == MountConfig(key="mp4", volume="btr:100/subvol-100-disk-1", mountpoint="/data",
                                size=None, ro=True, options={"backup": "1"})


def test_parse_mount_rejects_other_keys():
    with pytest.raises(ParameterError) as excinfo:
        parse_mount("net0", "local:8", 100)

    assert excinfo.value.reason == "not a mount point key (expected rootfs or mp0 to mp255)"
    assert excinfo.value.vmid == 100


@pytest.mark.parametrize("key, value", [
    ("rootfs", "local:100/vm-100-disk-0.raw,size=8G"),
    ("rootfs", "local:100/vm-100-disk-0.raw,acl=1,mountoptions=noatime;nodev,quota=1,ro=1,size=1536M"),
    ("mp0", "local:100/vm-100-disk-1.raw,mp=/srv/data,backup=1,size=100G"),
    ("mp1", "/mnt/host/media,mp=/media,ro=1"),
    ("mp2", "btr:106/subvol-106-disk-2,mp=/pg,acl=1,replicate=0,shared=1,size=512M,keepattrs=1"),
])
def test_format_mount_round_trips(key: str, value: str):
    assert format_mount(parse_mount(key, value)) == value


def test_format_mount_normalises_order_and_size():
    mount = parse_mount("mp0", "size=8192M,mp=/data,local:8")

    assert format_mount(mount) == "local:8,mp=/data,size=8G"


def test_format_mount_changed_size():
    mount = parse_mount("rootfs", "local:100/vm-100-disk-0.raw,size=8G")

    grown = dataclasses.replace(mount, size=12 * 1024**3)

    assert format_mount(grown) == "local:100/vm-100-disk-0.raw,size=12G"


# --- hwaddr -------------------------------------------------------------------------


def test_generate_hwaddr_is_local_unicast():
    for _ in range(200):
        hwaddr = generate_hwaddr()
        first_octet = int(hwaddr[:2], 16)

        assert check_unicast_mac(hwaddr) == hwaddr
        assert first_octet & 0x01 == 0
        assert first_octet & 0x02 == 0x02


def test_generate_hwaddr_uses_given_generator():
    first = generate_hwaddr(random.Random(7))
    second = generate_hwaddr(random.Random(7))

    assert first == second
    assert first == first.upper()
    assert parse_net(f"name=eth0,hwaddr={first}", 0).hwaddr == first
