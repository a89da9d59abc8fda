"""Readers and writers for the official Uni-Sign data layout and our safe native layout.

Official layout (read unchanged, through the restricted unpickler):
  - pose file `<name>.pkl`: {'keypoints': T arrays (P, 133, 2) in [0, 1], 'scores': T arrays (P, 133),
    optional 'start'/'end' frame bounds}; P = 1 except on some frames where the extractor saw several people.
  - label file `labels.{train,dev,test}` (WLASL: `labels-2000.*`): gzip pickle, name -> {name, gloss, text, video_path}.
  - CSL-News labels: JSON list of {video, pose, text}.
Native layout (no pickles): labels as JSON Lines `{name, text, gloss, video_path}` and poses as `.npz`
with `keypoints` (T, 133, 2) float32, `scores` (T, 133) float32, optional `start`/`end`.

Every problem raises `DataFormatError` naming the file (and sample/field) and what is wrong.
"""
import gzip
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.clips import DEFAULT_MAX_FRAMES, DataFormatError, PoseClip, check_frame_count
from datasets.keypoints import NUM_KEYPOINTS, PART_INDICES
from datasets.pose_format_files import read_pose_format
from datasets.safe_pickle import safe_load

POSE_SUFFIXES = (".pkl", ".npz", ".pose")
COORDINATE_TOLERANCE = 0.05  # confident points may sit slightly outside the frame
_MAIN_SIGNER_POINTS = PART_INDICES["body"] + PART_INDICES["left"] + PART_INDICES["right"]


@dataclass
class LabelEntry:
    """One sample of a label file."""

    name: str
    text: str
    gloss: str = ""  # glosses joined by single spaces ('' when the dataset has none)
    video_path: str = ""
    pose_path: str = ""  # CSL-News gives the pose file explicitly; otherwise derived from video_path


# ----------------------------------------------------------------------------- poses


def select_main_signer(keypoints, scores):
    """Pick one person per frame from (T, P, 133, 2) / (T, P, 133) arrays.

    Rule: highest mean confidence over the body and both hands (the points Uni-Sign uses most);
    ties (within 1e-6) go to the person whose body points (their mean) are closest to the frame centre.
    Absent persons in ragged input carry score -1 so they are never chosen.
    """
    if keypoints.shape[1] == 1:
        return keypoints[:, 0], scores[:, 0]
    confidence = scores[:, :, _MAIN_SIGNER_POINTS].mean(axis=-1)  # (T, P)
    body = keypoints[:, :, PART_INDICES["body"]]  # (T, P, 9, 2)
    centre_distance = np.linalg.norm(body.mean(axis=2) - 0.5, axis=-1)  # (T, P)
    best = confidence.max(axis=1, keepdims=True)
    candidates = confidence >= best - 1e-6
    chosen = np.where(candidates, centre_distance, np.inf).argmin(axis=1)  # (T,)
    frames = np.arange(keypoints.shape[0])
    return keypoints[frames, chosen], scores[frames, chosen]


def _frame_array(frame, field, index, source, trailing):
    """One frame as a float32 (P, *trailing) array; a frame without the person axis gets P = 1."""
    try:
        array = np.asarray(frame, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise DataFormatError(f"{source}: field '{field}' frame {index} is not a numeric array ({error})") from error
    if array.ndim == len(trailing):
        array = array[None]
    if array.shape[1:] != trailing or array.shape[0] == 0:
        raise DataFormatError(
            f"{source}: field '{field}' frame {index} has shape {array.shape}, expected (P, {', '.join(map(str, trailing))})"
        )
    return array


def _stack_people(frames, field, source, trailing):
    """Stack per-frame (P, 133, ...) arrays into (T, P_max, 133, ...), padding absent people.

    Returns the stacked array and the number of people in each frame.
    """
    arrays = [_frame_array(frame, field, index, source, trailing) for index, frame in enumerate(frames)]
    counts = np.array([array.shape[0] for array in arrays])
    people = int(counts.max())
    if (counts == people).all():
        return np.stack(arrays), counts
    fill = -1.0 if field == "scores" else 0.0
    stacked = np.full((len(arrays), people) + trailing, fill, dtype=np.float32)
    for index, array in enumerate(arrays):
        stacked[index, : array.shape[0]] = array
    return stacked, counts


def _is_frame_sequence(value) -> bool:
    """True for a list/tuple of frames or an array with a frame axis."""
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0)


