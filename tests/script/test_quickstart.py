"""script/quickstart.py: one live bar per stage (steps, ETA, loss), only the checkpoints a user needs kept, and the
printed table is the README's."""
import importlib.util
import io
from pathlib import Path

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
