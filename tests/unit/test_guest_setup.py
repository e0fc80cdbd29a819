"""Guest setup: detection, ostype checks, input validation and the create phase."""

from __future__ import annotations

import os
import random
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pct.errors import GuestError
from pct.guest import GuestConfig, GuestNet, GuestRoot, check_ostype, detect_ostype, setup_guest
from pct.guest.ifupdown import render_interfaces

DEBIAN_CRONTAB = (
    "SHELL=/bin/sh\n"
    "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
    "25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }\n"
    "47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }\n"
    "52 6\t1 * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }\n"
)

CONFIG = GuestConfig(vmid=200, hostname="ct", nets=(GuestNet("eth0", ip="dhcp"),), nameserver="192.0.2.53")


def make_debian(tmp_path: Path) -> Path:
    guest = tmp_path / "guest"
    (guest / "etc/ssh").mkdir(parents=True)
    (guest / "root").mkdir()
    (guest / "etc/debian_version").write_text("12.5\n")
    (guest / "etc/shadow").write_text("root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    (guest / "etc/crontab").write_text(DEBIAN_CRONTAB)
    (guest / "etc/ssh/ssh_host_rsa_key").write_text("OLD PRIVATE\n")
    (guest / "etc/ssh/ssh_host_rsa_key.pub").write_text("OLD PUBLIC\n")
    (guest / "etc/ssh/ssh_host_dsa_key").write_text("OLD DSA\n")
    (guest / "etc/ssh/sshd_config").write_text("PermitRootLogin yes\n")
    return guest


def tree_state(tree: Path) -> dict[str, tuple]:
    state = {}
    for path in sorted(tree.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        state[str(path)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), content)
    return state


def create(guest: Path, tmp_path: Path, **kwargs) -> str:
    return setup_guest(GuestRoot(guest, vmid=200), CONFIG, phase="create", host_resolv_conf=tmp_path / "none", **kwargs)


# -- detection ----------------------------------------------------------------

RELEASE_FILES = {
    "ubuntu": {"etc/debian_version": "trixie/sid\n", "etc/lsb-release": 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\n'},
    "debian": {"etc/debian_version": "12.5\n"},
    "devuan": {"etc/debian_version": "12.0\n", "etc/devuan_version": "daedalus\n"},
    "fedora": {"etc/fedora-release": "Fedora release 40\n", "etc/redhat-release": "Fedora release 40\n"},
    "centos": {"etc/redhat-release": "Rocky Linux release 9.3\n"},
    "archlinux": {"etc/arch-release": ""},
    "alpine": {"etc/alpine-release": "3.19.1\n"},
    "gentoo": {"etc/gentoo-release": "Gentoo Base System release 2.14\n"},
    "opensuse": {"etc/os-release": 'NAME="openSUSE Leap"\nID="opensuse-leap"\n'},
    "nixos": {"etc/os-release": "NAME=NixOS\nID=nixos\n"},
}


@pytest.mark.parametrize("ostype", sorted(RELEASE_FILES))
def test_detect_ostype_from_release_files(tmp_path, ostype):
    for name, content in RELEASE_FILES[ostype].items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)

    assert detect_ostype(GuestRoot(tmp_path)) == ostype


def test_detect_opensuse_from_brand_file(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/SuSE-brand").write_text("openSUSE\n")

    assert detect_ostype(GuestRoot(tmp_path)) == "opensuse"


def test_detect_unknown_distribution_fails(tmp_path):
    (tmp_path / "etc").mkdir()

    with pytest.raises(GuestError, match="^unable to detect OS distribution"):
        detect_ostype(GuestRoot(tmp_path, vmid=200))


def test_check_ostype_mismatch_names_both():
    with pytest.raises(GuestError) as caught:
        check_ostype("debian", "ubuntu", 200)

    assert str(caught.value) == (
        "ostype mismatch: configured 'debian', but the rootfs contains 'ubuntu';"
        " set ostype to 'ubuntu' or use another template"
    )
    assert caught.value.vmid == 200


def test_check_ostype_accepts_unset_and_unmanaged():
    check_ostype(None, "alpine", 200)
    check_ostype("unmanaged", "alpine", 200)
    check_ostype("alpine", "alpine", 200)


def test_setup_ostype_mismatch_changes_nothing(tmp_path):
    guest = make_debian(tmp_path)
    before = tree_state(guest)
    conf = GuestConfig(vmid=200, hostname="ct", ostype="ubuntu")

    with pytest.raises(GuestError, match="configured 'ubuntu', but the rootfs contains 'debian'"):
        setup_guest(GuestRoot(guest), conf, phase="start", host_resolv_conf=tmp_path / "none")
    assert tree_state(guest) == before


def test_setup_unmanaged_changes_nothing(tmp_path):
    guest = make_debian(tmp_path)
    before = tree_state(guest)
    conf = GuestConfig(vmid=200, hostname="ct", ostype="unmanaged")

    assert setup_guest(GuestRoot(guest), conf, phase="create", password="pw") == "unmanaged"
    assert tree_state(guest) == before


# -- invalid input ------------------------------------------------------------

INVALID = [
    (dict(hostname="bad_name"), "hostname 'bad_name' is not a valid DNS name"),
    (dict(nets=(GuestNet("eth0", ip="192.0.2.5"),)), "ip '192.0.2.5' of eth0 is not an address with prefix length"),
    (dict(nets=(GuestNet("eth0", ip="dhcp", gw="192.0.2.1"),)), "gw '192.0.2.1' of eth0 needs a static ip"),
    (dict(nets=(GuestNet("eth0\nup rm", ip="dhcp"),)), "interface name 'eth0\\\\nup rm' is invalid"),
    (dict(nets=(GuestNet("eth0", ip6="192.0.2.5/24"),)), "ip6 '192.0.2.5/24' of eth0"),
    (dict(nameserver="192.0.2.53 not-an-ip"), "nameserver 'not-an-ip' is not an IP address"),
    (dict(tty=7), "tty 7 is out of range 0 to 6"),
    (dict(timezone="../../etc/passwd"), "timezone '../../etc/passwd' is not a zoneinfo name"),
    (dict(ostype="windows"), "unknown ostype 'windows'"),
]


@pytest.mark.parametrize("changes, message", INVALID)
def test_invalid_input_rejected_without_changes(tmp_path, changes, message):
    guest = make_debian(tmp_path)
    before = tree_state(guest)
    fields = dict(vmid=200, hostname="ct", nets=(GuestNet("eth0", ip="dhcp"),))
    fields.update(changes)

    with pytest.raises(GuestError, match=message) as caught:
        setup_guest(GuestRoot(guest), GuestConfig(**fields), phase="start", host_resolv_conf=tmp_path / "none")
    assert "\n" not in str(caught.value)
    assert caught.value.vmid == 200
    assert tree_state(guest) == before


def test_invalid_phase_rejected(tmp_path):
    guest = make_debian(tmp_path)

    with pytest.raises(GuestError, match="invalid guest setup phase 'boot'"):
        setup_guest(GuestRoot(guest), CONFIG, phase="boot")


def test_missing_timezone_rejected_without_changes(tmp_path):
    guest = make_debian(tmp_path)
    before = tree_state(guest)
    conf = GuestConfig(vmid=200, hostname="ct", timezone="Mars/Olympus")

    with pytest.raises(GuestError, match="timezone 'Mars/Olympus' not found in the guest"):
        setup_guest(GuestRoot(guest), conf, phase="start", host_resolv_conf=tmp_path / "none")
    assert tree_state(guest) == before


def test_password_with_newline_rejected_without_changes(tmp_path):
    guest = make_debian(tmp_path)
    before = tree_state(guest)

    with pytest.raises(GuestError, match="invalid root password: it must not contain a line break"):
        create(guest, tmp_path, password="a\nb")
    assert tree_state(guest) == before


def test_unbalanced_markers_rejected(tmp_path):
    guest = make_debian(tmp_path)
    (guest / "etc/hosts").write_text("127.0.0.1 localhost\n# --- BEGIN PVE ---\n127.0.1.1 x\n")
    before = (guest / "etc/hosts").read_text()

    with pytest.raises(GuestError, match=r"unable to update /etc/hosts in the guest: unbalanced"):
        setup_guest(GuestRoot(guest), CONFIG, phase="start", host_resolv_conf=tmp_path / "none")
    assert (guest / "etc/hosts").read_text() == before


# -- create phase -------------------------------------------------------------


def test_create_sets_verifiable_password_hash(tmp_path):
    guest = make_debian(tmp_path)

    create(guest, tmp_path, password="s3cret pass")

    lines = (guest / "etc/shadow").read_text().splitlines()
    root_fields = lines[0].split(":")
    assert root_fields[0] == "root"
    assert root_fields[2:] == ["19000", "0", "99999", "7", "", "", ""]
    assert lines[1] == "daemon:*:19000:0:99999:7:::"
    salt = root_fields[1].split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input="s3cret pass\n", capture_output=True, text=True, check=True)
    assert again.stdout.strip() == root_fields[1]


def test_create_writes_authorized_keys_private(tmp_path):
    guest = make_debian(tmp_path)
    keys = "ssh-ed25519 AAAAC3NzaC1 alice\n\nssh-rsa AAAAB3NzaC1 bob\n"

    create(guest, tmp_path, ssh_public_keys=keys)

    ssh_dir = guest / "root/.ssh"
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((ssh_dir / "authorized_keys").stat().st_mode) == 0o600
    assert (ssh_dir / "authorized_keys").read_text() == "ssh-ed25519 AAAAC3NzaC1 alice\nssh-rsa AAAAB3NzaC1 bob\n"


def test_create_replaces_ssh_host_keys(tmp_path):
    guest = make_debian(tmp_path)

    create(guest, tmp_path)

    names = sorted(p.name for p in (guest / "etc/ssh").iterdir())
    assert names == [
        "ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub",
        "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub",
        "ssh_host_rsa_key", "ssh_host_rsa_key.pub",
        "sshd_config",
    ]
    assert (guest / "etc/ssh/ssh_host_rsa_key").read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert (guest / "etc/ssh/ssh_host_rsa_key.pub").read_text().startswith("ssh-rsa ")
    assert stat.S_IMODE((guest / "etc/ssh/ssh_host_ed25519_key").stat().st_mode) == 0o600
    assert (guest / "etc/ssh/sshd_config").read_text() == "PermitRootLogin yes\n"
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(guest / "etc/ssh/ssh_host_ed25519_key.pub")], capture_output=True, text=True)
    assert fingerprint.returncode == 0


