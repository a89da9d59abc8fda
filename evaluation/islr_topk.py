"""ISLR evaluation beyond the official top-1: top-K accuracy (per instance and per class) and benchmark subsets.

A generative model has no class logits, so top-K is offered in two modes (every number says which one):

* `beams` (default; the paper's decoding): beam search with num_beams = max(--num-beams, max K) returning
  every beam; the decoded strings are de-duplicated keeping the first (best) occurrence (two token sequences
  can decode to the same text) and the first K are the top-K candidates. A sample's list can hold fewer than
  K distinct strings; a missing candidate is a miss. Top-1 here comes from the wider beam, so it can differ
  from the official top-1 (4 beams) that `eval.py` without these flags reports.
* `rank`: closed-set ranking. Every class label is scored by its sequence log-likelihood under the model
  (`UniSign.score_candidates`: encoder once per batch, decoder over (sample, label) pairs in chunks of
  --rank-chunk-size) and the labels are sorted by score. Default score: the summed log-likelihood
  log p(label | video) (length penalty 0). `--length-penalty A` divides it by (number of label tokens incl.
  </s>) ** A; A = 1 is the per-token mean, the normalisation that transformers' beam search (mT5
  length_penalty 1.0) applies to finished hypotheses. Ties keep the class-list order.

`--constrained` (beams mode) restricts beam search to the label vocabulary with a prefix trie
(models/constrained_decoding.py); off by default for paper fidelity.

Benchmark subsets: WLASL-N = the first N glosses of WLASL_v0.3.json (a list of {gloss, instances}), MSASL-N
= the first N names of MSASL_classes.json (a list of strings); a plain text file (one class per line) works
too. From one checkpoint, each subset keeps the evaluated split's samples whose label is one of its classes;
rank mode ranks only among that subset's classes; constrained beams decode into that subset's vocabulary;
free beams are shared by all subsets (an out-of-subset output is a miss). Labels are matched to class names
ignoring case and repeated whitespace; candidates use the dataset's own spelling.

    python eval.py --dataset WLASL --task ISLR --finetune ckpt.pth --topk 1,3,5,7,10 --topk-mode rank \\
        --class-lists WLASL_v0.3.json --subsets 100,300,1000,2000 --output_dir out/islr

(eval.py routes any of this module's flags here; this module holds no command line of its own.)

Writes `<split>_islr_topk.json` (metrics per subset) and `<split>_islr_predictions.jsonl` (per sample: the
ranked candidates) to --output_dir and prints `Top-K Accuracies (Per Instance): {1: ..., 3: ...}` per subset
and one table (subset x metrics). See docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.formats import read_labels
from datasets.registry import SPLITS
from datasets.sign_dataset import DeviceBatches, SignDataset, collate_samples
from evaluation.metrics import islr_topk
from models.constrained_decoding import constrained_generate

DEFAULT_KS = (1, 3, 5, 7, 10)
MODES = ("beams", "rank")
BENCHMARK_SIZES = {"WLASL": (100, 300, 1000, 2000), "MSASL": (100, 200, 500, 1000)}
ALL_CLASSES = "all"
# Flags that route `eval.py` to this module.
FLAGS = ("--topk", "--topk-mode", "--class-lists", "--subsets", "--constrained", "--length-penalty",
         "--rank-chunk-size")

MODE_NOTES = {
    "beams": "K-best beam search outputs (num_beams = max(num_beams, max K), all beams returned, identical "
             "strings de-duplicated keeping the best); a sample may have fewer than K distinct candidates",
    "rank": "closed-set ranking of every class label by its sequence log-likelihood (score_candidates)",
}


class ClassListError(ValueError):
    """A class-list file that cannot be read; the message names the file and the entry."""


# --------------------------------------------------------------------------- class lists


def read_wlasl_classes(path) -> list[str]:
    """WLASL_v0.3.json: a list of {"gloss": str, "instances": [...]} -> glosses in file order."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise ClassListError(f"{path}: expected a JSON list of {{gloss, instances}} entries (WLASL_v0.3.json)")
    glosses = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("gloss"), str) or not entry["gloss"].strip():
            raise ClassListError(f"{path}: entry {index} has no non-empty string field 'gloss'")
        glosses.append(entry["gloss"])
    return glosses


