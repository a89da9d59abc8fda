"""Validate a label file against its pose directory before training.

    python -m datasets.check_data --labels LABEL_FILE --pose-dir DIR [--max-length 256]

Any supported label format is accepted (official gzip pickle, CSL-News .json, native .jsonl). Every sample
is checked: the label parses and has a text, its name is unique, its paths stay inside their root, its
pose file exists, is a safe pickle (unsafe ones are reported, never executed) or a readable .npz, has the
expected shapes, no NaN, at least one frame, coordinates in [0, 1] and non-negative scores.
Notes (not errors): clips longer than --max-length (they are randomly sub-sampled), frames holding several
people (the main signer is chosen), and scores above 1 (RTMPose emits them; the normalisation clips them).

Prints a summary table, then one line per problem `FILE: FIELD: what is wrong`; exits 0 when there is no
problem and 1 otherwise. `check_dataset` returns the same information as a `Report` for tests and scripts.
"""
import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from datasets.formats import (DEFAULT_MAX_FRAMES, DataFormatError, PoseClip, _entry_from_official,
                              coordinate_range_problem, load_csl_news_records, load_official_records,
                              native_label_records, pose_clip_from_dict, read_pose_file, resolve_pose_path)
from datasets.keypoints import SCORE_THRESHOLD
from datasets.safe_pickle import UnsafePickleError, safe_load

PROGRESS_MIN_SAMPLES = 500  # show a progress bar from this many samples on


@dataclass
class Issue:
    """One problem or note: the file it concerns, the field, its kind and a readable message."""

    file: str
    field: str
    kind: str
    message: str
    sample: str = ""  # the sample it concerns, when one does

    def line(self) -> str:
        named = not self.sample or f"'{self.sample}'" in self.message
        return f"{self.file}: {self.field}: {self.message}" + ("" if named else f" (sample '{self.sample}')")


@dataclass
class Report:
    """Everything check_dataset found; `problems` empty means the data set is clean."""

    labels: str
    pose_dir: str
    max_length: int
    max_frames: int | None = DEFAULT_MAX_FRAMES
    samples: int = 0
    problems: list[Issue] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)  # frames used per readable clip (end - start)
    text_chars: list[int] = field(default_factory=list)
    text_words: list[int] = field(default_factory=list)
    multi_person_frames: int = 0
    bad_samples: set[int] = field(default_factory=set)  # indices of samples with at least one problem

    @property
    def ok(self) -> int:
        return self.samples - len(self.bad_samples)

    @property
    def clean(self) -> bool:
        return not self.problems

    def problem(self, index, file, field_name, kind, message, sample=""):
        self.problems.append(Issue(str(file), field_name, kind, message, sample))
        if index is not None:
            self.bad_samples.add(index)

    def note(self, file, field_name, kind, message):
        self.notes.append(Issue(str(file), field_name, kind, message))


# ----------------------------------------------------------------------------- label records


def _parse_record(name, record, where):
    """(sample name, LabelEntry or the DataFormatError the official record parser raised); `where` prefixes errors."""
    try:
        entry = _entry_from_official(name, record, where)
    except DataFormatError as error:
        return name, error
    return entry.name, entry


def _official_records(path):
    return [_parse_record(str(name), record, path) for name, record in load_official_records(path).items()]


def _csl_news_records(path):
    records = load_csl_news_records(path)
    parsed = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not {"video", "pose", "text"} <= set(record):
            parsed.append((f"item {index}", DataFormatError(f"item {index} lacks one of the fields video, pose, text")))
            continue
        native = {"text": record["text"], "video_path": record["video"], "pose_path": record["pose"]}
        name = Path(record["video"]).stem if isinstance(record["video"], str) else f"item {index}"
        parsed.append(_parse_record(name, native, f"item {index}"))
    return parsed


