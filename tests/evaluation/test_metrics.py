"""Tests for evaluation.metrics: hand-computed values for every metric and the official quirks."""
import math
import random

import numpy as np
import pytest

from evaluation.metrics import (bleu_scores, csl_daily_postprocess, edit_distance_matrix, edit_distance_matrix_uint8,
                                islr_accuracy, islr_topk, rouge_l, translation_metrics, wer)

# ----------------------------------------------------------------------------- BLEU


def test_bleu_identical_is_100():
    scores = bleu_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert scores == pytest.approx({f"bleu{n}": 100.0 for n in range(1, 5)})


def test_bleu_exp_smoothing_and_brevity_penalty():
    # hyp 4 tokens, ref 5 -> BP = exp(1 - 5/4).
    # p1 = 3/4, p2 = 1/3 (a b), p3: 0 of 2 -> 100/(2*2), p4: 0 of 1 -> 100/(4*1).
    scores = bleu_scores(["a b c d"], ["a b x d e"])
    bp = math.exp(1 - 5 / 4)
    p = [75.0, 100 / 3, 25.0, 25.0]
    for n in range(1, 5):
        expected = bp * math.prod(p[:n]) ** (1 / n)
        assert scores[f"bleu{n}"] == pytest.approx(expected, rel=1e-12)
    assert scores["bleu2"] == pytest.approx(bp * 50.0)
    assert scores["bleu4"] == pytest.approx(bp * math.sqrt(1250.0))


def test_bleu_order_without_hypothesis_ngrams_scores_zero():
    # 2-token hypothesis: no 3- or 4-grams, so p3 = p4 = 0 and log(0) is floored.
    scores = bleu_scores(["a b"], ["a b c"])
    assert scores["bleu1"] == pytest.approx(100 * math.exp(-0.5))
    assert scores["bleu2"] == pytest.approx(100 * math.exp(-0.5))
    assert scores["bleu3"] == 0.0 and scores["bleu4"] == 0.0


def test_bleu_is_corpus_level_and_uses_13a_tokens():
    # counts are summed over sentences: unigrams 2/4, bigrams 1/2.
    scores = bleu_scores(["a b", "c d"], ["a b", "x y"])
    assert scores["bleu1"] == pytest.approx(50.0)
    assert scores["bleu2"] == pytest.approx(50.0)
    # 13a splits off ',' and '.': hypothesis has 4 tokens, 2 of them match.
    assert bleu_scores(["Hello, world."], ["Hello world"])["bleu1"] == pytest.approx(50.0)
    # case-sensitive: no unigram matches, so p1 is smoothed to 100 / (2 * 2)
    assert bleu_scores(["hello world"], ["Hello World"])["bleu1"] == pytest.approx(25.0)


def test_bleu_empty_hypothesis_scores_zero():
    assert bleu_scores([""], ["a b"]) == {f"bleu{n}": 0.0 for n in range(1, 5)}


def test_bleu_rejects_unpaired_input():
    with pytest.raises(ValueError, match="pair"):
        bleu_scores(["a"], ["a", "b"])


# ----------------------------------------------------------------------------- ROUGE-L


def test_rouge_l_hand_value():
    # LCS(a c d e, a b c d) = 3 of 4 distinct tokens each side: P = R = 0.75.
    assert rouge_l(["a b c d"], ["a c d e"]) == pytest.approx(75.0, abs=1e-5)


def test_rouge_l_set_semantics_and_mean_over_pairs():
    # token counts are numbers of distinct tokens: "a a a" vs "a" is a perfect match.
    assert rouge_l(["a a a"], ["a"]) == pytest.approx(100.0, abs=1e-5)
    assert rouge_l(["a a a", "x"], ["a", "y"]) == pytest.approx(50.0, abs=1e-5)


def test_rouge_l_empty_hypothesis_scores_zero_for_that_pair():
    from rouge import Rouge

    with pytest.raises(ValueError):  # the official scorer crashes here
        Rouge().get_scores([""], ["a b"], avg=True)
    assert rouge_l(["", "a b"], ["a b", "a b"]) == pytest.approx(50.0, abs=1e-5)
    assert rouge_l(["..."], ["a b"]) == 0.0
    assert rouge_l(["a b"], [""]) == 0.0


def test_translation_metrics_keys():
    assert set(translation_metrics(["a b"], ["a b"])) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"}


# ----------------------------------------------------------------------------- CSL-Daily


def test_csl_daily_postprocess_official():
    pred, ref = csl_daily_postprocess("他 今天\n好 !", "你 好，吗？！")
    assert pred == "他 今 天 好 !"
    assert ref == "你 好 , 吗 ? ！"  # only '，' and '？' are folded in the reference


def test_csl_daily_postprocess_symmetric_folds_both_sides():
    pred, ref = csl_daily_postprocess("好，！", "你 好，吗？！：", symmetric=True)
    assert pred == "好 , !"
    assert ref == "你 好 , 吗 ? ! :"


def test_csl_daily_postprocess_is_idempotent():
    once = csl_daily_postprocess("今天 星期几？", "今天星期几？")
    assert csl_daily_postprocess(*once) == once


# ----------------------------------------------------------------------------- WER


