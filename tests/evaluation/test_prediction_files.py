"""Tests for evaluation.prediction_files: reading, writing, pairing and scoring official files."""
import json

import pytest
import sacrebleu

from evaluation.metrics import bleu_scores
from evaluation.prediction_files import (pair_predictions, read_predictions, read_references, score_files,
                                         write_predictions, write_references)

GOLDEN_KEYS = [
    "csl_daily_pose_only/dev",
    "csl_daily_pose_only/test",
    "how2sign_pose_only/test",
    "openasl_pose_only/dev",
    "openasl_pose_only/test",
]


def _write(path, text):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# ----------------------------------------------------------------------------- reading / writing


def test_round_trip_with_awkward_names(tmp_path):
    samples = [
        ("Mci9oyb5V2E-00:00:05.333-00:00:11.166.mp4", "I am Ed, and: retired."),
        ("odd, name: prediction.mp4", ""),
        ("S000020_P0000_T00", "他 今 年 5 0 岁 。"),
    ]
    write_predictions(tmp_path / "p.txt", samples)
    write_references(tmp_path / "r.txt", samples)
    assert read_predictions(tmp_path / "p.txt") == samples
    assert read_references(tmp_path / "r.txt") == samples
    first = (tmp_path / "p.txt").read_text(encoding="utf-8").splitlines()[0]
    assert first == ("sample: Mci9oyb5V2E-00:00:05.333-00:00:11.166.mp4, "
                     "prediction: I am Ed, and: retired.")


def test_name_holding_the_marker_is_split_at_the_last_marker(tmp_path):
    path = _write(tmp_path / "p.txt", "sample: a, prediction: b, prediction: text\n")
    assert read_predictions(path) == [("a, prediction: b", "text")]


def test_empty_prediction_with_or_without_trailing_space(tmp_path):
    path = _write(tmp_path / "p.txt", "sample: a, prediction: \nsample: b, prediction:")
    assert read_predictions(path) == [("a", ""), ("b", "")]


def test_writer_refuses_unreadable_lines(tmp_path):
    with pytest.raises(ValueError, match="line break"):
        write_predictions(tmp_path / "p.txt", [("a", "two\nlines")])
    with pytest.raises(ValueError, match="marker"):
        write_predictions(tmp_path / "p.txt", [("a", "x, prediction: y")])


@pytest.mark.parametrize(
    "content, message",
    [
        ("sample: a, prediction: x\nb, prediction: y\n", r"p\.txt:2: missing the 'sample: ' prefix"),
        ("sample: a, prediction: x\nsample: b prediction y\n", r"p\.txt:2: missing the ', prediction:' marker"),
        ("sample: a, ground-truth: x\n", r"p\.txt:1: missing the ', prediction:' marker"),
        ("sample: a, prediction: x\n\nsample: b, prediction: y\n", r"p\.txt:2: empty line"),
        ("sample: a, prediction: x\n\n", r"p\.txt:2: empty line"),
        ("sample: a, prediction: x\nsample: a, prediction: y\n",
         r"p\.txt:2: duplicate sample 'a' \(first on line 1\)"),
        ("sample: , prediction: x\n", r"p\.txt:1: empty sample name"),
        (b"sample: a, prediction: x\nsample: b, prediction: \xff\xfe\n", r"p\.txt:2: not valid UTF-8"),
    ],
)
def test_bad_prediction_files(tmp_path, content, message):
    path = _write(tmp_path / "p.txt", content)
    with pytest.raises(ValueError, match=message):
        read_predictions(path)


def test_trailing_newline_is_optional(tmp_path):
    with_nl = _write(tmp_path / "a.txt", "sample: a, ground-truth: x\n")
    without = _write(tmp_path / "b.txt", "sample: a, ground-truth: x")
    assert read_references(with_nl) == read_references(without) == [("a", "x")]


# ----------------------------------------------------------------------------- pairing


def _pair_files(tmp_path, pred_names, ref_names):
    write_predictions(tmp_path / "p.txt", [(n, "x") for n in pred_names])
    write_references(tmp_path / "r.txt", [(n, "x") for n in ref_names])
    return tmp_path / "p.txt", tmp_path / "r.txt"


def test_pair_predictions(tmp_path):
    pred, ref = _pair_files(tmp_path, ["a", "b"], ["a", "b"])
    assert pair_predictions(pred, ref) == (["a", "b"], ["x", "x"], ["x", "x"])