def read_msasl_classes(path) -> list[str]:
    """MSASL_classes.json: a list of class names -> names in file order."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise ClassListError(f"{path}: expected a JSON list of class names (MSASL_classes.json)")
    for index, name in enumerate(data):
        if not isinstance(name, str) or not name.strip():
            raise ClassListError(f"{path}: entry {index} is not a non-empty string: {name!r}")
    return list(data)


def _load_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ClassListError(f"{path}: not UTF-8 ({error})") from error
    except json.JSONDecodeError as error:
        raise ClassListError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from error


def read_class_list(path) -> tuple[str, list[str]]:
    """(benchmark, classes) from a WLASL_v0.3.json, an MSASL_classes.json or a text file (one class a line).

    The format is told by the content: a list of {gloss, ...} objects -> WLASL; a list of strings -> MSASL
    when the file name contains "msasl" (MSASL_classes.json), else named after the file stem; other files are
    read as text (one class per line) and named after the file stem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class list {path} does not exist")
    if path.suffix.lower() == ".json":
        data = _load_json(path)
        if isinstance(data, list) and data and all(isinstance(entry, dict) for entry in data):
            return "WLASL", read_wlasl_classes(path)
        if isinstance(data, list) and data and all(isinstance(entry, str) for entry in data):
            return ("MSASL" if "msasl" in path.name.lower() else path.stem), read_msasl_classes(path)
        raise ClassListError(f"{path}: neither WLASL_v0.3.json (list of {{gloss, instances}}) nor "
                             "MSASL_classes.json (list of strings)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ClassListError(f"{path}: not UTF-8 ({error})") from error
    classes = [line.strip() for line in lines if line.strip()]
    if not classes:
        raise ClassListError(f"{path}: no class names")
    return path.stem, classes


def benchmark_subsets(benchmark: str, classes: Sequence[str], sizes: Sequence[int] | None = None) -> dict:
    """{f"{benchmark}{N}": first N classes} for each size (default: the benchmark's standard sizes, or all).

    Duplicate names (same key, see `label_key`) inside a subset are kept once, in first-occurrence order.
    """
    if sizes is None:
        sizes = BENCHMARK_SIZES.get(benchmark, (len(classes),))
    subsets = {}
    for size in sizes:
        if size <= 0 or size > len(classes):
            raise ClassListError(f"subset size {size} is outside 1..{len(classes)} (the class list has "
                                 f"{len(classes)} classes)")
        subsets[f"{benchmark}{size}"] = _unique(classes[:size])
    return subsets


def label_key(text: str) -> str:
    """Matching key of a label: case-folded, whitespace collapsed."""
    return " ".join(text.split()).casefold()


def _unique(texts: Sequence[str]) -> list[str]:
    seen, kept = set(), []
    for text in texts:
        if label_key(text) not in seen:
            seen.add(label_key(text))
            kept.append(text)
    return kept


def align_classes(classes: Sequence[str], dataset_labels: Sequence[str]) -> list[str]:
    """Class names spelled as in the dataset's labels (what the model was trained to output) when they match."""
    spelling = {}
    for label in dataset_labels:
        spelling.setdefault(label_key(label), label)
    return [spelling.get(label_key(name), name) for name in classes]


def ordered_union(groups: Sequence[Sequence[str]]) -> list[str]:
    return dedupe([text for group in groups for text in group])


# --------------------------------------------------------------------------- candidates and scores


def dedupe(texts: Sequence[str]) -> list[str]:
    """Identical strings kept once, first (best) occurrence first."""
    seen, kept = set(), []
    for text in texts:
        if text not in seen:
            seen.add(text)
            kept.append(text)
    return kept


def label_lengths(model, labels: Sequence[str]) -> torch.Tensor:
    """Target tokens per label (including </s>, after the 50-token truncation) -> (C,) float."""
    ids = model.tokenize_targets(labels)
    return (ids != -100).sum(-1).float()


def normalise_scores(summed: torch.Tensor, lengths: torch.Tensor, length_penalty: float) -> torch.Tensor:
    """summed / lengths ** length_penalty (0: the summed log-likelihood, 1: the per-token mean)."""
    if length_penalty == 0:
        return summed
    return summed / lengths.to(summed) ** length_penalty


def rank_labels(scores: torch.Tensor, labels: Sequence[str], k: int) -> list[list[str]]:
    """(N, C) scores -> per row the k best labels, best first; ties keep the label order."""
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, :k]
    return [[labels[j] for j in row] for row in order.tolist()]


