"""Tests for the option schema, property strings and sizes."""

from __future__ import annotations

import pytest

from pct.config.propstring import (
    PropertyValueError,
    PropFormat,
    PropKey,
    format_propstring,
    format_size,
    parse_propstring,
    parse_size,
)
from pct.config.schema import (
    OPTIONS,
    UNDELETABLE_KEYS,
    check_deletable,
    check_settable,
    json_value,
    is_hotpluggable,
    is_settable,
    lookup_option,
    option_help,
    validate_option,
)
from pct.errors import ParameterError

PREFIX = "400 Parameter verification failed. "

# Every key of the option table, with the highest index of indexed keys.
SPEC_KEYS = [
    "arch", "cmode", "console", "cores", "cpulimit", "cpuunits", "debug", "description",
    "dev0", "dev255", "features", "hookscript", "hostname", "lock", "memory", "mp0", "mp255",
    "nameserver", "net0", "net31", "onboot", "ostype", "protection", "rootfs", "searchdomain",
    "startup", "swap", "tags", "template", "timezone", "tty", "unprivileged", "unused0",
    "unused255",
]
SETTABLE_KEYS = [
    "arch", "hostname", "memory", "swap", "cores", "cpulimit", "cpuunits", "net0", "net31",
    "nameserver", "searchdomain", "ostype", "rootfs", "onboot", "tty", "cmode",
    "console", "description", "tags", "protection", "mp0", "mp255", "dev0", "dev255",
    "unused0", "unused255", "features", "hookscript", "startup", "timezone", "debug",
]
# Keys that pct writes itself.
NOT_SETTABLE_KEYS = ["lock", "parent", "snaptime", "snapstate"]
# Keys fixed at creation: a change would not match the files on disk.
READ_ONLY_KEYS = ["unprivileged", "template"]
HOTPLUG_KEYS = [
    "memory", "swap", "cores", "cpulimit", "cpuunits", "net0", "net31", "mp0", "mp255", "hostname",
    "nameserver", "searchdomain", "description", "tags", "onboot", "startup", "protection", "cmode",
    "dev0", "dev255",
]


# --- lookup -------------------------------------------------------------------


@pytest.mark.parametrize("key", SPEC_KEYS)
def test_every_spec_key_is_declared(key: str):
    assert lookup_option(key) is not None


@pytest.mark.parametrize("key", ["net32", "mp256", "dev256", "unused256", "net", "mp", "net01",
                                 "memory0", "lxc.apparmor.profile", "brige", ""])
def test_lookup_of_undeclared_key(key: str):
    assert lookup_option(key) is None


def test_lookup_indexed_key_returns_base_option():
    assert lookup_option("net7") is OPTIONS["net"]
    assert lookup_option("mp12") is OPTIONS["mp"]
    assert OPTIONS["net"].indexed
    assert OPTIONS["net"].max_index == 31


@pytest.mark.parametrize("key", SETTABLE_KEYS)
def test_spec_keys_are_settable(key: str):
    assert is_settable(key)
    assert check_settable(key).settable


def test_settable_lists_cover_every_option():
    listed = {lookup_option(key).name for key in SETTABLE_KEYS + NOT_SETTABLE_KEYS + READ_ONLY_KEYS}

    assert listed == set(OPTIONS)


@pytest.mark.parametrize("key", NOT_SETTABLE_KEYS)
def test_internal_keys_are_not_settable(key: str):
    assert not is_settable(key)
    with pytest.raises(ParameterError) as excinfo:
        check_settable(key, 100)

    assert str(excinfo.value) == (
        f"{PREFIX}{key}: option is managed by pct itself and cannot be changed with 'pct set'"
    )
    assert excinfo.value.key == key
    assert excinfo.value.vmid == 100


@pytest.mark.parametrize(("key", "hint"), [("unprivileged", "pct restore --unprivileged"),
                                         ("template", "use 'pct template'")])
