"""Official-format prediction / reference files, and scoring them.

One sample per line, UTF-8, in evaluation order:
    sample: <name>, prediction: <text>      (`<split>_pres.txt`)
    sample: <name>, ground-truth: <text>    (`<split>_refs.txt`)

Names may contain ', ' or ':' (OpenASL names hold timestamps such as
`Mci9oyb5V2E-00:00:05.333-00:00:11.166.mp4`), so a line is split at the LAST occurrence of the
marker; the text therefore must not contain the marker (the writer refuses such text). An empty
text is allowed (a model may output nothing); its line may end in the marker with or without
the trailing space. A final newline at the end of the file is optional; a trailing '\\r' (CRLF
file) is dropped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from datasets.tasks import get_task
from evaluation.metrics import csl_daily_postprocess, islr_accuracy, translation_metrics, wer

PREDICTION = "prediction"
GROUND_TRUTH = "ground-truth"
SAMPLE_PREFIX = "sample: "
SCORERS = {"translation": translation_metrics, "wer": wer, "accuracy": islr_accuracy}  # Task.scoring -> metrics


def _marker(field: str) -> str:
    """The separator between name and text, e.g. ', prediction: '."""
    if field not in (PREDICTION, GROUND_TRUTH):
        raise ValueError(f"field must be {PREDICTION!r} or {GROUND_TRUTH!r}, not {field!r}")
    return f", {field}: "


def format_line(name: str, text: str, field: str) -> str:
    """One official-format line (without newline); ValueError if it could not be read back."""
    marker = _marker(field)
    for what, value in (("name", name), ("text", text)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"sample {name!r}: the {what} contains a line break")
    if not name:
        raise ValueError("a sample name must not be empty")
    if marker in text:
        raise ValueError(f"sample {name!r}: the text contains the marker {marker!r}")
    return f"{SAMPLE_PREFIX}{name}{marker}{text}"


def parse_line(line: str, field: str) -> tuple[str, str]:
    """Split one line (no line ending) into (name, text); ValueError naming what is missing."""
    marker = _marker(field)
    if not line.startswith(SAMPLE_PREFIX):
        raise ValueError(f"missing the {SAMPLE_PREFIX!r} prefix")
    body = line[len(SAMPLE_PREFIX):]
    if body.endswith(marker.rstrip(" ")) and marker not in body:
        body += " "  # empty text whose trailing space was stripped
    name, found, text = body.rpartition(marker)
    if not found:
        raise ValueError(f"missing the {marker.strip()!r} marker")
    if not name:
        raise ValueError("empty sample name")
    return name, text


def _decoded_lines(path: Path) -> list[str]:
    """The file's lines as str, each decoded strictly as UTF-8 (ValueError names the line)."""
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    decoded = []
    for number, raw in enumerate(lines, start=1):
        try:
            decoded.append(raw.decode("utf-8").removesuffix("\r"))
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    return decoded


def read_official_file(path: str | Path, field: str) -> list[tuple[str, str]]:
    """Ordered (name, text) pairs of an official-format file with the given field.

    ValueError (naming the file and line) for: non-UTF-8 bytes, an empty line, a line without
    the 'sample: ' prefix or the field marker, an empty name, a duplicate sample name.
    """
    path = Path(path)
    samples: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_decoded_lines(path), start=1):
        if not line:
            raise ValueError(f"{path}:{number}: empty line")
        try:
            name, text = parse_line(line, field)
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {err}") from None
        if name in first_line:
            raise ValueError(f"{path}:{number}: duplicate sample {name!r} (first on line {first_line[name]})")
        first_line[name] = number
        samples.append((name, text))
    return samples


def write_official_file(path: str | Path, samples: Iterable[tuple[str, str]], field: str) -> None:
    """Write (name, text) pairs as official-format lines, each ending in a newline."""
    lines = [format_line(name, text, field) + "\n" for name, text in samples]
    Path(path).write_text("".join(lines), encoding="utf-8")


def read_predictions(path: str | Path) -> list[tuple[str, str]]:
    """(name, prediction) pairs of a `*_pres.txt` file."""
    return read_official_file(path, PREDICTION)


def read_references(path: str | Path) -> list[tuple[str, str]]:
    """(name, ground truth) pairs of a `*_refs.txt` file."""
    return read_official_file(path, GROUND_TRUTH)


def write_predictions(path: str | Path, samples: Iterable[tuple[str, str]]) -> None:
    """Write a `*_pres.txt` file from (name, prediction) pairs."""
    write_official_file(path, samples, PREDICTION)


def write_references(path: str | Path, samples: Iterable[tuple[str, str]]) -> None:
    """Write a `*_refs.txt` file from (name, ground truth) pairs."""
    write_official_file(path, samples, GROUND_TRUTH)


def pair_predictions(pred_file: str | Path, ref_file: str | Path) -> tuple[list[str], list[str], list[str]]:
    """Read both files and return (names, hypotheses, references), checked line by line.

    ValueError when the files are empty, when a line's sample names differ (naming the line
    and both names) or when the counts differ (naming the first unmatched sample).
    """
    preds, refs = read_predictions(pred_file), read_references(ref_file)
    for number, ((pred_name, _), (ref_name, _)) in enumerate(zip(preds, refs), start=1):
        if pred_name != ref_name:
            raise ValueError(f"line {number}: sample {pred_name!r} in {pred_file} "
                             f"but {ref_name!r} in {ref_file}")
    if len(preds) != len(refs):
        longer, path = (preds, pred_file) if len(preds) > len(refs) else (refs, ref_file)
        extra = min(len(preds), len(refs))
        raise ValueError(f"{pred_file} has {len(preds)} samples but {ref_file} has {len(refs)}; "
                         f"first unmatched: {path}:{extra + 1} sample {longer[extra][0]!r}")
    if not preds:
        raise ValueError(f"{pred_file} and {ref_file} hold no samples")
    return [name for name, _ in preds], [text for _, text in preds], [text for _, text in refs]


def score_files(pred_path: str | Path, ref_path: str | Path, task: str,
                char_level: bool = False, symmetric_punct: bool = False) -> dict:
    """Score an official-format prediction/reference pair; always includes `n` (samples).

    task 'SLT' -> bleu1..bleu4, rouge_l; 'CSLR' -> wer, del_rate, ins_rate, sub_rate;
    'ISLR' -> top1_acc_pi, top1_acc_pc. `char_level` (SLT only) applies the official
    CSL-Daily post-processing first (idempotent, so already processed files score the same);
    `symmetric_punct` (needs char_level) folds full-width punctuation on both sides.
    """
    task = get_task(task)
    if char_level and not task.char_level_scoring:
        raise ValueError(f"char_level post-processing applies to the SLT task only, not {task.name}")
    if symmetric_punct and not char_level:
        raise ValueError("symmetric_punct is part of the char_level post-processing")
    _, hyps, refs = pair_predictions(pred_path, ref_path)
    return score_texts(hyps, refs, task, char_level, symmetric_punct)


def score_texts(hyps: list[str], refs: list[str], task: str,
                char_level: bool = False, symmetric_punct: bool = False) -> dict:
    """The task's metrics on paired texts (see `score_files`); always includes `n`."""
    if char_level:
        processed = [csl_daily_postprocess(h, r, symmetric_punct) for h, r in zip(hyps, refs)]
        hyps, refs = [h for h, _ in processed], [r for _, r in processed]
    scores = SCORERS[get_task(task).scoring](hyps, refs)
    return {**scores, "n": len(hyps)}