@dataclass
class Collected:
    """Per-sample outputs of one pass over a loader."""

    names: list = field(default_factory=list)
    references: list = field(default_factory=list)
    candidates: list = field(default_factory=list)  # beams: per sample [(text, score), ...], best first
    scores: list = field(default_factory=list)  # rank: per batch (B, C) tensors
    skipped: int = 0

    def score_matrix(self) -> torch.Tensor:
        return torch.cat(self.scores) if self.scores else torch.empty(0, 0)


@torch.no_grad()
def collect_beams(model, loader, max_k, num_beams=4, max_new_tokens=None, trie=None, progress=False) -> Collected:
    """K-best beam outputs per sample (free, or constrained to `trie`), de-duplicated, at most max_k each."""
    model.eval()
    beams = max(num_beams, max_k)
    result, batches = Collected(), DeviceBatches(loader, next(model.parameters()).device)
    for batch in tqdm(batches, desc="islr beams", dynamic_ncols=True, disable=not progress):
        if trie is not None:
            outputs = constrained_generate(model, batch["parts"], batch["frame_mask"], trie, num_beams=beams,
                                           max_new_tokens=max_new_tokens, num_return_sequences=beams,
                                           rgb=batch.get("rgb"))
        else:
            outputs = model.generate(batch["parts"], batch["frame_mask"], batch.get("rgb"), num_beams=beams,
                                     max_new_tokens=max_new_tokens, num_return_sequences=beams)
            if beams == 1:  # generate returns plain strings for a single sequence
                outputs = [[(text, float("nan"))] for text in outputs]
        for candidates in outputs:
            seen, kept = set(), []
            for text, score in candidates:
                if text not in seen:
                    seen.add(text)
                    kept.append((text, score))
            result.candidates.append(kept[:max_k])
        result.names += batch["names"]
        result.references += batch["targets"]
    result.skipped = batches.skipped
    return result


@torch.no_grad()
def collect_rank_scores(model, loader, labels, chunk_size=512, length_penalty=0.0, progress=False) -> Collected:
    """Scores of every label for every sample: (N, C) in `Collected.scores` (summed or length-normalised)."""
    model.eval()
    lengths = label_lengths(model, labels)
    result, batches = Collected(), DeviceBatches(loader, next(model.parameters()).device)
    for batch in tqdm(batches, desc="islr rank", dynamic_ncols=True, disable=not progress):
        summed = model.score_candidates(batch["parts"], batch["frame_mask"], list(labels), rgb=batch.get("rgb"),
                                        chunk_size=chunk_size)
        result.scores.append(normalise_scores(summed.float(), lengths.to(summed.device), length_penalty).cpu())
        result.names += batch["names"]
        result.references += batch["targets"]
    result.skipped = batches.skipped
    return result


# --------------------------------------------------------------------------- metrics


def topk_metrics(ranked: Sequence[Sequence[str]], references: Sequence[str], ks: Sequence[int]) -> dict:
    """islr_topk (top{K}_acc_pi / top{K}_acc_pc for each K) plus n and the number of reference classes."""
    metrics = islr_topk(ranked, references, ks)
    return {**metrics, "n": len(references), "classes_in_split": len(set(references))}


def official_topk_lines(metrics: dict, ks: Sequence[int]) -> list[str]:
    """The official-style printout: `Top-K Accuracies (Per Instance): {1: 93.26, 3: ...}` and per class."""
    per_instance = {k: round(metrics[f"top{k}_acc_pi"], 2) for k in ks}
    per_class = {k: round(metrics[f"top{k}_acc_pc"], 2) for k in ks}
    return [f"Top-K Accuracies (Per Instance): {per_instance}", f"Top-K Accuracies (Per Class): {per_class}"]