def test_pair_predictions_name_mismatch(tmp_path):
    pred, ref = _pair_files(tmp_path, ["a", "b", "c"], ["a", "c", "b"])
    with pytest.raises(ValueError, match=r"line 2: sample 'b' in .*p\.txt but 'c' in .*r\.txt"):
        pair_predictions(pred, ref)


@pytest.mark.parametrize("pred_names, ref_names, unmatched", [
    (["a", "b", "c"], ["a", "b"], r"p\.txt:3 sample 'c'"),
    (["a"], ["a", "b"], r"r\.txt:2 sample 'b'"),
])
def test_pair_predictions_count_mismatch(tmp_path, pred_names, ref_names, unmatched):
    pred, ref = _pair_files(tmp_path, pred_names, ref_names)
    with pytest.raises(ValueError, match=f"first unmatched: .*{unmatched}"):
        pair_predictions(pred, ref)


def test_pair_predictions_empty_files(tmp_path):
    pred, ref = _pair_files(tmp_path, [], [])
    with pytest.raises(ValueError, match="no samples"):
        pair_predictions(pred, ref)


# ----------------------------------------------------------------------------- scoring


def _scored(tmp_path, hyps, refs, task, **options):
    names = [f"s{i}" for i in range(len(hyps))]
    write_predictions(tmp_path / "p.txt", zip(names, hyps))
    write_references(tmp_path / "r.txt", zip(names, refs))
    return score_files(tmp_path / "p.txt", tmp_path / "r.txt", task, **options)


def test_score_files_tasks(tmp_path):
    slt = _scored(tmp_path, ["a b c d", ""], ["a b x d e", "y"], "SLT")
    assert set(slt) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "n"} and slt["n"] == 2
    assert _scored(tmp_path, ["a x c"], ["a b c"], "CSLR")["wer"] == pytest.approx(100 / 3)
    islr = _scored(tmp_path, ["a", "a", "a", "x"], ["a", "a", "a", "b"], "ISLR")
    assert islr == pytest.approx({"top1_acc_pi": 75.0, "top1_acc_pc": 50.0, "n": 4})


def test_score_files_char_level(tmp_path):
    official = _scored(tmp_path, ["你好!"], ["你 好！"], "SLT", char_level=True)
    symmetric = _scored(tmp_path, ["你好!"], ["你 好！"], "SLT", char_level=True, symmetric_punct=True)
    assert official["bleu1"] == pytest.approx(100 * 2 / 3)
    assert symmetric["bleu1"] == pytest.approx(100.0)


@pytest.mark.parametrize("task, options, message", [
    ("MT", {}, "unknown task"),
    ("CSLR", {"char_level": True}, "SLT task only"),
    ("SLT", {"symmetric_punct": True}, "char_level"),
])
def test_score_files_bad_options(tmp_path, task, options, message):
    with pytest.raises(ValueError, match=message):
        _scored(tmp_path, ["a"], ["a"], task, **options)


# ----------------------------------------------------------------------------- golden files


def _golden_paths(shared_dir, key):
    folder, split = key.split("/")
    folder = shared_dir / "golden" / folder
    return folder / f"{split}_pres.txt", folder / f"{split}_refs.txt"


def test_golden_keys_cover_expected_metrics(shared_dir):
    expected = json.loads((shared_dir / "golden" / "expected_metrics.json").read_text())
    assert sorted(expected) == sorted(GOLDEN_KEYS)


@pytest.mark.parametrize("key", GOLDEN_KEYS)
def test_golden_metrics(shared_dir, key):
    expected = json.loads((shared_dir / "golden" / "expected_metrics.json").read_text())[key]
    pred, ref = _golden_paths(shared_dir, key)
    measured = score_files(pred, ref, "SLT", char_level=key.startswith("csl_daily"))
    print(key, {name: (round(measured[name], 4), value) for name, value in expected.items()})
    assert measured["n"] == expected["n"]
    for name, value in expected.items():
        assert measured[name] == pytest.approx(value, abs=0.01), name


def test_golden_csl_daily_is_already_char_level(shared_dir):
    pred, ref = _golden_paths(shared_dir, "csl_daily_pose_only/test")
    assert score_files(pred, ref, "SLT", char_level=True) == score_files(pred, ref, "SLT")


def test_bleu_matches_sacrebleu_2_on_golden(shared_dir):
    _, hyps, refs = pair_predictions(*_golden_paths(shared_dir, "openasl_pose_only/dev"))
    ours = bleu_scores(hyps, refs)
    for n in range(1, 5):
        theirs = sacrebleu.BLEU(max_ngram_order=n).corpus_score(hyps, [refs]).score
        assert ours[f"bleu{n}"] == pytest.approx(theirs, rel=1e-12)
