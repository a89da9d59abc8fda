"""Optional BLEURT: clear messages when unavailable; the computation on a local (tiny) checkpoint."""
import importlib.util
import json
import os

import pytest
import torch

import eval as eval_cli
from evaluation.bleurt import BleurtUnavailable, add_bleurt_to_run, bleurt_score, checkpoint_kind, load_scorer
from evaluation.prediction_files import write_predictions, write_references

HYPS = ["the cat sat on the mat .", "a dog sat"]
REFS = ["the cat sat on a mat .", "the dog sat on the mat"]


def write_pair(folder, split="test"):
    names = [f"s{i}" for i in range(len(HYPS))]
    write_predictions(folder / f"{split}_pres.txt", zip(names, HYPS))
    write_references(folder / f"{split}_refs.txt", zip(names, REFS))
    return folder / f"{split}_pres.txt", folder / f"{split}_refs.txt"


def test_missing_checkpoint_gives_a_clear_message(tmp_path):
    with pytest.raises(BleurtUnavailable, match="no checkpoint given"):
        checkpoint_kind(None)
    with pytest.raises(BleurtUnavailable, match=r"checkpoint folder .*nowhere does not exist"):
        bleurt_score(HYPS, REFS, tmp_path / "nowhere")
    with pytest.raises(BleurtUnavailable, match="neither bleurt_config.json"):
        checkpoint_kind(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("bleurt") is not None, reason="the bleurt package is installed")
def test_original_checkpoint_without_the_bleurt_package(tmp_path):
    (tmp_path / "bleurt_config.json").write_text("{}", encoding="utf-8")
    assert checkpoint_kind(tmp_path) == "tensorflow"
    with pytest.raises(BleurtUnavailable, match="needs the Python package 'bleurt'"):
        load_scorer(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("bleurt_pytorch") is not None, reason="bleurt-pytorch is installed")
def test_pytorch_port_without_bleurt_pytorch(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bleurt"}), encoding="utf-8")
    with pytest.raises(BleurtUnavailable, match="'bleurt_pytorch', which is not installed.*pip install bleurt-pytorch"):
        load_scorer(tmp_path)


def test_eval_score_reports_other_metrics_and_the_message(tmp_path, capsys):
    pred, ref = write_pair(tmp_path)
    metrics = eval_cli.main(["--score", str(pred), str(ref), "--task", "SLT",
                             "--bleurt-checkpoint", str(tmp_path / "nowhere")])
    captured = capsys.readouterr()
    assert "bleurt" not in metrics and "bleu4" in metrics
    assert "BLEURT not computed" in captured.err and json.loads(captured.out)["n"] == 2


def test_bleurt_computation_on_a_local_checkpoint(tiny_bleurt_checkpoint, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert checkpoint_kind(tiny_bleurt_checkpoint) == "transformers"
    value = bleurt_score(HYPS, REFS, tiny_bleurt_checkpoint, batch_size=1)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bleurt_checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bleurt_checkpoint)
    with torch.no_grad():
        logits = model(**tokenizer(REFS, HYPS, padding=True, return_tensors="pt")).logits[:, 0]
    assert value == pytest.approx(100 * logits.mean().item(), abs=1e-4)  # references first, mean x 100

    write_pair(tmp_path, "dev")
    write_pair(tmp_path, "test")
    (tmp_path / "results.json").write_text(json.dumps({"dev": {"bleu4": 1.0}, "test": {"bleu4": 2.0}}))
    added = add_bleurt_to_run(tmp_path, tiny_bleurt_checkpoint)
    assert added == {"dev": pytest.approx(value, abs=1e-4), "test": pytest.approx(value, abs=1e-4)}
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["test"] == {"bleu4": 2.0, "bleurt": pytest.approx(value, abs=1e-4)}
    assert json.loads((tmp_path / "dev_metrics.json").read_text())["bleurt"] == pytest.approx(value, abs=1e-4)


@pytest.mark.skipif(not os.environ.get("BLEURT_CHECKPOINT"), reason="set BLEURT_CHECKPOINT to a local BLEURT-20")
def test_real_bleurt_checkpoint():
    """With a real checkpoint and its package: identical texts score higher than unrelated ones."""
    checkpoint = os.environ["BLEURT_CHECKPOINT"]
    try:
        same = bleurt_score(["the cat sat on the mat"], ["the cat sat on the mat"], checkpoint)
    except BleurtUnavailable as error:
        pytest.skip(str(error))
    other = bleurt_score(["stock prices fell sharply"], ["the cat sat on the mat"], checkpoint)
    assert same > other
