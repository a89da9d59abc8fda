"""Convert a data set between the official layout (pickles), the native safe layout (JSONL + .npz) and .pose files.

    python -m datasets.convert --labels LABEL_FILE --pose-dir DIR --out OUT_DIR [--to native|pose|official]

--to native (default): OUT_DIR/labels.jsonl ({name, text, gloss, video_path, pose_path}) and
    OUT_DIR/poses/<pose path relative to DIR>.npz holding one signer (the main signer where a frame shows
    several people), with the official start/end bounds kept. Read it back with
    `--labels OUT_DIR/labels.jsonl --pose-dir OUT_DIR/poses`.
--to pose: the same with OUT_DIR/poses/*.pose files of the pose-format library (COCO-WholeBody 133 components,
    pixels of a 256 x 256 frame; the start/end bounds are applied: only those frames are written).
--to official: OUT_DIR/<label file name without .jsonl/.json> as a gzip-pickled official label file and
    OUT_DIR/poses/<video_path with .mp4 -> .pkl>, where the official loader looks for them.

Any readable label format is accepted as input. The first bad sample stops the conversion with its
error; `python -m datasets.check_data` lists every problem of a data set at once.
"""
import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from datasets.formats import (DataFormatError, LabelEntry, PoseClip, read_labels, read_pose_file, resolve_pose_path,
                              write_native_labels, write_official_labels, write_pose_npz, write_pose_pkl)
from datasets.pose_format_files import write_pose_format

NATIVE_LABELS = "labels.jsonl"
PROGRESS_MIN_SAMPLES = 500


def _bounds(clip: PoseClip) -> dict:
    """The clip's start/end as extra pose-file keys (omitted when they are the defaults)."""
    bounds = {"start": clip.start} if clip.start else {}
    if clip.end is not None:
        bounds["end"] = clip.end
    return bounds


def _progress(entries, description):
    return tqdm(entries, desc=description, unit="sample", disable=len(entries) < PROGRESS_MIN_SAMPLES)


def convert_to_native(labels_path, pose_dir, out_dir, pose_format="npz") -> list[LabelEntry]:
    """Write OUT_DIR/labels.jsonl and OUT_DIR/poses/*.npz (or *.pose); returns the written label entries."""
    out_dir, root = Path(out_dir), Path(os.path.abspath(pose_dir))
    converted = []
    for entry in _progress(read_labels(labels_path), f"to {pose_format}"):
        source = resolve_pose_path(pose_dir, entry)
        clip = read_pose_file(source)
        relative = source.relative_to(root).with_suffix(f".{pose_format}")
        if pose_format == "pose":  # no frame bounds in .pose: keep only the clip's frames [start, end)
            frames = slice(clip.start, clip.end)
            write_pose_format(out_dir / "poses" / relative, clip.keypoints[frames], clip.scores[frames])
        else:
            write_pose_npz(out_dir / "poses" / relative, clip.keypoints, clip.scores, **_bounds(clip))
        converted.append(replace(entry, pose_path=relative.as_posix()))
    write_native_labels(out_dir / NATIVE_LABELS, converted)
    return converted


def official_labels_name(labels_path) -> str:
    """labels.dev.jsonl -> labels.dev; an official name is kept."""
    path = Path(labels_path)
    return path.stem if path.suffix in (".jsonl", ".json") else path.name


def convert_to_official(labels_path, pose_dir, out_dir) -> list[LabelEntry]:
    """Write an official gzip-pickled label file and OUT_DIR/poses/*.pkl; returns the written entries."""
    out_poses = Path(out_dir) / "poses"
    converted = []
    for entry in _progress(read_labels(labels_path), "to official"):
        clip = read_pose_file(resolve_pose_path(pose_dir, entry))
        official = replace(entry, pose_path="")  # the official loader derives the pose path from video_path
        write_pose_pkl(resolve_pose_path(out_poses, official), clip.keypoints, clip.scores, **_bounds(clip))
        converted.append(official)
    write_official_labels(Path(out_dir) / official_labels_name(labels_path), converted)
    return converted


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, help="label file (official gzip pickle, CSL-News .json or .jsonl)")
    parser.add_argument("--pose-dir", required=True, help="folder the label paths are relative to")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--to", choices=("native", "pose", "official"), default="native", help="target layout")
    args = parser.parse_args(argv)
    try:
        if args.to == "official":
            entries = convert_to_official(args.labels, args.pose_dir, args.out)
        else:
            entries = convert_to_native(args.labels, args.pose_dir, args.out, "pose" if args.to == "pose" else "npz")
    except DataFormatError as error:
        print(f"convert: {error}", file=sys.stderr)
        print(f"convert: run `python -m datasets.check_data --labels {args.labels} --pose-dir {args.pose_dir}` "
              "to list every problem", file=sys.stderr)
        return 1
    print(f"converted {len(entries)} samples to the {args.to} layout in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
