"""What happens when things go wrong (docs/failures.md), end to end on the tiny synthetic corpus.

Each case: the exit (SystemExit with one 'error: ...' line naming the file, sample and field), what is
on disk afterwards, and that nothing was lost or mixed up.
"""
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import train_argv

import eval as eval_cli
import train
from datasets.formats import read_labels, write_official_labels, write_pose_pkl
from engine import PlainStepper
from runs.folder import LOCK_NAME
from runs.training import Run
from utils.checkpoint import atomic_save, load_checkpoint_file
from utils.training_state import list_states

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("private_check_cache")


@pytest.fixture
def corpus(sentence_corpus, tmp_path):
    """A private copy of the synthetic corpus that a test may break."""
    shutil.copytree(sentence_corpus / "sentences", tmp_path / "data" / "sentences")
    return tmp_path / "data"


def stops(argv, entry=train.main) -> str:
    """The one-line message a command exits with."""
    with pytest.raises(SystemExit) as stopped:
        entry(argv)
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "Traceback" not in message
    return message


def nothing_trained(output_dir):
    return not (output_dir / "checkpoints").exists() and not (output_dir / "train_log.csv").exists()


# ----------------------------------------------------------------------------- 1. one folder, one run


def test_a_second_run_into_the_same_folder_stops_and_overwrite_moves_the_old_one(corpus, tiny_lm_dir, tmp_path):
    run = tmp_path / "run"
    train.main(train_argv(corpus, tiny_lm_dir, run))
    first_weights = load_checkpoint_file(run / "checkpoint.pth")["model"]
    message = stops(train_argv(corpus, tiny_lm_dir, run, "--seed", "1"))
    assert f"{run} already holds a run" in message and "--resume" in message and "--overwrite" in message
    assert len(list_states(run)) == 1  # the old run's state was not pruned by the refused one

    train.main(train_argv(corpus, tiny_lm_dir, run, "--seed", "1", "--overwrite"))
    (moved,) = tmp_path.glob("run.replaced-*")
    for key, value in load_checkpoint_file(moved / "checkpoint.pth")["model"].items():
        assert torch.equal(value, first_weights[key])
    assert json.loads((run / "args.json").read_text())["seed"] == 1


def test_resume_refuses_a_state_made_with_other_settings_naming_them(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train.main(train_argv(corpus, tiny_lm_dir, run))
    message = stops(train_argv(corpus, tiny_lm_dir, run, "--resume", str(run), "--lr", "3e-4", "--epochs", "2",
                               "--fused-adamw", "off"))
    assert "lr: 0.001 in the state, 0.0003 now" in message and "epochs: 1 in the state, 2 now" in message
    assert "fused_adamw: 'on' in the state, 'off' now" in message
    assert "--allow-changed-settings" in message

    labels = corpus / "sentences" / "labels.train"
    write_official_labels(labels, read_labels(labels)[:-1])  # other data, same path
    message = stops(train_argv(corpus, tiny_lm_dir, run, "--resume", str(run)))
    assert "data.Synthetic/train:" in message
    resumed_groups = []  # a loaded optimizer state brings its saved settings; the command's replace them
    resume = Run.resume

    def recording_resume(self, path):
        resume(self, path)
        resumed_groups.extend((group["fused"], group["weight_decay"], group["initial_lr"])
                              for group in self.stepper.optimizer.param_groups)

    monkeypatch.setattr(Run, "resume", recording_resume)
    results = train.main(train_argv(corpus, tiny_lm_dir, run, "--resume", str(run), "--epochs", "2", "--lr", "3e-4",
                                    "--weight-decay", "0.05", "--allow-changed-settings", "--fused-adamw", "off"))
    assert "bleu4" in results["test"]
    assert resumed_groups == [(None, 0.05, 3e-4), (None, 0.0, 3e-4)]


# ----------------------------------------------------------------------------- 2. two processes, one folder


def test_a_second_process_on_a_locked_folder_stops_naming_the_holder(corpus, tiny_lm_dir, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "train.py", *train_argv(corpus, tiny_lm_dir, run, "--epochs", "50")],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run / LOCK_NAME).is_file() and time.time() < deadline and holder.poll() is None:
            time.sleep(0.2)
        assert (run / LOCK_NAME).is_file(), "the first run never took the lock"
        expected = f"in use by another run (pid {holder.pid} on host {socket.gethostname()}"
        assert expected in stops(train_argv(corpus, tiny_lm_dir, run, "--resume", str(run)))
        assert expected in stops(train_argv(corpus, tiny_lm_dir, run, "--finetune", "x.pth"), eval_cli.main)
    finally:
        holder.kill()
        holder.wait()
    # the killed holder left a stale lock: the next run takes it over
    assert (run / LOCK_NAME).is_file()
    train.main(train_argv(corpus, tiny_lm_dir, tmp_path / "run", "--overwrite"))
    assert not (run / LOCK_NAME).exists()


