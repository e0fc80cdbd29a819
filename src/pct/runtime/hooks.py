"""LXC hook entry point: ``python -m pct.runtime.hooks <root> <vmid> lxc <hook>``.

LXC runs the post-stop hook in the host's namespaces after the container has
stopped, whichever way it stopped (pct stop, shutdown, or the guest powering
off by itself), so the volumes are unmounted and loop devices detached there.
"""

from __future__ import annotations

import os
import sys

from pct.paths import Paths
from pct.runtime.mounts import unmount_all


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print("usage: python -m pct.runtime.hooks ROOT VMID lxc HOOK", file=sys.stderr)
        return 2
    root, name, _section, hook = argv[:4]
    if hook == "post-stop" and os.environ.get("LXC_TARGET") != "reboot":
        unmount_all(Paths(root), int(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
