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
    DeviceConfig,
    MountConfig,
    NetConfig,
    StartupConfig,
    UnusedVolume,
    format_mount,
    generate_hwaddr,
    host_arch,
    parse_mount,
    parse_net,
    settings_from_config,
    validate_settings,
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
    assert settings.devices == ()
    assert settings.features == {}
    assert settings.startup is None
    assert settings.hookscript is None
    assert settings.timezone is None
    assert settings.debug is False
    assert settings.unused == ()


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


def test_settings_devices_features_startup():
    settings = settings_from_config(load_fixture("140-every-option.conf"), 140)

    assert settings.devices == (DeviceConfig("dev0", "/dev/ttyUSB0", uid=1000, gid=20, mode="0660",
                                             deny_write=False),)
    assert settings.features == {"force_rw_sys": False, "fuse": True, "keyctl": True, "mknod": True,
                                 "mount": ("nfs",), "nesting": True}
    assert settings.startup == StartupConfig(order=3, up=10, down=20)
    assert settings.hookscript == "local:snippets/every.sh"
    assert settings.timezone == "Europe/Berlin"
    assert settings.debug is False
    assert settings.unused == (UnusedVolume("unused0", "local:140/vm-140-disk-9.raw"),)


def test_settings_devices_sorted_by_index():
    settings = settings_from_config(load_fixture("116-devices.conf"), 116)

    assert [device.key for device in settings.devices] == ["dev0", "dev1", "dev2", "dev3", "dev4",
                                                           "dev5", "dev255"]
    assert settings.devices[4] == DeviceConfig("dev4", "/dev/bus/usb/001/004", deny_write=True)


def test_settings_startup_debug_timezone():
    settings = settings_from_config(load_fixture("117-hookscript-startup.conf"), 117)

    assert settings.startup == StartupConfig(order=1, up=60, down=120)
    assert settings.debug is True
    assert settings.timezone == "host"
    assert settings.hookscript == "local:snippets/ct-hook.pl"


def test_settings_startup_order_only():
    settings = settings_from_config(load_fixture("111-privileged-nfs.conf"), 111)

    assert settings.startup == StartupConfig(order=5)
    assert settings.features == {"mount": ("nfs", "cifs")}


def test_settings_unused_volumes_by_index():
    settings = settings_from_config(load_fixture("138-unused-volumes.conf"), 138)

    assert [unused.key for unused in settings.unused] == ["unused0", "unused1", "unused7", "unused255"]
    assert settings.unused[1].volume == "btr:138/subvol-138-disk-2"


# --- rules between keys -----------------------------------------------------------


@pytest.mark.parametrize("entries, key, reason", [
    ([("mp0", "local:8,mp=/data"), ("mp1", "/srv/x,mp=/data")],
     "mp1", "duplicate mount point path '/data' (also used by mp0)"),
    ([("mp3", "local:8,mp=/a"), ("mp10", "local:8,mp=/b"), ("mp20", "local:9,mp=/a")],
     "mp20", "duplicate mount point path '/a' (also used by mp3)"),
    ([("net0", "name=eth0"), ("net1", "name=eth0,bridge=vmbr1")],
     "net1", "duplicate interface name 'eth0' (also used by net0)"),
    ([("net2", "name=eth0,hwaddr=02:00:00:00:00:01"), ("net5", "name=eth1,hwaddr=02:00:00:00:00:01")],
     "net5", "duplicate MAC address '02:00:00:00:00:01' (also used by net2)"),
    ([("dev0", "/dev/ttyUSB0"), ("dev1", "path=/dev/ttyUSB0,mode=0600")],
     "dev1", "duplicate device path '/dev/ttyUSB0' (also used by dev0)"),
    ([("rootfs", "local:100/vm-100-disk-0.raw"), ("unused0", "local:100/vm-100-disk-0.raw")],
     "unused0", "volume 'local:100/vm-100-disk-0.raw' is still attached as rootfs"),
    ([("mp0", "local:100/vm-100-disk-1.raw,mp=/x"), ("unused4", "local:100/vm-100-disk-1.raw")],
     "unused4", "volume 'local:100/vm-100-disk-1.raw' is still attached as mp0"),
    ([("cores", "0")], "cores", "value '0' is below the minimum of 1"),
    ([("cpulimit", "-1")], "cpulimit", "value '-1' is below the minimum of 0"),
    ([("mp0", "local:8,mp=/srv/../etc")], "mp0",
     "invalid format - mp: path '/srv/../etc' is not normalised (no '.', '..', '//' or trailing '/')"),
])
def test_conflicting_keys_rejected(entries: list[tuple[str, str]], key: str, reason: str):
    section = Section(list(entries))
    before = list(section.entries)

    with pytest.raises(ParameterError) as excinfo:
        validate_settings(section, 100)

    assert str(excinfo.value) == f"400 Parameter verification failed. {key}: {reason}"
    assert "\n" not in str(excinfo.value)
    assert excinfo.value.key == key
    assert excinfo.value.vmid == 100
    assert section.entries == before