# ----------------------------------------------------------------------------- 3. fail before training


def test_a_missing_dev_pose_file_stops_before_training(corpus, tiny_lm_dir, tmp_path):
    (corpus / "sentences" / "pose_format" / "sent_dev_00003.pkl").unlink()
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "run"))
    assert "nothing was trained" in message
    assert "[dev] " in message and "sent_dev_00003.pkl: video_path: pose file not found for sample 'sent_dev_00003'" in message
    assert nothing_trained(tmp_path / "run")
    assert "sent_dev_00003" in (tmp_path / "run" / "data_problems.txt").read_text()


def test_a_missing_test_pose_file_stops_before_training(corpus, tiny_lm_dir, tmp_path):
    (corpus / "sentences" / "pose_format" / "sent_test_00001.pkl").unlink()
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "run"))
    assert "[test] " in message and "sent_test_00001" in message and nothing_trained(tmp_path / "run")


def test_an_unencodable_dev_text_stops_before_training(corpus, tiny_lm_dir, tmp_path):
    labels = corpus / "sentences" / "labels.dev"
    entries = read_labels(labels)
    entries[2].text = "broken \ud800 text"
    write_official_labels(labels, entries)
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "run"))
    assert f"{labels}: sample '{entries[2].name}' field 'text' is not valid Unicode" in message
    assert nothing_trained(tmp_path / "run")


def test_cslr_without_glosses_stops_before_training_and_skip_policy_leaves_the_sample_out(corpus, tiny_lm_dir, tmp_path):
    labels = corpus / "sentences" / "labels.test"
    entries = read_labels(labels)
    entries[0].gloss = ""
    write_official_labels(labels, entries)
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "stop", "--task", "CSLR"))
    assert f"[test] {labels}: gloss: sample '{entries[0].name}': task CSLR needs a gloss" in message
    results = train.main(train_argv(corpus, tiny_lm_dir, tmp_path / "skip", "--task", "CSLR", "--skip-policy", "skip"))
    assert results["test"]["skipped"] == 1
    assert entries[0].name not in (tmp_path / "skip" / "test_pres.txt").read_text()


