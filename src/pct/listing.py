"""The rows of ``pct list``, read from the config directory in one pass."""

from __future__ import annotations

import os

from pct.config.format import load_config
from pct.paths import Paths
from pct.runtime.state import running_vmids


def config_vmids(paths: Paths) -> list[int]:
    """Return the ids of all container configs of this node, sorted."""
    try:
        names = os.listdir(paths.lxc_conf_dir)
    except FileNotFoundError:
        return []
    return sorted(int(name[:-5]) for name in names if name.endswith(".conf") and name[:-5].isdigit())


def list_containers(paths: Paths) -> list[dict]:
    """Return one row per container config, sorted by id."""
    vmids = config_vmids(paths)
    running = running_vmids(paths)

    rows = []
    for vmid in vmids:
        main = load_config(paths, vmid).main
        row = {"vmid": vmid, "status": "running" if vmid in running else "stopped",
               "name": main.get("hostname") or f"CT{vmid}"}
        if main.get("lock"):
            row["lock"] = main.get("lock")
        rows.append(row)
    return rows
