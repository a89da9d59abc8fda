"""ISLR top-K (beams / rank), benchmark subsets and their class-list readers, on the synthetic corpus."""
import json

import pytest
import torch
from torch import nn

import eval as eval_cli
from datasets.formats import read_labels
from datasets.sign_dataset import SignDataset
from evaluation.islr_topk import (ALL_CLASSES, ClassListError, IslrEvalSettings, align_classes, benchmark_subsets,
                                  dedupe, evaluate_topk, normalise_scores, official_topk_lines, rank_labels,
                                  read_class_list, read_msasl_classes, read_wlasl_classes)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The tiny synthetic corpus: 41 signs, one isolated sample per sign and split."""
    from datasets.synthetic import generate_corpus

    out = tmp_path_factory.mktemp("synthetic")
    generate_corpus(out, seed=0, size="tiny")
    entries = read_labels(out / "isolated" / "labels.test")
    return {"root": out, "entries": entries, "pose_dir": out / "isolated" / "pose_format",
            "classes": dedupe([entry.text for entry in entries])}


def wlasl_json(path, glosses):
    """A WLASL_v0.3.json look-alike: a list of {gloss, instances} in class order."""
    data = [{"gloss": gloss, "instances": [{"video_id": f"{i:05d}", "split": "test"}]}
            for i, gloss in enumerate(glosses)]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- class lists


def test_wlasl_and_msasl_readers(tmp_path):
    glosses = [f"gloss{i}" for i in range(2000)]
    assert read_wlasl_classes(wlasl_json(tmp_path / "WLASL_v0.3.json", glosses)) == glosses
    assert read_class_list(tmp_path / "WLASL_v0.3.json") == ("WLASL", glosses)
    subsets = benchmark_subsets("WLASL", glosses)
    assert list(subsets) == ["WLASL100", "WLASL300", "WLASL1000", "WLASL2000"]
    assert subsets["WLASL300"] == glosses[:300]

    names = [f"class{i}" for i in range(1000)]
    (tmp_path / "MSASL_classes.json").write_text(json.dumps(names), encoding="utf-8")
    assert read_msasl_classes(tmp_path / "MSASL_classes.json") == names
    benchmark, classes = read_class_list(tmp_path / "MSASL_classes.json")
    assert benchmark == "MSASL" and list(benchmark_subsets(benchmark, classes)) == [
        "MSASL100", "MSASL200", "MSASL500", "MSASL1000"]
    assert benchmark_subsets("MSASL", classes, (200,))["MSASL200"] == names[:200]

    (tmp_path / "mine.txt").write_text("a\nb\n\nc\n", encoding="utf-8")
    assert read_class_list(tmp_path / "mine.txt") == ("mine", ["a", "b", "c"])


def test_class_list_errors_name_the_problem(tmp_path):
    bad = tmp_path / "WLASL_v0.3.json"
    bad.write_text(json.dumps([{"gloss": "a", "instances": []}, {"instances": []}]), encoding="utf-8")
    with pytest.raises(ClassListError, match="entry 1 has no non-empty string field 'gloss'"):
        read_class_list(bad)
    (tmp_path / "broken.json").write_text("[1, 2", encoding="utf-8")
    with pytest.raises(ClassListError, match="not valid JSON"):
        read_class_list(tmp_path / "broken.json")
    with pytest.raises(ClassListError, match="subset size 300 is outside 1..200"):
        benchmark_subsets("WLASL", [f"g{i}" for i in range(200)], (100, 300))
    with pytest.raises(FileNotFoundError):
        read_class_list(tmp_path / "missing.json")


def test_alignment_ranking_and_formatting_helpers():
    assert align_classes(["Book", "a  LOT", "zebra"], ["book", "a lot"]) == ["book", "a lot", "zebra"]
    assert dedupe(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    scores = torch.tensor([[0.0, 2.0, 2.0, 1.0]])
    assert rank_labels(scores, ["w", "x", "y", "z"], 3) == [["x", "y", "z"]]  # ties keep the class order
    summed, lengths = torch.tensor([[-4.0, -6.0]]), torch.tensor([2.0, 4.0])
    assert normalise_scores(summed, lengths, 0.0).tolist() == [[-4.0, -6.0]]
    assert normalise_scores(summed, lengths, 1.0).tolist() == [[-2.0, -1.5]]
    metrics = {"top1_acc_pi": 93.256, "top3_acc_pi": 97.0, "top1_acc_pc": 93.16, "top3_acc_pc": 96.5}
    assert official_topk_lines(metrics, (1, 3)) == ["Top-K Accuracies (Per Instance): {1: 93.26, 3: 97.0}",
                                                    "Top-K Accuracies (Per Class): {1: 93.16, 3: 96.5}"]


# --------------------------------------------------------------------------- an oracle model: known answers


class OracleModel(nn.Module):
    """Knows each sample's label and ranks it at a chosen place (sample index % 4) in one fixed class order.

    Above the true label: that many decoys from the first 8 classes (so the rank holds in every subset that
    starts with them); below it: every other class in reverse order (so ranking outside a subset would show).
    Samples are recognised by their pose tensors; the beam outputs repeat the first candidate (to exercise
    the de-duplication)."""

    def __init__(self, corpus):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.vocabulary = corpus["classes"]
        dataset = SignDataset(corpus["entries"], corpus["pose_dir"], "ISLR")
        self.orders = {}
        for index in range(len(dataset)):
            sample = dataset[index]
            truth = sample["target"]
            decoys = [c for c in self.vocabulary[:8] if c != truth][: index % 4]
            rest = [c for c in reversed(self.vocabulary) if c != truth and c not in decoys]
            self.orders[self.key(sample["parts"]["body"])] = decoys + [truth] + rest

    @staticmethod
    def key(body):
        return round(float(body.abs().sum()), 3)

    def order(self, parts, frame_mask, b):
        return self.orders[self.key(parts["body"][b, : int(frame_mask[b].sum())])]

    def tokenize_targets(self, texts):
        return torch.ones(len(texts), 1, dtype=torch.long)

    def score_candidates(self, parts, frame_mask, candidates, rgb=None, chunk_size=512):
        rows = []
        for b in range(len(frame_mask)):
            position = {c: i for i, c in enumerate(self.order(parts, frame_mask, b))}
            rows.append([-float(position[c]) for c in candidates])
        return torch.tensor(rows)

    def generate(self, parts, frame_mask, rgb=None, num_beams=None, max_new_tokens=None, num_return_sequences=1,
                 prefix_allowed_tokens_fn=None):
        outputs = []
        for b in range(len(frame_mask)):
            order = self.order(parts, frame_mask, b)
            order = [order[0]] + order  # a repeated string, as two token sequences decoding alike
            outputs.append([(text, -float(i)) for i, text in enumerate(order[:num_return_sequences])])
        return outputs


def expected_topk(entries, subset, ks):
    """Top-K per instance when sample i's true label is at rank i % 4."""
    ranks = [index % 4 for index, entry in enumerate(entries) if entry.text in subset]
    return {k: 100.0 * sum(rank < k for rank in ranks) / len(ranks) for k in ks}