def test_create_without_etc_ssh_skips_host_keys(tmp_path):
    guest = make_debian(tmp_path)
    shutil.rmtree(guest / "etc/ssh")

    create(guest, tmp_path)

    assert not (guest / "etc/ssh").exists()


def test_create_randomizes_crontab_times(tmp_path):
    guest = make_debian(tmp_path)

    create(guest, tmp_path, rng=random.Random(4))

    lines = (guest / "etc/crontab").read_text().splitlines()
    assert lines[0] == "SHELL=/bin/sh"
    original = DEBIAN_CRONTAB.splitlines()
    for line, old in zip(lines[1:], original[1:]):
        minute, hour = re.match(r"^(\d+) (\S+)\t", line).groups()
        assert 0 <= int(minute) <= 59
        assert line.split("\t", 1)[1] == old.split("\t", 1)[1]
        if "hourly" in line:
            assert hour == "*"
        else:
            assert 0 <= int(hour) <= 23
    assert lines != original


def test_start_phase_leaves_create_files_alone(tmp_path):
    guest = make_debian(tmp_path)

    setup_guest(GuestRoot(guest), CONFIG, phase="start", password="pw", host_resolv_conf=tmp_path / "none")

    assert (guest / "etc/crontab").read_text() == DEBIAN_CRONTAB
    assert (guest / "etc/shadow").read_text().startswith("root:*:")
    assert (guest / "etc/ssh/ssh_host_rsa_key").read_text() == "OLD PRIVATE\n"


