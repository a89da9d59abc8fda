"""Evaluation metrics, matching the official Uni-Sign scorer (`SLRT_metrics.py`).

* SLT: cumulative BLEU-1..4 exactly as the official vendored sacreBLEU 1.4.2
  `corpus_bleu(hyps, [refs], tokenize='13a')` (smoothing 'exp', case-sensitive, no effective
  order), and ROUGE-L from the `rouge` package (1.0.1).
* CSLR: word error rate with the official costs (deletion 3, insertion 3, substitution 4).
* ISLR: per-instance and per-class top-1 (and top-K) accuracy.
* CSL-Daily SLT character-level post-processing ("fix mt5 tokenizer bug").

All scores are percentages (0-100). See `official_defaults.md` sections 5 and 6.
"""
from __future__ import annotations

import math
import unicodedata
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np
from rouge import Rouge
from sacrebleu.metrics.helpers import extract_all_word_ngrams
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

BLEU_MAX_ORDER = 4
LOG_ZERO = -9999999999  # sacreBLEU's floor for log(0)

WER_COST_DEL = 3
WER_COST_INS = 3
WER_COST_SUB = 4

_TOKENIZE_13A = Tokenizer13a()


def _check_pairs(hypotheses: Sequence, references: Sequence) -> None:
    """Raise ValueError unless there is exactly one reference per hypothesis."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references; "
            "they must pair one to one"
        )


# --------------------------------------------------------------------------- BLEU


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Corpus n-gram statistics as sacreBLEU 1.4.2 gathers them (13a tokens, one reference).

    Each line is right-stripped, tokenised with the 13a tokenizer and split on whitespace.
    Returns `matches[n-1]` (clipped n-gram matches), `totals[n-1]` (hypothesis n-grams) for
    n = 1..4, `sys_len` and `ref_len` (total hypothesis / reference tokens).
    """
    _check_pairs(hypotheses, references)
    matches = [0] * BLEU_MAX_ORDER
    totals = [0] * BLEU_MAX_ORDER
    sys_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        hyp_ngrams, hyp_len = extract_all_word_ngrams(_TOKENIZE_13A(hyp.rstrip()), 1, BLEU_MAX_ORDER)
        ref_ngrams, len_ref = extract_all_word_ngrams(_TOKENIZE_13A(ref.rstrip()), 1, BLEU_MAX_ORDER)
        sys_len += hyp_len
        ref_len += len_ref
        for ngram, count in hyp_ngrams.items():
            matches[len(ngram) - 1] += min(count, ref_ngrams.get(ngram, 0))
            totals[len(ngram) - 1] += count
    return {"matches": matches, "totals": totals, "sys_len": sys_len, "ref_len": ref_len}


def smoothed_precisions(matches: Sequence[int], totals: Sequence[int]) -> list[float]:
    """n-gram precisions (percent) with sacreBLEU's 'exp' smoothing.

    p_n = 100 m_n / t_n; a zero-match order gets 100 / (2^j t_n), j = 1, 2, ... counting the
    zero-match orders so far; from the first order with t_n = 0 on, every p_n is 0.
    """
    precisions = [0.0] * len(totals)
    zero_match_orders = 0
    for n, (match, total) in enumerate(zip(matches, totals)):
        if total == 0:
            break
        if match == 0:
            zero_match_orders += 1
            precisions[n] = 100.0 / (2**zero_match_orders * total)
        else:
            precisions[n] = 100.0 * match / total
    return precisions


def brevity_penalty(sys_len: int, ref_len: int) -> float:
    """BP = 1 if c >= r, exp(1 - r / c) if 0 < c < r, and 0 for an empty output (c = 0 < r)."""
    if sys_len >= ref_len:
        return 1.0
    return math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0


def _log(value: float) -> float:
    """math.log, with log(0) floored at -9999999999 as in sacreBLEU."""
    return math.log(value) if value != 0.0 else LOG_ZERO