@pytest.mark.parametrize("mode", ["rank", "beams"])
def test_subset_topk_has_the_known_values(corpus, mode):
    model = OracleModel(corpus)
    classes = corpus["classes"]
    subsets = {"SYN8": classes[:8], "SYN20": classes[:20], ALL_CLASSES: classes}
    results, records = evaluate_topk(model, corpus["entries"], corpus["pose_dir"], subsets,
                                     IslrEvalSettings(ks=(1, 3, 5), mode=mode, batch_size=4))
    for name, subset in subsets.items():
        metrics = results["subsets"][name]
        assert metrics["n"] == len(subset) and metrics["classes"] == len(subset)
        for k, value in expected_topk(corpus["entries"], subset, (1, 3, 5)).items():
            assert metrics[f"top{k}_acc_pi"] == pytest.approx(value)
            assert metrics[f"top{k}_acc_pc"] == pytest.approx(value)  # one sample per class
    assert results["subsets"]["SYN8"]["top1_acc_pi"] == pytest.approx(25.0)
    subset_records = [r for r in records if r["subset"] == "SYN8"]
    assert [r["reference"] for r in subset_records] == classes[:8]
    for record in records:
        assert len(record["candidates"]) == len(set(record["candidates"])) <= 5
    if mode == "rank":  # ranked among the subset's classes only
        assert all(set(r["candidates"]) <= set(classes[:8]) for r in subset_records)


def test_subset_filter_drops_samples_of_other_classes(corpus):
    model = OracleModel(corpus)
    entries = corpus["entries"]
    subsets = {"TWO": [entries[3].text.upper(), entries[7].text]}  # matched ignoring case
    subsets["TWO"] = align_classes(subsets["TWO"], corpus["classes"])
    results, records = evaluate_topk(model, entries, corpus["pose_dir"], subsets,
                                     IslrEvalSettings(ks=(1, 2), mode="rank"))
    assert [r["name"] for r in records] == [entries[3].name, entries[7].name]
    assert results["subsets"]["TWO"]["top2_acc_pi"] == 100.0  # two classes: top-2 is always a hit


def test_settings_are_checked():
    with pytest.raises(ValueError, match="--constrained applies to --topk-mode beams"):
        IslrEvalSettings(mode="rank", constrained=True).validate()
    with pytest.raises(ValueError, match="unknown top-K mode"):
        IslrEvalSettings(mode="logits").validate()


# --------------------------------------------------------------------------- the real (tiny) model


