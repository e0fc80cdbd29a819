"""Start, stop, shut down and reboot containers through LXC."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pct.config.format import load_config
from pct.config.model import settings_from_config
from pct.errors import CommandError, PctError
from pct.locks import config_lock
from pct.paths import Paths
from pct.run import run
from pct.runtime.cgroups import detect_layout
from pct.runtime.cpusets import place, rebalance_quietly
from pct.runtime.devices import device_keys
from pct.runtime.features import (feature_warnings, needs_seccomp_profile, seccomp_profile, seccomp_profile_path,
                                  wants_mknod_proxy)
from pct.runtime.hookscript import call_hookscript, hookscript_path
from pct.runtime.network import apply_rate_limits, check_bridges
from pct.runtime.security import security_notices
from pct.runtime.guestprep import prepare_guest
from pct.runtime.idmap import check_idmap, check_idmap_delegation, check_subid_ranges, raw_idmap
from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP, generate_lxc_config, write_lxc_config
from pct.runtime.mknodproxy import start_mknod_proxy
from pct.runtime.mountpoints import mount_all
from pct.runtime.mounts import mount_rootfs, unmount_all
from pct.runtime.state import init_pid, is_running

log = logging.getLogger(__name__)

STOP_POLL_SECONDS = 0.02


def start_container(paths: Paths, vmid: int, debug: bool = False) -> None:
    """Mount the volumes, set up the guest, write the LXC config and start it.

    Returns once LXC reports the container running. On any failure the
    container is left stopped with nothing mounted.
    """
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        settings = settings_from_config(config, vmid)
        check_startable(paths, settings)
        if config.pending is not None:
            _fold_pending(paths, vmid, config)
            settings = settings_from_config(config, vmid)

        call_hookscript(paths, settings, "pre-start")
        rootfs = mount_rootfs(paths, settings)
        try:
            _prepare_and_start(paths, settings, rootfs, debug)
        except BaseException:
            unmount_all(paths, vmid)
            raise

    _after_start(paths, settings)


def _prepare_and_start(paths: Paths, settings, rootfs: Path, debug: bool) -> None:
    vmid = settings.vmid
    layout = detect_layout()
    ostype = prepare_guest(settings, rootfs, phase="start")
    uid_base = UNPRIVILEGED_ID_MAP[0] if settings.unprivileged else 0
    mount_all(paths, settings, rootfs, uid_base)

    paths.lxc_dir(vmid).mkdir(parents=True, exist_ok=True)
    extra_keys = device_keys(paths, settings, uid_base, layout.unified)
    if needs_seccomp_profile(settings):
        profile = seccomp_profile(keyctl=bool(settings.features.get("keyctl")), mknod=wants_mknod_proxy(settings))
        seccomp_profile_path(paths, vmid).write_text(profile)
    if wants_mknod_proxy(settings):
        extra_keys += start_mknod_proxy(paths, vmid)
    text = generate_lxc_config(settings, paths, layout, ostype, extra_keys, cpuset=place(paths, vmid, settings.cores))
    write_lxc_config(paths, vmid, text, hookscript_path(paths, settings), rebalance=_has_cpuset(settings))
    for notice in feature_warnings(settings) + security_notices(settings):
        log.warning("%s", notice)
    _lxc_start(paths, vmid, debug or settings.debug)


def _has_cpuset(settings) -> bool:
    """Return whether *settings* limit the container to fewer CPUs than the host has."""
    return bool(settings.cores) and settings.cores < (os.cpu_count() or 1)


def _after_start(paths: Paths, settings) -> None:
    """Rebalance CPUs, set traffic limits and run the post-start hook. Failures here are reported, not fatal."""
    if _has_cpuset(settings):
        rebalance_quietly(paths)
    try:
        if any(net.rate for net in settings.nets):
            apply_rate_limits(settings, init_pid(paths, settings.vmid))
        call_hookscript(paths, settings, "post-start")
    except PctError as exc:
        log.warning("%s", exc.message)


def _fold_pending(paths: Paths, vmid: int, config) -> None:
    """Make the pending changes current before the container starts."""
    from pct.config.format import write_config
    from pct.update import fold_pending

    fold_pending(config)
    settings_from_config(config, vmid)
    write_config(paths, vmid, config)
    log.info("CT %s: applied pending changes", vmid)


def check_startable(paths: Paths, settings) -> None:
    """Raise PctError when *settings* describe a container that must not start."""
    vmid = settings.vmid
    if settings.template:
        raise PctError(f"CT {vmid} is a template and cannot be started; clone it instead", vmid)
    if settings.lock:
        raise PctError(f"CT {vmid} is locked ({settings.lock})", vmid)
    if is_running(paths, vmid):
        raise PctError(f"CT {vmid} already running", vmid)
    if settings.unprivileged:
        custom = raw_idmap(settings)
        if custom:
            check_idmap(custom, vmid)
            check_idmap_delegation(custom, vmid)
        else:
            check_subid_ranges(*UNPRIVILEGED_ID_MAP, vmid)
    check_bridges(settings)
    hookscript_path(paths, settings)


def _lxc_start(paths: Paths, vmid: int, debug: bool) -> None:
    # With --debug the full LXC log goes where Proxmox VE's manual points
    # users to: /tmp/lxc-<vmid>.log (below the root).
    log_file = paths.under_root(f"tmp/lxc-{vmid}.log") if debug else paths.lxc_dir(vmid) / "lxc.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    level = "DEBUG" if debug else "ERROR"
    log_file.unlink(missing_ok=True)
    argv = ["lxc-start", "-P", paths.lxc_path, "-n", str(vmid), "-d", "-o", log_file, "-l", level]
    try:
        run(argv)
    except CommandError as exc:
        raise PctError(f"CT {vmid}: startup failed: {_lxc_failure(log_file) or exc.message}", vmid) from exc


def _lxc_failure(log_file: Path) -> str | None:
    """Return the most telling error line of an LXC log."""
    try:
        lines = [line for line in log_file.read_text(errors="replace").splitlines() if " ERROR " in line]
    except OSError:
        return None
    if not lines:
        return None
    message = lines[0].split(" - ", 1)[-1]
    return f"{message} (see {log_file})"


def stop_container(paths: Paths, vmid: int) -> None:
    """Stop the container at once, like pulling the plug."""
    _require_running(paths, vmid)
    settings = _pre_stop(paths, vmid)
    run(["lxc-stop", "-P", paths.lxc_path, "-n", str(vmid), "-k"], check=False)
    _wait_stopped(paths, vmid, timeout=30)
    if _has_cpuset(settings):
        rebalance_quietly(paths)


def shutdown_container(paths: Paths, vmid: int, timeout: int = 60, force_stop: bool = False) -> None:
    """Ask the guest's init to power off; on timeout, stop it or raise."""
    _require_running(paths, vmid)
    settings = _pre_stop(paths, vmid)
    result = run(["lxc-stop", "-P", paths.lxc_path, "-n", str(vmid), "-t", str(timeout), "--nokill"],
                 check=False)
    if result.returncode != 0 and is_running(paths, vmid):
        if not force_stop:
            raise PctError(f"CT {vmid}: shutdown timed out after {timeout} s; "
                           "use --forceStop 1 to stop it anyway", vmid)
        log.warning("CT %s: shutdown timed out after %s s, stopping it", vmid, timeout)
        run(["lxc-stop", "-P", paths.lxc_path, "-n", str(vmid), "-k"], check=False)
    _wait_stopped(paths, vmid, timeout=30)
    if _has_cpuset(settings):
        rebalance_quietly(paths)


def reboot_container(paths: Paths, vmid: int, timeout: int = 60) -> None:
    """Shut the container down cleanly and start it again with the current config."""
    shutdown_container(paths, vmid, timeout=timeout, force_stop=True)
    start_container(paths, vmid)


def _pre_stop(paths: Paths, vmid: int):
    """Run the pre-stop hook; return the settings of the stopping container."""
    settings = settings_from_config(load_config(paths, vmid), vmid)
    try:
        call_hookscript(paths, settings, "pre-stop")
    except PctError as exc:
        log.warning("%s", exc.message)
    return settings


def _require_running(paths: Paths, vmid: int) -> None:
    load_config(paths, vmid)
    if not is_running(paths, vmid):
        raise PctError(f"CT {vmid} not running", vmid)


def _wait_stopped(paths: Paths, vmid: int, timeout: float) -> None:
    """Wait for the LXC monitor to exit, then unmount what the hook left."""
    deadline = time.monotonic() + timeout
    while is_running(paths, vmid):
        if time.monotonic() > deadline:
            raise PctError(f"CT {vmid}: still running {timeout} s after the stop request", vmid)
        time.sleep(STOP_POLL_SECONDS)
    unmount_all(paths, vmid)
