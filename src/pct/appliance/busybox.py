"""Build a tiny busybox-based template, for tests and quick experiments.

The guest looks like a minimal Debian system to the guest setup (it carries
``/etc/debian_version``), and its init brings up the interfaces listed in
``/etc/network/interfaces`` with busybox's own ``ifup``, so the network the
config describes is really configured inside.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pct.errors import TemplateError
from pct.run import run

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
APPLETS = (
    "sh ash cat chmod chown cp date dd dmesg echo env free grep halt head hostname id ifconfig ifdown ifup stat "
    "init ip kill ln login ls mkdir mount nc ping poweroff ps reboot rm route sed sleep sync "
    "tail top touch tr true false udhcpc umount uname uptime vi wget"
).split()

INITTAB = """::sysinit:/etc/init.d/rcS
::respawn:/bin/sleep 2147483647
::ctrlaltdel:/sbin/reboot
::powerfail:/sbin/poweroff
::shutdown:/bin/umount -a -r
"""

RCS = """#!/bin/sh
mount -t tmpfs tmpfs /run 2>/dev/null
mount -t tmpfs tmpfs /tmp 2>/dev/null
[ -s /etc/hostname ] && hostname -F /etc/hostname
ifup -a -f
"""

FILES = {
    "etc/inittab": (INITTAB, 0o644),
    "etc/init.d/rcS": (RCS, 0o755),
    "etc/passwd": ("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
    "etc/group": ("root:x:0:\nnogroup:x:65534:\n", 0o644),
    "etc/shadow": ("root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640),
    "etc/debian_version": ("12.0\n", 0o644),
    "etc/hostname": ("busybox\n", 0o644),
    "etc/hosts": ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", 0o644),
    "etc/network/interfaces": ("auto lo\niface lo inet loopback\n", 0o644),
    "etc/crontab": ("17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n", 0o644),
}
DIRECTORIES = ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp", "root",
               "var/log", "etc/init.d", "etc/network/if-up.d", "etc/network/if-pre-up.d",
               "etc/network/if-down.d", "etc/network/if-post-down.d", "etc/ssh")


def find_busybox() -> Path:
    """Return a statically linked busybox binary from the host."""
    for candidate in BUSYBOX_CANDIDATES:
        if os.path.isfile(candidate):
            return Path(candidate)
    raise TemplateError("busybox not found: install the 'busybox-static' package")


def build_busybox_template(output: Path) -> Path:
    """Write a busybox template archive (``.tar.gz``) to *output* and return it."""
    busybox = find_busybox()
    with tempfile.TemporaryDirectory(prefix="pct-busybox-") as workdir:
        tree = Path(workdir) / "rootfs"
        _lay_out_tree(tree, busybox)
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".partial")
        run(["tar", "-czf", str(partial), "--numeric-owner", "--owner=0", "--group=0", "-C", str(tree), "."])
        os.replace(partial, output)
    return output


def _lay_out_tree(tree: Path, busybox: Path) -> None:
    for directory in DIRECTORIES:
        (tree / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(tree / "tmp", 0o1777)
    os.chmod(tree / "root", 0o700)
    (tree / "var/run").symlink_to("../run")

    shutil.copy2(busybox, tree / "bin" / "busybox")
    for applet in APPLETS:
        link = tree / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    for applet in ("init", "ifup", "ifdown", "halt", "poweroff", "reboot", "udhcpc", "route"):
        (tree / "sbin" / applet).symlink_to("../bin/busybox")

    for relative, (content, mode) in FILES.items():
        path = tree / relative
        path.write_text(content)
        os.chmod(path, mode)
    # busybox ifup runs udhcpc with this script, which busybox does not ship.
    udhcpc_script = tree / "usr/share/udhcpc/default.script"
    udhcpc_script.parent.mkdir(parents=True)
    udhcpc_script.write_text('#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/${mask:-24}" dev "$interface"\nexit 0\n')
    os.chmod(udhcpc_script, 0o755)