def bleu_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """Cumulative corpus BLEU of max order 1..4 (`bleu1`..`bleu4`, 0-100).

    bleu{n} = BP * exp((1/n) * sum_{k<=n} log p_k), with the smoothed precisions of
    `smoothed_precisions`; this is what the official vendored sacreBLEU 1.4.2 reports, and
    equals sacrebleu 2.x `BLEU(max_ngram_order=n)` (smoothing of order k depends only on
    orders <= k). An empty corpus scores 0.
    """
    stats = bleu_statistics(hypotheses, references)
    precisions = smoothed_precisions(stats["matches"], stats["totals"])
    bp = brevity_penalty(stats["sys_len"], stats["ref_len"])
    scores = {}
    for n in range(1, BLEU_MAX_ORDER + 1):
        mean_log = sum(_log(p) for p in precisions[:n]) / n
        scores[f"bleu{n}"] = bp * math.exp(mean_log)
    return scores


# --------------------------------------------------------------------------- ROUGE-L


def _rouge_is_empty(text: str) -> bool:
    """True when the `rouge` package would reject the text (nothing but '.' characters)."""
    return not text.replace(".", "")


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F (0-100) of the `rouge` package: `get_scores(avg=True)['rouge-l']['f']`.

    Defined behaviour where the official code crashes: a pair whose hypothesis or reference
    is empty (nothing but '.' characters, which the package rejects with ValueError) scores 0
    and still counts in the mean. When no text is empty the value is the official one.
    An empty corpus raises ValueError.
    """
    _check_pairs(hypotheses, references)
    if not hypotheses:
        raise ValueError("ROUGE-L of an empty corpus is undefined")
    kept = [(h, r) for h, r in zip(hypotheses, references)
            if not (_rouge_is_empty(h) or _rouge_is_empty(r))]
    if not kept:
        return 0.0
    hyps, refs = (list(texts) for texts in zip(*kept))
    mean_f = Rouge(metrics=["rouge-l"]).get_scores(hyps, refs, avg=True)["rouge-l"]["f"]
    return 100.0 * mean_f * (len(kept) / len(hypotheses))


def translation_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """SLT metrics: `bleu1`..`bleu4` and `rouge_l`, all 0-100."""
    return {**bleu_scores(hypotheses, references), "rouge_l": rouge_l(hypotheses, references)}


# --------------------------------------------------------------------------- CSL-Daily


def _fold_width(text: str) -> str:
    """NFKC-fold the text (full-width punctuation and forms -> ASCII), as mT5's normaliser."""
    return unicodedata.normalize("NFKC", text)


def csl_daily_postprocess(prediction: str, reference: str, symmetric: bool = False) -> tuple[str, str]:
    """The official CSL-Daily SLT character-level post-processing ("fix mt5 tokenizer bug").

    Official (`symmetric=False`):
      prediction -> remove ' ' and '\\n', join the characters with single spaces;
      reference  -> '，' -> ',', '？' -> '?', remove ' ', join the characters with single spaces.
    Only those two full-width marks are folded in the reference, so e.g. '！' in a reference
    never matches the '!' that mT5 (which NFKC-normalises) predicts (official issue #24).

    `symmetric=True` instead NFKC-folds both sides (every full-width punctuation mark and
    form, so '！' -> '!', '：' -> ':'), then removes ' ' and '\\n' and joins the characters.

    The operation is idempotent on already post-processed text.
    Returns (prediction, reference).
    """
    if symmetric:
        prediction, reference = _fold_width(prediction), _fold_width(reference)
    else:
        reference = reference.replace("，", ",").replace("？", "?")
    return _char_spaced(prediction.replace("\n", "")), _char_spaced(reference)


def _char_spaced(text: str) -> str:
    """Remove ' ' and join the remaining characters with single spaces."""
    return " ".join(text.replace(" ", ""))


# --------------------------------------------------------------------------- WER