def test_read_only_keys_name_the_way(key: str, hint: str):
    assert not is_settable(key)
    with pytest.raises(ParameterError) as set_error:
        check_settable(key, 100)
    with pytest.raises(ParameterError) as delete_error:
        check_deletable(key, 100)

    assert str(set_error.value).startswith(f"{PREFIX}{key}: read-only option: ")
    assert hint in str(set_error.value)
    assert "read-only option" in str(delete_error.value)


def test_check_settable_unknown_key():
    with pytest.raises(ParameterError) as excinfo:
        check_settable("brige")

    assert excinfo.value.reason == (
        "property is not defined in schema and the schema does not allow additional properties"
    )


# --- hot plug -------------------------------------------------------------------


@pytest.mark.parametrize("key", HOTPLUG_KEYS)
def test_hotpluggable_keys(key: str):
    assert is_hotpluggable(key)


@pytest.mark.parametrize("key", sorted(set(SPEC_KEYS + NOT_SETTABLE_KEYS) - set(HOTPLUG_KEYS)))
def test_keys_that_wait_for_restart(key: str):
    assert not is_hotpluggable(key)


@pytest.mark.parametrize("key", ["brige", "net32", "lxc.apparmor.profile"])
def test_unknown_key_is_not_hotpluggable(key: str):
    assert not is_hotpluggable(key)


# --- deletion -----------------------------------------------------------------------


def test_rootfs_cannot_be_deleted():
    assert "rootfs" in UNDELETABLE_KEYS
    with pytest.raises(ParameterError) as excinfo:
        check_deletable("rootfs", 100)

    assert str(excinfo.value) == f"{PREFIX}rootfs: the root file system cannot be removed"
    assert excinfo.value.key == "rootfs"
    assert excinfo.value.vmid == 100


@pytest.mark.parametrize("key", ["parent", "snaptime", "snapstate"])
def test_internal_keys_cannot_be_deleted(key: str):
    assert key in UNDELETABLE_KEYS
    with pytest.raises(ParameterError) as excinfo:
        check_deletable(key)

    assert excinfo.value.reason == "option is managed by pct itself and cannot be removed with 'pct set'"


@pytest.mark.parametrize("key", ["mp0", "net31", "unused255", "dev7", "memory", "description", "lock",
                                 "hookscript", "features", "startup"])
def test_other_keys_can_be_deleted(key: str):
    assert check_deletable(key) is lookup_option(key)
    assert key not in UNDELETABLE_KEYS


def test_delete_of_unknown_key():
    with pytest.raises(ParameterError) as excinfo:
        check_deletable("nonsense", 100)

    assert str(excinfo.value) == f"{PREFIX}delete: unknown option 'nonsense'"


# --- valid values and their normalised form -------------------------------------


