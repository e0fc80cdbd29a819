"""``pct startall`` and ``pct stopall``: boot and shutdown order from ``onboot`` and ``startup``.

Containers start by ascending ``order`` (those without one last), each
followed by its ``up`` delay. They stop in the reverse order, and each gets
``down`` seconds (60 by default) to shut down before it is stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pct.config.format import load_config
from pct.config.model import settings_from_config
from pct.errors import PctError
from pct.paths import Paths
from pct.runtime.state import running_vmids

log = logging.getLogger(__name__)

DEFAULT_DOWN_SECONDS = 60


@dataclass
class OrderResult:
    """The outcome of ``startall`` or ``stopall``: ids handled, and failures with their message."""

    done: list[int]
    failed: dict[int, str]


def _all_settings(paths: Paths) -> list:
    from pct.listing import config_vmids

    settings = []
    for vmid in config_vmids(paths):
        try:
            settings.append(settings_from_config(load_config(paths, vmid), vmid))
        except PctError as exc:
            log.warning("CT %s: skipped: %s", vmid, exc.message)
    return settings


def _order_key(settings) -> tuple:
    order = settings.startup.order if settings.startup and settings.startup.order is not None else None
    return (order is None, order or 0, settings.vmid)


def start_order(paths: Paths) -> list:
    """Return the settings of the ``onboot`` containers in the order they start."""
    return sorted((s for s in _all_settings(paths) if s.onboot and not s.template), key=_order_key)


def start_all(paths: Paths, sleep=time.sleep) -> OrderResult:
    """Start every ``onboot`` container that is not running, in boot order."""
    from pct.runtime.lifecycle import start_container

    result = OrderResult([], {})
    running = running_vmids(paths)
    for settings in start_order(paths):
        if settings.vmid in running:
            continue
        try:
            start_container(paths, settings.vmid)
        except PctError as exc:
            result.failed[settings.vmid] = exc.message
            continue
        result.done.append(settings.vmid)
        if settings.startup and settings.startup.up:
            sleep(settings.startup.up)
    return result


def stop_all(paths: Paths, timeout: int | None = None) -> OrderResult:
    """Shut every running container down in reverse boot order, stopping those that time out."""
    from pct.runtime.lifecycle import shutdown_container, stop_container

    result = OrderResult([], {})
    running = running_vmids(paths)
    for settings in reversed(sorted(_all_settings(paths), key=_order_key)):
        if settings.vmid not in running:
            continue
        down = timeout
        if down is None:
            down = settings.startup.down if settings.startup and settings.startup.down else DEFAULT_DOWN_SECONDS
        try:
            shutdown_container(paths, settings.vmid, timeout=down, force_stop=False)
        except PctError as exc:
            result.failed[settings.vmid] = f"{exc.message}; stopped it"
            try:
                stop_container(paths, settings.vmid)
            except PctError as stop_error:
                result.failed[settings.vmid] = stop_error.message
                continue
        result.done.append(settings.vmid)
    return result
