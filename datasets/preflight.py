"""Check every split a run will use before its first step (train.py's data check).

A missing dev pose file or a text the tokenizer cannot encode must stop a run before it trains, not
after an epoch. `check_splits` runs check_data's per-sample checks over the samples of each split
(label fields, pose file present, readable, shapes, NaN, frame limit), plus what only a run knows: the
task's target field and the tokenizer. Pose file findings are cached per file, keyed by its size and
mtime (`cache_file`), so a second run over the same data re-reads nothing.

Problems stop the run (skip policy 'error') or mark their samples to be skipped and counted (policy
'skip'); coordinates outside [0, 1] and negative scores are warnings, one per file.
"""
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from datasets.check_data import FindingsCache, Report, check_entries
from datasets.formats import DataFormatError
from datasets.tasks import get_task

WARNING_KINDS = ("coordinate-range", "score-range")
CACHE_ENV = "UNI_SIGN_CACHE"


def cache_file(pose_dir) -> Path:
    """The findings cache of one pose folder: $UNI_SIGN_CACHE (default ~/.cache/uni-sign)/data_checks/<hash>.json."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "uni-sign")
    digest = hashlib.sha1(os.path.abspath(pose_dir).encode("utf-8")).hexdigest()[:16]
    return root / "data_checks" / f"{digest}.json"


@dataclass
class SplitData:
    """What the check needs of one split: its name, label file (for messages) and dataset (SignDataset)."""

    split: str
    label_file: str
    dataset: object  # datasets.sign_dataset.SignDataset


@dataclass
class Preflight:
    problems: list = field(default_factory=list)  # [(split, Issue)]
    warnings: list = field(default_factory=list)  # [(split, Issue)]
    bad_samples: dict = field(default_factory=dict)  # split -> {sample name}
    samples: int = 0
    seconds: float = 0.0


def _target_issues(report, dataset, tokenizer):
    """The task's target field must exist (CSLR: gloss) and encode with the tokenizer."""
    from datasets.sign_dataset import target_text

    for index, entry in enumerate(dataset.entries):
        try:
            target = target_text(entry, dataset.task)
        except DataFormatError as error:
            report.problem(index, report.labels, "gloss", "missing-target", str(error), entry.name)
            continue
        if tokenizer is None:
            continue
        try:
            tokenizer(target)
        except Exception as error:  # noqa: BLE001 (any tokenizer failure is this sample's problem)
            field_name = get_task(dataset.task).target_field
            report.problem(index, report.labels, field_name, "untokenizable",
                           f"sample '{entry.name}' cannot be tokenised ({type(error).__name__}: {error})", entry.name)


def _video_issues(report, dataset):
    """RGB runs: every sample's video must exist (opened later; decoding all is too costly here)."""
    if dataset.rgb is None:
        return
    video_dir = Path(dataset.rgb["video_dir"])
    for index, entry in enumerate(dataset.entries):
        if not (video_dir / entry.video_path).is_file():
            report.problem(index, video_dir / entry.video_path, "video_path", "missing-video",
                           f"video not found for sample '{entry.name}' (RGB mode needs it)", entry.name)


def check_split(data: SplitData, tokenizer, max_frames) -> Report:
    """check_data's report for one split's samples, plus target and tokenizer checks."""
    dataset = data.dataset
    report = Report(data.label_file, str(dataset.pose_dir), dataset.max_length, max_frames)
    report.samples = len(dataset.entries)
    records = [(entry.name, entry) for entry in dataset.entries]
    cache = FindingsCache(cache_file(dataset.pose_dir))
    check_entries(report, records, dataset.pose_dir, cache, progress_label=data.split)
    _target_issues(report, dataset, tokenizer)
    _video_issues(report, dataset)
    return report


def check_splits(splits, tokenizer=None, max_frames=None) -> Preflight:
    """Check every SplitData; a sample's problem counts once per split it is in."""
    started, result = time.time(), Preflight()
    for data in splits:
        report = check_split(data, tokenizer, max_frames)
        result.samples += report.samples
        for issue in report.problems:
            (result.warnings if issue.kind in WARNING_KINDS else result.problems).append((data.split, issue))
            if issue.kind not in WARNING_KINDS:
                result.bad_samples.setdefault(data.split, set()).add(issue.sample)
    result.seconds = time.time() - started
    return result


def format_issues(issues, limit=20) -> list[str]:
    """'[split] FILE: FIELD: message' lines, at most `limit`, then a count of the rest."""
    lines = [f"[{split}] {issue.line()}" for split, issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"... and {len(issues) - limit} more")
    return lines


def write_issues(path, issues):
    """All issues, one line each, to a text file in the run folder."""
    Path(path).write_text("".join(f"[{split}] {issue.line()}\n" for split, issue in issues), encoding="utf-8")