def _native_records(path):
    parsed = []
    for number, record in native_label_records(path):
        if isinstance(record, DataFormatError):
            parsed.append((f"line {number}", DataFormatError(f"line {number}: {record}")))
        else:
            parsed.append(_parse_record(str(record["name"]), record, f"line {number}"))
    return parsed


def label_records(path):
    """Parse a label file record by record, keeping going after a bad record.

    Returns [(sample name, LabelEntry or DataFormatError)]; raises DataFormatError when the file as a
    whole cannot be read. The format is chosen as formats.read_labels chooses it (by suffix).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: label file not found")
    if path.suffix == ".jsonl":
        return _native_records(path)
    if path.suffix == ".json":
        return _csl_news_records(path)
    return _official_records(path)


# ----------------------------------------------------------------------------- pose checks


def _strip_source(message, source):
    """Drop the leading '<file>: ' that formats.py errors carry (the report names the file itself)."""
    return message.removeprefix(f"{source}: ")


def _field_of(message, default):
    found = re.search(r"field '(\w+)'", message)
    return found.group(1) if found else default


def _pose_error_kind(message):
    """Classify a formats.DataFormatError raised while reading a pose file."""
    for needle, kind in (
        ("not a readable", "corrupt-file"),
        ("NaN", "nan"),
        ("has no frames", "zero-frames"),
        ("frame bounds", "bad-bounds"),
        ("more than the limit", "too-long"),
    ):
        if needle in message:
            return kind
    return "bad-shape"


def _load_pose(path, max_frames=DEFAULT_MAX_FRAMES):
    """Read one pose file; returns (PoseClip, number of frames holding several people)."""
    if path.suffix != ".pkl":
        return read_pose_file(path, max_frames), 0
    data = safe_load(path)
    clip = pose_clip_from_dict(data, path, max_frames)
    multi = sum(np.ndim(frame) == 3 and len(frame) > 1 for frame in data["keypoints"])
    return clip, int(multi)


def _value_issues(clip: PoseClip):
    """(field, kind, message) for coordinates outside the frame and negative scores."""
    outside = coordinate_range_problem(clip.keypoints, clip.scores, SCORE_THRESHOLD)
    if outside:
        yield "keypoints", "coordinate-range", outside
    if (clip.scores < 0).any():
        negative = int((clip.scores < 0).sum())
        yield "scores", "score-range", f"{negative} scores are negative (min {clip.scores.min():.3g})"


def _read_findings(path, max_frames) -> dict:
    """Read one pose file; its findings: problems [(field, kind, message)], notes, frames used, multi-person frames."""
    findings = {"problems": [], "notes": [], "frames": None, "multi": 0, "total_frames": 0}
    try:
        clip, multi = _load_pose(path, max_frames)
    except UnsafePickleError as error:
        findings["problems"].append(("pickle", "unsafe-pickle", _strip_source(str(error), path) + " (not executed)"))
        return findings
    except DataFormatError as error:
        message = _strip_source(str(error), path)
        kind = _pose_error_kind(message)
        field_name = _field_of(message, "start/end" if kind == "bad-bounds" else "pose")
        findings["problems"].append((field_name, kind, message))
        return findings
    except (ValueError, OSError) as error:  # safe_load: truncated or corrupt pickle / gzip
        findings["problems"].append(("pickle", "corrupt-file", _strip_source(str(error), path)))
        return findings
    findings["problems"] += list(_value_issues(clip))
    findings["frames"] = (clip.end if clip.end is not None else clip.num_frames) - clip.start
    findings["total_frames"], findings["multi"] = clip.num_frames, multi
    above = int((clip.scores > 1).sum())
    if above:
        findings["notes"].append(("scores", "score-above-1",
                                  f"{above} scores above 1 (the normalisation clips them to 1)"))
    return findings


class FindingsCache:
    """Per pose file findings kept in a JSON file, reused while the file's size and mtime are unchanged."""

    VERSION = 1

    def __init__(self, path=None):
        self.path = Path(path) if path else None
        self.entries, self.changed = {}, False
        if self.path and self.path.is_file():
            try:
                saved = json.loads(self.path.read_text(encoding="utf-8"))
                self.entries = saved["files"] if saved.get("version") == self.VERSION else {}
            except (ValueError, KeyError, TypeError):
                self.entries = {}  # an unreadable cache is rebuilt, never trusted

    def findings(self, path, max_frames) -> dict:
        stat = path.stat()
        key = [stat.st_size, stat.st_mtime_ns, max_frames]
        cached = self.entries.get(str(path))
        if cached is not None and cached["key"] == key:
            return cached["findings"]
        findings = _read_findings(path, max_frames)
        self.entries[str(path)] = {"key": key, "findings": findings}
        self.changed = True
        return findings

    def save(self):
        if not (self.path and self.changed):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"version": self.VERSION, "files": self.entries}), encoding="utf-8")
        os.replace(temporary, self.path)


