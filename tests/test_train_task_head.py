"""train_task_head.py (paper Table 7 baselines) end to end on the tiny synthetic corpus: run layout, --eval of its
checkpoint, exact resume, DeepSpeed."""
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
import train_task_head
from datasets.synthetic import generate_corpus
from runs.training import Run
from utils.checkpoint import load_checkpoint_file
from utils.training_state import list_states

REPO = Path(__file__).resolve().parents[1]
SUBSETS = {"ISLR": ("Synthetic_ISLR", "isolated"), "CSLR": ("Synthetic", "sentences")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, seed=0, size="tiny")
    return out


def head_args(corpus, lm_dir, output_dir, task, features, *extra):
    dataset, subset = SUBSETS[task]
    return ["--dataset", dataset, "--task", task, "--features", features, "--labels-dir", str(corpus / subset),
            "--pose-dir", str(corpus / subset / "pose_format"), "--lm-path", str(lm_dir), "--pose-preset", "tiny",
            "--head-hidden-dim", "16", "--max_length", "32", "--batch-size", "4", "--gradient-accumulation-steps",
            "2", "--epochs", "2", "--lr", "1e-3", "--seed", "0", "--no-progress", "--output_dir", str(output_dir),
            *extra]


def test_run_layout_and_eval_of_the_checkpoint(corpus, tiny_lm_dir, tmp_path):
    results = train_task_head.main(head_args(corpus, tiny_lm_dir, tmp_path / "run", "CSLR", "sign", "--epochs", "1"))
    for name in ("args.json", "results.json", "best_checkpoint.pth", "checkpoint.pth", "dev_pres.txt",
                 "test_refs.txt", "test_metrics.json", "epoch_log.csv"):
        assert (tmp_path / "run" / name).is_file(), name
    assert len(list_states(tmp_path / "run")) == 1
    best = load_checkpoint_file(tmp_path / "run" / "best_checkpoint.pth")
    assert best["task_head"]["features"] == "sign" and best["vocab"]["ctc"]
    assert any(key.startswith("head.lstm.") for key in best["model"])
    assert "pose_encoder.pose_proj.weight" not in best["model"]  # the whole model: backbone.* and head.*
    evaluated = train_task_head.main(["--eval", "--finetune", str(tmp_path / "run" / "best_checkpoint.pth"),
                                      *head_args(corpus, tiny_lm_dir, tmp_path / "eval", "CSLR", "sign")])
    assert evaluated["test"] == pytest.approx(results["test"])
    assert (tmp_path / "eval" / "test_pres.txt").read_text() == (tmp_path / "run" / "test_pres.txt").read_text()


def test_eval_refuses_a_uni_sign_checkpoint(corpus, tiny_lm_dir, tmp_path):
    train.main(["--dataset", "Synthetic", "--labels-dir", str(corpus / "sentences"), "--pose-dir",
                str(corpus / "sentences" / "pose_format"), "--lm-path", str(tiny_lm_dir), "--pose-preset", "tiny",
                "--epochs", "1", "--batch-size", "8", "--gradient-accumulation-steps", "1", "--max-new-tokens", "2",
                "--no-progress", "--output_dir", str(tmp_path / "uni_sign")])
    with pytest.raises(SystemExit, match="not a train_task_head.py checkpoint"):
        train_task_head.main(["--eval", "--finetune", str(tmp_path / "uni_sign" / "best_checkpoint.pth"),
                              *head_args(corpus, tiny_lm_dir, tmp_path / "eval", "CSLR", "sign")])


@pytest.mark.parametrize("task,features", [("CSLR", "sign"), ("ISLR", "lm_enc")])
def test_interrupted_and_resumed_run_ends_with_the_same_weights_and_metrics(corpus, tiny_lm_dir, tmp_path,
                                                                          monkeypatch, capsys, task, features):
    """2 epochs straight vs. stopped after optimizer step 4 (CSLR: in epoch 1, ISLR: in epoch 0) and resumed."""
    straight = train_task_head.main(head_args(corpus, tiny_lm_dir, tmp_path / "straight", task, features,
                                              "--save-every-steps", "1"))
    original_save = Run.save_state

    def crash_after_step_4(self, progress):
        original_save(self, progress)
        if progress["optimizer_step"] == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(Run, "save_state", crash_after_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_task_head.main(head_args(corpus, tiny_lm_dir, tmp_path / "resumed", task, features,
                                       "--save-every-steps", "1"))
    monkeypatch.setattr(Run, "save_state", original_save)
    assert not (tmp_path / "resumed" / "results.json").exists()
    capsys.readouterr()
    resumed = train_task_head.main(head_args(corpus, tiny_lm_dir, tmp_path / "resumed", task, features,
                                             "--save-every-steps", "1", "--resume", str(tmp_path / "resumed")))
    assert "optimizer step 4" in capsys.readouterr().out  # it continued; it did not start again
    assert resumed == straight
    expected = load_checkpoint_file(tmp_path / "straight" / "checkpoint.pth")["model"]
    actual = load_checkpoint_file(tmp_path / "resumed" / "checkpoint.pth")["model"]
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed")
def test_deepspeed_engine_trains_the_head_like_the_plain_loop(corpus, tiny_lm_dir, tmp_path):
    """One process, --deepspeed --zero_stage 2 (fp32, CPU accelerator) vs the plain loop: the same batches and
    updates, so the dev loss agrees to float rounding; the DeepSpeed engine's own checkpoint folder is written."""
    plain = train_task_head.main(head_args(corpus, tiny_lm_dir, tmp_path / "plain", "CSLR", "sign", "--epochs", "1"))
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port())}
    argv = head_args(corpus, tiny_lm_dir, tmp_path / "deepspeed", "CSLR", "sign", "--epochs", "1", "--deepspeed",
                     "--zero_stage", "2", "--dtype", "fp32")
    completed = subprocess.run([sys.executable, "train_task_head.py", *argv], cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert (tmp_path / "deepspeed" / "deepspeed" / "latest").is_file()  # saved by the engine, not the plain path
    results = json.loads((tmp_path / "deepspeed" / "results.json").read_text())
    assert results["dev"]["loss"] == pytest.approx(plain["dev"]["loss"], rel=1e-3)
    assert load_checkpoint_file(tmp_path / "deepspeed" / "best_checkpoint.pth")["task_head"]["task"] == "CSLR"
