"""A preprocessed pose store: every clip of a pose folder read, validated and normalised once.

Reading an official pose file costs an unpickle, per-frame stacking, the file checks and the normalisation on
every visit, every epoch. The store keeps the result in flat memory-mapped arrays beside an index, so a
training sample becomes two slices:

    <pose_dir>/uni_sign_store/index.json       version, file -> {offset, frames, start, end, size, mtime_ns}
                             keypoints.f32      (N_frames, 133, 2) main-signer keypoints (as read_pose_file)
                             scores.f32         (N_frames, 133)
                             body.f32, left.f32, right.f32, face_all.f32
                                                (N_frames, V_part, 3) the normalised parts over the clip's frames

Build it once (`python -m datasets.pose_store --pose-dir DIR`); SignDataset then uses it by itself. A source
file whose size or modification time differs from what the index recorded is read from the file again (the
store never serves stale data) and counted; files that fail to read are left out of the store, so that reading
them raises their own error. The normalised parts are used when a sample takes all frames of its clip
(clips up to --max_length frames); longer clips are normalised over their sampled frames as before.
"""
import argparse
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.formats import POSE_SUFFIXES, DataFormatError, read_pose_file
from datasets.keypoints import NUM_KEYPOINTS, PART_INDICES, PARTS, normalize_parts
from utils.checkpoint import replace_directory

logger = logging.getLogger(__name__)
STORE_DIR_NAME = "uni_sign_store"
STORE_VERSION = 1
ARRAY_SHAPES = {"keypoints": (NUM_KEYPOINTS, 2), "scores": (NUM_KEYPOINTS,),
                **{part: (len(PART_INDICES[part]), 3) for part in PARTS}}


@dataclass
class StoredClip:
    keypoints: np.ndarray  # (T, 133, 2) float32 views into the store
    scores: np.ndarray  # (T, 133)
    parts: dict  # {part: (T, V, 3)}: the parts normalised over frames [start, end)
    start: int
    end: int | None

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    def normalised_parts(self, frame_numbers) -> dict | None:
        """{part: (T, V, 3) float32} when `frame_numbers` are all frames of [start, end), else None."""
        end = self.end if self.end is not None else self.num_frames
        if len(frame_numbers) != end - self.start or frame_numbers[0] != self.start:
            return None
        return {part: values[self.start:end] for part, values in self.parts.items()}


def source_signature(path) -> tuple:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


class PoseStore:
    """Read side of a store. `lookup(path)` -> StoredClip, or None when the file is not (validly) in the store."""

    def __init__(self, store_dir):
        self.store_dir = Path(store_dir)
        index = json.loads((self.store_dir / "index.json").read_text(encoding="utf-8"))
        if index.get("version") != STORE_VERSION:
            raise DataFormatError(f"{self.store_dir}: pose store version {index.get('version')}, expected "
                                  f"{STORE_VERSION}; rebuild it with python -m datasets.pose_store")
        self.pose_dir = Path(index["pose_dir"])
        self.clips = index["clips"]
        self.total_frames = index["total_frames"]
        self._arrays = None
        self._keys = {}  # source path -> its key in the index
        self.stale = set()

    @classmethod
    def find(cls, pose_dir) -> "PoseStore | None":
        """The store built for `pose_dir` (at pose_dir/uni_sign_store), or None."""
        store_dir = Path(pose_dir) / STORE_DIR_NAME
        return cls(store_dir) if (store_dir / "index.json").is_file() else None

    def arrays(self) -> dict:
        """The memory maps, opened on first use (after a DataLoader worker has started, so each has its own)."""
        if self._arrays is None:
            self._arrays = {name: np.memmap(self.store_dir / f"{name}.f32", dtype=np.float32, mode="r",
                                            shape=(self.total_frames, *shape)).view(np.ndarray)  # fast slicing
                            for name, shape in ARRAY_SHAPES.items()} if self.total_frames else {}
        return self._arrays

    def lookup(self, path) -> StoredClip | None:
        key = self._keys.get(path)
        if key is None:
            key = self._keys[path] = os.path.relpath(os.path.abspath(path), os.path.abspath(self.pose_dir))
        record = self.clips.get(key)
        if record is None:
            return None
        try:
            current = source_signature(path)
        except OSError:
            return None
        if list(current) != [record["size"], record["mtime_ns"]]:
            self._note_stale(key)
            return None
        rows = slice(record["offset"], record["offset"] + record["frames"])
        arrays = self.arrays()
        return StoredClip(arrays["keypoints"][rows], arrays["scores"][rows],
                          {part: arrays[part][rows] for part in PARTS}, record["start"], record["end"])

    def _note_stale(self, key):
        if not self.stale:
            logger.warning("pose store %s: '%s' changed since the store was built; changed files are read from "
                           "their source. Rebuild: python -m datasets.pose_store --pose-dir %s",
                           self.store_dir, key, self.pose_dir)
        self.stale.add(key)