def format_table(results: dict, fmt: str = "markdown") -> str:
    """One table: a row per subset, columns n, classes, P-I top-K..., P-C top-K..."""
    ks = results["ks"]
    header = ["subset", "samples", "classes"] + [f"P-I top-{k}" for k in ks] + [f"P-C top-{k}" for k in ks]
    rows = []
    for name, metrics in results["subsets"].items():
        if metrics.get("n", 0) == 0:
            rows.append([name, "0", str(metrics["classes"])] + ["-"] * (2 * len(ks)))
            continue
        rows.append([name, str(metrics["n"]), str(metrics["classes"])]
                    + [f"{metrics[f'top{k}_acc_pi']:.2f}" for k in ks]
                    + [f"{metrics[f'top{k}_acc_pc']:.2f}" for k in ks])
    if fmt == "latex":
        lines = [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
                 " & ".join(header) + r" \\", r"\midrule"]
        lines += [" & ".join(row) + r" \\" for row in rows]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# --------------------------------------------------------------------------- the evaluation


@dataclass
class IslrEvalSettings:
    ks: tuple = DEFAULT_KS
    mode: str = "beams"
    constrained: bool = False
    length_penalty: float = 0.0
    chunk_size: int = 512
    num_beams: int = 4
    max_new_tokens: int | None = None
    batch_size: int = 8
    max_length: int = 256
    seed: int = 42
    skip_policy: str = "error"
    num_workers: int = 0
    progress: bool = False
    rgb: dict | None = None  # SignDataset's rgb settings (RGB-pose models), None for pose-only

    def validate(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown top-K mode {self.mode!r}; expected one of {MODES}")
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"K values must be positive integers, not {self.ks}")
        if self.constrained and self.mode != "beams":
            raise ValueError("--constrained applies to --topk-mode beams (rank mode is closed-set already)")


def _loader(entries, pose_dir, settings):
    """Evaluation order, no shuffling (as train.py's dev/test loaders)."""
    extra = {"rgb": settings.rgb} if settings.rgb is not None else {}
    dataset = SignDataset(entries, pose_dir, "ISLR", settings.max_length, settings.seed, settings.skip_policy, **extra)
    return DataLoader(dataset, batch_size=settings.batch_size, shuffle=False, collate_fn=collate_samples,
                      num_workers=settings.num_workers)


def evaluate_topk(model, entries, pose_dir, subsets: dict, settings: IslrEvalSettings) -> tuple[dict, list]:
    """Top-K metrics per subset from one model -> (results dict, per-sample records).

    `subsets`: name -> class labels (dataset spelling). A subset named `ALL_CLASSES` ("all") keeps every
    sample; any other keeps the samples whose label is one of its classes. Samples are loaded once for the
    union of subsets (free beams / rank), or per subset (constrained beams).
    """
    settings.validate()
    ks = tuple(sorted(set(settings.ks)))
    max_k = max(ks)
    keys = {name: {label_key(c) for c in classes} for name, classes in subsets.items()}

    def members(name, references):
        return [i for i, ref in enumerate(references) if name == ALL_CLASSES or label_key(ref) in keys[name]]

    if ALL_CLASSES in subsets:
        selected = list(entries)
    else:
        wanted = set().union(*keys.values())
        selected = [entry for entry in entries if label_key(entry.text) in wanted]
    union = ordered_union(list(subsets.values()))
    results = {"mode": settings.mode, "mode_note": MODE_NOTES[settings.mode], "ks": list(ks),
               "constrained": settings.constrained, "subsets": {}}
    if settings.mode == "rank":
        results["length_penalty"] = settings.length_penalty
    else:
        results["num_beams"] = max(settings.num_beams, max_k)
    records, skipped = [], 0

    shared = None
    if selected and not (settings.mode == "beams" and settings.constrained):
        loader = _loader(selected, pose_dir, settings)
        if settings.mode == "rank":
            shared = collect_rank_scores(model, loader, union, settings.chunk_size, settings.length_penalty,
                                         settings.progress)
        else:
            shared = collect_beams(model, loader, max_k, settings.num_beams, settings.max_new_tokens,
                                   progress=settings.progress)
        skipped = shared.skipped

    for name, classes in subsets.items():
        summary = {"classes": len(classes)}
        if settings.mode == "beams" and settings.constrained:
            from models.constrained_decoding import LabelTrie

            subset_entries = [entry for entry in selected
                              if name == ALL_CLASSES or label_key(entry.text) in keys[name]]
            collected = Collected()
            if subset_entries:
                trie = LabelTrie.from_model(classes, model)
                collected = collect_beams(model, _loader(subset_entries, pose_dir, settings), max_k,
                                          settings.num_beams, settings.max_new_tokens, trie, settings.progress)
                skipped += collected.skipped
            names, references = collected.names, collected.references
            ranked = [[text for text, _ in candidates] for candidates in collected.candidates]
            scores = [[score for _, score in candidates] for candidates in collected.candidates]
        else:
            rows = members(name, shared.references) if shared is not None else []
            names = [shared.names[i] for i in rows] if rows else []
            references = [shared.references[i] for i in rows] if rows else []
            if settings.mode == "rank":
                column_of = {label: j for j, label in enumerate(union)}
                columns = [column_of[c] for c in classes]
                matrix = shared.score_matrix()[rows][:, columns] if rows else torch.empty(0, len(columns))
                order = torch.sort(matrix, dim=-1, descending=True, stable=True).indices[:, :max_k]
                ranked = [[classes[j] for j in row] for row in order.tolist()]
                scores = torch.gather(matrix, 1, order).tolist()
            else:
                ranked = [[text for text, _ in shared.candidates[i]] for i in rows]
                scores = [[score for _, score in shared.candidates[i]] for i in rows]
        if references:
            summary.update(topk_metrics(ranked, references, ks))
        else:
            summary.update(n=0, classes_in_split=0)
        results["subsets"][name] = summary
        records += [{"subset": name, "name": n, "reference": r, "candidates": c,
                     "scores": [None if value != value else value for value in s]}  # NaN: not computed
                    for n, r, c, s in zip(names, references, ranked, scores)]
    results["skipped"] = skipped
    return results, records