def test_conflicting_keys_rejected_when_loading():
    cfg = ContainerConfig(main=Section([("mp0", "local:8,mp=/data"), ("mp1", "/srv/x,mp=/data")]))

    with pytest.raises(ParameterError) as excinfo:
        settings_from_config(cfg, 100)

    assert excinfo.value.reason == "duplicate mount point path '/data' (also used by mp0)"


def test_same_volume_twice_is_allowed_on_distinct_paths():
    section = Section([("mp0", "/srv/share,mp=/a"), ("mp1", "/srv/share,mp=/b,ro=1")])

    assert [mount.mountpoint for mount in validate_settings(section, 100).mounts] == ["/a", "/b"]


def test_validate_settings_accepts_config_and_settings():
    cfg = load_fixture("140-every-option.conf")

    settings = validate_settings(cfg, 140)

    assert validate_settings(settings, 140) is settings


@pytest.mark.parametrize("change, key, reason", [
    ({"cores": 0}, "cores", "value '0' is below the minimum of 1"),
    ({"cpulimit": -1.0}, "cpulimit", "value '-1' is below the minimum of 0"),
    ({"memory": 8}, "memory", "value '8' is below the minimum of 16"),
    ({"tty": 7}, "tty", "value '7' is above the maximum of 6"),
    ({"hostname": "bad_name"}, "hostname", "value 'bad_name' does not look like a valid DNS name"),
    ({"tags": ("web", "my tag")}, "tags",
     "tag 'my tag' contains characters other than a-z, 0-9, '_', '+', '.' and '-'"),
    ({"tags": ("a;b",)}, "tags", "tag 'a;b' contains characters other than a-z, 0-9, '_', '+', '.' and '-'"),
    ({"mounts": (MountConfig("mp0", "local:8", "data"),)}, "mp0", "mount point path 'data' is not absolute"),
    ({"mounts": (MountConfig("mp0", "local:8", "/srv/../etc"),)}, "mp0",
     "path '/srv/../etc' is not normalised (no '.', '..', '//' or trailing '/')"),
    ({"mounts": (MountConfig("mp0", "local:8", "/srv/"),)}, "mp0",
     "path '/srv/' is not normalised (no '.', '..', '//' or trailing '/')"),
    ({"rootfs": MountConfig("rootfs", "local:8", "/srv")}, "rootfs", "mount point must be '/', not '/srv'"),
    ({"nets": (NetConfig(0, "eth0"), NetConfig(1, "eth0"))}, "net1",
     "duplicate interface name 'eth0' (also used by net0)"),
])
def test_validate_settings_built_in_code(change: dict, key: str, reason: str):
    settings = dataclasses.replace(ContainerSettings(vmid=100, arch="amd64"), **change)

    with pytest.raises(ParameterError) as excinfo:
        validate_settings(settings, 100)

    assert excinfo.value.key == key
    assert excinfo.value.reason == reason


def test_validate_settings_of_another_container():
    with pytest.raises(ParameterError) as excinfo:
        validate_settings(ContainerSettings(vmid=101, arch="amd64"), 100)

    assert excinfo.value.reason == "settings belong to CT 101, not CT 100"


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