def test_pve_ignore_shadow_keeps_password(tmp_path):
    guest = make_debian(tmp_path)
    (guest / "etc/.pve-ignore.shadow").touch()
    (guest / "etc/.pve-ignore.crontab").touch()

    create(guest, tmp_path, password="pw")

    assert (guest / "etc/shadow").read_text().startswith("root:*:")
    assert (guest / "etc/crontab").read_text() == DEBIAN_CRONTAB


# -- interfaces rendering -----------------------------------------------------


def test_interfaces_partial_auto_line_keeps_other_names():
    text = "auto lo\niface lo inet loopback\n\nauto eth0 eth1\niface eth0 inet dhcp\n\niface eth1 inet manual\n"

    result = render_interfaces(text, [GuestNet("eth0", ip="192.0.2.5/24")])

    assert "auto eth1\n" in result
    assert "iface eth1 inet manual\n" in result
    assert "iface eth0 inet dhcp" not in result
    assert "iface eth0 inet static\n\taddress 192.0.2.5\n\tnetmask 255.255.255.0\n" in result
    assert render_interfaces(result, [GuestNet("eth0", ip="192.0.2.5/24")]) == result


def test_interfaces_unconfigured_net_keeps_guest_stanza():
    text = "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n\taddress 10.0.0.2/8\n"

    assert render_interfaces(text, [GuestNet("eth0")]) == text


def test_interfaces_link_local_gateway_uses_gateway_line():
    result = render_interfaces(None, [GuestNet("eth0", ip6="2001:db8::5/64", gw6="fe80::1")])

    assert "\tgateway fe80::1\n" in result
    assert "post-up" not in result


# -- systemd units that cannot work in a container ------------------------------

def test_debugfs_mount_unit_masked(tmp_path):
    guest = make_debian(tmp_path)
    (guest / "lib/systemd/system").mkdir(parents=True)
    (guest / "lib/systemd/system/sys-kernel-debug.mount").write_text("[Mount]\n")
    (guest / "etc/systemd/system").mkdir(parents=True)
    create(guest, tmp_path)
    assert os.readlink(guest / "etc/systemd/system/sys-kernel-debug.mount") == "/dev/null"
    assert not (guest / "etc/systemd/system/sys-kernel-tracing.mount").is_symlink()


def test_guest_configured_unit_not_masked(tmp_path):
    guest = make_debian(tmp_path)
    (guest / "lib/systemd/system").mkdir(parents=True)
    (guest / "lib/systemd/system/sys-kernel-debug.mount").write_text("[Mount]\n")
    (guest / "etc/systemd/system").mkdir(parents=True)
    (guest / "etc/systemd/system/sys-kernel-debug.mount").write_text("[Mount]\nWhat=custom\n")
    create(guest, tmp_path)
    assert (guest / "etc/systemd/system/sys-kernel-debug.mount").read_text() == "[Mount]\nWhat=custom\n"
