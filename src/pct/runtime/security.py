"""Notices about the confinement this host can give a container."""

from __future__ import annotations


def host_has_apparmor() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as enabled:
            return enabled.read().strip() == "Y"
    except OSError:
        return False


def security_notices(settings) -> list[str]:
    """Return start-time notices about missing confinement."""
    if host_has_apparmor():
        return []
    if settings.unprivileged:
        return []
    return [f"CT {settings.vmid}: this host has no AppArmor, so the privileged container is confined "
            "only by capabilities and seccomp; prefer an unprivileged container"]