def _frame_bounds(data, source):
    """The optional official start/end keys as (int, int | None)."""
    try:
        start = int(data.get("start", 0) or 0)
        end = None if data.get("end") is None else int(data["end"])
    except (TypeError, ValueError) as error:
        raise DataFormatError(f"{source}: frame bounds start/end are not integers ({error})") from error
    return start, end


def pose_clip_from_dict(data, source, max_frames=DEFAULT_MAX_FRAMES) -> PoseClip:
    """Validate an official-style pose dict and reduce it to one signer.

    The frame count is checked against `max_frames` first, so a small file whose frames are shared
    references to one array never expands into gigabytes."""
    if not isinstance(data, dict):
        raise DataFormatError(f"{source}: expected a dict with 'keypoints' and 'scores', got {type(data).__name__}")
    for field in ("keypoints", "scores"):
        if field not in data:
            raise DataFormatError(f"{source}: missing field '{field}'")
        if not _is_frame_sequence(data[field]):
            raise DataFormatError(
                f"{source}: field '{field}' is a {type(data[field]).__name__}, expected a sequence of per-frame arrays"
            )
    if len(data["keypoints"]) == 0:
        raise DataFormatError(f"{source}: field 'keypoints' has no frames")
    check_frame_count(len(data["keypoints"]), source, max_frames)
    if len(data["keypoints"]) != len(data["scores"]):
        raise DataFormatError(
            f"{source}: 'keypoints' has {len(data['keypoints'])} frames but 'scores' has {len(data['scores'])}"
        )
    keypoints, keypoint_people = _stack_people(data["keypoints"], "keypoints", source, (NUM_KEYPOINTS, 2))
    scores, score_people = _stack_people(data["scores"], "scores", source, (NUM_KEYPOINTS,))
    mismatch = np.flatnonzero(keypoint_people != score_people)
    if mismatch.size:
        frame = int(mismatch[0])
        raise DataFormatError(
            f"{source}: frame {frame} has {keypoint_people[frame]} people in 'keypoints' "
            f"but {score_people[frame]} in 'scores'"
        )
    for field, array in (("keypoints", keypoints), ("scores", scores)):
        if not np.isfinite(array).all():
            frame = int(np.argwhere(~np.isfinite(array))[0][0])
            raise DataFormatError(f"{source}: field '{field}' has NaN/inf values (first at frame {frame})")
    keypoints, scores = select_main_signer(keypoints, scores)
    start, end = _frame_bounds(data, source)
    if not 0 <= start < (end if end is not None else len(keypoints)) <= len(keypoints):
        raise DataFormatError(f"{source}: frame bounds start={start} end={end} do not fit {len(keypoints)} frames")
    return PoseClip(keypoints, scores, start, end)


def _npz_array_shape(archive, key, path):
    """The shape of `key` in an open .npz archive, read from its .npy header without decompressing the data."""
    with archive.zip.open(f"{key}.npy") as stream:
        version = np.lib.format.read_magic(stream)
        shape, _, _ = np.lib.format._read_array_header(stream, version)
    return shape


def read_pose_npz(path, max_frames=DEFAULT_MAX_FRAMES) -> dict:
    """The arrays of a native .npz pose archive; the frame count is read from the header before any decompression."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "keypoints" in archive.files:
                shape = _npz_array_shape(archive, "keypoints", path)
                check_frame_count(shape[0] if shape else 0, path, max_frames)
            data = {key: archive[key] for key in archive.files}
    except DataFormatError:
        raise
    except Exception as error:
        raise DataFormatError(f"{path}: not a readable .npz archive ({error})") from error
    for key in ("start", "end"):
        if key in data:
            data[key] = int(data[key])
    return data


def read_pose_file(path, max_frames=DEFAULT_MAX_FRAMES) -> PoseClip:
    """Read an official `.pkl`, a native `.npz` or a pose-format `.pose` file (clips over `max_frames` frames are
    refused)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: pose file not found")
    if path.suffix == ".pose":
        return read_pose_format(path, max_frames)
    if path.suffix == ".npz":
        return pose_clip_from_dict(read_pose_npz(path, max_frames), path, max_frames)
    try:
        data = safe_load(path)
    except (ValueError, OSError) as error:
        raise DataFormatError(str(error)) from error
    return pose_clip_from_dict(data, path, max_frames)


