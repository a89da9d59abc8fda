"""A run folder belongs to one run: claiming, --overwrite, the lock, start-up checks, leftovers."""
import json
import os
import socket
import subprocess
import sys
from collections import namedtuple

import pytest

from runs import folder as run_folder
from runs.folder import (LOCK_NAME, RunFolderError, RunLock, check_writable, claim_run_folder, holds_run,
                         owned_run_folder, remove_leftover_temporaries)


def make_run(path):
    (path / "checkpoints").mkdir(parents=True)
    (path / "args.json").write_text("{}")
    (path / "checkpoints" / "step-00000004.pth").write_bytes(b"old run")


def test_a_new_folder_and_a_folder_without_a_run_are_claimed(tmp_path):
    assert claim_run_folder(tmp_path / "new") is None
    (tmp_path / "logs_only").mkdir()
    (tmp_path / "logs_only" / "notes.txt").write_text("mine")
    assert claim_run_folder(tmp_path / "logs_only") is None


def test_a_folder_holding_a_run_needs_resume_or_overwrite(tmp_path):
    make_run(tmp_path / "run")
    with pytest.raises(RunFolderError, match=r"already holds a run \(args.json, checkpoints\).*--resume.*--overwrite"):
        claim_run_folder(tmp_path / "run")
    assert claim_run_folder(tmp_path / "run", resume_from=tmp_path / "run") is None
    assert claim_run_folder(tmp_path / "run", resume_from=tmp_path / "run" / "checkpoints" / "step-00000004.pth") is None


def test_resume_into_a_folder_holding_another_run_is_refused(tmp_path):
    make_run(tmp_path / "run")
    make_run(tmp_path / "other")
    with pytest.raises(RunFolderError, match="holds another run than --resume"):
        claim_run_folder(tmp_path / "run", resume_from=tmp_path / "other")


def test_overwrite_moves_the_previous_run_aside_and_says_so(tmp_path, capsys):
    make_run(tmp_path / "run")
    (tmp_path / "run" / LOCK_NAME).write_text("{}")
    moved = claim_run_folder(tmp_path / "run", overwrite=True)
    assert moved.name.startswith("run.replaced-") and moved.parent == tmp_path
    assert (moved / "checkpoints" / "step-00000004.pth").read_bytes() == b"old run"
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [LOCK_NAME]  # the lock stays
    assert not holds_run(tmp_path / "run")
    assert f"moved to {moved}" in capsys.readouterr().err


def test_the_lock_refuses_a_second_holder_naming_its_pid_and_host(tmp_path):
    with RunLock(tmp_path):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert not (tmp_path / LOCK_NAME).exists()  # released

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(),
                                                      "started": "earlier", "command": "train.py ..."}))
        with pytest.raises(RunFolderError, match=rf"in use by another run \(pid {sleeper.pid} on host "
                                                 rf"{socket.gethostname()}, started earlier: train.py"):
            RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, capsys):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname()}))
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"stale lock of pid {dead_pid}" in capsys.readouterr().err


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "another-node"}))
    with pytest.raises(RunFolderError, match="pid 1 on host another-node"):
        RunLock(tmp_path).acquire()


def test_owned_run_folder_locks_claims_and_releases_even_on_error(tmp_path):
    make_run(tmp_path / "run")
    with pytest.raises(RunFolderError, match="already holds a run"):
        with owned_run_folder(tmp_path / "run"):
            pass
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    with pytest.raises(ZeroDivisionError):
        with owned_run_folder(tmp_path / "fresh"):
            assert (tmp_path / "fresh" / LOCK_NAME).is_file()
            1 / 0
    assert not (tmp_path / "fresh" / LOCK_NAME).exists()
    with owned_run_folder(tmp_path / "run", training=False):  # evaluation writes beside a finished run
        pass


def test_a_full_disk_is_found_at_start_up(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5 * 10**6, 5 * 10**6))
    check_writable(tmp_path / "run", required_bytes=10**6)
    with pytest.raises(RunFolderError, match=r"run: 5 MB free on its disk, but this run writes about 80 MB"):
        check_writable(tmp_path / "run", required_bytes=80 * 10**6)


def test_a_read_only_folder_is_found_at_start_up():
    target = "/sys/uni-sign-test/run"  # sysfs refuses new entries, even to root
    if os.access("/sys", os.W_OK) and os.path.isdir("/sys/uni-sign-test"):
        pytest.skip("/sys is writable here")
    with pytest.raises(RunFolderError, match=r"^/sys/uni-sign-test/run: output folder is not writable"):
        check_writable(target)


def test_leftover_temporaries_of_a_killed_write_are_removed(tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    leftovers = [tmp_path / ".checkpoint.pth.k2j3h4.tmp", tmp_path / "checkpoints" / ".step-00000008.pth.x1y2.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp").write_text("not ours")
    assert sorted(remove_leftover_temporaries(tmp_path)) == sorted(leftovers)
    assert not any(path.exists() for path in leftovers) and (tmp_path / "notes.tmp").exists()
    assert "interrupted checkpoint write" in capsys.readouterr().err
