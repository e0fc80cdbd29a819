"""Back up one container: lock it, build a view of its files in the requested mode, archive it.

Modes:

- ``stop``: a running container is shut down, its volumes are mounted and
  archived, and it is started again afterwards.
- ``suspend``: the running container's files are copied with rsync to a
  temporary directory, the container is frozen for a second rsync pass that
  copies the changes, thawed, and the copy is archived.
- ``snapshot``: the container is frozen while each included volume gets a
  storage snapshot, thawed, and the snapshots are archived and removed. A
  volume on storage without snapshots makes the backup fail before anything
  changes.

The config contains ``lock: backup`` for the whole backup. The archive is
written under a temporary name and renamed when it is complete, so a failed
backup leaves its ``.log`` and no archive. A backup process that is killed
with SIGKILL is cleaned up after by its watchdog (see ``pct.backup.watchdog``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TextIO

from pct.backup.archive import (ArchiveError, ArchiveSource, StreamOptions, config_member, fsync_if_file,
                                write_archive, FIREWALL_MEMBER, TAR_RECORD_SIZE)
from pct.backup.names import ArchiveName, archive_name, normalise_compress
from pct.backup.target import BackupTarget
from pct.backup.views import archive_members, backed_up_mounts, backup_settings, running_view, snapshot_view, uid_base
from pct.backup.watchdog import Events, Watchdog
from pct.config.format import ContainerConfig, Section, format_config, load_config, write_config
from pct.config.model import ContainerSettings, settings_from_config
from pct.errors import CommandError, ConfigError, LockError, ParameterError, PctError
from pct.locks import config_lock
from pct.paths import Paths
from pct.runtime.freeze import frozen, unfreeze
from pct.run import run
from pct.runtime.lxcconf import UNPRIVILEGED_ID_MAP
from pct.runtime.mountpoints import mount_all
from pct.runtime.mounts import mount_rootfs, unmount_all, unmount_below
from pct.runtime.state import is_running
from pct.tasks import Task, task
from pct.volumes import mount_volumes, storage_of

MODES = ("stop", "suspend", "snapshot")
SNAPSHOT_NAME = "vzdump"
SHUTDOWN_TIMEOUT = 60
# Keys of the main section that an archive's config leaves out.
_NOT_ARCHIVED = ("lock", "parent")


@dataclass
class BackupOptions:
    """The settings of one ``vzdump`` run, after ``vzdump.conf`` defaults were applied."""

    mode: str = "snapshot"
    # True when neither the command line nor vzdump.conf set the mode. Snapshot
    # mode then falls back to suspend mode for volumes without snapshots.
    default_mode: bool = False
    compress: str = "0"
    zstd: int = 1
    bwlimit: int = 0
    exclude_path: list[str] = field(default_factory=list)
    tmpdir: str | None = None
    notes_template: str | None = None

    def check(self) -> None:
        if self.mode not in MODES:
            raise ParameterError("mode", f"value '{self.mode}' does not have a value in the enumeration "
                                 f"'{', '.join(MODES)}'")
        self.compress = normalise_compress(self.compress)
        if self.compress == "lzo" and shutil.which("lzop") is None:
            raise ParameterError("compress", "lzo compression needs the lzop program, which is not installed")
        if self.zstd < 0 or self.bwlimit < 0:
            raise ParameterError("zstd" if self.zstd < 0 else "bwlimit", "value must not be negative")


@dataclass
class BackupResult:
    """A finished backup: the archive path (None when written to stdout) and the bytes written."""

    archive: Path | None
    size: int


class BackupLog:
    """The lines of one backup, written to the task log and to the ``.log`` beside the archive."""

    def __init__(self, progress: Task, path: Path | None, file: TextIO | None = None):
        self.progress = progress
        self.path = path
        if file is None and path is not None:
            file = open(path, "a", encoding="utf-8")
        self._file = file

    def info(self, message: str) -> None:
        self._write("INFO", message)

    def error(self, message: str) -> None:
        self._write("ERROR", message)

    def _write(self, level: str, message: str) -> None:
        line = f"{level}: {message}"
        self.progress.log(line)
        if self._file is not None:
            self._file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def backup_container(paths: Paths, vmid: int, options: BackupOptions, target: BackupTarget | None,
                     stdout: BinaryIO | None = None) -> BackupResult:
    """Back up container *vmid* into *target*, or to *stdout* when *target* is None."""
    options.check()
    if not paths.conf(vmid).exists():
        # Nothing to back up, so no log file is left in the dump folder.
        raise ConfigError(f"Configuration file 'etc/pve/lxc/{vmid}.conf' does not exist", vmid)
    if target is not None:
        target.directory.mkdir(parents=True, exist_ok=True)

    with task(paths, "vzdump", vmid) as progress:
        started, name, log_file = _claim_name(target, vmid, options.compress)
        backup_log = BackupLog(progress, target.directory / name.log_name if target else None, log_file)
        # The watchdog starts before the lock is written and removes it only
        # after the ``locked`` event.
        watchdog = Watchdog()
        watchdog.start(functools.partial(_clean_up_killed_backup, paths, vmid, backup_log, progress, os.getpid()))
        try:
            backup_log.info(f"Starting backup of CT {vmid} (mode {options.mode}, compression {options.compress})")
            config = _lock_for_backup(paths, vmid, watchdog)
        except BaseException as exc:
            backup_log.error(f"Backup of CT {vmid} failed - {exc or type(exc).__name__}")
            watchdog.dismiss()
            backup_log.close()
            raise
        was_running = is_running(paths, vmid)
        if was_running:
            watchdog.note("running")
        try:
            result = _run_backup(paths, vmid, config, options, target, name.name, stdout, backup_log, watchdog)
            backup_log.info(f"Finished backup of CT {vmid} in {time.time() - started:.1f} s")
        except BaseException as exc:
            backup_log.error(f"Backup of CT {vmid} failed - {exc or type(exc).__name__}")
            raise
        finally:
            try:
                _unlock(paths, vmid)
                _restore_state(paths, vmid, was_running, backup_log)
                backup_log.close()
            finally:
                watchdog.dismiss()
    if target is not None and options.notes_template:
        notes = expand_notes(options.notes_template, config, vmid)
        (target.directory / name.notes_name).write_text(notes + "\n", encoding="utf-8")
    return result


def _claim_name(target: BackupTarget | None, vmid: int, compress: str) -> tuple[float, ArchiveName, TextIO | None]:
    """Return the start time and archive name of a backup starting now, and its new log file.

    The name has a resolution of one second. The log file is created
    exclusively, so a second backup of the same container within that second
    waits for the next one instead of taking over the first one's log and
    archive.
    """
    while True:
        started = time.time()
        name = archive_name(vmid, started, compress)
        if target is None:
            return started, name, None
        if not (target.directory / name.name).exists():
            try:
                return started, name, open(target.directory / name.log_name, "x", encoding="utf-8")
            except FileExistsError:
                pass
        time.sleep(1.0 - started % 1.0 + 0.01)


def expand_notes(template: str, config: ContainerConfig, vmid: int) -> str:
    """Replace ``{{guestname}}``, ``{{vmid}}``, ``{{node}}`` and ``{{cluster}}`` in a notes template.

    ``\\n`` in the template starts a new line, as on Proxmox VE's command line.
    """
    # NOTE: this toolkit runs without a cluster, so {{cluster}} expands to an empty string.
    values = {
        "guestname": config.main.get("hostname") or f"CT{vmid}",
        "vmid": str(vmid),
        "node": os.uname().nodename.split(".")[0],
        "cluster": "",
    }
    text = template.replace("\\n", "\n")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _lock_for_backup(paths: Paths, vmid: int, watchdog: Watchdog) -> ContainerConfig:
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        lock = config.main.get("lock")
        if lock:
            raise LockError(f"CT {vmid} is locked ({lock})", vmid)
        config.main.set("lock", "backup")
        write_config(paths, vmid, config)
        # Limitation: a SIGKILL between the write above and this note leaves
        # ``lock: backup``, to be cleared with ``pct unlock``. Noting it before
        # the write would instead let the watchdog remove the lock of a backup
        # that started right after this process died.
        watchdog.note("locked")
    return config


def _unlock(paths: Paths, vmid: int) -> None:
    with config_lock(paths, vmid):
        config = load_config(paths, vmid)
        if config.main.get("lock") == "backup":
            config.main.delete("lock")
            write_config(paths, vmid, config)


def _restore_state(paths: Paths, vmid: int, was_running: bool, backup_log: BackupLog) -> None:
    """Start the container again when the backup stopped it."""
    if was_running and not is_running(paths, vmid):
        from pct.runtime.lifecycle import start_container

        backup_log.info(f"starting CT {vmid} again")
        start_container(paths, vmid)


def _clean_up_killed_backup(paths: Paths, vmid: int, backup_log: BackupLog, progress: Task, backup_pid: int,
                            events: Events) -> None:
    """Undo the steps that *events* record of a killed backup process; runs in the watchdog.

    The watchdog has already ended the backup's tar, compressor and rsync.
    Each step runs even when an earlier one failed, and a failure is logged.
    """
    message = f"the vzdump process {backup_pid} was killed"
    backup_log.error(f"Backup of CT {vmid} failed - {message}")
    last = {event: index for index, (event, _value) in enumerate(events)}
    values = dict(events)

    def pending(event: str, undone_by: str) -> bool:
        return event in last and last.get(undone_by, -1) < last[event]

    steps: list[tuple[str, Callable[[], None]]] = []
    if pending("frozen", "thawed"):
        steps.append(("thawing the container", lambda: unfreeze(paths, vmid)))
    if "archive" in values:
        steps.append(("removing the partial archive", lambda: Path(values["archive"]).unlink(missing_ok=True)))
    if pending("scratch", "scratch-removed"):
        steps.append(("removing the temporary directory", lambda: _remove_scratch(Path(values["scratch"]))))
    if pending("mounted", "unmounted"):
        steps.append(("unmounting the volumes", lambda: unmount_all(paths, vmid)))
    if pending("snapshots", "snapshots-removed"):
        steps.append(("removing the backup snapshots", lambda: _remove_snapshots(paths, vmid)))
    if pending("stopping", "mounted"):
        steps.append(("waiting for the shutdown", lambda: _wait_stopped(paths, vmid)))
    if "locked" in values:
        steps.append(("removing the backup lock", lambda: _unlock(paths, vmid)))
    steps.append(("restoring the container's state",
                  lambda: _restore_state(paths, vmid, "running" in values, backup_log)))
    for description, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - every later step must still run
            backup_log.error(f"{description} failed: {exc}")
    backup_log.info(f"cleaned up after the killed backup of CT {vmid}")
    progress.finish(message)
    print(f"CT {vmid}: backup failed: {message}; the watchdog removed the partial archive and the lock",
          file=sys.stderr)


def _remove_scratch(scratch: Path) -> None:
    unmount_below(scratch)
    shutil.rmtree(scratch, ignore_errors=True)


def _remove_snapshots(paths: Paths, vmid: int) -> None:
    config = load_config(paths, vmid)
    for volume, storage in _snapshot_volumes(paths, config, settings_from_config(config, vmid)):
        if storage.has_volume_snapshot(volume.volname, SNAPSHOT_NAME):
            storage.delete_volume_snapshot(volume.volname, SNAPSHOT_NAME)


def _wait_stopped(paths: Paths, vmid: int) -> None:
    """Wait until a shutdown that the killed backup started has finished, or has given up."""
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 10
    while is_running(paths, vmid) and time.monotonic() < deadline:
        time.sleep(0.5)


def archived_config(config: ContainerConfig) -> str:
    """Return the config text stored in an archive: the main section without lock, snapshots or pending changes."""
    entries = [(key, value) for key, value in config.main.entries if key not in _NOT_ARCHIVED]
    return format_config(ContainerConfig(description=config.description, main=Section(entries=entries)))


def _archive_head(paths: Paths, config: ContainerConfig, vmid: int) -> bytes:
    head = config_member(archived_config(config))
    firewall = paths.under_root(f"etc/pve/firewall/{vmid}.fw")
    if firewall.is_file():
        head += config_member(firewall.read_text(encoding="utf-8"), FIREWALL_MEMBER)
    return head


def _run_backup(paths: Paths, vmid: int, config: ContainerConfig, options: BackupOptions,
                target: BackupTarget | None, name: str, stdout: BinaryIO | None, backup_log: BackupLog,
                watchdog: Watchdog) -> BackupResult:
    settings = settings_from_config(config, vmid)
    for mount in settings.mounts:
        if mount not in backed_up_mounts(settings):
            backup_log.info(f"excluding {mount.key} '{mount.mountpoint}' from the backup "
                            "(a bind or device mount point, or backup=1 not set)")
    head = _archive_head(paths, config, vmid)
    if options.tmpdir:
        workdir = Path(options.tmpdir)
    elif target is not None:
        workdir = target.directory
    else:
        workdir = Path("/var/tmp")
    stream = StreamOptions(compress=options.compress, zstd_threads=options.zstd, bwlimit=options.bwlimit,
                           progress=lambda size, seconds: backup_log.info(
                               f"{size >> 20} MiB written in {seconds:.0f} s"),
                           process_group=watchdog.process_group)

    mode = options.mode
    if mode == "snapshot" and options.default_mode:
        try:
            _snapshot_volumes(paths, config, settings)
        except PctError as exc:
            backup_log.info(f"{exc.message.split(': ', 1)[-1]}; falling back to suspend mode")
            mode = "suspend"
    written = None
    try:
        with _tree_for_mode(paths, config, settings, mode, workdir, backup_log, watchdog) as tree:
            source = ArchiveSource(directory=tree, members=archive_members(tree, settings),
                                   id_map=UNPRIVILEGED_ID_MAP if settings.unprivileged else None,
                                   exclude_paths=options.exclude_path)
            if target is None:
                backup_log.info("writing the archive to standard output")
                output = stdout or sys.stdout.buffer
                size = write_archive(source, head, output, stream)
                fsync_if_file(output)
                return BackupResult(None, size)
            written = _write_partial(source, head, target, name, stream, backup_log, watchdog)
        # The archive's fsync ran while the tree was unmounted or removed.
        return written.complete(backup_log)
    except BaseException:
        if written is not None:
            written.discard()
        raise


class _PartialArchive:
    """An archive written under its temporary name, being flushed to disk by a thread.

    The flush overlaps the unmounting of the backed-up tree. ``complete``
    waits for it and gives the archive its final name.
    """

    def __init__(self, partial: Path, final: Path, fd: int, size: int):
        self.partial = partial
        self.final = final
        self.size = size
        self._error: OSError | None = None
        self._fd = os.dup(fd)
        self._syncing = threading.Thread(target=self._fsync, daemon=True)
        self._syncing.start()

    def _fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._error = exc
        finally:
            os.close(self._fd)

    def complete(self, backup_log: BackupLog) -> BackupResult:
        self._syncing.join()
        if self._error is not None:
            raise ArchiveError(f"writing the archive failed: {self._error.strerror or self._error}")
        os.rename(self.partial, self.final)
        backup_log.info(f"archive size {self.final.stat().st_size} bytes")
        return BackupResult(self.final, self.size)

    def discard(self) -> None:
        self._syncing.join()
        self.partial.unlink(missing_ok=True)


def _write_partial(source: ArchiveSource, head: bytes, target: BackupTarget, name: str,
                   stream: StreamOptions, backup_log: BackupLog, watchdog: Watchdog) -> _PartialArchive:
    final = target.directory / name
    partial = target.directory / f"{name}.tmp"
    backup_log.info(f"creating archive '{final}'")
    watchdog.note("archive", str(partial))
    try:
        with open(partial, "xb") as output:
            size = write_archive(source, head, output, stream)
            return _PartialArchive(partial, final, output.fileno(), size)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _tree_for_mode(paths: Paths, config: ContainerConfig, settings: ContainerSettings, mode: str,
                   workdir: Path, backup_log: BackupLog, watchdog: Watchdog) -> Iterator[Path]:
    if mode == "snapshot":
        with _snapshot_tree(paths, config, settings, workdir, backup_log, watchdog) as tree:
            yield tree
    elif mode == "suspend" and is_running(paths, settings.vmid):
        with _suspend_tree(paths, settings, workdir, backup_log, watchdog) as tree:
            yield tree
    else:
        with _stopped_tree(paths, settings, backup_log, watchdog) as tree:
            yield tree


@contextlib.contextmanager
def _frozen(paths: Paths, vmid: int, watchdog: Watchdog) -> Iterator[None]:
    """Freeze the container for the block, and tell the watchdog to thaw it if this process dies meanwhile."""
    watchdog.note("frozen")
    try:
        with frozen(paths, vmid):
            yield
    finally:
        watchdog.note("thawed")


@contextlib.contextmanager
def _scratch_directory(vmid: int, workdir: Path, watchdog: Watchdog) -> Iterator[Path]:
    """Create a temporary directory below *workdir* that the watchdog removes if this process dies."""
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"vzdumptmp-{vmid}-", dir=workdir))
    watchdog.note("scratch", str(scratch))
    try:
        os.chmod(scratch, 0o755)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        watchdog.note("scratch-removed")


# -- stop ----------------------------------------------------------------------------

@contextlib.contextmanager
def _stopped_tree(paths: Paths, settings: ContainerSettings, backup_log: BackupLog,
                  watchdog: Watchdog) -> Iterator[Path]:
    """Shut the container down if it runs, and mount its root and backed-up volumes."""
    vmid = settings.vmid
    if is_running(paths, vmid):
        # Imported here because loading the guest modules costs about 15 ms.
        from pct.runtime.lifecycle import shutdown_container

        backup_log.info(f"shutting down CT {vmid}")
        watchdog.note("stopping")
        shutdown_container(paths, vmid, timeout=SHUTDOWN_TIMEOUT, force_stop=True)
    included = _read_only(backup_settings(settings))
    watchdog.note("mounted")
    try:
        rootfs = mount_rootfs(paths, included)
        mount_all(paths, included, rootfs, uid_base(settings), volumes_only=True)
        yield rootfs
    finally:
        unmount_all(paths, vmid)
        watchdog.note("unmounted")


def _read_only(settings: ContainerSettings) -> ContainerSettings:
    """Return *settings* with the volumes mounted read-only for reading a backup.

    A read-only mount never writes back access times or a journal, which made
    the backup of a just-mounted image noticeably slower. The root stays
    writable when mount points must be mounted on it, because their target
    directories may still have to be created.
    """
    mounts = tuple(dataclasses.replace(mount, ro=True) for mount in settings.mounts)
    rootfs = settings.rootfs
    if rootfs is not None and not mounts:
        rootfs = dataclasses.replace(rootfs, ro=True)
    return dataclasses.replace(settings, rootfs=rootfs, mounts=mounts)


# -- suspend -------------------------------------------------------------------------

_RSYNC = ["rsync", "-aHAX", "--numeric-ids", "--sparse", "--one-file-system", "--delete", "--inplace"]


@contextlib.contextmanager
def _suspend_tree(paths: Paths, settings: ContainerSettings, workdir: Path, backup_log: BackupLog,
                  watchdog: Watchdog) -> Iterator[Path]:
    """Copy the running container to a temporary directory, then copy the changes while it is frozen."""
    vmid = settings.vmid
    with _scratch_directory(vmid, workdir, watchdog) as scratch:
        copy = scratch / "copy"
        with running_view(paths, settings, scratch / "view") as view:
            backup_log.info("copying the running container's files")
            _sync(view, copy, settings, watchdog)
            backup_log.info(f"freezing CT {vmid} to copy the last changes")
            with _frozen(paths, vmid, watchdog):
                _sync(view, copy, settings, watchdog)
            backup_log.info(f"CT {vmid} thawed")
        yield copy


def _sync(view: Path, copy: Path, settings: ContainerSettings, watchdog: Watchdog) -> None:
    """Copy the root and each backed-up mount point; rsync stays on one file system per call."""
    try:
        run(_RSYNC + [f"{view}/", f"{copy}/"], process_group=watchdog.process_group)
        for mount in backed_up_mounts(settings):
            relative = mount.mountpoint.strip("/")
            (copy / relative).mkdir(parents=True, exist_ok=True)
            run(_RSYNC + [f"{view / relative}/", f"{copy / relative}/"], process_group=watchdog.process_group)
    except (CommandError, OSError) as exc:
        # rsync reports a full file system as a broken pipe between its processes.
        if _space_left(copy) < TAR_RECORD_SIZE:
            raise ArchiveError(f"copying the container's files to '{copy.parent}' failed: "
                               "No space left on device (see --tmpdir)") from exc
        raise


def _space_left(path: Path) -> int:
    """Return the bytes that users may still write on the file system of *path*, or a large number if unknown."""
    try:
        info = os.statvfs(path)
    except OSError:
        return 1 << 62
    return info.f_bavail * info.f_frsize


# -- snapshot ------------------------------------------------------------------------

@contextlib.contextmanager
def _snapshot_tree(paths: Paths, config: ContainerConfig, settings: ContainerSettings, workdir: Path,
                   backup_log: BackupLog, watchdog: Watchdog) -> Iterator[Path]:
    """Snapshot the included volumes (frozen if running), and mount the snapshots read-only."""
    vmid = settings.vmid
    volumes = _snapshot_volumes(paths, config, settings)
    snapshots_taken: list[Callable[[], None]] = []
    with _scratch_directory(vmid, workdir, watchdog) as scratch:
        try:
            for volume, storage in volumes:
                if storage.has_volume_snapshot(volume.volname, SNAPSHOT_NAME):
                    backup_log.info(f"removing the stale snapshot '{SNAPSHOT_NAME}' of {volume.volid}")
                    storage.delete_volume_snapshot(volume.volname, SNAPSHOT_NAME)
            backup_log.info(f"creating snapshot '{SNAPSHOT_NAME}' of {len(volumes)} volume(s)")
            watchdog.note("snapshots")
            with _frozen(paths, vmid, watchdog):
                for volume, storage in volumes:
                    storage.snapshot_volume(volume.volname, SNAPSHOT_NAME)
                    snapshots_taken.append(lambda storage=storage, volume=volume:
                                           storage.delete_volume_snapshot(volume.volname, SNAPSHOT_NAME))
            with snapshot_view(paths, settings, SNAPSHOT_NAME, scratch / "view") as view:
                yield view
        finally:
            for remove in reversed(snapshots_taken):
                try:
                    remove()
                except PctError as exc:
                    backup_log.error(f"removing the snapshot '{SNAPSHOT_NAME}' failed: {exc}")
            watchdog.note("snapshots-removed")


def _snapshot_volumes(paths: Paths, config: ContainerConfig, settings: ContainerSettings) -> list:
    """Return (volume, storage) for the root and backed-up volumes; raise if one cannot be snapshotted."""
    included = {"rootfs"} | {mount.key for mount in backed_up_mounts(settings)}
    cache: dict = {}
    volumes = []
    for volume in mount_volumes(config.main):
        if volume.key not in included:
            continue
        storage = storage_of(paths, volume, cache)
        if not storage.supports("snapshot", volume.volname):
            raise PctError(f"CT {settings.vmid}: snapshot mode is not available: volume '{volume.volid}' "
                           f"({volume.key}) is on storage '{volume.storage_id}' without snapshots; "
                           "use --mode suspend or --mode stop", settings.vmid)
        volumes.append((volume, storage))
    return volumes