def _naive_edit_distance(ref, hyp):
    """The official recurrence with exact integers, written cell by cell."""
    d = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for j in range(len(hyp) + 1):
        d[0][j] = 3 * j
    for i in range(1, len(ref) + 1):
        d[i][0] = 3 * i
        for j in range(1, len(hyp) + 1):
            if ref[i - 1] == hyp[j - 1]:
                d[i][j] = d[i - 1][j - 1]
            else:
                d[i][j] = min(d[i - 1][j - 1] + 4, d[i][j - 1] + 3, d[i - 1][j] + 3)
    return np.array(d)


@pytest.mark.parametrize(
    "hyp, ref, expected",
    [
        ("a b c", "a b c", (0.0, 0.0, 0.0, 0.0)),
        ("a x c", "a b c", (100 / 3, 0.0, 0.0, 100 / 3)),
        ("a c", "a b c", (100 / 3, 100 / 3, 0.0, 0.0)),
        ("a b c", "a c", (50.0, 0.0, 50.0, 0.0)),
        ("c", "a b", (100.0, 50.0, 0.0, 50.0)),  # S + D (7) beats D + D + I (9)
        ("", "a b", (100.0, 100.0, 0.0, 0.0)),
    ],
)
def test_wer_hand_examples(hyp, ref, expected):
    result = wer([hyp], [ref])
    got = (result["wer"], result["del_rate"], result["ins_rate"], result["sub_rate"])
    assert got == pytest.approx(expected)


def test_wer_is_corpus_level_and_accepts_token_lists():
    result = wer([["a", "b", "c", "d"], ["b"]], [["a", "b", "c", "d"], ["a"]])
    assert result["wer"] == pytest.approx(20.0)  # 1 error over 5 reference words
    assert result == wer(["a b c d", " b "], ["a b c d", "a"])


def test_wer_no_reference_words_raises():
    with pytest.raises(ValueError, match="no words"):
        wer(["a"], [""])


def test_vectorised_dp_matches_cell_by_cell_recurrence():
    rng = random.Random(0)
    for _ in range(50):
        ref = rng.choices("abcd", k=rng.randint(0, 25))
        hyp = rng.choices("abcd", k=rng.randint(0, 25))
        np.testing.assert_array_equal(edit_distance_matrix(ref, hyp), _naive_edit_distance(ref, hyp))


def test_wer_200_substitutions_is_100_percent():
    ref = [f"r{i}" for i in range(200)]
    hyp = [f"h{i}" for i in range(200)]
    result = wer([hyp], [ref])
    assert result["wer"] == pytest.approx(100.0)
    assert result["sub_rate"] == pytest.approx(100.0)
    assert wer([hyp], [ref], official_uint8=True)["wer"] != pytest.approx(100.0)


def test_wer_190_insertions():
    ref = [f"w{i}" for i in range(10)]
    hyp = ref + [f"x{i}" for i in range(190)]
    result = wer([hyp], [ref])
    assert result["wer"] == pytest.approx(1900.0)
    assert result["ins_rate"] == pytest.approx(1900.0)
    assert wer([hyp], [ref], official_uint8=True)["wer"] != pytest.approx(1900.0)


def test_wer_every_other_word_substituted_in_200():
    ref = [f"w{i}" for i in range(200)]
    hyp = [w if i % 2 else "zz" for i, w in enumerate(ref)]
    expected = {"wer": 50.0, "del_rate": 0.0, "ins_rate": 0.0, "sub_rate": 50.0}
    assert wer([hyp], [ref]) == pytest.approx(expected)


def test_uint8_matrix_wraps_modulo_256():
    ref = [f"r{i}" for i in range(100)]
    d = edit_distance_matrix_uint8(ref, [])
    np.testing.assert_array_equal(d[:, 0], (3 * np.arange(101)) % 256)


def test_uint8_switch_agrees_on_short_inputs():
    rng = random.Random(1)
    refs = [" ".join(rng.choices("abcde", k=rng.randint(1, 30))) for _ in range(30)]
    hyps = [" ".join(rng.choices("abcde", k=rng.randint(0, 30))) for _ in range(30)]
    assert wer(hyps, refs, official_uint8=True) == wer(hyps, refs)


# ----------------------------------------------------------------------------- ISLR


def test_islr_per_instance_vs_per_class_on_unbalanced_classes():
    result = islr_accuracy(["a", "a", "a", "x"], ["a", "a", "a", "b"])
    assert result == pytest.approx({"top1_acc_pi": 75.0, "top1_acc_pc": 50.0})


def test_islr_exact_string_match():
    assert islr_accuracy(["A", "a "], ["a", "a"])["top1_acc_pi"] == 0.0


def test_islr_topk():
    ranked = [["a", "b"], ["x", "a"], ["x", "y"], ["b"]]
    refs = ["a", "a", "a", "b"]
    result = islr_topk(ranked, refs, ks=(1, 2, 5))
    assert result == pytest.approx({
        "top1_acc_pi": 50.0, "top1_acc_pc": 100 * (1 / 3 + 1) / 2,
        "top2_acc_pi": 75.0, "top2_acc_pc": 100 * (2 / 3 + 1) / 2,
        "top5_acc_pi": 75.0, "top5_acc_pc": 100 * (2 / 3 + 1) / 2,
    })


def test_islr_empty_raises():
    with pytest.raises(ValueError):
        islr_accuracy([], [])
