"""Generate the LXC config that ``lxc-start`` reads, from a parsed container config.

The file is rewritten before every start and never edited by hand. Raw
``lxc.*`` keys of the container config come last, so they override.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from pct.paths import Paths
from pct.runtime.cgroups import CgroupLayout, limit_keys
from pct.runtime.features import feature_keys
from pct.runtime.security import host_has_apparmor

log = logging.getLogger(__name__)

LXC_CONFIG_DIR = Path("/usr/share/lxc/config")
UNPRIVILEGED_ID_MAP = (100000, 65536)
POST_STOP_HOOK = "post-stop-hook"

LXC_ARCH = {
    "amd64": "amd64", "i386": "i686", "arm64": "aarch64", "armhf": "armhf",
    "riscv32": "riscv32", "riscv64": "riscv64",
}


def veth_name(vmid: int, index: int) -> str:
    """Return the host-side name of the veth of ``net<index>``."""
    return f"veth{vmid}i{index}"


# Keys that LXC accumulates rather than replaces, so a raw one adds to ours.
_ACCUMULATING_KEYS = ("lxc.mount.entry", "lxc.include", "lxc.idmap", "lxc.environment", "lxc.cap.",
                      "lxc.mount.auto", "lxc.hook.", "lxc.cgroup.devices.", "lxc.cgroup2.devices.")


def generate_lxc_config(settings, paths: Paths, layout: CgroupLayout, ostype: str | None,
                        extra_keys: list[tuple[str, str]] | None = None, cpuset: str | None = None) -> str:
    """Return the LXC config text for *settings*.

    *extra_keys* (device passthrough, which needs device nodes made first)
    come after the generated keys and before the raw ``lxc.*`` keys.
    """
    apparmor = _host_has_apparmor()
    keys: list[tuple[str, str]] = []
    keys += _base_keys(settings, ostype)
    keys += _security_keys(settings, apparmor)
    keys += limit_keys(settings, layout, cpuset=cpuset)
    keys += [("lxc.rootfs.path", str(paths.rootfs_mount(settings.vmid)))]
    keys += _network_keys(settings)
    keys += feature_keys(settings, paths, layout.unified, apparmor)
    keys += _hook_keys(paths, settings.vmid)
    keys += extra_keys or []

    generated = {key for key, _ in keys}
    for key, value in settings.raw_lxc:
        if key in generated and not key.startswith(_ACCUMULATING_KEYS):
            log.warning("CT %s: raw key '%s' overrides a generated value", settings.vmid, key)
        keys.append((key, value))

    return "".join(f"{key} = {value}\n" for key, value in keys)


def _base_keys(settings, ostype: str | None) -> list[tuple[str, str]]:
    keys = [("lxc.arch", LXC_ARCH.get(settings.arch or "amd64", settings.arch))]
    keys.append(("lxc.include", str(_common_config(ostype, "common"))))
    if settings.unprivileged:
        keys.append(("lxc.include", str(_common_config(ostype, "userns"))))
    keys += [
        ("lxc.uts.name", settings.hostname),
        ("lxc.tty.max", str(settings.tty)),
        ("lxc.autodev", "1"),
        # LXC skips the cgroup mounts when the container could mount them
        # itself. Forcing them lets an init that does not (busybox, OpenRC)
        # still read its own limits under /sys/fs/cgroup.
        ("lxc.mount.auto", "cgroup:mixed:force"),
    ]
    if not settings.console:
        keys.append(("lxc.console.path", "none"))
    return keys


def _common_config(ostype: str | None, kind: str) -> Path:
    """Return LXC's per-distribution include file, or the generic one."""
    specific = LXC_CONFIG_DIR / f"{ostype}.{kind}.conf"
    if ostype and specific.exists():
        return specific
    return LXC_CONFIG_DIR / f"{kind}.conf"


def _security_keys(settings, apparmor: bool) -> list[tuple[str, str]]:
    keys = []
    if apparmor:
        keys.append(("lxc.apparmor.profile", "generated"))
        keys.append(("lxc.apparmor.allow_nesting", "0"))
    custom_idmap = any(key == "lxc.idmap" for key, _ in settings.raw_lxc)
    if settings.unprivileged and not custom_idmap:
        host_id, count = UNPRIVILEGED_ID_MAP
        keys.append(("lxc.idmap", f"u 0 {host_id} {count}"))
        keys.append(("lxc.idmap", f"g 0 {host_id} {count}"))
    return keys