def _check_pose(report, index, entry, pose_dir, cache):
    """Check the pose file of one parsed label entry and record its problems, notes and statistics."""
    path_field = "pose_path" if entry.pose_path else "video_path"
    try:
        path = resolve_pose_path(pose_dir, entry)
    except DataFormatError as error:
        report.problem(index, report.labels, path_field, "outside-root", str(error), entry.name)
        return
    shown = Path(pose_dir) / path.relative_to(os.path.abspath(pose_dir))
    if not path.is_file():
        report.problem(index, shown, path_field, "missing-pose", f"pose file not found for sample '{entry.name}'",
                       entry.name)
        return
    findings = cache.findings(path, report.max_frames)
    for field_name, kind, message in findings["problems"]:
        report.problem(index, shown, field_name, kind, message, entry.name)
    for field_name, kind, message in findings["notes"]:
        report.note(shown, field_name, kind, message)
    if findings["frames"] is not None:
        _record_pose_stats(report, shown, findings)


def _record_pose_stats(report, shown, findings):
    """Frame count, and the notes: long clip, multi-person frames."""
    used, multi = findings["frames"], findings["multi"]
    report.frames.append(used)
    if used > report.max_length:
        report.note(shown, "keypoints", "long-clip", f"{used} frames, randomly sub-sampled to {report.max_length}")
    if multi:
        report.multi_person_frames += multi
        report.note(shown, "keypoints", "multi-person",
                    f"{multi} of {findings['total_frames']} frames hold several people")


def _outside_root(relative) -> bool:
    """True when a relative path from a label is absolute or climbs out of its root with '..'."""
    path = PurePosixPath(relative.replace("\\", "/"))
    return path.is_absolute() or os.path.normpath(path).startswith("..")


# ----------------------------------------------------------------------------- driver


def _check_label(report, index, entry):
    """Label-level checks of one parsed entry: text statistics and a video path that stays in its root."""
    report.text_chars.append(len(entry.text))
    report.text_words.append(len(entry.text.split()))
    if entry.pose_path and _outside_root(entry.video_path):
        report.problem(
            index, report.labels, "video_path", "outside-root",
            f"sample '{entry.name}': video path '{entry.video_path}' points outside the video root",
        )


def _check_duplicates(report, records):
    """One problem per sample name used more than once; every copy counts as a bad sample."""
    positions = defaultdict(list)
    for index, (name, _) in enumerate(records):
        positions[name].append(index)
    for name, indices in positions.items():
        if len(indices) > 1:
            message = f"sample name '{name}' appears {len(indices)} times"
            report.problem(indices[0], report.labels, "name", "duplicate-name", message)
            report.bad_samples.update(indices)


