"""Text edits of guest files, as pure functions from old content to new content.

Nothing here touches the filesystem, so each edit can be tested on strings and
the setup classes only decide which file gets which edit.
"""

from __future__ import annotations

import random
import re
from typing import Callable, Sequence

BEGIN_MARKER = "# --- BEGIN PVE ---"
END_MARKER = "# --- END PVE ---"


GENERATED_MARK = "# Written by pct"


def generated_header(name: str) -> list[str]:
    """Return the comment lines that start a file pct writes as a whole."""
    return [
        f"{GENERATED_MARK} at each container start; your changes here are replaced.",
        f"# Create /etc/.pve-ignore.{name} to manage this file yourself.",
    ]


class EditError(ValueError):
    """A guest file that cannot be edited safely; the message names the problem."""


def replace_marked_section(
    text: str, section: Sequence[str], insert_at: Callable[[list[str]], int]
) -> str:
    """Put *section* between the PVE markers in *text*.

    An existing marked section is replaced where it is. Without one, the new
    section goes before the line index that *insert_at* returns for the lines
    of *text*.
    """
    lines = text.splitlines()
    block = [BEGIN_MARKER, *section, END_MARKER]
    begin = _index(lines, BEGIN_MARKER)
    end = _index(lines, END_MARKER)
    if begin is None and end is None:
        position = insert_at(lines)
        lines[position:position] = block
    elif begin is None or end is None or end < begin:
        raise EditError(f"unbalanced '{BEGIN_MARKER}' and '{END_MARKER}' lines")
    else:
        lines[begin : end + 1] = block
    return "\n".join(lines) + "\n"


def _index(lines: list[str], marker: str) -> int | None:
    for number, line in enumerate(lines):
        if line.strip() == marker:
            return number
    return None


# -- /etc/hosts ---------------------------------------------------------------

DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
    "ff02::1\t\tip6-allnodes\n"
    "ff02::2\t\tip6-allrouters\n"
)


def render_hosts(text: str | None, address: str, names: Sequence[str]) -> str:
    """Return /etc/hosts with a marked entry mapping *address* to *names*.

    A new section goes right after the last IPv4 loopback line (127.x), where
    Debian keeps its 127.0.1.1 entry, or at the top when there is none.
    """
    entry = f"{address} {' '.join(names)}"
    return replace_marked_section(text if text is not None else DEFAULT_HOSTS, [entry], _after_loopback)


def _after_loopback(lines: list[str]) -> int:
    position = 0
    for number, line in enumerate(lines):
        if line.split()[:1] and line.split()[0].startswith("127."):
            position = number + 1
    return position


# -- /etc/resolv.conf ---------------------------------------------------------


def parse_resolv_conf(text: str | None) -> tuple[list[str], list[str]]:
    """Return the nameservers and search domains of a resolv.conf text."""
    servers: list[str] = []
    domains: list[str] = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
        elif fields[:1] in (["search"], ["domain"]):
            domains = fields[1:]
    return servers, domains


def render_resolv_conf(servers: Sequence[str], domains: Sequence[str]) -> str:
    lines = []
    if domains:
        lines.append(f"search {' '.join(domains)}")
    lines.extend(f"nameserver {server}" for server in servers)
    return "".join(line + "\n" for line in lines)


# -- /etc/crontab -------------------------------------------------------------

_CRON_LINE = re.compile(r"^(?P<minute>\d+)(?P<sep1>\s+)(?P<hour>\d+|\*)(?P<rest>\s.*)$")
# Debian-style run-parts directories, then the ones of Alpine's /etc/crontabs/root.
_PERIODS = ("cron.hourly", "cron.daily", "cron.weekly", "cron.monthly",
            "periodic/hourly", "periodic/daily", "periodic/weekly", "periodic/monthly")


def randomize_crontab(text: str, rng: random.Random) -> str:
    """Give the run-parts lines of /etc/crontab a random minute, and a random hour unless hourly.

    Lines with ranges, lists or steps in those fields are left as they are.
    """
    output = []
    for line in text.splitlines(keepends=True):
        match = _CRON_LINE.match(line.rstrip("\n"))
        period = next((p for p in _PERIODS if p in line), None)
        if match and period and not line.lstrip().startswith("#"):
            minute = str(rng.randrange(60))
            hour = match["hour"]
            if not period.endswith("hourly") and hour != "*":
                hour = str(rng.randrange(24))
            ending = "\n" if line.endswith("\n") else ""
            line = f"{minute}{match['sep1']}{hour}{match['rest']}{ending}"
        output.append(line)
    return "".join(output)