def _host_has_apparmor() -> bool:
    return host_has_apparmor()


def _network_keys(settings) -> list[tuple[str, str]]:
    keys = []
    for position, net in enumerate(settings.nets):
        prefix = f"lxc.net.{position}"
        keys += [
            (f"{prefix}.type", "veth"),
            (f"{prefix}.veth.pair", veth_name(settings.vmid, net.index)),
            (f"{prefix}.name", net.name),
        ]
        if net.bridge:
            keys.append((f"{prefix}.link", net.bridge))
        if net.hwaddr:
            keys.append((f"{prefix}.hwaddr", net.hwaddr))
        if net.mtu:
            keys.append((f"{prefix}.mtu", str(net.mtu)))
        if net.tag:
            keys.append((f"{prefix}.veth.vlan.id", str(net.tag)))
        if not net.link_down:
            keys.append((f"{prefix}.flags", "up"))
    return keys


def _hook_keys(paths: Paths, vmid: int) -> list[tuple[str, str]]:
    return [("lxc.hook.post-stop", str(paths.lxc_dir(vmid) / POST_STOP_HOOK))]


def post_stop_hook(rootfs: Path, vmid: int, hookscript: Path | None = None,
                   rebalance_root: Path | None = None) -> str:
    """Return the post-stop hook script that unmounts everything below *rootfs*.

    LXC runs it in the host's mount namespace once the container has stopped,
    however it stopped. Loop devices are attached with autoclear, so the
    unmount detaches them. The host side of a veth normally goes with the
    container's network namespace, but one can outlive it (seen after a
    rate-limited transfer), so the script removes any that are left. A shell
    script keeps ``pct stop`` from waiting for a second Python interpreter.
    With *rebalance_root* the script also starts the CPU balancer for that
    root, detached, so the monitor does not wait for it either.
    """
    lines = [
        "#!/bin/sh",
        "# Written by pct at each start: unmount the volumes of a stopped container.",
        '[ "$LXC_TARGET" = reboot ] && exit 0',
        f"umount --recursive {shlex.quote(str(rootfs))} 2>/dev/null",
        f'for link in /sys/class/net/{veth_name(vmid, 0)[:-1]}*; do',
        '    [ -e "$link" ] && ip link del "${link##*/}" 2>/dev/null',
        "done",
    ]
    if hookscript is not None:
        lines.append(f"{shlex.quote(str(hookscript))} {vmid} post-stop")
    if rebalance_root is not None:
        lines.append(_rebalance_line(rebalance_root, vmid, rootfs.parent / "cpusets.log"))
    return "\n".join(lines + ["exit 0", ""])


def _rebalance_line(root: Path, vmid: int, log_file: Path) -> str:
    command = ["setsid", "-f", "env", f"PCT_ROOT={root}", sys.executable, "-m", "pct.runtime.cpusets",
               "--after-stop", str(vmid)]
    return f"{shlex.join(command)} </dev/null >>{shlex.quote(str(log_file))} 2>&1"


def write_lxc_config(paths: Paths, vmid: int, text: str, hookscript: Path | None = None,
                     rebalance: bool = False) -> Path:
    """Write the generated config and its hook script atomically; return the config path.

    With *rebalance* the hook rebalances the CPU sets of the other
    containers once this one has stopped.
    """
    target = paths.lxc_config(vmid)
    target.parent.mkdir(parents=True, exist_ok=True)
    hook = paths.lxc_dir(vmid) / POST_STOP_HOOK
    temporary_hook = hook.with_name(f".{POST_STOP_HOOK}.tmp.{os.getpid()}")
    rebalance_root = paths.root if rebalance else None
    temporary_hook.write_text(post_stop_hook(paths.rootfs_mount(vmid), vmid, hookscript, rebalance_root))
    temporary_hook.chmod(0o755)
    os.replace(temporary_hook, hook)
    temporary = target.with_name(f".config.tmp.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, target)
    return target
