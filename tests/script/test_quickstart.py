"""script/quickstart.py: one live bar per stage (steps, ETA, loss), stage-3 runs side by side with their share of the
cores, only the checkpoints a user needs kept, and the printed table is the README's."""
import importlib.util
import io
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("quickstart", REPO / "script" / "quickstart.py")
quickstart = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quickstart)


def test_the_bar_follows_the_runs_logged_steps_and_loss(tmp_path):
    log, run_dir = tmp_path / "stage.log", tmp_path / "run"
    run_dir.mkdir()
    log.write_text("global batch 8 = 8 per process x 1 accumulation x 1 process(es); 25 optimizer steps per epoch\n")
    with tqdm(desc="stage 3 slt", file=io.StringIO()) as bar:
        quickstart.follow_run(bar, "stage 3 slt", log, run_dir, epochs=4)
        assert (bar.total, bar.n) == (100, 0)  # no step logged yet
        (run_dir / "train_log.csv").write_text("step,epoch,loss,lr,samples_per_s\n1,0,5.5,0.0003,6.4\n"
                                               "37,1,2.25,0.0002,6.5\n")
        quickstart.follow_run(bar, "stage 3 slt", log, run_dir, epochs=4)
        assert bar.n == 37 and bar.postfix == "loss=2.250"
        (run_dir / "train_log.csv").write_text("step,epoch,loss,lr,samples_per_s\n100,3,1.5,0.0,6.5\n")
        quickstart.follow_run(bar, "stage 3 slt", log, run_dir, epochs=4)
        assert bar.desc.startswith("stage 3 slt (evaluating)")


