"""Run commands, shells and consoles inside a running container.

These replace the pct process with LXC's tool, so standard input, the
terminal and the exit status pass through untouched.
"""

from __future__ import annotations

import os

from pct.errors import ConfigError, PctError
from pct.paths import Paths
from pct.run import exec_replacing
from pct.runtime.state import is_running

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _attach_argv(paths: Paths, vmid: int) -> list[str]:
    # Only the file's existence is checked: parsing the config would cost more
    # than the attach itself.
    if not paths.conf(vmid).exists():
        raise ConfigError(f"Configuration file 'etc/pve/lxc/{vmid}.conf' does not exist", vmid)
    if not is_running(paths, vmid):
        raise PctError(f"CT {vmid} not running", vmid)
    argv = ["lxc-attach", "-P", str(paths.lxc_path), "-n", str(vmid), "--clear-env",
            "--set-var", f"PATH={GUEST_PATH}", "--set-var", "HOME=/root"]
    if "TERM" in os.environ:
        argv += ["--keep-var", "TERM"]
    return argv


def _replace_process(argv: list[str]) -> int:
    exec_replacing(argv)
    return 1  # not reached


def exec_in_container(paths: Paths, vmid: int, command: list[str]) -> int:
    """Run *command* inside the container with the guest's PATH; its status becomes ours."""
    return _replace_process(_attach_argv(paths, vmid) + ["--"] + command)


def enter_container(paths: Paths, vmid: int) -> int:
    """Open root's login shell inside the container."""
    shell = "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l"
    return _replace_process(_attach_argv(paths, vmid) + ["--", "/bin/sh", "-c", shell])


def open_console(paths: Paths, vmid: int, escape: str = "^a") -> int:
    """Attach to the console that ``cmode`` selects: a tty, /dev/console, or a shell."""
    from pct.config.format import load_config
    from pct.config.model import settings_from_config

    settings = settings_from_config(load_config(paths, vmid), vmid)
    if settings.cmode == "shell":
        return enter_container(paths, vmid)
    if not is_running(paths, vmid):
        raise PctError(f"CT {vmid} not running", vmid)
    argv = ["lxc-console", "-P", str(paths.lxc_path), "-n", str(vmid), "-e", escape]
    if settings.cmode == "console":
        argv += ["-t", "0"]
    return _replace_process(argv)
