"""Root password hashes and ssh host keys, made on the host for the guest."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pct.errors import CommandError, GuestError
from pct.run import run

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
    keys = []
    with tempfile.TemporaryDirectory(prefix="pct-hostkeys-") as directory:
        for key_type in HOST_KEY_TYPES:
            name = f"ssh_host_{key_type}_key"
            path = Path(directory) / name
            try:
                run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment, "-f", str(path)])
            except CommandError as exc:
                raise GuestError(f"unable to generate the ssh {key_type} host key: {exc}", vmid=vmid) from exc
            public = path.with_name(name + ".pub")
            keys.append(HostKey(name, path.read_text(), public.read_text()))
    return keys