def test_finished_stages_keep_their_checkpoints_but_not_their_resumable_states(tmp_path):
    for name in ("best_checkpoint.pth", "checkpoint.pth", "checkpoints/step-00000100.pth"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    quickstart.drop_training_states(tmp_path, keep=True)
    assert (tmp_path / "checkpoints").is_dir()
    quickstart.drop_training_states(tmp_path, keep=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best_checkpoint.pth", "checkpoint.pth"]


def test_the_printed_table_is_the_readmes(tmp_path, capsys):
    baseline = {"SLT": 4.21, "CSLR": 93.04, "ISLR": 2.44, "ISLR_chance": 100 / 41}
    quickstart.print_table({"SLT": 15.0, "CSLR": 56.0, "ISLR": 54.0}, baseline, tmp_path, 600)
    printed = capsys.readouterr().out.splitlines()
    readme = (REPO / "README.md").read_text().splitlines()
    header = next(line for line in printed if line.startswith("| task"))
    assert header in readme
    for line in printed:
        if line.startswith("| SLT") or line.startswith("| ISLR"):
            task = line.split("|")[1].strip()
            readme_row = next(row for row in readme if row.startswith(f"| {task} |"))
            assert line.split("|")[2] == readme_row.split("|")[2]  # the metric's name
            assert line.split("(")[-1] == readme_row.split("(")[-1]  # the baseline's name


def test_the_precision_and_optimizer_flags_reach_every_stage(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["quickstart.py", "--autocast", "bf16", "--fused-adamw", "off"])
    env = quickstart.script_env(quickstart.parse_args(), tmp_path / "lm", tmp_path / "data", "sentences")
    assert " --autocast bf16 --fused-adamw off " in env["EXTRA_ARGS"]


def test_the_batching_flag_reaches_every_stage(tmp_path, monkeypatch):
    def extra_args(*argv):
        monkeypatch.setattr("sys.argv", ["quickstart.py", *argv])
        return quickstart.script_env(quickstart.parse_args(), tmp_path / "lm", tmp_path / "data", "news")["EXTRA_ARGS"]

    assert "--length-grouped" not in extra_args("--batches", "random")
    assert " --length-grouped" in extra_args("--batches", "length-grouped")


def recording_job(tmp_path, name, seconds=0.0, exit_code=0, under_bash=False):
    """A job that logs when it started (with its torch threads and process id) and ended, then exits; under_bash:
    run by a bash script, as the stage scripts run train.py."""
    script = (f"import os, sys, time; open({str(tmp_path / 'events')!r}, 'a').write("
              f"'start {name} ' + os.environ.get('OMP_NUM_THREADS', '-') + f' {{os.getpid()}} {{time.time()}}\\n'); "
              f"time.sleep({seconds}); open({str(tmp_path / 'events')!r}, 'a').write('end {name} ' + str(time.time()) "
              f"+ '\\n'); sys.exit({exit_code})")
    command = [sys.executable, "-c", script]
    if under_bash:
        command = ["bash", "-c", shlex.join(command) + "; exit $?"]  # bash waits for python, as a stage script does
    return quickstart.Job(name, f"{name}.sh", {}, tmp_path / f"{name}.log", command=command)


def running(pid) -> bool:
    """Whether a process exists and is not a zombie (an orphan's zombie waits for init to reap it)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def events(tmp_path):
    return [line.split() for line in (tmp_path / "events").read_text().splitlines()]


def test_stage_three_runs_side_by_side_in_order_with_their_share_of_threads(tmp_path):
    jobs = [recording_job(tmp_path, name, seconds) for name, seconds in (("cslr", 2.0), ("islr", 0.2), ("slt", 0.2))]
    quickstart.run_jobs(jobs, concurrent=2, threads=1)
    log = events(tmp_path)
    starts = {line[1]: float(line[-1]) for line in log if line[0] == "start"}
    ends = {line[1]: float(line[-1]) for line in log if line[0] == "end"}
    assert set(list(starts)[:2]) == {"cslr", "islr"} and list(starts)[2] == "slt"  # in the jobs' order
    assert {line[2] for line in log if line[0] == "start"} == {"1"}
    assert starts["islr"] < ends["cslr"] and starts["slt"] < ends["cslr"]  # side by side
    assert starts["slt"] >= ends["islr"]  # never more than two at a time


def test_one_run_at_a_time_keeps_the_default_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    jobs = [recording_job(tmp_path, name, 0.2) for name in ("first", "second")]
    quickstart.run_jobs(jobs, concurrent=1)
    log = events(tmp_path)
    assert [line[:2] for line in log] == [["start", "first"], ["end", "first"], ["start", "second"], ["end", "second"]]
    assert [line[2] for line in log if line[0] == "start"] == ["-", "-"]


def test_a_failed_run_stops_the_others_and_names_its_log(tmp_path):
    jobs = [recording_job(tmp_path, "long", 30.0, under_bash=True),
            recording_job(tmp_path, "broken", 0.2, exit_code=3), recording_job(tmp_path, "queued")]
    started = time.monotonic()
    with pytest.raises(SystemExit, match=r"broken.sh failed \(exit 3\); see .*broken.log"):
        quickstart.run_jobs(jobs, concurrent=2, threads=1)
    assert time.monotonic() - started < 20  # stopped, not waited for (it sleeps 30 s)
    long_pid = next(int(line[3]) for line in events(tmp_path) if line[:2] == ["start", "long"])
    time.sleep(0.5)  # the signal's delivery
    assert not running(long_pid)  # the python under bash was stopped too, not left running as an orphan
    assert {line[1] for line in events(tmp_path) if line[0] == "start"} == {"long", "broken"}  # nothing more started


def test_the_default_runs_two_at_a_time_where_there_are_two_cores(monkeypatch):
    monkeypatch.setattr(quickstart, "available_cores", lambda: 2)
    assert quickstart.default_concurrent_runs() == 2
    monkeypatch.setattr(quickstart, "available_cores", lambda: 1)
    assert quickstart.default_concurrent_runs() == 1


def test_fewer_than_one_concurrent_run_is_refused(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["quickstart.py", "--concurrent-runs", "0"])
    with pytest.raises(SystemExit):
        quickstart.parse_args()
    assert "--concurrent-runs must be 1 or more, not 0" in capsys.readouterr().err


def test_a_terminated_quickstart_stops_its_runs(tmp_path):
    long_job = recording_job(tmp_path, "long", 30.0, under_bash=True)
    driver = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('quickstart', "
              f"{str(REPO / 'script' / 'quickstart.py')!r}); quickstart = importlib.util.module_from_spec(spec); "
              f"spec.loader.exec_module(quickstart); quickstart.exit_on_sigterm(); "
              f"quickstart.run_jobs([quickstart.Job('long', 'long.sh', {{}}, {str(long_job.log_path)!r}, "
              f"command={long_job.command!r})], concurrent=1)")
    quickstart_process = subprocess.Popen([sys.executable, "-c", driver], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ((tmp_path / "events").is_file() and events(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    long_pid = int(events(tmp_path)[0][3])
    quickstart_process.terminate()
    assert "stopped by signal 15" in quickstart_process.communicate(timeout=20)[1]
    time.sleep(0.5)  # the signal's delivery
    assert not running(long_pid)


def test_a_run_is_finished_only_after_its_exit_code_was_seen(tmp_path):
    job = recording_job(tmp_path, "quick")
    process = quickstart.start_job(job, threads=None)
    deadline = time.monotonic() + 30
    with tqdm(file=io.StringIO()) as bar:
        while not quickstart.follow_job(process, job, bar, time.time()):
            assert time.monotonic() < deadline, "an ended run was never reported finished"
            time.sleep(0.05)
    failing = recording_job(tmp_path, "failing", exit_code=3)
    process = quickstart.start_job(failing, threads=None)
    process.wait()
    with tqdm(file=io.StringIO()) as bar, pytest.raises(SystemExit, match="failing.sh failed"):
        quickstart.follow_job(process, failing, bar, time.time())