def _tokens(sequence: str | Sequence[str]) -> list[str]:
    """A sentence split on whitespace (after strip), or a token list as is."""
    return sequence.strip().split() if isinstance(sequence, str) else list(sequence)


def _token_ids(ref: list[str], hyp: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Map the tokens of both sequences to shared integer ids."""
    vocab: dict[str, int] = {}
    ref_ids = np.array([vocab.setdefault(t, len(vocab)) for t in ref], dtype=np.int64)
    hyp_ids = np.array([vocab.setdefault(t, len(vocab)) for t in hyp], dtype=np.int64)
    return ref_ids, hyp_ids


def edit_distance_matrix(ref: list[str], hyp: list[str]) -> np.ndarray:
    """Weighted edit-distance DP matrix (int64), shape (len(ref)+1, len(hyp)+1).

    d[i, j] = d[i-1, j-1] when ref[i-1] == hyp[j-1], else
    min(d[i-1, j-1] + 4, d[i-1, j] + 3, d[i, j-1] + 3), with d[0, j] = 3j and d[i, 0] = 3i.
    Row-wise vectorised: first the diagonal/vertical candidate c_j, then the in-row insertion
    chain d[i, j] = min_k (c_k + 3 (j - k)), a running minimum. (Taking the diagonal on a
    match is optimal, so a match cell equals min(diagonal, left + 3) and the chain is exact.)
    """
    ref_ids, hyp_ids = _token_ids(ref, hyp)
    ins_offsets = np.arange(len(hyp) + 1, dtype=np.int64) * WER_COST_INS
    d = np.empty((len(ref) + 1, len(hyp) + 1), dtype=np.int64)
    d[0] = ins_offsets
    for i in range(1, len(ref) + 1):
        diag, up = d[i - 1, :-1], d[i - 1, 1:]
        candidate = np.where(hyp_ids == ref_ids[i - 1], diag,
                             np.minimum(diag + WER_COST_SUB, up + WER_COST_DEL))
        row = np.concatenate(([i * WER_COST_DEL], candidate))
        d[i] = np.minimum.accumulate(row - ins_offsets) + ins_offsets
    return d


def edit_distance_matrix_uint8(ref: list[str], hyp: list[str]) -> np.ndarray:
    """The official DP as numpy 1.x ran it on its uint8 matrix: every stored value mod 256.

    Cell sums and their minimum are exact integers; only the stored result wraps. Kept for
    fidelity studies of the official (buggy) WER; plain Python loops, as in the original.
    """
    d = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for j in range(len(hyp) + 1):
        d[0][j] = (j * WER_COST_INS) % 256
    for i in range(1, len(ref) + 1):
        d[i][0] = (i * WER_COST_DEL) % 256
        for j in range(1, len(hyp) + 1):
            if ref[i - 1] == hyp[j - 1]:
                d[i][j] = d[i - 1][j - 1]
            else:
                d[i][j] = min(d[i - 1][j - 1] + WER_COST_SUB,
                              d[i][j - 1] + WER_COST_INS,
                              d[i - 1][j] + WER_COST_DEL) % 256
    return np.array(d, dtype=np.int64)


def count_edits(ref: list[str], hyp: list[str], d: np.ndarray) -> dict:
    """Official backtrace from d[len(ref), len(hyp)]: counts of C, S, I, D operations.

    Preference per step: correct (equal tokens, equal cost), substitution, insertion,
    deletion; it stops after 3 (len(ref) + len(hyp)) + 1 steps as the original does (only
    reachable with a wrapped uint8 matrix, where the official code would build its alignment
    string from r[-1], and crash with IndexError on an empty reference).
    """
    d = d.tolist()
    x, y = len(ref), len(hyp)
    max_steps = 3 * (x + y)
    counts = Counter({"C": 0, "S": 0, "I": 0, "D": 0})
    steps = 0
    while (x > 0 or y > 0) and steps <= max_steps:
        if x >= 1 and y >= 1 and d[x][y] == d[x - 1][y - 1] and ref[x - 1] == hyp[y - 1]:
            op, x, y = "C", x - 1, y - 1
        elif x >= 1 and y >= 1 and d[x][y] == d[x - 1][y - 1] + WER_COST_SUB:
            op, x, y = "S", x - 1, y - 1
        elif y >= 1 and d[x][y] == d[x][y - 1] + WER_COST_INS:
            op, y = "I", y - 1
        else:
            op, x = "D", max(x - 1, 0)
        counts[op] += 1
        steps += 1
    return dict(counts)


def wer(hypotheses: Sequence[str | Sequence[str]], references: Sequence[str | Sequence[str]],
        official_uint8: bool = False) -> dict:
    """Corpus word error rate (percent) with the official costs and D/I/S rates.

    Each item is a sentence (split on whitespace) or a token list. Returns `wer`,
    `del_rate`, `ins_rate`, `sub_rate` = 100 * sum(count) / sum(reference lengths), with
    D/I/S counted along the official backtrace.

    Default: exact int64 DP. `official_uint8=True` reproduces the official matrix under
    numpy 1.x (uint8, values wrapping modulo 256), which gives wrong alignments once a
    distance reaches 256 (e.g. 86+ tokens); for fidelity studies only.
    Raises ValueError when the references hold no words at all.
    """
    _check_pairs(hypotheses, references)
    build = edit_distance_matrix_uint8 if official_uint8 else edit_distance_matrix
    totals = Counter()
    ref_words = 0
    for hyp, ref in zip(hypotheses, references):
        hyp_tokens, ref_tokens = _tokens(hyp), _tokens(ref)
        totals.update(count_edits(ref_tokens, hyp_tokens, build(ref_tokens, hyp_tokens)))
        ref_words += len(ref_tokens)
    if ref_words == 0:
        raise ValueError("WER is undefined: the references contain no words")
    rates = {key: 100.0 * totals[op] / ref_words
             for key, op in (("del_rate", "D"), ("ins_rate", "I"), ("sub_rate", "S"))}
    errors = totals["D"] + totals["I"] + totals["S"]
    return {"wer": 100.0 * errors / ref_words, **rates}


# --------------------------------------------------------------------------- ISLR


def islr_topk(ranked_predictions: Sequence[Sequence[str]], references: Sequence[str],
              ks: Sequence[int] = (1, 3, 5, 7, 10)) -> dict:
    """Top-K accuracies (percent) for isolated sign recognition.

    A sample is a hit at K when its reference string is among its first K candidates
    (exact string match). For each K: `top{K}_acc_pi` = hits / samples (per instance) and
    `top{K}_acc_pc` = mean over reference classes of (class hits / class samples).
    Raises ValueError on an empty input.
    """
    _check_pairs(ranked_predictions, references)
    if not references:
        raise ValueError("ISLR accuracy of an empty set is undefined")
    scores = {}
    for k in ks:
        hits = [ref in list(ranked[:k]) for ranked, ref in zip(ranked_predictions, references)]
        scores[f"top{k}_acc_pi"] = 100.0 * sum(hits) / len(hits)
        scores[f"top{k}_acc_pc"] = _per_class_accuracy(hits, references)
    return scores


def _per_class_accuracy(hits: Sequence[bool], references: Sequence[str]) -> float:
    """100 * mean over reference classes of the class hit rate."""
    class_hits: dict[str, list[bool]] = defaultdict(list)
    for hit, ref in zip(hits, references):
        class_hits[ref].append(hit)
    return 100.0 * sum(sum(h) / len(h) for h in class_hits.values()) / len(class_hits)


def islr_accuracy(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """Official ISLR top-1 accuracy: `top1_acc_pi` (per instance), `top1_acc_pc` (per class)."""
    return islr_topk([[p] for p in predictions], references, ks=(1,))
