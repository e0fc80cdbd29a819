"""Exception types raised by the library.

Only the command-line edge turns these into one-line messages and exit codes;
library code raises them and never exits.
"""

from __future__ import annotations


class PctError(Exception):
    """A failure the user can act on, with the container id when there is one."""

    def __init__(self, message: str, vmid: int | None = None):
        super().__init__(message)
        self.message = message
        self.vmid = vmid

    def __str__(self) -> str:
        return self.message


class ParameterError(PctError):
    """An option or config value that fails validation.

    The message reads like Proxmox VE's: ``400 Parameter verification failed.
    net0: invalid format - unknown key 'brige'``.
    """

    def __init__(self, key: str, reason: str, vmid: int | None = None):
        super().__init__(f"400 Parameter verification failed. {key}: {reason}", vmid)
        self.key = key
        self.reason = reason


class ConfigError(PctError):
    """A container config file that cannot be read or parsed."""


class LockError(PctError):
    """A lock that could not be taken, or a container locked by another action."""


class StorageError(PctError):
    """A storage or volume operation that failed or is not supported."""


class GuestError(PctError):
    """Guest setup that failed or was refused (unsafe path, wrong ostype)."""


class TemplateError(PctError):
    """A template archive that is missing, corrupt or hostile."""


class CommandError(PctError):
    """An external command that exited with a non-zero status."""

    def __init__(self, argv: list[str], returncode: int, stderr: str):
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {returncode}"
        super().__init__(f"command '{' '.join(argv)}' failed: {detail}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