def check_entries(report, records, pose_dir, cache=None, progress_label="checking"):
    """Per-sample checks of parsed records [(name, LabelEntry or DataFormatError)]: the label record, then
    (when the pose directory exists) its pose file; `cache` (FindingsCache) skips files already checked."""
    cache = cache or FindingsCache()
    poses_present = Path(pose_dir).is_dir()
    if not poses_present:
        report.problem(None, pose_dir, "pose_dir", "missing-pose-dir", "pose directory not found; pose files not checked")
    progress = tqdm(records, desc=progress_label, unit="sample", disable=len(records) < PROGRESS_MIN_SAMPLES)
    for index, (_, entry) in enumerate(progress):
        if isinstance(entry, DataFormatError):
            message = _strip_source(str(entry), report.labels)
            kind = "empty-text" if "field 'text' is empty" in message else "bad-record"
            report.problem(index, report.labels, _field_of(message, "record"), kind, message)
            continue
        _check_label(report, index, entry)
        if poses_present:
            _check_pose(report, index, entry, pose_dir, cache)
        else:
            report.bad_samples.add(index)
    cache.save()


def check_dataset(labels_path, pose_dir, max_length=256, max_frames=DEFAULT_MAX_FRAMES, cache_path=None) -> Report:
    """Check every sample of `labels_path` against `pose_dir`; see the module docstring.

    cache_path: optional JSON file of per pose file findings (reused while a file's size and mtime hold)."""
    report = Report(str(Path(labels_path)), str(pose_dir), max_length, max_frames)
    try:
        records = label_records(labels_path)
    except DataFormatError as error:
        report.problem(None, report.labels, "labels", "unreadable-labels", _strip_source(str(error), report.labels))
        return report
    report.samples = len(records)
    if not records:
        report.problem(None, report.labels, "labels", "no-samples", "the label file holds no samples")
    _check_duplicates(report, records)
    _note_plain_pickle(report)
    check_entries(report, records, pose_dir, FindingsCache(cache_path))
    return report


def _note_plain_pickle(report):
    """Official label files are gzip pickles; a plain pickle is accepted (the same restricted unpickler reads it)."""
    path = Path(report.labels)
    if path.suffix not in (".json", ".jsonl") and path.read_bytes()[:2] != b"\x1f\x8b":
        report.note(path, "labels", "plain-pickle", "a plain (not gzip-compressed) pickle: accepted")


def _stats(values):
    """'min / mean / max' of a list of counts."""
    if not values:
        return "-"
    return f"{min(values)} / {np.mean(values):.1f} / {max(values)}"


def format_summary(report: Report) -> str:
    """The summary table printed by the command line."""
    kinds = Counter(issue.kind for issue in report.problems)
    notes = Counter(issue.kind for issue in report.notes)
    rows = [
        ("labels", report.labels),
        ("pose dir", report.pose_dir),
        ("samples", report.samples),
        ("ok", report.ok),
        ("problems", len(report.problems)),
        *((f"  {kind}", count) for kind, count in sorted(kinds.items())),
        ("frames min / mean / max", _stats(report.frames)),
        (f"clips > max_length {report.max_length} (note)", notes["long-clip"]),
        ("text chars min / mean / max", _stats(report.text_chars)),
        ("text words min / mean / max", _stats(report.text_words)),
        ("multi-person frames (note)", f"{report.multi_person_frames} in {notes['multi-person']} files"),
        ("files with scores > 1 (note)", notes["score-above-1"]),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.check_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, help="label file (official gzip pickle, CSL-News .json or .jsonl)")
    parser.add_argument("--pose-dir", required=True, help="folder the label paths are relative to")
    parser.add_argument("--max-length", type=int, default=256, help="frames per clip before sub-sampling (a note)")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                        help="longer clips are reported, never read into memory (default %(default)s)")
    args = parser.parse_args(argv)
    report = check_dataset(args.labels, args.pose_dir, args.max_length, args.max_frames)
    print(format_summary(report))
    if report.clean:
        print("OK: no problems found")
        return 0
    print(f"\n{len(report.problems)} problem(s):")
    for issue in report.problems:
        print(issue.line())
    return 1


if __name__ == "__main__":
    sys.exit(main())
