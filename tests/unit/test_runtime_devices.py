"""Devices cgroup rules of ``dev[n]`` and the rules a hot removal writes back."""

import os
import stat
from types import SimpleNamespace

from pct.runtime.devicehotplug import configured_allow_rules, rules_to_restore
from pct.runtime.devices import device_number, device_rules


def node(kind: int, major: int, minor: int) -> SimpleNamespace:
    """Stand in for the os.stat() result of a device node."""
    return SimpleNamespace(st_mode=kind | 0o660, st_rdev=os.makedev(major, minor))


def device(deny_write=False):
    return SimpleNamespace(key="dev0", path="/dev/loop3", uid=None, gid=None, mode=None, deny_write=deny_write)


def test_device_number_of_block_and_character_nodes():
    assert device_number(node(stat.S_IFBLK, 7, 3)) == "b 7:3"
    assert device_number(node(stat.S_IFCHR, 10, 229)) == "c 10:229"


def test_rules_allow_read_write_and_mknod():
    assert device_rules(device(), node(stat.S_IFBLK, 7, 3)) == [("devices.allow", "b 7:3 rwm")]


def test_deny_write_allows_read_and_denies_write():
    assert device_rules(device(deny_write=True), node(stat.S_IFBLK, 7, 3)) == [
        ("devices.allow", "b 7:3 rm"), ("devices.deny", "b 7:3 w")]


def write_config(directory, name, lines):
    path = directory / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_configured_rules_follow_includes_and_resets(tmp_path):
    common = write_config(tmp_path, "common.conf", [
        "# LXC's common config", "lxc.cgroup.devices.deny = a", "lxc.cgroup.devices.allow = c 1:3 rwm",
        "lxc.cgroup.devices.allow = c 10:229 rwm", "lxc.cgroup2.devices.allow = c 5:0 rwm"])
    config = write_config(tmp_path, "config", [
        f"lxc.include = {common}", "lxc.cgroup.devices.allow = b 7:3 rwm", "lxc.mount.entry = a b"])

    assert configured_allow_rules(config, unified=False) == [
        ("c 1:3 rwm", True), ("c 10:229 rwm", True), ("b 7:3 rwm", False)]
    assert configured_allow_rules(config, unified=True) == [("c 5:0 rwm", True)]


def test_empty_value_clears_earlier_rules(tmp_path):
    common = write_config(tmp_path, "common.conf", ["lxc.cgroup.devices.allow = c 1:3 rwm"])
    userns = write_config(tmp_path, "userns.conf", ["lxc.cgroup.devices.allow ="])
    config = write_config(tmp_path, "config", [f"lxc.include = {common}", f"lxc.include = {userns}"])
    assert configured_allow_rules(config, unified=False) == []


def test_missing_config_has_no_rules(tmp_path):
    assert configured_allow_rules(tmp_path / "absent", unified=False) == []


def test_restore_keeps_common_rule_of_same_device():
    configured = [("c 10:229 rwm", True), ("c 10:229 rwm", False), ("c 136:* rwm", True), ("c 1:3 rwm", True)]
    assert rules_to_restore("c 10:229", configured, {"c 10:229 rwm"}) == ["c 10:229 rwm"]


def test_restore_drops_rule_the_device_added_at_start():
    configured = [("c 1:3 rwm", True), ("b 7:3 rm", False)]
    assert rules_to_restore("b 7:3", configured, {"b 7:3 rm"}) == []


def test_restore_ignores_wildcards_and_other_devices():
    configured = [("c 136:* rwm", True), ("b *:* m", True), ("c 10:2290 rwm", True)]
    assert rules_to_restore("c 10:229", configured, set()) == []


def test_denies_all_by_default_follows_includes(tmp_path):
    from pct.runtime.devicehotplug import denies_all_by_default

    common = tmp_path / "common.conf"
    common.write_text("lxc.cgroup.devices.deny = a\nlxc.cgroup.devices.allow = c 1:3 rwm\n")
    userns = tmp_path / "userns.conf"
    userns.write_text("lxc.cgroup.devices.deny =\n")
    privileged = tmp_path / "privileged.conf"
    privileged.write_text(f"lxc.include = {common}\n")
    unprivileged = tmp_path / "unprivileged.conf"
    unprivileged.write_text(f"lxc.include = {common}\nlxc.include = {userns}\n")

    assert denies_all_by_default(privileged, unified=False)
    assert not denies_all_by_default(unprivileged, unified=False)
    assert not denies_all_by_default(privileged, unified=True)