# ----------------------------------------------------------------------------- building


def pose_files(pose_dir) -> list:
    """Every pose file under `pose_dir` (relative paths, sorted), the store folder excluded."""
    root = Path(pose_dir)
    files = [path for path in root.rglob("*") if path.suffix in POSE_SUFFIXES and path.is_file()]
    return sorted(str(path.relative_to(root)) for path in files if STORE_DIR_NAME not in path.relative_to(root).parts)


def clip_rows(path, max_frames):
    """({array name: float32 rows}, start, end) of one pose file; parts are zero outside [start, end)."""
    clip = read_pose_file(path, max_frames)
    end = clip.end if clip.end is not None else clip.num_frames
    window = np.arange(clip.start, end)
    normalised = normalize_parts(clip.keypoints[window], clip.scores[window])
    rows = {"keypoints": clip.keypoints, "scores": clip.scores}
    for part in PARTS:
        rows[part] = np.zeros((clip.num_frames, *ARRAY_SHAPES[part]))
        rows[part][window] = normalised[part]
    return {name: np.ascontiguousarray(values, dtype=np.float32) for name, values in rows.items()}, clip.start, clip.end


def build_store(pose_dir, out_dir=None, max_frames=None, progress=True) -> dict:
    """Build (or rebuild) the store of `pose_dir`, atomically; -> {'clips', 'frames', 'failed': {file: error}}."""
    pose_dir = Path(pose_dir).resolve()
    out_dir = Path(out_dir) if out_dir else pose_dir / STORE_DIR_NAME
    building = out_dir.with_name(f"{out_dir.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    handles = {name: open(building / f"{name}.f32", "wb") for name in ARRAY_SHAPES}
    clips, failed, offset = {}, {}, 0
    try:
        for relative in tqdm(pose_files(pose_dir), desc="pose store", unit="clip", disable=not progress):
            source = pose_dir / relative
            try:
                size, mtime_ns = source_signature(source)
                rows, start, end = clip_rows(source, max_frames)
            except (DataFormatError, OSError, ValueError) as error:
                failed[relative] = str(error)
                continue
            for name, values in rows.items():
                handles[name].write(values.tobytes())
            frames = len(rows["keypoints"])
            clips[relative] = {"offset": offset, "frames": frames, "start": start, "end": end,
                               "size": size, "mtime_ns": mtime_ns}
            offset += frames
    finally:
        for handle in handles.values():
            handle.close()
    index = {"version": STORE_VERSION, "pose_dir": str(pose_dir), "total_frames": offset, "clips": clips,
             "failed": failed}
    (building / "index.json").write_text(json.dumps(index), encoding="utf-8")
    replace_directory(building, out_dir)
    return {"store": str(out_dir), "clips": len(clips), "frames": offset, "failed": failed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pose-dir", required=True, action="append",
                        help="a pose folder (repeat for several, e.g. the train/dev/test folders)")
    parser.add_argument("--max-frames", type=int, default=None, help="refuse longer clips (default: no limit)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    for pose_dir in args.pose_dir:
        report = build_store(pose_dir, max_frames=args.max_frames, progress=args.progress)
        print(f"{report['store']}: {report['clips']} clips, {report['frames']} frames"
              + (f", {len(report['failed'])} unreadable files left out (they fail when read)" if report["failed"] else ""))
        for relative, error in list(report["failed"].items())[:10]:
            print(f"  {relative}: {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
