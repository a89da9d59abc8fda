"""train_ccl.py end to end on the tiny synthetic isolated-sign corpus with rendered videos: CCL-SLR pre-training
(no labels), fine-tuning from it, evaluation, exact resume, Uni-Sign initialisation and the bad-input errors."""
import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import train_ccl
from datasets.formats import read_labels, write_official_labels
from runs.training import Run
from utils.checkpoint import load_checkpoint_file

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("private_check_cache")


@pytest.fixture
def corpus(isolated_video_corpus, tmp_path):
    """A private copy of the isolated subset (labels, poses, videos) that a test may break."""
    return shutil.copytree(isolated_video_corpus, tmp_path / "isolated")


def ccl_args(corpus, output_dir, *extra) -> list:
    return ["--dataset", "Synthetic_ISLR", "--labels-dir", str(corpus), "--pose-dir", str(corpus / "pose_format"),
            "--rgb-dir", str(corpus / "rgb_format"), "--pose-preset", "tiny", "--video-preset", "tiny",
            "--pose-feature-dim", "32", "--embed-dim", "16", "--pose-frames", "8", "--rgb-frames", "4",
            "--rgb-size", "32", "--queue-size", "16", "--batch-size", "8", "--epochs", "1", "--lr", "1e-3",
            "--no-progress", "--output_dir", str(output_dir), *extra]


def training_losses(output_dir) -> list:
    return [float(line.split(",")[2]) for line in (output_dir / "train_log.csv").read_text().splitlines()[1:]]


def stops(argv) -> str:
    with pytest.raises(SystemExit) as stopped:
        train_ccl.main(argv)
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "Traceback" not in message
    return message


def test_pretraining_then_fine_tuning_then_evaluation(corpus, tmp_path, capsys):
    pretrain = tmp_path / "pretrain"
    results = train_ccl.main(ccl_args(corpus, pretrain, "--spm-warmup-epochs", "0.5"))
    assert {"view_top1_pose", "view_top1_rgb", "cross_top1_pose_rgb", "retrieval_top1"} <= set(results["test"])
    checkpoint = load_checkpoint_file(pretrain / "best_checkpoint.pth")
    assert checkpoint["kind"] == "ccl_slr" and checkpoint["config"]["spm_warmup_steps"] == 2
    losses = training_losses(pretrain)
    assert len(losses) == 5 and all(math.isfinite(loss) for loss in losses)  # MoCo: 41 clips / 8 per batch

    finetune = tmp_path / "finetune"
    results = train_ccl.main(ccl_args(corpus, finetune, "--ccl-stage", "finetune", "--finetune",
                                      str(pretrain / "best_checkpoint.pth")))
    assert "initialised pose, rgb from" in capsys.readouterr().err
    for key in ("top1_acc_pi", "top1_acc_pc", "top5_acc_pi", "top5_acc_pc"):
        assert 0 <= results["test"][key] <= 100
    assert len((finetune / "test_pres.txt").read_text().splitlines()) == 41

    evaluated = train_ccl.main(ccl_args(corpus, tmp_path / "eval", "--ccl-stage", "finetune", "--eval",
                                        "--finetune", str(finetune / "best_checkpoint.pth")))
    assert evaluated["test"]["top1_acc_pi"] == pytest.approx(results["test"]["top1_acc_pi"])
    assert evaluated["test"]["top5_acc_pi"] == pytest.approx(results["test"]["top5_acc_pi"])

    classes = tmp_path / "classes.txt"  # a benchmark class list: its first 2 and 5 classes are subsets
    classes.write_text("\n".join(entry.text for entry in read_labels(corpus / "labels.test")[:5]) + "\n")
    subsets = train_ccl.main(ccl_args(corpus, tmp_path / "subsets", "--ccl-stage", "finetune", "--eval",
                                      "--finetune", str(finetune / "best_checkpoint.pth"), "--class-lists",
                                      str(classes), "--subsets", "2,5"))["test"]["subsets"]
    assert subsets["classes2"]["n"] == 2 and subsets["classes5"]["n"] == 5
    assert subsets["classes2"]["top5_acc_pi"] == 100.0  # two candidates: always in the top 5


def test_fine_tuned_encoders_start_from_the_pretrained_ones(corpus, tmp_path):
    pretrain, finetune = tmp_path / "pretrain", tmp_path / "finetune"
    train_ccl.main(ccl_args(corpus, pretrain, "--modalities", "pose"))
    train_ccl.main(ccl_args(corpus, finetune, "--ccl-stage", "finetune", "--modalities", "pose", "--lr", "0",
                            "--finetune", str(pretrain / "best_checkpoint.pth")))  # lr 0: the weights stay
    pretrained = load_checkpoint_file(pretrain / "best_checkpoint.pth")["model"]
    fine_tuned = load_checkpoint_file(finetune / "checkpoint.pth")["model"]
    encoder_weights = [key for key in fine_tuned if key.startswith("encoders.") and "running_" not in key
                       and "num_batches" not in key]
    assert len(encoder_weights) > 20
    for key in encoder_weights:
        assert torch.equal(fine_tuned[key], pretrained[key]), key