def test_the_data_check_is_cached_per_file(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    from datasets import check_data

    train.main(train_argv(corpus, tiny_lm_dir, tmp_path / "first"))
    reads = []
    original = check_data._read_findings
    monkeypatch.setattr(check_data, "_read_findings", lambda path, limit: reads.append(path) or original(path, limit))
    train.main(train_argv(corpus, tiny_lm_dir, tmp_path / "second"))
    assert reads == []


def test_coordinates_outside_the_frame_warn_once_per_file(corpus, tiny_lm_dir, tmp_path, capsys):
    from datasets.formats import read_pose_file

    path = corpus / "sentences" / "pose_format" / "sent_train_00004.pkl"
    clip = read_pose_file(path)
    write_pose_pkl(path, clip.keypoints * 640, clip.scores)  # pixels, not x/width
    train.main(train_argv(corpus, tiny_lm_dir, tmp_path / "run"))
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: [train]")]
    assert len(warnings) == 1 and "sent_train_00004.pkl: keypoints: " in warnings[0]
    assert "confident points lie outside [0, 1]" in warnings[0]
    assert "sent_train_00004" in (tmp_path / "run" / "data_warnings.txt").read_text()


def test_the_training_state_is_written_before_dev_evaluation(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    full = tmp_path / "full"
    train.main(train_argv(corpus, tiny_lm_dir, full, "--epochs", "2"))

    broken = tmp_path / "broken"
    original = Run.evaluate

    def dev_fails_once(self, split):
        if split == "dev" and not dev_fails_once.failed:
            dev_fails_once.failed = True
            raise OSError("disk went away during evaluation")
        return original(self, split)

    dev_fails_once.failed = False
    monkeypatch.setattr(Run, "evaluate", dev_fails_once)
    assert "disk went away" in stops(train_argv(corpus, tiny_lm_dir, broken, "--epochs", "2"))
    (state,) = list_states(broken)
    assert load_checkpoint_file(state)["progress"]["dev_pending"]
    results = train.main(train_argv(corpus, tiny_lm_dir, broken, "--epochs", "2", "--resume", str(broken)))
    assert results == json.loads((full / "results.json").read_text())
    expected = load_checkpoint_file(full / "checkpoint.pth")["model"]
    for key, value in load_checkpoint_file(broken / "checkpoint.pth")["model"].items():
        assert torch.equal(value, expected[key]), key


# ----------------------------------------------------------------------------- 4. clear errors


def test_usage_and_setup_errors_are_one_line(corpus, tiny_lm_dir, tmp_path):
    assert "unknown dataset 'No_Such' (--dataset); known datasets:" in stops(
        train_argv(corpus, tiny_lm_dir, tmp_path / "a", "--dataset", "No_Such"))
    assert "language model directory" in stops(train_argv(corpus, tmp_path / "no_lm", tmp_path / "c"))
    assert "x.pth: checkpoint not found" in stops(train_argv(corpus, tiny_lm_dir, tmp_path / "d", "--finetune", "x.pth"))
    assert "--eval needs --finetune" in stops(train_argv(corpus, tiny_lm_dir, tmp_path / "e"), eval_cli.main)
    assert "pass one of them" in stops(train_argv(corpus, tiny_lm_dir, tmp_path / "f", "--resume", "x", "--overwrite"))


def test_a_broken_language_model_directory_is_one_line(corpus, tiny_lm_dir, tmp_path):
    broken = tmp_path / "lm"
    shutil.copytree(tiny_lm_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    assert f"--lm-path {broken}: not a loadable MT5/T5 directory" in stops(train_argv(corpus, broken, tmp_path / "run"))


def test_the_command_line_prints_one_line_and_no_traceback(corpus, tiny_lm_dir, tmp_path):
    completed = subprocess.run([sys.executable, "train.py", *train_argv(corpus, tiny_lm_dir, "/sys/uni-sign/run")],
                               cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1].startswith("error: /sys/uni-sign/run: output folder is not writable")
    completed = subprocess.run([sys.executable, "eval.py", "--debug",
                                *train_argv(corpus, tiny_lm_dir, tmp_path / "eval", "--finetune", "missing.pth")],
                               cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1 and "Traceback" in completed.stderr  # --debug shows it


def test_a_full_disk_stops_train_and_eval_at_start_up(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    from collections import namedtuple

    from runs import folder

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(folder.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    assert "MB free on its disk, but this run writes about" in stops(train_argv(corpus, tiny_lm_dir, tmp_path / "t"))
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "e", "--finetune", "unread.pth"), eval_cli.main)
    assert f"{tmp_path / 'e'}: 0 MB free on its disk, but this run writes about 1 MB" in message


# ----------------------------------------------------------------------------- 5. corruption


def flip_bytes_inside(path, tensor, count=64):
    """Flip `count` bytes of `tensor`'s data inside the checkpoint file at `path`."""
    data = bytearray(path.read_bytes())
    offset = data.find(tensor.contiguous().view(torch.uint8).numpy().tobytes()[:256])
    assert offset >= 0
    for index in range(offset, offset + count):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_checkpoint_whose_bytes_changed_is_refused(corpus, tiny_lm_dir, tmp_path):
    run = tmp_path / "run"
    train.main(train_argv(corpus, tiny_lm_dir, run))
    best = run / "best_checkpoint.pth"
    weight = load_checkpoint_file(best)["model"]["pose_encoder.pose_proj.weight"]
    flip_bytes_inside(best, weight)
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "eval", "--finetune", str(best)), eval_cli.main)
    assert f"{best}: corrupt: its tensors no longer match the checksum" in message


def test_resume_falls_back_to_the_newest_valid_state(corpus, tiny_lm_dir, tmp_path, capsys):
    full = tmp_path / "full"
    train.main(train_argv(corpus, tiny_lm_dir, full, "--epochs", "2", "--save-every-steps", "1"))
    run = tmp_path / "run"
    train.main(train_argv(corpus, tiny_lm_dir, run, "--epochs", "2", "--save-every-steps", "1"))
    newest = list_states(run)[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated by a crash
    (run / ".checkpoint.pth.abcd1234.tmp").write_bytes(b"half written")
    train.main(train_argv(corpus, tiny_lm_dir, run, "--epochs", "2", "--save-every-steps", "1", "--resume", str(run)))
    err = capsys.readouterr().err
    assert f"passing over {newest.name}" in err and "falling back to an older training state" in err
    assert "left by an interrupted checkpoint write" in err and not (run / ".checkpoint.pth.abcd1234.tmp").exists()
    assert (run / "checkpoints" / "superseded" / newest.name).is_file()
    expected = load_checkpoint_file(full / "checkpoint.pth")["model"]
    for key, value in load_checkpoint_file(run / "checkpoint.pth")["model"].items():
        assert torch.equal(value, expected[key]), key


# ----------------------------------------------------------------------------- 6. non-finite values


def test_nonfinite_weights_stop_the_run_and_are_never_saved(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    original_step = torch.optim.AdamW.step

    def poisoned_step(self, *args, **kwargs):
        result = original_step(self, *args, **kwargs)
        poisoned_step.calls += 1
        if poisoned_step.calls == 2:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    poisoned_step.calls = 0
    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned_step)
    run = tmp_path / "run"
    message = stops(train_argv(corpus, tiny_lm_dir, run, "--epochs", "2", "--nonfinite", "skip",
                               "--save-every-steps", "1"))
    assert "became NaN/inf at epoch 0" in message and "(optimizer step 2)" in message
    assert "not saved" in message
    for path in run.rglob("*.pth"):
        assert not any(torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
                       for v in load_checkpoint_file(path)["model"].values()), path


def test_nonfinite_gradients_are_skipped_and_counted_with_skip(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    original_backward = PlainStepper.backward

    def nan_gradient_once(self, loss):
        nan_gradient_once.calls += 1
        original_backward(self, loss * float("inf") if nan_gradient_once.calls == 1 else loss)

    nan_gradient_once.calls = 0
    monkeypatch.setattr(PlainStepper, "backward", nan_gradient_once)
    run = tmp_path / "run"
    train.main(train_argv(corpus, tiny_lm_dir, run, "--nonfinite", "skip"))
    log = (run / "epoch_log.csv").read_text().splitlines()
    assert log[1].split(",")[log[0].split(",").index("nonfinite")] == "1"
    nan_gradient_once.calls = 0
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "stop"))
    assert "non-finite gradient norm nan; the update was not applied at epoch 0, batch 2" in message


def test_eval_refuses_a_checkpoint_with_nonfinite_tensors(corpus, tiny_lm_dir, tmp_path):
    run = tmp_path / "run"
    train.main(train_argv(corpus, tiny_lm_dir, run))
    checkpoint = load_checkpoint_file(run / "best_checkpoint.pth")
    checkpoint["model"]["pose_encoder.pose_proj.bias"][3] = float("inf")
    atomic_save(checkpoint, tmp_path / "inf.pth")
    message = stops(train_argv(corpus, tiny_lm_dir, tmp_path / "eval", "--finetune", str(tmp_path / "inf.pth")),
                    eval_cli.main)
    assert "tensor 'pose_encoder.pose_proj.bias' holds NaN/inf values" in message