# -- /etc/shadow --------------------------------------------------------------


def set_root_password(text: str, password_hash: str) -> str:
    """Return /etc/shadow with root's password field set to *password_hash*."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root" and len(fields) >= 2:
            fields[1] = password_hash
            lines[number] = ":".join(fields)
            return "\n".join(lines) + "\n"
    raise EditError("no line for root")


# -- /root/.ssh/authorized_keys -----------------------------------------------


def add_authorized_keys(text: str | None, keys: str) -> str:
    """Return authorized_keys with each key of *keys* added once, existing lines kept."""
    lines = (text or "").splitlines()
    for key in keys.splitlines():
        key = key.strip()
        if key and key not in lines:
            lines.append(key)
    return "".join(line + "\n" for line in lines)


# -- /etc/inittab -------------------------------------------------------------

# A getty on a virtual console: "2:23:respawn:/sbin/getty 38400 tty2".
_TTY_GETTY = re.compile(r"^[^#:]+:[^:]*:respawn:.*getty.*\btty\d+\b")


def render_inittab(text: str, tty: int, console: bool, getty: str = "/sbin/getty --noclear 38400") -> str:
    """Return /etc/inittab with gettys on tty1..*tty* and, if *console*, on /dev/console.

    The guest's own getty lines for ttyN are commented out, because LXC
    creates only the configured number of ttys. The managed lines go into a
    marked section at the end. *getty* is the command before the tty name.
    """
    lines = []
    for line in text.splitlines():
        if _TTY_GETTY.match(line) and not _within_markers(lines):
            line = "#" + line
        lines.append(line)
    section = [f"{n}:2345:respawn:{getty} tty{n}" for n in range(1, tty + 1)]
    if console:
        section.insert(0, f"co:2345:respawn:{getty} console")
    return replace_marked_section("\n".join(lines) + "\n", section, len)


# busybox init's format: "tty1::respawn:/sbin/getty 38400 tty1", the first field names the tty.
_BUSYBOX_TTY_GETTY = re.compile(r"^(tty\d+|console)::respawn:.*getty")


def render_busybox_inittab(text: str, tty: int, console: bool) -> str:
    """Return a busybox-init /etc/inittab (as Alpine uses) with gettys on tty1..*tty* and the console.

    The guest's own getty lines for ttyN and the console are commented out and
    the managed lines go into a marked section at the end.
    """
    lines = []
    for line in text.splitlines():
        if _BUSYBOX_TTY_GETTY.match(line) and not _within_markers(lines):
            line = "#" + line
        lines.append(line)
    section = [f"tty{n}::respawn:/sbin/getty 38400 tty{n}" for n in range(1, tty + 1)]
    if console:
        section.insert(0, "console::respawn:/sbin/getty 38400 console")
    return replace_marked_section("\n".join(lines) + "\n", section, len)


def _within_markers(previous: list[str]) -> bool:
    """Return whether the next line is inside a marked section, given the lines before it."""
    inside = False
    for line in previous:
        if line.strip() == BEGIN_MARKER:
            inside = True
        elif line.strip() == END_MARKER:
            inside = False
    return inside


# -- shell-style KEY=value files ----------------------------------------------

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")


def set_shell_variables(text: str, values: dict[str, str]) -> str:
    """Return *text* with ``KEY="value"`` set for each item of *values*.

    The first assignment of a key is replaced in place and later ones are
    removed, so the file cannot set the key back. Missing keys are appended.
    Values must not contain quotes, backslashes, ``$`` or backquotes.
    """
    for value in values.values():
        if re.search(r"[\"\\$`\n]", value):
            raise EditError(f"value {value!r} cannot be written as a shell string")
    output: list[str] = []
    done: set[str] = set()
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match[1] in values:
            if match[1] in done:
                continue
            line = f'{match[1]}="{values[match[1]]}"'
            done.add(match[1])
        output.append(line)
    output.extend(f'{key}="{value}"' for key, value in values.items() if key not in done)
    return "".join(line + "\n" for line in output)
