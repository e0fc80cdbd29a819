"""Guest file edits that most distributions share.

Each function works through a GuestRoot, honours ``/etc/.pve-ignore.<name>``
and writes nothing when the content is already right, so a second run leaves
the tree byte for byte the same.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Callable

from pct.errors import GuestError
from pct.guest import edits
from pct.guest.credentials import HostKey, generate_host_keys
from pct.guest.model import GuestConfig
from pct.guest.rootfs import GuestRoot

log = logging.getLogger("pct.guest")

_ZONEINFO = "/usr/share/zoneinfo"


def write_file(root: GuestRoot, path: str, text: str, mode: int = 0o644) -> bool:
    """Write *text* to *path* unless the guest asked to ignore it; return whether it changed."""
    if root.ignored(path):
        log.info("CT %s: %s left alone because of /etc/.pve-ignore", root.vmid, path)
        return False
    changed = root.write_text(path, text, mode=mode)
    if changed:
        log.debug("CT %s: wrote %s", root.vmid, path)
    return changed


def edit_file(root: GuestRoot, path: str, edit: Callable[[str | None], str | None], mode: int = 0o644) -> bool:
    """Apply *edit* to the content of *path* (None when missing) and write the result.

    An edit that returns None leaves the file alone. An EditError becomes a
    GuestError that names the file.
    """
    if root.ignored(path):
        log.info("CT %s: %s left alone because of /etc/.pve-ignore", root.vmid, path)
        return False
    try:
        text = root.read_text(path)
        _check_not_binary(text)
        text = edit(text)
    except edits.EditError as exc:
        raise GuestError(
            f"unable to update {path} in the guest: {exc}; fix the file"
            f" or create /etc/.pve-ignore.{path.rsplit('/', 1)[1]} to keep it unmanaged",
            vmid=root.vmid,
        ) from exc
    if text is None:
        return False
    return write_file(root, path, text, mode)


def write_generated(root: GuestRoot, path: str, lines: list[str], mode: int = 0o644) -> bool:
    """Write a file that pct owns as a whole: a header comment, then *lines*.

    *mode* is also applied to an existing file, because some readers (netplan,
    NetworkManager) reject or warn about files others can read.
    """
    name = path.rsplit("/", 1)[1]
    text = "".join(line + "\n" for line in [*edits.generated_header(name), *lines])
    changed = write_file(root, path, text, mode)
    if not root.ignored(path):
        root.chmod(path, mode)
    return changed


def remove_generated(root: GuestRoot, path: str) -> None:
    """Remove *path* if pct wrote it (its first line is pct's header), so stale settings go."""
    if root.ignored(path) or not root.is_file(path):
        return
    text = root.read_text(path) or ""
    if text.startswith(edits.GENERATED_MARK):
        root.unlink(path)


def check_directory(root: GuestRoot, path: str) -> None:
    """Raise GuestError when *path* or one of its parents exists in the guest but is no directory."""
    prefix = ""
    for part in [p for p in path.split("/") if p]:
        prefix = f"{prefix}/{part}"
        if root.exists(prefix) and not root.is_dir(prefix):
            raise GuestError(
                f"unable to set up the guest: {prefix} is not a directory; move it away"
                f" or set ostype to 'unmanaged'",
                vmid=root.vmid,
            )


def check_text_file(root: GuestRoot, path: str) -> None:
    """Raise GuestError when *path*, which setup edits in place, is not a readable text file."""
    if root.ignored(path):
        return
    try:
        _check_not_binary(root.read_text(path))
    except edits.EditError as exc:
        raise GuestError(
            f"unable to update {path} in the guest: {exc}; fix the file"
            f" or create /etc/.pve-ignore.{path.rsplit('/', 1)[1]} to keep it unmanaged",
            vmid=root.vmid,
        ) from exc


def _check_not_binary(text: str | None) -> None:
    if text is not None and "\0" in text:
        raise edits.EditError("it contains binary data (NUL bytes)")


def write_shell_variables(root: GuestRoot, path: str, values: dict[str, str], mode: int = 0o644) -> bool:
    """Set ``KEY="value"`` lines in the shell-style file *path*, keeping its other lines."""
    return edit_file(root, path, lambda text: edits.set_shell_variables(text or "", values), mode)


def update_hosts(root: GuestRoot, conf: GuestConfig) -> None:
    """Map the hostname in /etc/hosts to the first static address of net0, or to 127.0.1.1."""
    address = "127.0.1.1"
    if conf.nets:
        first = conf.nets[0]
        static = first.static_ipv4() or first.static_ipv6()
        if static is not None:
            address = str(static.ip)
    names = [conf.fqdn(), conf.short_hostname()]
    if names[0] == names[1]:
        names = names[1:]
    edit_file(root, "/etc/hosts", lambda text: edits.render_hosts(text, address, names))


def update_resolv_conf(root: GuestRoot, conf: GuestConfig, host_resolv_conf: Path) -> None:
    """Write /etc/resolv.conf from nameserver and searchdomain.

    A value that is not set is taken from the host's resolv.conf, as a
    container without its own DNS settings uses the host's. The file is
    rewritten as a whole, and a symlink there (such as the systemd-resolved
    stub) is replaced by a regular file.
    """
    servers, domains = conf.nameservers(), conf.searchdomains()
    if not servers or not domains:
        host_servers, host_domains = edits.parse_resolv_conf(_read_host_file(host_resolv_conf))
        # Limitation: a host that runs a local resolver (127.0.0.53) hands the
        # guest an address that reaches nothing inside the container.
        servers = servers or host_servers
        domains = domains or host_domains
    if not servers and not domains:
        return
    write_file(root, "/etc/resolv.conf", edits.render_resolv_conf(servers, domains))


def resolve_timezone(conf: GuestConfig, host_localtime: Path) -> str | None:
    """Return the zoneinfo name to set, reading the host's /etc/localtime link for ``host``."""
    if conf.timezone != "host":
        return conf.timezone
    try:
        target = str(host_localtime.readlink())
    except OSError as exc:
        raise GuestError(
            f"unable to use the host's timezone: {host_localtime} is not a symlink into zoneinfo",
            vmid=conf.vmid,
        ) from exc
    match = re.search(r"zoneinfo/(.+)$", target)
    if not match:
        raise GuestError(f"unable to use the host's timezone: {host_localtime} points to {target}", vmid=conf.vmid)
    return match[1]


def check_timezone(root: GuestRoot, timezone: str) -> None:
    if not root.is_file(f"{_ZONEINFO}/{timezone}"):
        raise GuestError(
            f"timezone '{timezone}' not found in the guest ({_ZONEINFO}/{timezone} is missing);"
            " install tzdata in the guest or choose another timezone",
            vmid=root.vmid,
        )


def set_localtime(root: GuestRoot, timezone: str) -> None:
    """Point /etc/localtime at the zoneinfo file of *timezone*."""
    if root.ignored("/etc/localtime"):
        return
    root.symlink(f"{_ZONEINFO}/{timezone}", "/etc/localtime")


def set_root_password(root: GuestRoot, password_hash: str) -> None:
    edit_file(root, "/etc/shadow", lambda text: edits.set_root_password(_required(text), password_hash))


def check_shadow(root: GuestRoot) -> None:
    """Raise GuestError unless /etc/shadow exists and has a line for root."""
    if root.ignored("/etc/shadow"):
        return
    text = root.read_text("/etc/shadow")
    if text is None:
        raise GuestError("unable to set the root password: /etc/shadow not found in the guest", vmid=root.vmid)
    if not any(line.split(":")[0] == "root" for line in text.splitlines()):
        raise GuestError("unable to set the root password: /etc/shadow has no line for root", vmid=root.vmid)


def add_authorized_keys(root: GuestRoot, keys: str) -> None:
    """Add *keys* to /root/.ssh/authorized_keys (directory 0700, file 0600)."""
    path = "/root/.ssh/authorized_keys"
    if root.ignored(path):
        return
    root.makedirs("/root/.ssh", mode=0o700)
    edit_file(root, path, lambda text: edits.add_authorized_keys(text, keys), mode=0o600)
    root.chmod(path, 0o600)


def replace_host_keys(root: GuestRoot, conf: GuestConfig,
                      host_keys: Callable[[], list[HostKey]] | None = None) -> None:
    """Remove the template's ssh host keys and install freshly generated ones.

    A guest without /etc/ssh has no ssh server and is skipped. An ignored key
    file is neither removed nor replaced.
    """
    if not root.is_dir("/etc/ssh"):
        return
    for name in root.listdir("/etc/ssh"):
        path = f"/etc/ssh/{name}"
        if name.startswith("ssh_host_") and not root.ignored(path) and not root.is_dir(path):
            root.unlink(path)
    if host_keys is None:
        host_keys = lambda: generate_host_keys(f"root@{conf.short_hostname()}", vmid=conf.vmid)  # noqa: E731
    for key in host_keys():
        write_file(root, f"/etc/ssh/{key.name}", key.private, mode=0o600)
        write_file(root, f"/etc/ssh/{key.name}.pub", key.public, mode=0o644)


def randomize_crontab(root: GuestRoot, rng: random.Random, path: str = "/etc/crontab") -> None:
    edit_file(root, path, lambda text: None if text is None else edits.randomize_crontab(text, rng))


def _required(text: str | None) -> str:
    if text is None:
        raise edits.EditError("file not found")
    return text


def _read_host_file(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None