def test_pose_only_pretraining_needs_no_videos(corpus, tmp_path):
    shutil.rmtree(corpus / "rgb_format")
    results = train_ccl.main(ccl_args(corpus, tmp_path / "run", "--modalities", "pose"))
    assert set(results["test"]) >= {"view_top1_pose", "retrieval_top1"} and "view_top1_rgb" not in results["test"]


def test_a_missing_video_in_rgb_mode_stops_before_training_naming_sample_and_field(corpus, tmp_path):
    (corpus / "rgb_format" / "iso_train_00003.mp4").unlink()
    message = stops(ccl_args(corpus, tmp_path / "run"))
    assert "iso_train_00003" in message and "video_path" in message and "nothing was trained" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_in_batch_negatives_need_two_clips_per_batch(corpus, tmp_path):
    message = stops(ccl_args(corpus, tmp_path / "run", "--ccl-objective", "in_batch", "--batch-size", "1"))
    assert "--batch-size >= 2" in message


def test_pretraining_reads_no_labels(corpus, tmp_path):
    """Every clip relabelled with one meaningless text: pre-training gives the very same weights."""
    train_ccl.main(ccl_args(corpus, tmp_path / "labelled"))
    for split in ("train", "dev", "test"):
        path = corpus / f"labels.{split}"
        write_official_labels(path, [replace(entry, text="unlabelled") for entry in read_labels(path)])
    train_ccl.main(ccl_args(corpus, tmp_path / "unlabelled"))
    labelled = load_checkpoint_file(tmp_path / "labelled" / "checkpoint.pth")["model"]
    unlabelled = load_checkpoint_file(tmp_path / "unlabelled" / "checkpoint.pth")["model"]
    for key, value in labelled.items():
        assert torch.equal(unlabelled[key], value), key


def test_interrupted_pretraining_resumes_exactly(corpus, tmp_path, monkeypatch):
    argv = ("--epochs", "2", "--save-every-steps", "1")
    full = tmp_path / "full"
    train_ccl.main(ccl_args(corpus, full, *argv))
    interrupted = tmp_path / "interrupted"
    original_save = Run.save_state

    def crash_after_step_7(self, progress):
        original_save(self, progress)
        if progress["optimizer_step"] == 7:  # inside epoch 1 (5 steps per epoch)
            raise KeyboardInterrupt

    monkeypatch.setattr(Run, "save_state", crash_after_step_7)
    with pytest.raises(KeyboardInterrupt):
        train_ccl.main(ccl_args(corpus, interrupted, *argv))
    monkeypatch.setattr(Run, "save_state", original_save)
    train_ccl.main(ccl_args(corpus, interrupted, *argv, "--resume", str(interrupted)))
    expected = load_checkpoint_file(full / "checkpoint.pth")["model"]
    resumed = load_checkpoint_file(interrupted / "checkpoint.pth")["model"]
    assert "queue_pose" in expected
    for key, value in expected.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0, msg=key)


def test_uni_sign_starts_from_the_ccl_pose_encoder(corpus, tmp_path, tiny_lm_dir):
    from runs.arguments import get_args_parser
    from runs.building import build_model, dataset_specs

    pretrain = tmp_path / "pretrain"
    train_ccl.main(ccl_args(corpus, pretrain, "--modalities", "pose", "--pose-feature-dim", "32"))
    args = get_args_parser().parse_args(
        ["--dataset", "Synthetic_ISLR", "--task", "ISLR", "--labels-dir", str(corpus), "--pose-dir",
         str(corpus / "pose_format"), "--lm-path", str(tiny_lm_dir), "--pose-preset", "tiny",
         "--init-pose-encoder", str(pretrain / "best_checkpoint.pth"), "--output_dir", str(tmp_path / "uni")])
    model = build_model(args, dataset_specs(args)[0])
    pretrained = load_checkpoint_file(pretrain / "best_checkpoint.pth")["model"]
    for key, value in model.pose_encoder.state_dict().items():
        assert torch.equal(value, pretrained[f"encoders.pose.pose_encoder.{key}"]), key
    assert json.loads((pretrain / "args.json").read_text())["modalities"] == "pose"


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")
def test_deepspeed_engine_pretrains_like_the_plain_loop(corpus, tmp_path):
    """One process, --deepspeed --zero_stage 2 (fp32, CPU accelerator) vs the plain loop: same batches, updates,
    queue and momentum keys, so every step's loss agrees to rounding; the engine writes its own checkpoint folder."""
    plain = train_ccl.main(ccl_args(corpus, tmp_path / "plain"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "UNI_SIGN_CACHE": str(tmp_path / "cache")}
    argv = ccl_args(corpus, tmp_path / "deepspeed", "--deepspeed", "--zero_stage", "2", "--dtype", "fp32")
    completed = subprocess.run([sys.executable, "train_ccl.py", *argv], cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert (tmp_path / "deepspeed" / "deepspeed" / "latest").is_file()
    assert training_losses(tmp_path / "deepspeed") == pytest.approx(training_losses(tmp_path / "plain"), rel=1e-3)
    assert "retrieval_top1" in plain["dev"]  # (a top-1 over 41 clips flips with rounding: not compared)
    assert load_checkpoint_file(tmp_path / "deepspeed" / "best_checkpoint.pth")["kind"] == "ccl_slr"
