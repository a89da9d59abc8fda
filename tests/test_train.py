"""train.py end to end on the tiny synthetic corpus: files, exact resume, NaN handling, data mixing, DeepSpeed."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from datasets.synthetic import generate_corpus
from models.uni_sign import UniSign
from runs.arguments import get_args_parser
from runs.building import build_model, checkpoint_payload, dataset_specs, training_set
from runs.training import Run
from utils.checkpoint import load_checkpoint_file
from utils.training_state import list_states

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, seed=0, size="tiny")
    return out


def train_args(corpus, lm_dir, output_dir, *extra):
    return ["--dataset", "Synthetic", "--labels-dir", str(corpus / "sentences"),
            "--pose-dir", str(corpus / "sentences" / "pose_format"), "--lm-path", str(lm_dir),
            "--pose-preset", "tiny", "--batch-size", "4", "--gradient-accumulation-steps", "2", "--epochs", "2",
            "--lr", "1e-3", "--max-new-tokens", "4", "--no-progress", "--output_dir", str(output_dir), *extra]


def final_weights(output_dir):
    return load_checkpoint_file(output_dir / "checkpoint.pth")["model"]


def test_training_writes_checkpoints_predictions_metrics_and_logs(corpus, tiny_lm_dir, tmp_path):
    results = train.main(train_args(corpus, tiny_lm_dir, tmp_path))
    for name in ("best_checkpoint.pth", "checkpoint.pth", "dev_pres.txt", "test_refs.txt", "test_metrics.json",
                 "train_log.csv", "epoch_log.csv", "results.json", "args.json"):
        assert (tmp_path / name).is_file(), name
    assert "loss" in json.loads((tmp_path / "test_metrics.json").read_text())
    assert set(results) == {"dev", "test"} and "bleu4" in results["test"]
    assert len(list_states(tmp_path)) == 2  # one resumable state per epoch, --keep-checkpoints 2


def test_training_ends_with_the_best_model_saved_for_from_pretrained(corpus, tiny_lm_dir, tmp_path):
    results = train.main(train_args(corpus, tiny_lm_dir, tmp_path, "--epochs", "1"))
    best = UniSign.from_pretrained(tmp_path / "best")
    for key, value in load_checkpoint_file(tmp_path / "best_checkpoint.pth")["model"].items():
        torch.testing.assert_close(best.state_dict()[key], value, rtol=0, atol=0)
    assert json.loads((tmp_path / "best" / "config.json").read_text())["training"]["max_new_tokens"] == 4
    card = (tmp_path / "best" / "README.md").read_text()
    assert "python train.py --dataset Synthetic" in card and f"{results['test']['bleu4']:.2f}" in card


def test_stage1_weights_are_handed_to_stage3(corpus, tiny_lm_dir, tmp_path):
    train.main(train_args(corpus, tiny_lm_dir, tmp_path / "stage1", "--epochs", "1"))
    stage1 = load_checkpoint_file(tmp_path / "stage1" / "best_checkpoint.pth")
    args = get_args_parser().parse_args(
        train_args(corpus, tiny_lm_dir, tmp_path / "stage3", "--task", "CSLR",
                   "--finetune", str(tmp_path / "stage1" / "best_checkpoint.pth")))
    spec = dataset_specs(args)[0]
    model = build_model(args, spec)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, stage1["model"][key], rtol=0, atol=0)


def test_interrupted_and_resumed_run_ends_with_the_same_weights(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    uninterrupted = tmp_path / "full"
    train.main(train_args(corpus, tiny_lm_dir, uninterrupted, "--save-every-steps", "1"))

    interrupted = tmp_path / "interrupted"
    original_save = Run.save_state

    def crash_after_step_4(self, progress):
        original_save(self, progress)
        if progress["optimizer_step"] == 4:  # mid-way through epoch 1
            raise KeyboardInterrupt

    monkeypatch.setattr(Run, "save_state", crash_after_step_4)
    with pytest.raises(KeyboardInterrupt):
        train.main(train_args(corpus, tiny_lm_dir, interrupted, "--save-every-steps", "1"))
    monkeypatch.setattr(Run, "save_state", original_save)
    train.main(train_args(corpus, tiny_lm_dir, interrupted, "--save-every-steps", "1", "--resume", str(interrupted)))

    expected, resumed = final_weights(uninterrupted), final_weights(interrupted)
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=0, atol=0, msg=key)


def test_nonfinite_loss_stops_naming_step_and_samples_after_a_debug_checkpoint(corpus, tiny_lm_dir, tmp_path,
                                                                               monkeypatch, capsys):
    original_forward = UniSign.forward

    def nan_on_second_batch(self, *args, **kwargs):
        output = original_forward(self, *args, **kwargs)
        nan_on_second_batch.calls += 1
        if nan_on_second_batch.calls == 2 and self.training:
            output.loss = output.loss * float("nan")
        return output

    nan_on_second_batch.calls = 0
    monkeypatch.setattr(UniSign, "forward", nan_on_second_batch)
    with pytest.raises(SystemExit) as stopped:
        train.main(train_args(corpus, tiny_lm_dir, tmp_path / "stop"))
    message = str(stopped.value)
    assert "non-finite loss" in message and "batch 2" in message and "sent_train_" in message
    assert list((tmp_path / "stop").glob("debug_nonfinite_step*.pth"))

    nan_on_second_batch.calls = 0
    train.main(train_args(corpus, tiny_lm_dir, tmp_path / "skip", "--nonfinite", "skip", "--epochs", "1"))
    log = (tmp_path / "skip" / "epoch_log.csv").read_text().splitlines()
    assert log[0].split(",")[log[0].split(",").index("nonfinite")] == "nonfinite"
    assert log[1].split(",")[log[0].split(",").index("nonfinite")] == "1"


def test_data_fraction_and_corpus_mixing(corpus, tiny_lm_dir):
    base = train_args(corpus, tiny_lm_dir, "unused")
    args = get_args_parser().parse_args(base + ["--data-fraction", "0.5"])
    full = len(training_set(get_args_parser().parse_args(base), dataset_specs(args)))
    assert len(training_set(args, dataset_specs(args))) == round(full * 0.5)
    mixed = get_args_parser().parse_args(base + ["--dataset", "Synthetic,Synthetic", "--dataset-ratios", "3,1"])
    dataset = training_set(mixed, dataset_specs(mixed))
    assert [len(part) for part in dataset.datasets] == [round(2 * full * 0.75), round(2 * full * 0.25)]


def test_stage_scripts_run_unchanged_on_the_synthetic_corpus(tmp_path):
    """The quickstart drives train_stage1.sh, train_stage3.sh (SLT, CSLR, ISLR) and eval_stage3.sh."""
    completed = subprocess.run([sys.executable, "script/quickstart.py", "--size", "tiny", "--stage1-epochs", "1",
                                "--stage3-epochs", "1", "--out", str(tmp_path / "quickstart")],
                               cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    summary = json.loads((tmp_path / "quickstart" / "summary.json").read_text())
    assert set(summary["results"]) == {"SLT", "CSLR", "ISLR"}
    assert (tmp_path / "quickstart" / "eval_slt" / "test_pres.txt").is_file()


@pytest.mark.skipif(shutil.which("deepspeed") is None, reason="deepspeed launcher not installed")
def test_two_process_deepspeed_reaches_the_single_process_loss(corpus, tiny_lm_dir, tmp_path):
    """2 processes x batch 2 vs 1 process x batch 4 (same global batches). BatchNorm is synchronised (--sync-bn
    auto), but the loss is a token mean per micro-batch, so the runs agree closely but not bit-for-bit."""
    single = tmp_path / "single"
    train.main(train_args(corpus, tiny_lm_dir, single, "--gradient-accumulation-steps", "1"))
    double = tmp_path / "deepspeed"
    args = train_args(corpus, tiny_lm_dir, double, "--gradient-accumulation-steps", "1", "--batch-size", "2",
                      "--zero_stage", "2")
    completed = subprocess.run(["deepspeed", "--num_gpus", "2", "train.py", *args], cwd=REPO, capture_output=True,
                               text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert re.search(r"SyncBatchNorm: \d+ BatchNorm modules synchronised over 2 processes",
                     completed.stdout + completed.stderr)  # --sync-bn auto, as the official launch
    assert "global batch 4 = 2 per process x 1 accumulation x 2 process(es)" in completed.stdout + completed.stderr
    single_loss = json.loads((single / "dev_metrics.json").read_text())["loss"]
    double_loss = json.loads((double / "dev_metrics.json").read_text())["loss"]
    assert abs(double_loss - single_loss) / single_loss < 0.10

    # resumed under DeepSpeed with a changed learning rate: the command's applies, not the state's
    resumed = subprocess.run(["deepspeed", "--num_gpus", "2", "train.py", *args, "--resume", str(double),
                              "--epochs", "3", "--lr", "1e-5", "--allow-changed-settings"],
                             cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resumed at epoch 2, batch 0" in resumed.stdout
    resumed_lrs = [float(row["lr"]) for row in logged_rows(double) if row["epoch"] == "2"]
    assert resumed_lrs and max(resumed_lrs) <= 1e-5


def test_stage2_script_continues_a_stage1_checkpoint_with_the_rgb_branch(tiny_lm_dir, tmp_path):
    """script/train_stage2.sh unchanged, pointed at the synthetic corpus with rendered videos by environment."""
    corpus = tmp_path / "corpus"
    generate_corpus(corpus, seed=0, size="tiny", videos=True)
    paths = (f"--labels-dir {corpus / 'sentences'} --pose-dir {corpus / 'sentences' / 'pose_format'} "
             f"--rgb-dir {corpus / 'sentences' / 'rgb_format'}")
    train.main(train_args(corpus, tiny_lm_dir, tmp_path / "stage1", "--epochs", "1"))
    env = {**os.environ, "DATASET": "Synthetic", "LM_PATH": str(tiny_lm_dir), "EPOCHS": "1", "BATCH_SIZE": "4",
           "ACCUM": "1", "LAUNCHER": "python", "FINETUNE": str(tmp_path / "stage1" / "best_checkpoint.pth"),
           "OUTPUT_DIR": str(tmp_path / "stage2"),
           "EXTRA_ARGS": f"{paths} --max-new-tokens 4 --no-progress --efficientnet-init random"}
    completed = subprocess.run(["bash", "script/train_stage2.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    stage2 = load_checkpoint_file(tmp_path / "stage2" / "best_checkpoint.pth")
    assert stage2["config"]["rgb"]["fusion"] == "da" and stage2["args"]["rgb_sample_ratio"] == 0.1
    assert "sample_ratio" not in stage2["config"]["rgb"]  # frame sampling is a dataset setting, not the model's
    assert any(".hand_fusion.deformable_attention." in key for key in stage2["model"])


def test_length_grouped_batching_trains(corpus, tiny_lm_dir, tmp_path):
    results = train.main(train_args(corpus, tiny_lm_dir, tmp_path, "--length-grouped", "--epochs", "1"))
    assert "bleu4" in results["test"]
    assert len(list_states(tmp_path)) == 1


def rgb_args(corpus, lm_dir, *extra):
    return get_args_parser().parse_args(train_args(corpus, lm_dir, "unused", "--rgb_support", *extra))


def test_a_new_rgb_branch_needs_imagenet_weights_or_an_explicit_random_init(corpus, tiny_lm_dir, tmp_path,
                                                                               monkeypatch):
    from models.efficientnet import efficientnet_b0_features
    from runs.errors import UsageError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    args = rgb_args(corpus, tiny_lm_dir)
    spec = dataset_specs(args)[0]
    with pytest.raises(UsageError, match=rf"put torchvision's efficientnet_b0_rwightman-7f5810bc.pth in "
                                         rf"{tmp_path / 'torch' / 'hub' / 'checkpoints'} or pass --efficientnet-weights"):
        build_model(args, spec)
    random_init = build_model(rgb_args(corpus, tiny_lm_dir, "--efficientnet-init", "random"), spec)

    torch.manual_seed(1)
    imagenet = {f"features.{key}": value for key, value in efficientnet_b0_features().state_dict().items()}
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torchvision_file = cache / "efficientnet_b0_rwightman-7f5810bc.pth"
    torch.save({**imagenet, "classifier.1.weight": torch.zeros(1000, 1280)}, torchvision_file)
    model = build_model(args, spec)  # found in torchvision's cache
    backbone = model.pose_encoder.hand_fusion.backbone[0].state_dict()
    for key, value in backbone.items():
        assert torch.equal(value, imagenet[f"features.{key}"]), key
    assert not torch.equal(random_init.pose_encoder.hand_fusion.backbone[0].state_dict()["0.0.weight"],
                           backbone["0.0.weight"])

    torchvision_file.unlink()  # a stage-2 checkpoint carries its RGB branch:
    stage2 = tmp_path / "stage2.pth"                               # fine-tuning it needs no ImageNet file
    torch.save(checkpoint_payload(model, args, 0), stage2)
    resumed = build_model(rgb_args(corpus, tiny_lm_dir, "--finetune", str(stage2)), spec)
    assert torch.equal(resumed.pose_encoder.hand_fusion.backbone[0].state_dict()["0.0.weight"], backbone["0.0.weight"])


def test_how2sign_selects_on_test_only_when_asked(corpus, tiny_lm_dir):
    holdout = get_args_parser().parse_args(["--dataset", "How2Sign"])
    (spec,) = dataset_specs(holdout)
    assert "dev" not in spec.labels and spec.dev_fraction == 0.02  # ours: 2% of train held out
    official = get_args_parser().parse_args(["--dataset", "How2Sign", "--missing-dev", "test"])
    (spec,) = dataset_specs(official)
    assert spec.labels["dev"] == spec.labels["test"] and spec.dev_fraction == 0
    synthetic = get_args_parser().parse_args(train_args(corpus, tiny_lm_dir, "unused", "--missing-dev", "test"))
    (spec,) = dataset_specs(synthetic)
    assert spec.labels["dev"].endswith("labels.dev")  # a dataset with a dev split keeps it


def logged_rows(output_dir) -> list[dict]:
    with open(output_dir / "train_log.csv") as handle:
        return list(csv.DictReader(handle))


def first_logged_loss(output_dir) -> float:
    return float(logged_rows(output_dir)[0]["loss"])


def test_bf16_autocast_trains_and_evaluates_in_bfloat16(corpus, tiny_lm_dir, tmp_path, monkeypatch):
    """--autocast bf16 changes the numbers a little (it is really on), not the outcome: a finite, close loss."""
    seen = []
    original = UniSign._teacher_forced

    def spy(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        seen.append(output.logits.dtype)
        return output

    monkeypatch.setattr(UniSign, "_teacher_forced", spy)
    train.main(train_args(corpus, tiny_lm_dir, tmp_path / "fp32", "--epochs", "1"))
    assert set(seen) == {torch.float32}
    seen.clear()
    results = train.main(train_args(corpus, tiny_lm_dir, tmp_path / "bf16", "--epochs", "1", "--autocast", "bf16"))
    assert set(seen) == {torch.bfloat16}  # training and evaluation batches
    fp32, bf16 = first_logged_loss(tmp_path / "fp32"), first_logged_loss(tmp_path / "bf16")
    assert fp32 != bf16 and abs(fp32 - bf16) / fp32 < 0.05
    assert "bleu4" in results["test"]


def test_a_pruned_vocabulary_trains_saves_and_evaluates(corpus, tiny_lm_dir, tmp_path):
    """--prune-vocabulary: the model keeps the training targets' tokens; its best model and checkpoint carry the
    map back, and evaluating the checkpoint again gives the run's test metrics."""
    results = train.main(train_args(corpus, tiny_lm_dir, tmp_path / "run", "--epochs", "1", "--prune-vocabulary"))
    best = load_checkpoint_file(tmp_path / "run" / "best_checkpoint.pth")
    kept = best["config"]["vocabulary"]
    assert kept[:3] == [0, 1, 2] and len(kept) < 80  # the tiny LM has 80 tokens
    assert best["model"]["mt5_model.lm_head.weight"].shape[0] == len(kept)
    assert UniSign.from_pretrained(tmp_path / "run" / "best").config.vocabulary == kept
    again = train.main(train_args(corpus, tiny_lm_dir, tmp_path / "eval", "--eval", "--finetune",
                                  str(tmp_path / "run" / "best_checkpoint.pth")))
    assert again["test"]["bleu4"] == results["test"]["bleu4"]