def test_rank_mode_scores_are_the_models_likelihoods(tiny_model, corpus):
    tiny_model.eval()
    classes = corpus["classes"][:6]
    settings = IslrEvalSettings(ks=(1, 3, 6), mode="rank", batch_size=1, chunk_size=4)
    results, records = evaluate_topk(tiny_model, corpus["entries"], corpus["pose_dir"], {"S6": classes}, settings)
    assert results["subsets"]["S6"]["top6_acc_pi"] == 100.0  # every class ranked
    dataset = SignDataset(corpus["entries"][:1], corpus["pose_dir"], "ISLR")
    sample = dataset[0]
    parts = {name: values.unsqueeze(0) for name, values in sample["parts"].items()}
    mask = torch.ones(1, len(sample["parts"]["body"]), dtype=torch.long)
    direct = tiny_model.score_candidates(parts, mask, classes)[0]
    record = records[0]
    assert record["name"] == corpus["entries"][0].name
    assert record["candidates"] == [classes[j] for j in torch.argsort(direct, descending=True, stable=True)[:6]]
    assert record["scores"] == pytest.approx(sorted(direct.tolist(), reverse=True)[:6], abs=1e-4)


def test_constrained_beams_agree_with_length_normalised_ranking(tiny_model, corpus):
    tiny_model.eval()
    subsets = {"S5": corpus["classes"][:5]}
    common = dict(ks=(1, 5), batch_size=1, num_beams=5)
    beams, beam_records = evaluate_topk(tiny_model, corpus["entries"], corpus["pose_dir"], subsets,
                                        IslrEvalSettings(mode="beams", constrained=True, **common))
    rank, rank_records = evaluate_topk(tiny_model, corpus["entries"], corpus["pose_dir"], subsets,
                                       IslrEvalSettings(mode="rank", length_penalty=1.0, **common))
    assert beams["subsets"]["S5"] == rank["subsets"]["S5"]
    assert [r["candidates"] for r in beam_records] == [r["candidates"] for r in rank_records]
    assert all(set(r["candidates"]) == set(subsets["S5"]) for r in beam_records)  # exhaustive with 5 beams


def test_free_beams_are_deduplicated(tiny_model, corpus):
    results, records = evaluate_topk(tiny_model, corpus["entries"], corpus["pose_dir"],
                                     {"S3": corpus["classes"][:3]},
                                     IslrEvalSettings(ks=(1, 3), mode="beams", batch_size=3, max_new_tokens=4))
    assert results["num_beams"] == 4 and results["subsets"]["S3"]["n"] == 3
    assert all(0 < len(r["candidates"]) <= 3 and len(set(r["candidates"])) == len(r["candidates"])
               for r in records)


def test_eval_cli_routes_to_topk_and_writes_json(tiny_model, tiny_lm_dir, corpus, tmp_path, capsys):
    from utils.checkpoint import FORMAT, atomic_save

    root = corpus["root"] / "isolated"
    config = tmp_path / "datasets.json"
    config.write_text(json.dumps({"SynISLR": {
        "lang": "English", "labels": {split: str(root / f"labels.{split}") for split in ("train", "dev", "test")},
        "pose_dir": str(root / "pose_format"), "tasks": ["ISLR"]}}), encoding="utf-8")
    checkpoint = tmp_path / "model.pth"
    atomic_save({"format": FORMAT, "model": tiny_model.state_dict(), "config": tiny_model.config.to_dict()},
                checkpoint)
    glosses = [text.upper() for text in corpus["classes"]]  # the class list's own spelling
    class_list = wlasl_json(tmp_path / "WLASL_v0.3.json", glosses)
    out = tmp_path / "out"
    results = eval_cli.main([
        "--dataset", "SynISLR", "--dataset-config", str(config), "--task", "ISLR", "--finetune", str(checkpoint),
        "--lm-path", str(tiny_lm_dir), "--topk", "1,3", "--topk-mode", "rank", "--class-lists", str(class_list),
        "--subsets", "3,5", "--batch-size", "4", "--output_dir", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert list(results["subsets"]) == ["WLASL3", "WLASL5"]
    assert results["subsets"]["WLASL3"]["n"] == 3 and results["subsets"]["WLASL3"]["top3_acc_pi"] == 100.0
    saved = json.loads((out / "test_islr_topk.json").read_text(encoding="utf-8"))
    assert saved["subsets"] == results["subsets"] and saved["mode"] == "rank"
    lines = (out / "test_islr_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 and json.loads(lines[0])["candidates"][0] in corpus["classes"][:3]
    top1 = round(results["subsets"]["WLASL5"]["top1_acc_pi"], 2)
    assert f"Top-K Accuracies (Per Instance): {{1: {top1}, 3: " in printed
    assert "| WLASL5 | 5 | 5 |" in printed