@pytest.mark.parametrize("key, value, expected", [
    ("arch", "arm64", "arm64"),
    ("hostname", "www", "www"),
    ("hostname", "web-01.example.com", "web-01.example.com"),
    ("memory", "16", "16"),
    ("memory", " 2048 ", "2048"),
    ("swap", "0", "0"),
    ("cores", "1", "1"),
    ("cores", "8192", "8192"),
    ("cpulimit", "0", "0"),
    ("cpulimit", "0.50", "0.5"),
    ("cpulimit", "8192", "8192"),
    ("cpulimit", "2.0", "2"),
    ("cpuunits", "0", "0"),
    ("cpuunits", "500000", "500000"),
    ("tty", "0", "0"),
    ("tty", "6", "6"),
    ("cmode", "shell", "shell"),
    ("ostype", "unmanaged", "unmanaged"),
    ("lock", "snapshot-delete", "snapshot-delete"),
    ("nameserver", "192.0.2.53", "192.0.2.53"),
    ("nameserver", "192.0.2.53, 2001:db8::53;10.0.0.1", "192.0.2.53 2001:db8::53 10.0.0.1"),
    ("searchdomain", "example.com lab.example.com", "example.com lab.example.com"),
    ("tags", "a;b_c;d+e;f.g;h-i;0", "a;b_c;d+e;f.g;h-i;0"),
    ("tags", "web, db prod", "web;db;prod"),
    ("description", "two\nlines ", "two\nlines "),
    ("rootfs", "local:8", "local:8"),
    ("rootfs", "volume=local:100/vm-100-disk-0.raw,size=8192M",
     "local:100/vm-100-disk-0.raw,size=8G"),
    ("rootfs", "size=4G,local:4,ro=yes,acl=off,mountoptions=noatime;nodev,quota=1,replicate=0,shared=true",
     "local:4,acl=0,mountoptions=noatime;nodev,quota=1,replicate=0,ro=1,shared=1,size=4G"),
    ("net0", "bridge=vmbr0,name=eth0", "name=eth0,bridge=vmbr0"),
    ("net0", "name=eth0,ip=192.0.2.5/24,gw=192.0.2.1,ip6=2001:db8::5/64,gw6=2001:db8::1",
     "name=eth0,gw=192.0.2.1,gw6=2001:db8::1,ip=192.0.2.5/24,ip6=2001:db8::5/64"),
    ("net0", "name=eth0,ip=dhcp,ip6=auto", "name=eth0,ip=dhcp,ip6=auto"),
    ("net0", "name=eth0,ip=manual,ip6=manual", "name=eth0,ip=manual,ip6=manual"),
    ("net0", "name=eth0,ip6=dhcp", "name=eth0,ip6=dhcp"),
    ("net0", "name=eth0,hwaddr=02:aa:bb:cc:dd:ee", "name=eth0,hwaddr=02:AA:BB:CC:DD:EE"),
    ("net0", "name=eth0,mtu=64", "name=eth0,mtu=64"),
    ("net0", "name=eth0,mtu=65535", "name=eth0,mtu=65535"),
    ("net0", "name=eth0,type=veth,firewall=on,link_down=no", "name=eth0,firewall=1,link_down=0,type=veth"),
    ("net0", "name=eth0,rate=12.50,tag=4094,trunks=1;20;4094", "name=eth0,rate=12.5,tag=4094,trunks=1;20;4094"),
    ("net31", "name=eth31", "name=eth31"),
    ("mp0", "local:10,mp=/srv/data,backup=1", "local:10,mp=/srv/data,backup=1"),
    ("mp3", "/mnt/host,mp=/mnt/in,ro=1", "/mnt/host,mp=/mnt/in,ro=1"),
    ("dev0", "/dev/ttyUSB0,mode=0660,gid=20", "/dev/ttyUSB0,gid=20,mode=0660"),
    ("features", "nesting=1,mount=nfs;cifs", "mount=nfs;cifs,nesting=1"),
    ("startup", "3,up=30", "order=3,up=30"),
    ("timezone", "Europe/Vienna", "Europe/Vienna"),
    ("timezone", "host", "host"),
    ("unused0", "local:100/vm-100-disk-1.raw", "local:100/vm-100-disk-1.raw"),
])
def test_valid_value_is_normalised(key: str, value: str, expected: str):
    assert validate_option(key, value) == expected


@pytest.mark.parametrize("word, expected", [
    ("1", "1"), ("yes", "1"), ("on", "1"), ("true", "1"), ("TRUE", "1"), ("Yes", "1"),
    ("0", "0"), ("no", "0"), ("off", "0"), ("false", "0"), ("OFF", "0"),
])
@pytest.mark.parametrize("key", ["unprivileged", "onboot", "console", "template", "protection", "debug"])
def test_boolean_words(key: str, word: str, expected: str):
    assert validate_option(key, word) == expected


# --- invalid values and their messages --------------------------------------------