def print_results(results: dict, fmt: str = "markdown", out=None) -> None:
    out = out or sys.stdout
    print(f"ISLR top-K, mode '{results['mode']}': {results['mode_note']}"
          + (" (constrained to the subset vocabulary)" if results.get("constrained") else ""), file=out)
    for name, metrics in results["subsets"].items():
        print(f"{name}: {metrics['n']} samples, {metrics['classes']} classes", file=out)
        if metrics["n"]:
            for line in official_topk_lines(metrics, results["ks"]):
                print(line, file=out)
    print(format_table(results, fmt), file=out)


# --------------------------------------------------------------------------- command line


def parse_ks(text: str) -> tuple:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--topk expects comma-separated integers, not {text!r}") from error
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"--topk expects positive integers, not {text!r}")
    return ks


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("ISLR top-K and benchmark subsets (evaluation/islr_topk.py)")
    group.add_argument("--topk", type=parse_ks, default=DEFAULT_KS, help="K values, e.g. 1,3,5,7,10 (default)")
    group.add_argument("--topk-mode", choices=MODES, default="beams",
                       help="beams: K-best beam outputs (default); rank: closed-set ranking of every class label")
    group.add_argument("--length-penalty", type=float, default=0.0,
                       help="rank mode: score = summed log-likelihood / tokens ** A (default 0 = summed; "
                            "1 = per-token mean, as beam search scores finished hypotheses)")
    group.add_argument("--rank-chunk-size", type=int, default=512,
                       help="rank mode: (sample, label) pairs per decoder call")
    group.add_argument("--class-lists", default=None,
                       help="WLASL_v0.3.json, MSASL_classes.json or a text file (one class per line)")
    group.add_argument("--subsets", type=parse_ks, default=None,
                       help="subset sizes (first N classes); default WLASL 100,300,1000,2000 / MSASL 100,200,500,1000")
    group.add_argument("--constrained", action="store_true",
                       help="beams mode: decode only label-vocabulary sequences (prefix trie); off by default")
    group.add_argument("--split", default="test", choices=["train", "dev", "test"], help="split to evaluate")
    group.add_argument("--format", dest="table_format", default="markdown", choices=["markdown", "latex"])
    return parser


def dataset_vocabulary(spec) -> list[str]:
    """Every label text in the dataset's label files (train, dev, test: those present), first occurrence order."""

    paths = [Path(spec.labels[split]) for split in SPLITS if split in spec.labels]
    texts = [entry.text for path in paths if path.is_file() for entry in read_labels(path)]
    if not texts:
        raise FileNotFoundError(f"no label file of dataset '{spec.name}' exists: {', '.join(map(str, paths))}")
    return dedupe(texts)
