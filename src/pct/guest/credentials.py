"""Root password hashes and ssh host keys, made on the host for the guest."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pct.errors import CommandError, GuestError
from pct.run import run, start, wait

# Key types generated for a new guest. DSA is left out because OpenSSH 9.8
# and later no longer build it by default.
HOST_KEY_TYPES = ("rsa", "ecdsa", "ed25519")


@dataclass(frozen=True)
class HostKey:
    """One ssh host key pair as file names and contents."""

    name: str
    private: str
    public: str


def hash_password(password: str, vmid: int | None = None) -> str:
    """Return a SHA-512 crypt hash (``$6$...``) of *password* made by ``openssl passwd -6``.

    The password goes to openssl on stdin so that it never appears in a
    process list.
    """
    if "\n" in password or "\r" in password:
        raise GuestError("invalid root password: it must not contain a line break", vmid=vmid)
    try:
        result = run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n")
    except CommandError as exc:
        raise GuestError(f"unable to hash the root password: {exc}", vmid=vmid) from exc
    password_hash = result.stdout.strip()
    if not password_hash.startswith("$6$"):
        raise GuestError("unable to hash the root password: openssl returned no SHA-512 hash", vmid=vmid)
    return password_hash


def generate_host_keys(comment: str, vmid: int | None = None) -> list[HostKey]:
    """Generate one new host key pair per type in HOST_KEY_TYPES with ssh-keygen."""
    return start_host_key_generation(comment, vmid)()


def start_host_key_generation(comment: str, vmid: int | None = None) -> Callable[[], list[HostKey]]:
    """Start ssh-keygen for every type in HOST_KEY_TYPES at once, in the background.

    Returns a function that waits for the keys and returns them. RSA keys take
    about half a second to generate, so ``pct create`` starts this before it
    unpacks the template.
    """
    directory = Path(tempfile.mkdtemp(prefix="pct-hostkeys-"))
    processes = {}
    try:
        for key_type in HOST_KEY_TYPES:
            path = directory / f"ssh_host_{key_type}_key"
            processes[key_type] = start(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", path])
    except BaseException:
        _discard(processes, directory)
        raise

    def collect() -> list[HostKey]:
        try:
            return [_collect_key(key_type, process, directory, vmid) for key_type, process in processes.items()]
        finally:
            _discard(processes, directory)

    return collect


def _collect_key(key_type: str, process, directory: Path, vmid: int | None) -> HostKey:
    name = f"ssh_host_{key_type}_key"
    try:
        wait(process)
    except CommandError as exc:
        raise GuestError(f"unable to generate the ssh {key_type} host key: {exc}", vmid=vmid) from exc
    private = directory / name
    return HostKey(name, private.read_text(), private.with_name(name + ".pub").read_text())


def _discard(processes: dict, directory: Path) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()
    shutil.rmtree(directory, ignore_errors=True)