INVALID_VALUES = [
    ("memory", "8", "value '8' is below the minimum of 16"),
    ("memory", "512M", "value '512M' is not an integer"),
    ("swap", "-1", "value '-1' is below the minimum of 0"),
    ("cores", "0", "value '0' is below the minimum of 1"),
    ("cores", "8193", "value '8193' is above the maximum of 8192"),
    ("cpulimit", "8192.5", "value '8192.5' is above the maximum of 8192"),
    ("cpulimit", "-0.5", "value '-0.5' is below the minimum of 0"),
    ("cpulimit", "half", "value 'half' is not a number"),
    ("cpuunits", "500001", "value '500001' is above the maximum of 500000"),
    ("tty", "7", "value '7' is above the maximum of 6"),
    ("arch", "sparc", "value 'sparc' is not one of: amd64, i386, arm64, armhf, riscv32, riscv64"),
    ("ostype", "windows", "value 'windows' is not one of: alpine, archlinux, centos, debian, devuan, "
                          "fedora, gentoo, nixos, opensuse, ubuntu, unmanaged"),
    ("cmode", "serial", "value 'serial' is not one of: tty, console, shell"),
    ("lock", "busy", "value 'busy' is not one of: backup, create, destroyed, disk, fstrim, migrate, "
                     "mounted, rollback, snapshot, snapshot-delete"),
    ("onboot", "maybe", "value 'maybe' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ("hostname", "-web", "value '-web' does not look like a valid DNS name"),
    ("hostname", "web_01", "value 'web_01' does not look like a valid DNS name"),
    ("hostname", "web..example", "value 'web..example' does not look like a valid DNS name"),
    ("hostname", "a" * 64, f"value '{'a' * 64}' does not look like a valid DNS name"),
    ("nameserver", "192.0.2.300", "value '192.0.2.300' is not an IPv4 or IPv6 address"),
    ("searchdomain", "exa mple.com bad_domain", "value 'bad_domain' is not a valid DNS domain"),
    ("tags", "web;Prod", "tag 'Prod' contains characters other than a-z, 0-9, '_', '+', '.' and '-'"),
    ("tags", "a/b", "tag 'a/b' contains characters other than a-z, 0-9, '_', '+', '.' and '-'"),
    ("memory", "", "value is empty"),
    ("features", ",", "value is empty"),
    ("arch", "amd64\nx", "value 'amd64\\nx' is not one of: amd64, i386, arm64, armhf, riscv32, riscv64"),
    ("hostname", "www\u2028x", "value 'www\\u2028x' does not look like a valid DNS name"),
    ("memory", "   ", "value is empty"),
    ("description", "x" * 8193, "description is longer than 8192 bytes"),
    ("brige", "vmbr0",
     "property is not defined in schema and the schema does not allow additional properties"),
    ("net32", "name=eth0",
     "property is not defined in schema and the schema does not allow additional properties"),
    ("lxc.apparmor.profile", "unconfined",
     "property is not defined in schema and the schema does not allow additional properties"),
    ("net0", "name=eth0,brige=vmbr0", "invalid format - unknown key 'brige'"),
    ("net0", "bridge=vmbr0", "invalid format - missing required key 'name'"),
    ("net0", "eth0", "invalid format - value 'eth0' has no key (expected key=value)"),
    ("net0", "name=eth0,ip=dhcp,ip=manual",
     "invalid format - duplicate key in comma-separated list property: ip"),
    ("net0", "name=eth0,hwaddr=01:00:5E:00:00:01",
     "invalid format - hwaddr: value '01:00:5E:00:00:01' is a multicast MAC address "
     "(the lowest bit of the first octet must be 0)"),
    ("net0", "name=eth0,hwaddr=FF:FF:FF:FF:FF:FF",
     "invalid format - hwaddr: value 'FF:FF:FF:FF:FF:FF' is a multicast MAC address "
     "(the lowest bit of the first octet must be 0)"),
    ("net0", "name=eth0,hwaddr=02:00:00:00:00",
     "invalid format - hwaddr: value '02:00:00:00:00' does not look like a valid unicast MAC address"),
    ("net0", "name=eth0,ip=192.0.2.5",
     "invalid format - ip: value '192.0.2.5' does not look like a valid IPv4 address in CIDR form "
     "(or dhcp/manual)"),
    ("net0", "name=eth0,ip=192.0.2.5/33",
     "invalid format - ip: value '192.0.2.5/33' does not look like a valid IPv4 address in CIDR form "
     "(or dhcp/manual)"),
    ("net0", "name=eth0,ip=auto",
     "invalid format - ip: value 'auto' does not look like a valid IPv4 address in CIDR form "
     "(or dhcp/manual)"),
    ("net0", "name=eth0,ip6=192.0.2.5/24",
     "invalid format - ip6: value '192.0.2.5/24' does not look like a valid IPv6 address in CIDR form "
     "(or auto/dhcp/manual)"),
    ("net0", "name=eth0,gw=2001:db8::1",
     "invalid format - gw: value '2001:db8::1' does not look like a valid IPv4 address"),
    ("net0", "name=eth0,gw6=192.0.2.1",
     "invalid format - gw6: value '192.0.2.1' does not look like a valid IPv6 address"),
    ("net0", "name=eth0,mtu=63", "invalid format - mtu: value '63' is below the minimum of 64"),
    ("net0", "name=eth0,mtu=65536", "invalid format - mtu: value '65536' is above the maximum of 65535"),
    ("net0", "name=eth0,tag=0", "invalid format - tag: value '0' is below the minimum of 1"),
    ("net0", "name=eth0,tag=4095", "invalid format - tag: value '4095' is above the maximum of 4094"),
    ("net0", "name=eth0,rate=fast", "invalid format - rate: value 'fast' is not a number"),
    ("net0", "name=eth0,type=macvlan", "invalid format - type: value 'macvlan' is not one of: veth"),
    ("net0", "name=eth0,firewall=2",
     "invalid format - firewall: value '2' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ("net0", "name=eth0,trunks=10;5000", "invalid format - trunks: value '5000' is not a VLAN id (1-4094)"),
    ("net0", "name=averyveryverylongname",
     "invalid format - name: value 'averyveryverylongname' does not look like a valid interface name"),
    ("net0", "name=eth0,bridge=vm/br0",
     "invalid format - bridge: value 'vm/br0' does not look like a valid bridge name"),
    ("net0", "name=eth0,bridge=", "invalid format - bridge: value is empty"),
    ("rootfs", "local:8,mp=/data", "invalid format - unknown key 'mp'"),
    ("rootfs", "local:8,local:9", "invalid format - duplicate key in comma-separated list property: volume"),
    ("rootfs", "size=8G", "invalid format - missing required key 'volume'"),
    ("rootfs", "local:8,size=8X",
     "invalid format - size: value '8X' does not look like a valid size (a number with optional unit "
     "K, M, G or T)"),
    ("rootfs", "local:8,mountoptions=noatime;exec",
     "invalid format - mountoptions: value 'exec' is not one of: noatime, nodev, noexec, nosuid, "
     "discard, lazytime"),
    ("rootfs", "nostorage", "invalid format - volume: value 'nostorage' does not look like a valid volume"),
    ("mp0", "local:8", "invalid format - missing required key 'mp'"),
    ("mp0", "local:8,mp=data", "invalid format - mp: value 'data' does not look like a valid path"),
    ("mp0", "local:8,mp=/srv/../etc",
     "invalid format - mp: path '/srv/../etc' is not normalised (no '.', '..', '//' or trailing '/')"),
    ("mp0", "local:8,mp=/", "invalid format - mp: path '/' is the root file system; use rootfs for it"),
    ("dev0", "/etc/passwd", "invalid format - path: path '/etc/passwd' is not below /dev/"),
    ("features", "nesting=1,docker=1", "invalid format - unknown key 'docker'"),
    ("timezone", "Europe/../etc", "value 'Europe/../etc' does not look like a valid time zone"),
    ('console', '2', "value '2' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('cpuunits', '-1', "value '-1' is below the minimum of 0"),
    ('cpuunits', '1.5', "value '1.5' is not an integer"),
    ('cores', 'two', "value 'two' is not an integer"),
    ('debug', 'verbose', "value 'verbose' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('swap', 'lots', "value 'lots' is not an integer"),
    ('tty', '-1', "value '-1' is below the minimum of 0"),
    ('template', '2', "value '2' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('unprivileged', 'maybe', "value 'maybe' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('protection', 'enabled', "value 'enabled' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('dev0', 'path=/dev/ttyUSB0,gid=-1', "invalid format - gid: value '-1' is below the minimum of 0"),
    ('dev0', '/dev/ttyUSB0,uid=4294967295', "invalid format - uid: value '4294967295' is above the maximum of 4294967294"),
    ('dev0', '/dev/ttyUSB0,mode=0999', "invalid format - mode: value '0999' does not look like a valid octal file mode"),
    ('dev0', '/dev/ttyUSB0,deny-write=ro', "invalid format - deny-write: value 'ro' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('dev0', 'uid=0', "invalid format - missing required key 'path'"),
    ('dev0', '/dev/../etc/shadow', "invalid format - path: path '/dev/../etc/shadow' is not normalised (no '.', '..', '//' or trailing '/')"),
    ('dev0', 'dev/null', "invalid format - path: value 'dev/null' does not look like a valid device path"),
    ('features', 'nesting=2', "invalid format - nesting: value '2' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('features', 'keyctl=x', "invalid format - keyctl: value 'x' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('features', 'fuse=enable', "invalid format - fuse: value 'enable' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('features', 'mknod=-', "invalid format - mknod: value '-' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('features', 'force_rw_sys=rw', "invalid format - force_rw_sys: value 'rw' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('features', 'mount=nfs;NFS4', "invalid format - mount: value 'NFS4' does not look like a valid file system type"),
    ('features', 'mount=nfs;;cifs', "invalid format - mount: value 'nfs;;cifs' contains an empty list item"),
    ('hookscript', '/var/lib/vz/snippets/hook.sh', "value '/var/lib/vz/snippets/hook.sh' is a host path, not a storage volume id (storage:name)"),
    ('hookscript', 'local:vztmpl/hook.sh', "value 'local:vztmpl/hook.sh' is not a snippet volume id (expected storage:snippets/<file name>)"),
    ('hookscript', 'local:snippets/../hook.sh', "value 'local:snippets/../hook.sh' is not a snippet volume id (expected storage:snippets/<file name>)"),
    ('hookscript', 'local:8', "value 'local:8' is an allocation size, not a storage volume id (storage:name)"),
    ('mp0', 'local:8,mp=/data,acl=2', "invalid format - acl: value '2' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('mp0', 'local:8,mp=/data,backup=yes-please', "invalid format - backup: value 'yes-please' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('mp0', 'local:8,mp=/data,quota=q', "invalid format - quota: value 'q' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('mp0', 'local:8,mp=/data,replicate=r', "invalid format - replicate: value 'r' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('mp0', 'local:8,mp=/data,ro=rw', "invalid format - ro: value 'rw' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('mp0', 'local:8,mp=/data,shared=s', "invalid format - shared: value 's' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('mp0', 'local:8,mp=/data,size=-1G', "invalid format - size: value '-1G' does not look like a valid size (a number with optional unit K, M, G or T)"),
    ('mp0', 'local:8,mp=/data,mountoptions=exec', "invalid format - mountoptions: value 'exec' is not one of: noatime, nodev, noexec, nosuid, discard, lazytime"),
    ('mp0', 'local:8,mp=/data,keepattrs=k', "invalid format - keepattrs: value 'k' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('mp0', 'local:8,mp=/data/', "invalid format - mp: path '/data/' is not normalised (no '.', '..', '//' or trailing '/')"),
    ('mp0', 'local:8,mp=/data//x', "invalid format - mp: path '/data//x' is not normalised (no '.', '..', '//' or trailing '/')"),
    ('mp0', 'local 8,mp=/data', "invalid format - volume: value 'local 8' does not look like a valid volume"),
    ('mp0', './relative,mp=/data', "invalid format - volume: value './relative' does not look like a valid volume"),
    ('rootfs', 'local:8,acl=x', "invalid format - acl: value 'x' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('rootfs', 'local:8,quota=x', "invalid format - quota: value 'x' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('rootfs', 'local:8,replicate=x', "invalid format - replicate: value 'x' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('rootfs', 'local:8,ro=x', "invalid format - ro: value 'x' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('rootfs', 'local:8,shared=x', "invalid format - shared: value 'x' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('rootfs', 'local:8,backup=1', "invalid format - unknown key 'backup'"),
    ('net0', 'name=eth0,link_down=down', "invalid format - link_down: value 'down' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"),
    ('net0', 'name=eth0,rate=-1', "invalid format - rate: value '-1' is below the minimum of 0"),
    ('net0', 'name=eth0,tag=ten', "invalid format - tag: value 'ten' is not an integer"),
    ('startup', 'order=-1', "invalid format - order: value '-1' is below the minimum of 0"),
    ('startup', 'order=1,up=-5', "invalid format - up: value '-5' is below the minimum of 0"),
    ('startup', 'down=soon', "invalid format - down: value 'soon' is not an integer"),
    ('startup', '1,boot=2', "invalid format - unknown key 'boot'"),
    ('timezone', 'Mars Base', "value 'Mars Base' does not look like a valid time zone"),
    ('unused0', '/mnt/disk', "invalid format - volume: value '/mnt/disk' is a host path, not a storage volume id (storage:name)"),
    ('unused0', 'local:8', "invalid format - volume: value 'local:8' is an allocation size, not a storage volume id (storage:name)"),
    ('unused0', 'mp=/x', "invalid format - unknown key 'mp'"),
    ('unused0', 'nostorage', "invalid format - volume: value 'nostorage' does not look like a valid storage volume id"),
    ('parent', '1st', "value '1st' does not look like a valid snapshot name"),
    ('snaptime', '-1', "value '-1' is below the minimum of 0"),
    ('snaptime', 'yesterday', "value 'yesterday' is not an integer"),
    ('snapstate', 'done', "value 'done' is not one of: prepare, delete"),
    ('nameserver', 'dns.example.com', "value 'dns.example.com' is not an IPv4 or IPv6 address"),
    ('searchdomain', '-bad.example', "value '-bad.example' is not a valid DNS domain"),
]


@pytest.mark.parametrize("key, value, reason", INVALID_VALUES)
def test_invalid_value_message(key: str, value: str, reason: str):
    with pytest.raises(ParameterError) as excinfo:
        validate_option(key, value, 100)

    assert excinfo.value.reason == reason
    assert str(excinfo.value) == f"{PREFIX}{key}: {reason}"
    assert excinfo.value.key == key
    assert excinfo.value.vmid == 100


def test_every_option_has_a_refusal_case():
    covered = {lookup_option(key).name for key, _, _ in INVALID_VALUES if lookup_option(key)}

    assert covered == set(OPTIONS)


@pytest.mark.parametrize("name", [name for name, option in OPTIONS.items() if option.format])
def test_every_property_string_key_has_a_refusal_case(name: str):
    reasons = [reason for key, _, reason in INVALID_VALUES if lookup_option(key) is OPTIONS[name]]
    keys = OPTIONS[name].format.keys
    covered = {
        key for key, spec in keys.items()
        if any(reason.startswith(f"invalid format - {key}: ") for reason in reasons)
        or (spec.required and f"invalid format - missing required key '{key}'" in reasons)
    }

    assert covered == set(keys)


def test_spec_example_message_for_misspelled_key():
    with pytest.raises(ParameterError) as excinfo:
        validate_option("net0", "name=eth0,brige=vmbr0")

    assert str(excinfo.value) == "400 Parameter verification failed. net0: invalid format - unknown key 'brige'"


# --- help ------------------------------------------------------------------------


def test_option_help_lines():
    assert option_help("memory") == "memory <integer >= 16>: Memory limit in MiB (default 512)"
    assert option_help("tty") == "tty <integer 0-6>: Number of ttys (default 2)"
    assert option_help("net0") == option_help("net")
    assert option_help("net").startswith("net[n] <name=<interface name>[,bridge=<bridge name>]")
    assert option_help("rootfs").startswith("rootfs <[volume=]<volume>[,acl=<1|0>]")


@pytest.mark.parametrize("name", list(OPTIONS))
def test_option_help_is_one_line(name: str):
    text = option_help(name)

    assert "\n" not in text
    assert OPTIONS[name].description in text


def test_option_help_unknown_name():
    with pytest.raises(KeyError):
        option_help("brige")


# --- property strings ---------------------------------------------------------------

DEMO_FORMAT = PropFormat({
    "volume": PropKey("string", required=True),
    "mp": PropKey("string"),
    "size": PropKey("size"),
}, default_key="volume")


def test_propstring_default_key():
    assert parse_propstring("local:8,mp=/data", DEMO_FORMAT) == {"volume": "local:8", "mp": "/data"}
    assert parse_propstring("mp=/data,volume=local:8", DEMO_FORMAT) == {"volume": "local:8", "mp": "/data"}


def test_propstring_skips_empty_parts():
    assert parse_propstring("local:8,,mp=/data,", DEMO_FORMAT) == {"volume": "local:8", "mp": "/data"}


def test_propstring_canonical_order_and_bare_default_key():
    values = {"size": "1G", "mp": "/data", "volume": "local:8"}

    assert format_propstring(values, DEMO_FORMAT) == "local:8,mp=/data,size=1G"


def test_propstring_writes_default_key_with_equals_sign():
    assert format_propstring({"volume": "a=b"}, DEMO_FORMAT) == "volume=a=b"


def test_propstring_format_rejects_comma_and_unknown_key():
    with pytest.raises(ValueError, match="cannot contain ','"):
        format_propstring({"volume": "a,b"}, DEMO_FORMAT)
    with pytest.raises(ValueError, match="unknown key 'brige'"):
        format_propstring({"volume": "a", "brige": "x"}, DEMO_FORMAT)


def test_propstring_parse_error_is_property_value_error():
    with pytest.raises(PropertyValueError) as excinfo:
        parse_propstring("local:8,mp=/a,mp=/b", DEMO_FORMAT)

    assert excinfo.value.reason == "invalid format - duplicate key in comma-separated list property: mp"


def test_propstring_declared_type_is_checked():
    with pytest.raises(ValueError, match="unknown value type"):
        PropKey("float")


# --- sizes --------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("0", 0),
    ("512", 512),
    ("1K", 1024),
    ("1k", 1024),
    ("8M", 8 * 1024**2),
    ("8G", 8 * 1024**3),
    ("2T", 2 * 1024**4),
    ("1.5G", 1536 * 1024**2),
    ("0.5K", 512),
])
def test_parse_size(text: str, expected: int):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "8GB", "-1G", "1,5G", "8 G G", "1e3"])
def test_parse_size_rejects_malformed(text: str):
    with pytest.raises(PropertyValueError, match="does not look like a valid size"):
        parse_size(text)


@pytest.mark.parametrize("size, expected", [
    (0, "0"),
    (1000, "1000"),
    (1024, "1K"),
    (1536, "1536"),
    (8 * 1024**3, "8G"),
    (1536 * 1024**2, "1536M"),
    (3 * 1024**4, "3T"),
])
def test_format_size(size: int, expected: str):
    assert format_size(size) == expected
    assert parse_size(expected) == size


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("cores", "2", 2),
    ("cpulimit", "0.5", 0.5),
    ("cpulimit", "2", 2),
    ("onboot", "1", 1),
    ("hostname", "ct1", "ct1"),
    ("net0", "name=eth0,bridge=vmbr0", "name=eth0,bridge=vmbr0"),
    ("lxc.cap.drop", "sys_admin", "sys_admin"),
])
def test_json_value_types(key: str, value: str, expected):
    assert json_value(key, value) == expected
    assert type(json_value(key, value)) is type(expected)
