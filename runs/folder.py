"""A run folder belongs to one run: ownership, a lock held for the whole run, start-up checks, leftovers.

- A folder that already holds a run (`args.json`, `checkpoints/` or `deepspeed/`) is only written by
  `--resume` (continue it) or `--overwrite` (start again: the previous run is moved, never deleted, to a
  sibling `<folder>.replaced-<time>` and the move is printed).
- `RunLock`: `<folder>/run.lock` (pid, host, start time, command) is created exclusively and held until
  the run ends; a second writer stops naming the holder. A lock whose pid is dead on this host is stale
  and taken over with a warning.
- `check_writable`: the folder is created and written to at start-up, and the disk has room for the
  checkpoints the run will write, so that a read-only or full disk fails at once, not after training.
- `remove_leftover_temporaries`: temporary files of a checkpoint write that was killed are removed.
"""
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

RUN_MARKERS = ("args.json", "checkpoints", "deepspeed")
LOCK_NAME = "run.lock"
TEMPORARY = re.compile(r"^\..+\.tmp$")  # utils.checkpoint.atomic_save: .<name>.<random>.tmp


class RunFolderError(RuntimeError):
    """The output folder cannot be used by this run; the message says why and what to do."""


def holds_run(folder) -> bool:
    folder = Path(folder)
    return any((folder / marker).exists() for marker in RUN_MARKERS)


def claim_run_folder(folder, resume_from=None, overwrite=False) -> Path | None:
    """Make `folder` this run's; returns where a previous run was moved (--overwrite), else None.

    resume_from: the --resume path; continuing is allowed into the folder it belongs to, or into a new one."""
    folder = Path(folder)
    if not holds_run(folder):
        return None
    if resume_from:
        resumed = Path(os.path.abspath(resume_from))
        if resumed != Path(os.path.abspath(folder)) and Path(os.path.abspath(folder)) not in resumed.parents:
            raise RunFolderError(f"--output_dir {folder} holds another run than --resume {resume_from}; "
                                 f"resume into {resume_from}'s own folder or into a new --output_dir")
        return None
    if not overwrite:
        raise RunFolderError(
            f"{folder} already holds a run ({', '.join(m for m in RUN_MARKERS if (folder / m).exists())}): "
            f"pass --resume {folder} to continue it, --overwrite to start again (the old run is moved aside), "
            f"or choose another --output_dir"
        )
    return move_previous_run(folder)


def move_previous_run(folder) -> Path:
    """Move every entry of `folder` but the lock into a new sibling `<folder>.replaced-<time>`."""
    folder = Path(folder)
    target = folder.with_name(f"{folder.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    suffix = 1
    while target.exists():
        target = folder.with_name(f"{folder.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}-{suffix}")
        suffix += 1
    target.mkdir(parents=True)
    for entry in folder.iterdir():
        if entry.name != LOCK_NAME:
            shutil.move(str(entry), str(target / entry.name))
    print(f"--overwrite: the previous run in {folder} was moved to {target}", file=sys.stderr)
    return target


@contextlib.contextmanager
def owned_run_folder(folder, training=True, resume_from=None, overwrite=False, is_main=True, required_bytes=0):
    """The whole life of a run in `folder`: writable, locked, claimed (training runs), leftovers removed.

    Only the main process (rank 0) does any of it; the lock is released when the block ends, however it ends."""
    if not is_main:
        yield
        return
    check_writable(folder, required_bytes)
    with RunLock(folder):
        if training:
            claim_run_folder(folder, resume_from, overwrite)
        remove_leftover_temporaries(folder)
        yield


def _pid_alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class RunLock:
    """`<folder>/run.lock`, created exclusively; use as a context manager or acquire()/release()."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self.held = False

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(sys.argv)}
        for _ in range(3):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(record, stream)
            self.held = True
            return self
        raise RunFolderError(f"{self.path}: could not take the lock")

    def _take_over_if_stale(self):
        """Remove a lock whose holder died on this host; otherwise stop naming the holder."""
        holder = self.holder()
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and pid != os.getpid() and not _pid_alive(pid):
            print(f"warning: {self.path}: taking over the stale lock of pid {pid} (no longer running, started "
                  f"{holder.get('started', '?')})", file=sys.stderr)
            self.path.unlink(missing_ok=True)
            return
        if not holder and time.time() - self._mtime() > 10:  # empty or garbled, and not being written right now
            print(f"warning: {self.path}: replacing an unreadable lock file", file=sys.stderr)
            self.path.unlink(missing_ok=True)
            return
        raise RunFolderError(
            f"{self.path.parent} is in use by another run (pid {pid} on host {host}, started "
            f"{holder.get('started', '?')}: {holder.get('command', '?')}); wait for it to end or use another "
            f"--output_dir (delete {self.path} only if that process is gone)"
        )

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def release(self):
        if self.held and self.holder().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def check_writable(folder, required_bytes=0):
    """Create `folder`, write and delete a probe file in it, and check `required_bytes` of free space."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise RunFolderError(f"{folder}: output folder is not writable ({error.strerror or error})") from error
    free = shutil.disk_usage(folder).free
    if free < required_bytes:
        raise RunFolderError(
            f"{folder}: {free / 1e6:.0f} MB free on its disk, but this run writes about "
            f"{required_bytes / 1e6:.0f} MB of checkpoints; free space or choose another --output_dir"
        )


def remove_leftover_temporaries(folder) -> list[Path]:
    """Delete `.<name>.<random>.tmp` files that a killed checkpoint write left in `folder` and its checkpoints/."""
    removed = []
    for directory in (Path(folder), Path(folder) / "checkpoints"):
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if path.is_file() and TEMPORARY.match(path.name):
                path.unlink()
                removed.append(path)
                print(f"removed {path}: left by an interrupted checkpoint write", file=sys.stderr)
    return removed
