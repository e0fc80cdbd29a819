"""Guest setup of every family: releases, network renderers, bad input and hostile symlinks."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from pct.errors import GuestError
from pct.guest import FAMILIES, GuestConfig, GuestNet, GuestRoot, setup_guest, versions
from pct.guest.model import KNOWN_OSTYPES

SYSTEMD_UNITS = ("container-getty@.service", "console-getty.service", "systemd-networkd.service")

# Release files of one guest per renderer, as each distribution ships them.
GUESTS = {
    "debian": {"etc/debian_version": "12.8\n"},
    "devuan": {"etc/debian_version": "12.0\n", "etc/devuan_version": "daedalus\n"},
    "ubuntu-netplan": {"etc/debian_version": "trixie/sid\n", "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\n"},
    "ubuntu-ifupdown": {"etc/debian_version": "stretch/sid\n", "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=16.04\n"},
    "fedora": {"etc/fedora-release": "Fedora release 41 (Forty One)\n", "etc/redhat-release": "Fedora release 41 (Forty One)\n"},
    "centos-ifcfg": {"etc/redhat-release": "CentOS Linux release 7.9.2009 (Core)\n"},
    "centos-keyfile": {"etc/redhat-release": "Rocky Linux release 9.4 (Blue Onyx)\n"},
    "archlinux": {"etc/arch-release": ""},
    "alpine": {"etc/alpine-release": "3.20.3\n", "etc/inittab": "::sysinit:/sbin/openrc sysinit\n"},
    "gentoo": {"etc/gentoo-release": "Gentoo Base System release 2.15\n", "etc/init.d/net.lo": "#!/sbin/openrc-run\n"},
    "opensuse-ifcfg": {"etc/os-release": 'NAME="openSUSE Leap"\nID="opensuse-leap"\nVERSION_ID="15.6"\n'},
    "opensuse-keyfile": {"etc/os-release": 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\n'},
    "nixos": {"etc/os-release": "NAME=NixOS\nID=nixos\n"},
}

# The directory each renderer writes the network configuration into.
NETWORK_DIRS = {
    "debian": "etc/network",
    "devuan": "etc/network",
    "ubuntu-netplan": "etc/netplan",
    "ubuntu-ifupdown": "etc/network",
    "fedora": "etc/NetworkManager/system-connections",
    "centos-ifcfg": "etc/sysconfig/network-scripts",
    "centos-keyfile": "etc/NetworkManager/system-connections",
    "archlinux": "etc/systemd/network",
    "alpine": "etc/network",
    "gentoo": "etc/conf.d",
    "opensuse-ifcfg": "etc/sysconfig/network",
    "opensuse-keyfile": "etc/NetworkManager/system-connections",
}

CONFIG = GuestConfig(
    vmid=300,
    hostname="ct",
    nets=(GuestNet("eth0", ip="192.0.2.5/24", gw="192.0.2.1", ip6="2001:db8::5/64", gw6="2001:db8::1"),),
    nameserver="192.0.2.53",
    searchdomain="example.com",
)


def make_guest(tmp_path: Path, kind: str) -> Path:
    guest = tmp_path / "guest"
    for directory in ("etc/ssh", "root", "etc/systemd/system", "usr/lib/systemd/system"):
        (guest / directory).mkdir(parents=True)
    for unit in SYSTEMD_UNITS:
        (guest / "usr/lib/systemd/system" / unit).write_text("[Unit]\n")
    (guest / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (guest / "etc/hosts").write_text("127.0.0.1 localhost\n")
    for name, content in GUESTS[kind].items():
        (guest / name).parent.mkdir(parents=True, exist_ok=True)
        (guest / name).write_text(content)
    return guest


def tree_state(tree: Path) -> dict[str, tuple]:
    state = {}
    for path in sorted(tree.rglob("*")):
        info = path.lstat()
        content = None
        if stat.S_ISREG(info.st_mode):
            content = path.read_bytes()
        elif stat.S_ISLNK(info.st_mode):
            content = os.readlink(path)
        state[str(path)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, content)
    return state


def start(guest: Path, tmp_path: Path, conf: GuestConfig = CONFIG, **kwargs) -> str:
    return setup_guest(GuestRoot(guest, vmid=conf.vmid, **kwargs), conf, phase="start", host_resolv_conf=tmp_path / "none")


def expect_rejected(guest: Path, tmp_path: Path, message: str, conf: GuestConfig = CONFIG) -> GuestError:
    """Run setup, expect a one-line GuestError matching *message*, and check the guest is unchanged."""
    before = tree_state(guest)
    with pytest.raises(GuestError, match=message) as caught:
        start(guest, tmp_path, conf)
    assert "\n" not in str(caught.value)
    assert caught.value.vmid == conf.vmid
    assert tree_state(guest) == before
    return caught.value


# -- registry and releases ----------------------------------------------------


def test_families_cover_every_ostype():
    assert set(FAMILIES) == set(KNOWN_OSTYPES) - {"unmanaged"}


@pytest.mark.parametrize("kind", sorted(GUESTS))
def test_every_family_writes_hostname_and_hosts(tmp_path, kind):
    guest = make_guest(tmp_path, kind)

    ostype = start(guest, tmp_path)

    assert ostype == kind.split("-")[0]
    assert (guest / "etc/hostname").read_text() == "ct\n"
    assert "192.0.2.5 ct.example.com ct\n" in (guest / "etc/hosts").read_text()
    assert (guest / "etc/resolv.conf").read_text() == "search example.com\nnameserver 192.0.2.53\n"


@pytest.mark.parametrize(
    "files, ostype, version",
    [
        ({"etc/debian_version": "12.8\n"}, "debian", (12, 8)),
        ({"etc/debian_version": "trixie/sid\n"}, "debian", None),
        ({"etc/debian_version": "12\n", "etc/devuan_version": "daedalus\n"}, "devuan", (5,)),
        ({"etc/debian_version": "x\n", "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\n"}, "ubuntu", (22, 4)),
        ({"etc/fedora-release": "Fedora release 40 (Forty)\n"}, "fedora", (40,)),
        ({"etc/redhat-release": "CentOS Stream release 9\n"}, "centos", (9,)),
        ({"etc/redhat-release": "Red Hat Enterprise Linux release 8.10 (Ootpa)\n"}, "centos", (8, 10)),
        ({"etc/centos-release": "CentOS Linux release 7.9.2009 (Core)\n"}, "centos", (7, 9)),
        ({"etc/alpine-release": "3.21.0_alpha20240807\n"}, "alpine", (3, 21)),
        ({"etc/os-release": 'ID="opensuse-leap"\nVERSION_ID="15.5"\n'}, "opensuse", (15, 5)),
        ({"etc/os-release": 'ID="opensuse-tumbleweed"\nVERSION_ID="20241201"\n'}, "opensuse", None),
        ({"etc/arch-release": ""}, "archlinux", None),
    ],
)
def test_release_versions_detected(tmp_path, files, ostype, version):
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)

    release = versions.detect_release(GuestRoot(tmp_path), ostype)

    assert release.version == version


@pytest.mark.parametrize(
    "files, message",
    [
        ({"etc/debian_version": "9.13\n"}, r"^debian 9\.13 is too old for guest setup: supported releases are 10 to 13"),
        ({"etc/debian_version": "x\n", "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\n"},
         r"^ubuntu 14\.04 is too old for guest setup: supported releases are 16\.04 to 25\.04 and newer ones"),
        ({"etc/redhat-release": "CentOS release 6.10 (Final)\n"}, r"^centos 6\.10 is too old"),
        ({"etc/alpine-release": "3.8.5\n"}, r"^alpine 3\.8 is too old .* 3\.10 to 3\.21"),
        ({"etc/os-release": 'ID="opensuse-leap"\nVERSION_ID="42.3"\n'}, r"^opensuse 42\.3 is too old"),
    ],
)
def test_too_old_release_rejected_without_changes(tmp_path, files, message):
    guest = tmp_path / "guest"
    for name, content in files.items():
        (guest / name).parent.mkdir(parents=True, exist_ok=True)
        (guest / name).write_text(content)

    error = expect_rejected(guest, tmp_path, message)

    assert "set ostype to 'unmanaged'" in str(error)


@pytest.mark.parametrize(
    "files, message",
    [
        ({"etc/debian_version": "bookworm-ish\n"}, r"unable to read the release from /etc/debian_version in the guest: found 'bookworm-ish'"),
        ({"etc/alpine-release": "\x00\x01garbage\n"}, r"unable to read the release from /etc/alpine-release in the guest: found '\\x00\\x01garbage'"),
        ({"etc/redhat-release": "Rocky Linux\n"}, r"expected 'Rocky Linux release 9.4'"),
        ({"etc/debian_version": "x\n", "etc/lsb-release": "DISTRIB_ID=Ubuntu\n"}, r"/etc/lsb-release in the guest: found ''"),
        ({"etc/os-release": "\x7fELF\x02\x01\x01\x00garbage\n"}, r"^unable to detect OS distribution: /etc/os-release line 1 is not KEY=value"),
        ({"etc/os-release": "ID=opensuse-leap\nVERSION_ID=fifteen\n"}, r"/etc/os-release in the guest: found 'fifteen'"),
    ],
)
def test_garbage_release_file_rejected_without_changes(tmp_path, files, message):
    guest = tmp_path / "guest"
    for name, content in files.items():
        (guest / name).parent.mkdir(parents=True, exist_ok=True)
        (guest / name).write_text(content)

    expect_rejected(guest, tmp_path, message)


@pytest.mark.parametrize(
    "files, ostype, expected_file",
    [
        ({"etc/debian_version": "x\n", "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=26.04\n"}, "ubuntu", "etc/netplan/10-lxc.yaml"),
        ({"etc/alpine-release": "3.30.1\n"}, "alpine", "etc/network/interfaces"),
        ({"etc/debian_version": "14.1\n"}, "debian", "etc/network/interfaces"),
        ({"etc/redhat-release": "AlmaLinux release 11.0\n"}, "centos", "etc/NetworkManager/system-connections/eth0.nmconnection"),
    ],
)
def test_newer_release_warned_once_and_configured(tmp_path, caplog, files, ostype, expected_file):
    guest = tmp_path / "guest"
    for name, content in files.items():
        (guest / name).parent.mkdir(parents=True, exist_ok=True)
        (guest / name).write_text(content)
    versions._warned.clear()

    with caplog.at_level(logging.WARNING, logger="pct.guest"):
        assert start(guest, tmp_path) == ostype
        start(guest, tmp_path)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "is newer than the newest release guest setup was written for" in warnings[0]
    assert (guest / expected_file).is_file()


# -- bad input ----------------------------------------------------------------


def test_symlinked_etc_rejected(tmp_path):
    guest = tmp_path / "guest"
    (guest / "real-etc").mkdir(parents=True)
    (guest / "real-etc/alpine-release").write_text("3.20.0\n")
    (guest / "etc").symlink_to("real-etc")

    expect_rejected(guest, tmp_path, r"^unable to set up the guest: its /etc is a symbolic link to 'real-etc'; expected a directory$")


def test_regular_file_etc_rejected(tmp_path):
    guest = tmp_path / "guest"
    guest.mkdir()
    (guest / "etc").write_text("not a directory\n")

    expect_rejected(guest, tmp_path, r"^unable to set up the guest: its /etc is missing or not a directory$")


@pytest.mark.parametrize("kind", sorted(NETWORK_DIRS))
def test_file_in_place_of_network_dir_rejected(tmp_path, kind):
    guest = make_guest(tmp_path, kind)
    blocked = guest / NETWORK_DIRS[kind]
    if blocked.is_dir():
        blocked.rmdir()
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where a directory belongs\n")

    expect_rejected(guest, tmp_path, rf"^unable to set up the guest: /{NETWORK_DIRS[kind]} is not a directory")


def test_file_in_place_of_parent_dir_rejected(tmp_path):
    guest = make_guest(tmp_path, "centos-ifcfg")
    (guest / "etc/sysconfig").write_text("file\n")

    expect_rejected(guest, tmp_path, r"^unable to set up the guest: /etc/sysconfig is not a directory")


@pytest.mark.parametrize("kind", ["alpine", "centos-keyfile", "archlinux", "opensuse-ifcfg"])
def test_binary_hosts_rejected_without_changes(tmp_path, kind):
    guest = make_guest(tmp_path, kind)
    (guest / "etc/hosts").write_bytes(b"127.0.0.1 localhost\n\x00\x01\x02\xff\n")

    expect_rejected(guest, tmp_path, r"^unable to update /etc/hosts in the guest: it contains binary data \(NUL bytes\); fix the file or create /etc/.pve-ignore.hosts")


def test_unreadable_hosts_rejected_without_changes(tmp_path):
    guest = make_guest(tmp_path, "alpine")
    (guest / "etc/hosts").unlink()
    os.mkfifo(guest / "etc/hosts")

    expect_rejected(guest, tmp_path, r"^unable to read /etc/hosts: not a regular file$")


def test_binary_interfaces_rejected_without_changes(tmp_path):
    guest = make_guest(tmp_path, "alpine")
    (guest / "etc/network").mkdir()
    (guest / "etc/network/interfaces").write_bytes(b"auto lo\n\x00\n")

    expect_rejected(guest, tmp_path, r"^unable to update /etc/network/interfaces in the guest: it contains binary data")


def test_ipv6_gateway_without_address_rejected(tmp_path):
    guest = make_guest(tmp_path, "archlinux")
    conf = GuestConfig(vmid=300, hostname="ct", nets=(GuestNet("eth0", ip="dhcp", ip6="auto", gw6="2001:db8::1"),))

    expect_rejected(guest, tmp_path, r"^invalid guest setup input: gw6 '2001:db8::1' of eth0 needs a static ip6$", conf)


@pytest.mark.parametrize("key", ["gw", "gw6"])
def test_two_default_gateways_rejected(tmp_path, key):
    guest = make_guest(tmp_path, "centos-keyfile")
    first = GuestNet("eth0", ip="192.0.2.5/24", gw="192.0.2.1", ip6="2001:db8::5/64", gw6="2001:db8::1")
    second = GuestNet("eth1", ip="198.51.100.5/24", ip6="2001:db8:1::5/64", **{key: "198.51.100.1" if key == "gw" else "2001:db8:1::1"})
    conf = GuestConfig(vmid=300, hostname="ct", nets=(first, second))

    expect_rejected(guest, tmp_path, rf"^invalid guest setup input: {key} is set on eth0 and eth1, but only one interface can have the default gateway$", conf)


def test_alpine_dhcpv6_rejected(tmp_path):
    guest = make_guest(tmp_path, "alpine")
    conf = GuestConfig(vmid=300, hostname="ct", nets=(GuestNet("eth0", ip="dhcp", ip6="dhcp"),))

    expect_rejected(guest, tmp_path, r"^invalid network setting of eth0 for the alpine guest: ip6=dhcp is not supported", conf)


def test_gentoo_dhcpv6_alone_rejected(tmp_path):
    guest = make_guest(tmp_path, "gentoo")
    conf = GuestConfig(vmid=300, hostname="ct", nets=(GuestNet("eth0", ip="192.0.2.5/24", ip6="dhcp"),))

    expect_rejected(guest, tmp_path, r"^invalid network setting of eth0 for the gentoo guest: netifrc runs one DHCP client", conf)


# -- file modes, owners, ignore files and stale files ---------------------------


@pytest.mark.parametrize(
    "kind, path",
    [("ubuntu-netplan", "etc/netplan/10-lxc.yaml"), ("centos-keyfile", "etc/NetworkManager/system-connections/eth0.nmconnection")],
)
def test_network_files_readable_by_root_only(tmp_path, kind, path):
    guest = make_guest(tmp_path, kind)
    (guest / path).parent.mkdir(parents=True, exist_ok=True)
    (guest / path).write_text("old\n")
    (guest / path).chmod(0o644)

    start(guest, tmp_path)

    assert stat.S_IMODE((guest / path).stat().st_mode) == 0o600
    assert (guest / path).read_text().startswith("# Written by pct")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing file owners needs root")
@pytest.mark.parametrize(
    "kind, path",
    [("centos-keyfile", "etc/NetworkManager/system-connections/eth0.nmconnection"),
     ("archlinux", "etc/systemd/network/eth0.network"),
     ("gentoo", "etc/runlevels/default/net.eth0")],
)
def test_unprivileged_network_files_get_mapped_owner(tmp_path, kind, path):
    guest = make_guest(tmp_path, kind)

    start(guest, tmp_path, uid_base=100000, gid_base=100000)

    info = (guest / path).lstat()
    assert (info.st_uid, info.st_gid) == (100000, 100000)
    assert (guest / path).parent.lstat().st_uid == 100000


@pytest.mark.parametrize(
    "kind, path",
    [("ubuntu-netplan", "etc/netplan/10-lxc.yaml"),
     ("centos-keyfile", "etc/NetworkManager/system-connections/eth0.nmconnection"),
     ("centos-ifcfg", "etc/sysconfig/network-scripts/ifcfg-eth0"),
     ("archlinux", "etc/systemd/network/eth0.network"),
     ("opensuse-ifcfg", "etc/sysconfig/network/ifcfg-eth0")],
)
def test_pve_ignore_keeps_network_file(tmp_path, kind, path):
    guest = make_guest(tmp_path, kind)
    (guest / path).parent.mkdir(parents=True, exist_ok=True)
    (guest / path).write_text("mine\n")
    (guest / f"etc/.pve-ignore.{path.rsplit('/', 1)[1]}").touch()

    start(guest, tmp_path)

    assert (guest / path).read_text() == "mine\n"


def test_stale_route_file_removed_but_own_kept(tmp_path):
    guest = make_guest(tmp_path, "centos-ifcfg")
    scripts = guest / "etc/sysconfig/network-scripts"
    scripts.mkdir(parents=True)
    (scripts / "route-eth0").write_text("# Written by pct at each container start\n198.51.100.1 dev eth0\n")
    (scripts / "route6-eth0").write_text("2001:db8:5::/48 via 2001:db8::99\n")

    start(guest, tmp_path)

    assert not (scripts / "route-eth0").exists()
    assert (scripts / "route6-eth0").read_text() == "2001:db8:5::/48 via 2001:db8::99\n"


def test_netplan_replaces_template_dhcp(tmp_path):
    guest = make_guest(tmp_path, "ubuntu-netplan")
    (guest / "etc/netplan").mkdir()
    (guest / "etc/netplan/10-lxc.yaml").write_text("network:\n  ethernets:\n    eth0: {dhcp4: true}\n")

    start(guest, tmp_path)

    text = (guest / "etc/netplan/10-lxc.yaml").read_text()
    assert "dhcp4: false" in text
    assert "- 192.0.2.5/24" in text
    assert "{dhcp4: true}" not in text


def test_nixos_managed_files_left_alone(tmp_path):
    guest = make_guest(tmp_path, "nixos")
    (guest / "etc/static").mkdir()
    (guest / "etc/static/hostname").write_text("nixos\n")
    (guest / "etc/hostname").symlink_to("/etc/static/hostname")
    (guest / "etc/hosts").unlink()
    (guest / "etc/hosts").symlink_to("/etc/static/hosts")

    start(guest, tmp_path)

    assert os.readlink(guest / "etc/hostname") == "/etc/static/hostname"
    assert os.readlink(guest / "etc/hosts") == "/etc/static/hosts"
    assert not (guest / "etc/network").exists()
    assert (guest / "etc/resolv.conf").read_text() == "search example.com\nnameserver 192.0.2.53\n"


# -- hostile symlinks -----------------------------------------------------------


def make_host_files(tmp_path: Path) -> Path:
    host = tmp_path / "host"
    (host / "dir").mkdir(parents=True)
    (host / "secret").write_text("host secret\n")
    (host / "dir/file").write_text("host file\n")
    return host


HOSTILE_LINKS = [
    ("etc/hostname", "{host}/secret"),
    ("etc/hosts", "../../../../../../../../..{host}/secret"),
    ("etc/resolv.conf", "{host}/secret"),
    ("root/.ssh", "{host}/dir"),
    ("{network_dir}", "{host}/dir"),
    ("{network_dir}", "../../../../../../../../..{host}/dir"),
]


@pytest.mark.parametrize("link, target", HOSTILE_LINKS)
@pytest.mark.parametrize("kind", sorted(NETWORK_DIRS))
def test_hostile_symlink_stays_inside(tmp_path, kind, link, target):
    guest = make_guest(tmp_path, kind)
    host = make_host_files(tmp_path)
    planted = guest / link.format(network_dir=NETWORK_DIRS[kind])
    planted.parent.mkdir(parents=True, exist_ok=True)
    if planted.is_dir():
        planted.rmdir()
    elif planted.exists():
        planted.unlink()
    planted.symlink_to(target.format(host=host))
    host_before = tree_state(host)

    try:
        setup_guest(GuestRoot(guest, vmid=300), CONFIG, phase="create", ssh_public_keys="ssh-ed25519 AAAAC3 test",
                    host_resolv_conf=tmp_path / "none", host_keys=lambda: [])
    except GuestError as error:
        assert "\n" not in str(error)
        assert error.vmid == 300

    assert tree_state(host) == host_before