def coordinate_range_problem(keypoints, scores, score_threshold) -> str | None:
    """A message when confident points lie outside [0, 1] (pixel coordinates, wrong normalisation), else None."""
    coordinates = keypoints[scores > score_threshold]  # (N, 2) confident points
    outside = ((coordinates < -COORDINATE_TOLERANCE) | (coordinates > 1 + COORDINATE_TOLERANCE)).any(axis=1)
    if not outside.any():
        return None
    values = coordinates[outside]
    return (f"{int(outside.sum())} confident points lie outside [0, 1] (values {values.min():.3g} to "
            f"{values.max():.3g}); keypoints must be x/width, y/height")


def write_pose_pkl(path, keypoints, scores, **extra):
    """Write an official-layout pose pickle: lists of (1, 133, 2) / (1, 133) float32 arrays."""
    data = {
        "keypoints": [frame[None].astype(np.float32) for frame in np.asarray(keypoints)],
        "scores": [frame[None].astype(np.float32) for frame in np.asarray(scores)],
        **extra,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=4)


def write_pose_npz(path, keypoints, scores, **extra):
    """Write a native pose archive: keypoints (T, 133, 2), scores (T, 133), optional start/end."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, keypoints=np.asarray(keypoints, np.float32), scores=np.asarray(scores, np.float32), **extra
    )


def resolve_pose_path(pose_dir, entry: LabelEntry) -> Path:
    """Official rule: pose_dir / video_path with '.mp4' -> '.pkl' (or the label's explicit pose path).

    The result must stay inside pose_dir; a native `.npz` (else a `.pose`) twin is used when the `.pkl` is absent.
    """
    root = Path(os.path.abspath(pose_dir))
    relative = entry.pose_path or (entry.video_path or entry.name).replace(".mp4", ".pkl")
    if not relative.endswith(POSE_SUFFIXES):
        relative += ".pkl"
    path = Path(os.path.normpath(root / relative))  # lexical, so symlinked sub-folders stay usable
    if not path.is_relative_to(root):
        raise DataFormatError(f"sample '{entry.name}': pose path '{relative}' points outside the pose root {root}")
    if not path.exists():
        twin = next((path.with_suffix(suffix) for suffix in (".npz", ".pose") if path.with_suffix(suffix).exists()), None)
        return twin or path
    return path


# ----------------------------------------------------------------------------- labels


def _valid_text(value, name, field, source) -> str:
    """`value` as a string field of sample `name`: a str that encodes as UTF-8 (no lone surrogates)."""
    if isinstance(value, (bytes, bytearray)):
        raise DataFormatError(f"{source}: sample '{name}' field '{field}' is bytes, expected text (decode it as UTF-8)")
    if not isinstance(value, str):
        raise DataFormatError(
            f"{source}: sample '{name}' field '{field}' is {type(value).__name__} {value!r:.40}, expected a string"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataFormatError(
            f"{source}: sample '{name}' field '{field}' is not valid Unicode (lone surrogate "
            f"{value[error.start]!r} at character {error.start})"
        ) from error
    return value


def _gloss_string(value, name, source) -> str:
    """The gloss field: a string, or a list of strings joined by single spaces ('' when absent)."""
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(_valid_text(word, name, "gloss", source) for word in value)
    return _valid_text(value, name, "gloss", source)


def _entry_from_official(name, record, source) -> LabelEntry:
    """A LabelEntry from one record; every field is type-checked and named in the error."""
    if not isinstance(record, dict):
        raise DataFormatError(f"{source}: sample '{name}' is a {type(record).__name__}, expected a dict")
    name = _valid_text(record.get("name", name), name, "name", source)
    if not name.strip():
        raise DataFormatError(f"{source}: a sample has an empty field 'name'")
    text = record.get("text")
    if text is None or (isinstance(text, str) and not text.strip()):
        raise DataFormatError(f"{source}: sample '{name}' field 'text' is empty or missing")
    text = _valid_text(text, name, "text", source)
    gloss = _gloss_string(record.get("gloss"), name, source)
    video_path = _valid_text(record.get("video_path") or f"{name}.mp4", name, "video_path", source)
    pose_path = _valid_text(record.get("pose_path") or "", name, "pose_path", source)
    return LabelEntry(name, text, gloss, video_path, pose_path)


def load_official_records(path) -> dict:
    """The raw name -> record dict of an official label file, through the restricted unpickler."""
    try:
        data = safe_load(path)
    except (ValueError, OSError) as error:
        raise DataFormatError(str(error)) from error
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a dict name -> record, got {type(data).__name__}")
    return data


def read_official_labels(path) -> list[LabelEntry]:
    """Read a gzip-pickled official label file (name -> record), in the file's key order."""
    return [_entry_from_official(name, record, path) for name, record in load_official_records(path).items()]


def load_csl_news_records(path) -> list:
    """The raw JSON list of a CSL-News label file (records not yet validated)."""
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(f"{path}: not a readable JSON label file ({error})") from error
    if not isinstance(records, list):
        raise DataFormatError(f"{path}: expected a JSON list of {{video, pose, text}}")
    return records


def read_csl_news_labels(path) -> list[LabelEntry]:
    """Read CSL-News JSON labels: a list of {video, pose, text}."""
    records = load_csl_news_records(path)
    entries = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not {"video", "pose", "text"} <= set(record):
            raise DataFormatError(f"{path}: item {index} lacks one of the fields video, pose, text")
        video = _valid_text(record["video"], f"item {index}", "video", path)
        native = {"text": record["text"], "video_path": video, "pose_path": record["pose"]}
        entries.append(_entry_from_official(Path(video).stem, native, f"{path}: item {index}"))
    return entries


def native_label_records(path):
    """Yield (line number, record dict or a DataFormatError saying what is wrong) per non-empty JSON Lines line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataFormatError(f"{path}: not a readable UTF-8 text file ({error})") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, DataFormatError(f"invalid JSON ({error})")
            continue
        if not isinstance(record, dict) or "name" not in record:
            yield number, DataFormatError("expected a JSON object with field 'name'")
            continue
        yield number, record


def read_native_labels(path) -> list[LabelEntry]:
    """Read JSON Lines labels: one {name, text, gloss?, video_path?, pose_path?} object per line."""
    entries = []
    for number, record in native_label_records(path):
        if isinstance(record, DataFormatError):
            raise DataFormatError(f"{path}:{number}: {record}")
        entries.append(_entry_from_official(record["name"], record, f"{path}:{number}"))
    return entries


def read_labels(path) -> list[LabelEntry]:
    """Read any supported label file: official gzip pickle, CSL-News JSON, or native JSONL."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: label file not found")
    if path.suffix == ".jsonl":
        entries = read_native_labels(path)
    elif path.suffix == ".json":
        entries = read_csl_news_labels(path)
    else:
        entries = read_official_labels(path)
    if not entries:
        raise DataFormatError(f"{path}: the label file holds no samples")
    return entries


def write_official_labels(path, entries: list[LabelEntry], gloss_as_list=True):
    """Write an official gzip-pickled label file (gloss as a list of words, as CSL-Daily has it)."""
    data = {
        entry.name: {
            "name": entry.name,
            "gloss": entry.gloss.split() if gloss_as_list else entry.gloss,
            "text": entry.text,
            "video_path": entry.video_path,
        }
        for entry in entries
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
        pickle.dump(data, handle, protocol=4)  # mtime=0: same content, same bytes


def write_csl_news_labels(path, entries: list[LabelEntry]):
    """Write CSL-News-style JSON labels."""
    records = [{"video": entry.video_path, "pose": entry.pose_path, "text": entry.text} for entry in entries]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(records, ensure_ascii=False, indent=0), encoding="utf-8")


def write_native_labels(path, entries: list[LabelEntry]):
    """Write JSON Lines labels."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for entry in entries:
            record = {"name": entry.name, "text": entry.text, "gloss": entry.gloss, "video_path": entry.video_path}
            if entry.pose_path:
                record["pose_path"] = entry.pose_path
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
