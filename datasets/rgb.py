"""RGB hand crops for the RGB-pose setting: score-aware frame sampling, hand boxes, crops, collate.

Official behaviour: official_defaults.md sections 4.5-4.7; our switches are documented in
docs/rgb_branch.md. Per video and per hand ('left', 'right'):

1. `score_aware_sample` picks clip positions (low fingertip confidence -> more likely), or [-1].
2. `hand_boxes` gives one square side for all crops of the video and a box per sampled frame.
3. `read_video_frames` decodes only the needed frames (decord random access).
4. `crop_hands` cuts, zero-pads and resizes the crops to 112x112 (PIL bicubic), `normalize_crops`
   applies ToTensor + ImageNet normalisation, `crop_keypoints` maps the hand keypoints into the crop.
`build_rgb_sample` runs the whole chain (optionally through `HandCropCache`), `collate_rgb` batches.
"""
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets.keypoints import FINGERTIPS, PART_INDICES, SCORE_THRESHOLD

HANDS = ("left", "right")
IMAGE_SIZE = 112
BOX_SCALE = 1.2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NO_SAMPLE = np.array([-1], dtype=np.int64)
# train.py flag (argparse dest) -> RGBSampling field
SAMPLING_FLAGS = {"rgb_sample_ratio": "sample_ratio", "sampling_rule": "sampling_rule", "official_crop": "official_crop"}


@dataclass
class RGBSampling:
    """Which frames' hand crops the RGB branch sees, and how they are cut (dataset side; official defaults)."""

    sample_ratio: float = 0.1  # P_samp: share of eligible frames whose hand crops are used
    sampling_rule: str = "official"  # or "paper" (the appendix pseudo-code)
    official_crop: bool = False  # reproduce the official negative-coordinate wrap-around in crops

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RGBSampling":
        """From a dict of these fields (as `to_dict` writes them); absent ones keep their defaults."""
        return cls(**{field.name: values[field.name] for field in fields(cls) if field.name in values})

    @classmethod
    def from_flags(cls, flags: dict) -> "RGBSampling":
        """From train.py's flags (`vars(args)`, or the 'args' a checkpoint records); absent ones keep defaults."""
        return cls.from_dict({field: flags[flag] for flag, field in SAMPLING_FLAGS.items() if flag in flags})


# --------------------------------------------------------------------------- sampling

def score_aware_sample(hand_scores, fingertip_scores, ratio=0.1, rng=None, rule="official"):
    """Clip positions (sorted int64 array) whose hand crop is used, or array([-1]) for none.

    hand_scores (T, 21), fingertip_scores (T, 5); rng a np.random.Generator (None: fresh entropy,
    nondeterministic like the official global-RNG draw).
    rule='official': eligible frames have mean hand score > 0.3; c = min fingertip score;
        w = max(c) - c + 1e-5; k = ceil(ratio * n_eligible) drawn without replacement with p = w / sum(w).
    rule='paper' (appendix A.3 pseudo-code): every frame is a candidate; w = 1 - mean hand score
        (clipped at 0; uniform if all are 0); k = int(ratio * T) drawn WITH replacement
        (random.choices), then duplicates merged; fingertip_scores are not used.
    """
    rng = np.random.default_rng() if rng is None else rng
    hand_scores = np.asarray(hand_scores, dtype=np.float64)
    if rule == "official":
        picked = _official_rule(hand_scores, np.asarray(fingertip_scores, dtype=np.float64), ratio, rng)
    elif rule == "paper":
        picked = _paper_rule(hand_scores, ratio, rng)
    else:
        raise ValueError(f"unknown sampling rule {rule!r} (expected 'official' or 'paper')")
    return np.sort(picked).astype(np.int64) if len(picked) else NO_SAMPLE.copy()


def _official_rule(hand_scores, fingertip_scores, ratio, rng):
    eligible = np.flatnonzero(hand_scores.mean(axis=1) > SCORE_THRESHOLD)
    k = int(np.ceil(ratio * len(eligible)))
    if k == 0:
        return eligible[:0]
    c = fingertip_scores[eligible].min(axis=1)
    w = c.max() - c + 1e-5
    return rng.choice(eligible, size=k, replace=False, p=w / w.sum())


def _paper_rule(hand_scores, ratio, rng):
    n = len(hand_scores)
    k = int(n * ratio)
    if k == 0:
        return np.arange(0)
    w = np.clip(1.0 - hand_scores.mean(axis=1), 0.0, None)
    p = w / w.sum() if w.sum() > 0 else None
    return np.unique(rng.choice(n, size=k, replace=True, p=p))


# --------------------------------------------------------------------------- boxes and crops

def hand_boxes(hand_keypoints, frame_size):
    """Square boxes for the sampled frames of both hands, with one common side.

    hand_keypoints: {'left': (kL, 21, 2), 'right': (kR, 21, 2)} normalised (x, y) of the sampled
    frames (a hand without samples: missing or k = 0); frame_size (H, W).
    side = int(1.2 * max extent in pixels / 2) * 2 over both hands and all their frames; each box is
    centred on the midpoint of that frame's keypoint extent: [x0, y0, x1, y1] = centre -/+ side/2,
    truncated towards zero (the official int16 cast). Returns ({hand: (k, 4) int64}, side).
    """
    h, w = frame_size
    centres, extent = {}, 0.0
    for part, kp in hand_keypoints.items():
        kp = np.asarray(kp, dtype=np.float64)
        if len(kp) == 0:
            continue
        lo, hi = kp.min(axis=1), kp.max(axis=1)  # (k, 2)
        centres[part] = (hi + lo) / 2 * (w, h)  # (k, 2) pixels
        size = (hi - lo) * (w, h)
        extent = max(extent, size[:, 0].max(), size[:, 1].max())
    side = int(extent * BOX_SCALE / 2) * 2
    boxes = {part: np.trunc(np.concatenate([c - side / 2, c + side / 2], axis=1)).astype(np.int64)
             for part, c in centres.items()}
    return boxes, side


def crop_hands(frames, boxes, side, image_size=IMAGE_SIZE, official_crop=False):
    """Cut each box out of its frame, pad to side x side, resize -> uint8 (k, image_size, image_size, 3).

    frames (k, H, W, 3) uint8 RGB, boxes (k, 4) [x0, y0, x1, y1].
    Default: the box is clamped to the frame and the missing part is zero (black) on the side where
    the box leaves the frame, so pixels stay aligned with `crop_keypoints`; a box entirely outside
    gives a black crop. official_crop=True reproduces the official numpy slicing: a negative x0/y0
    counts from the far edge (usually an empty or wrong crop) and the result is padded at the
    bottom/right only.
    """
    cut = _official_cut if official_crop else _clamped_cut
    out = np.empty((len(frames), image_size, image_size, 3), dtype=np.uint8)
    for i, (frame, box) in enumerate(zip(frames, boxes)):
        crop = Image.fromarray(cut(frame, box, side)).convert("RGB")
        out[i] = np.asarray(crop.resize((image_size, image_size), Image.Resampling.BICUBIC))
    return out


def _official_cut(frame, box, side):
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = frame[y0:y1, x0:x1]
    pad = ((0, max(0, side - crop.shape[0])), (0, max(0, side - crop.shape[1])), (0, 0))
    return np.pad(crop, pad)


def _clamped_cut(frame, box, side):
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = frame.shape[:2]
    canvas = np.zeros((side, side, 3), dtype=frame.dtype)
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if fx1 > fx0 and fy1 > fy0:
        canvas[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    return canvas


def crop_keypoints(keypoints, boxes, side, frame_size):
    """Normalised frame keypoints (k, 21, 2) -> crop coordinates / side, clipped to [0, 1] (float32)."""
    h, w = frame_size
    px = np.asarray(keypoints, dtype=np.float64) * (w, h) - boxes[:, None, :2]
    return np.clip(px / side, 0.0, 1.0).astype(np.float32)


def normalize_crops(crops):
    """uint8 (k, S, S, 3) -> float32 (k, 3, S, S): ToTensor ([0, 1]) then ImageNet mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div(255)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# --------------------------------------------------------------------------- video

def read_video_frames(video_path, frame_numbers):
    """Decode only `frame_numbers` (any order, repeats allowed) -> uint8 (N, H, W, 3) RGB.

    Raises FileNotFoundError for a missing file, ValueError for an unreadable video, for frame
    numbers outside the video (naming its length and the largest requested index) and for frames
    that fail to decode (naming them).
    """
    from decord import DECORDError, VideoReader, cpu

    path = Path(video_path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    frame_numbers = [int(f) for f in frame_numbers]
    try:
        reader = VideoReader(str(path), ctx=cpu(0), num_threads=1)
    except (DECORDError, RuntimeError) as err:
        raise ValueError(f"cannot open video {path}: {err}") from err
    length = len(reader)
    if frame_numbers and (max(frame_numbers) >= length or min(frame_numbers) < 0):
        raise ValueError(f"video {path} has {length} frames but frame {max(frame_numbers)} "
                         f"(smallest {min(frame_numbers)}) was requested; is the video shorter than its pose file?")
    if not frame_numbers:
        height, width = reader[0].shape[:2] if length else (0, 0)
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    try:
        return reader.get_batch(frame_numbers).asnumpy()
    except (DECORDError, RuntimeError):
        bad = [f for f in sorted(set(frame_numbers)) if not _decodes(reader, f)]
        raise ValueError(f"video {path}: frames {bad or frame_numbers} could not be decoded") from None


def _decodes(reader, frame):
    try:
        reader.get_batch([frame]).asnumpy()
        return True
    except Exception:  # decord raises various error types for broken frames
        return False


# --------------------------------------------------------------------------- cache

class HandCropCache:
    """On-disk cache of a video's uint8 hand crops and crop keypoints (one `.npz` per key).

    The key covers everything the crops depend on: the video (resolved path, mtime, size), the
    sampled frame numbers and keypoints of both hands, the crop size and the crop mode. Files are
    written to a temporary name and moved into place with os.replace, so concurrent data-loader
    workers never see a partial file; an unreadable file counts as a miss.
    """

    VERSION = 1

    def __init__(self, cache_dir):
        self.cache_dir = Path(cache_dir)

    @classmethod
    def make_key(cls, video_path, frames, keypoints, image_size, official_crop):
        """frames / keypoints: {hand: sampled real frame numbers (k,) / normalised keypoints (k, 21, 2)}."""
        stat = Path(video_path).stat()
        digest = hashlib.sha256()
        digest.update(json.dumps({
            "version": cls.VERSION, "video": str(Path(video_path).resolve()), "mtime_ns": stat.st_mtime_ns,
            "size": stat.st_size, "frames": {h: [int(f) for f in frames[h]] for h in sorted(frames)},
            "image_size": image_size, "official_crop": bool(official_crop),
        }, sort_keys=True).encode())
        for hand in sorted(keypoints):
            digest.update(np.ascontiguousarray(keypoints[hand], dtype=np.float64).tobytes())
        return digest.hexdigest()

    def _path(self, key):
        return self.cache_dir / key[:2] / f"{key}.npz"

    def load(self, key):
        """{name: array} stored under `key`, or None."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError):
            return None

    def save(self, key, arrays):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------- sample and collate

def build_rgb_sample(video_path, keypoints, scores, frame_numbers, ratio=0.1, rng=None, cache=None,
                     official_crop=False, rule="official", image_size=IMAGE_SIZE):
    """Sample hand frames of one clip and crop them from its video.

    keypoints (T, 133, 2) normalised x/W, y/H; scores (T, 133); frame_numbers (T,) the real video
    frame of each clip position. Returns, for hand in ('left', 'right'):
        {hand}_sampled_indices  (k,) int64 clip positions, or [-1]
        {hand}_hands            (k, 3, S, S) float32 normalised crops (placeholder: one zero image)
        {hand}_skeletons_norm   (k, 21, 2) float32 keypoints in the crop, [0, 1] (placeholder: zeros)
    A hand without eligible frames gets the placeholder (if neither hand has one, the video is not
    read); if the common box side is 0 both hands get it. With a `cache`, crops are read from /
    written to it and a hit does not touch the video.
    """
    keypoints, scores = np.asarray(keypoints, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
    positions = {h: score_aware_sample(scores[:, PART_INDICES[h]], scores[:, FINGERTIPS[h]], ratio, rng, rule)
                 for h in HANDS}
    positions = {h: p for h, p in positions.items() if p[0] >= 0}
    if not positions:
        return _assemble({}, image_size)
    hand_kp = {h: keypoints[p][:, PART_INDICES[h]] for h, p in positions.items()}  # {hand: (k, 21, 2)}
    args = (video_path, positions, hand_kp, frame_numbers, image_size, official_crop)
    crops = _make_crops(*args) if cache is None else _cached_crops(cache, *args)
    return _assemble(crops, image_size)


def _cached_crops(cache, video_path, positions, hand_kp, frame_numbers, image_size, official_crop):
    frames = {h: frame_numbers[p] for h, p in positions.items()}
    key = HandCropCache.make_key(video_path, frames, hand_kp, image_size, official_crop)
    stored = cache.load(key)
    if stored is not None:
        return _unpack(stored, positions)
    crops = _make_crops(video_path, positions, hand_kp, frame_numbers, image_size, official_crop)
    cache.save(key, _pack(crops))
    return crops


def _make_crops(video_path, positions, hand_kp, frame_numbers, image_size, official_crop):
    """{hand: (positions, uint8 crops, crop keypoints)} for the hands with samples ({} if side is 0)."""
    needed = np.unique(np.concatenate(list(positions.values())))
    frames = read_video_frames(video_path, frame_numbers[needed])  # (M, H, W, 3)
    row = {int(p): i for i, p in enumerate(needed)}
    frame_size = frames.shape[1:3]
    boxes, side = hand_boxes(hand_kp, frame_size)
    if side == 0:
        return {}
    crops = {}
    for hand, pos in positions.items():
        hand_frames = frames[[row[int(p)] for p in pos]]
        crops[hand] = (pos, crop_hands(hand_frames, boxes[hand], side, image_size, official_crop),
                       crop_keypoints(hand_kp[hand], boxes[hand], side, frame_size))
    return crops


def _pack(crops):
    arrays = {"hands": np.array(sorted(crops))}
    for hand, (_, images, kp) in crops.items():
        arrays[f"{hand}_crops"], arrays[f"{hand}_keypoints"] = images, kp
    return arrays


def _unpack(stored, positions):
    return {str(h): (positions[str(h)], stored[f"{h}_crops"], stored[f"{h}_keypoints"]) for h in stored["hands"]}


def _assemble(crops, image_size):
    sample = {}
    for hand in HANDS:
        if hand in crops:
            pos, images, kp = crops[hand]
            sample[f"{hand}_sampled_indices"] = torch.as_tensor(pos, dtype=torch.long)
            sample[f"{hand}_hands"] = normalize_crops(images)
            sample[f"{hand}_skeletons_norm"] = torch.from_numpy(kp)
        else:
            sample[f"{hand}_sampled_indices"] = torch.as_tensor(NO_SAMPLE, dtype=torch.long)
            sample[f"{hand}_hands"] = torch.zeros(1, 3, image_size, image_size)
            sample[f"{hand}_skeletons_norm"] = torch.zeros(1, 21, 2)
    return sample


def collate_rgb(samples):
    """Batch `build_rgb_sample` outputs. Per hand:
        {hand}_sampled_indices (N,) long, {hand}_hands (N, 3, S, S), {hand}_skeletons_norm (N, 21, 2),
        {hand}_rgb_len list of per-video counts (the official keys; placeholders included), and for
        `models.pgf.fuse_hand_features`: {hand}_valid (N,) bool (False for the -1 placeholders),
        {hand}_sample_index / {hand}_frame_index (M,) long, the video and clip position of each
        valid crop (M = valid.sum(); use rgb_maps[valid] and skeletons_norm[valid] with them).
    """
    batch = {}
    for hand in HANDS:
        indices = [s[f"{hand}_sampled_indices"] for s in samples]
        lengths = [len(i) for i in indices]
        flat = torch.cat(indices)
        valid = flat >= 0
        owner = torch.repeat_interleave(torch.arange(len(samples)), torch.tensor(lengths))
        batch[f"{hand}_sampled_indices"] = flat
        batch[f"{hand}_hands"] = torch.cat([s[f"{hand}_hands"] for s in samples])
        batch[f"{hand}_skeletons_norm"] = torch.cat([s[f"{hand}_skeletons_norm"] for s in samples])
        batch[f"{hand}_rgb_len"] = lengths
        batch[f"{hand}_valid"] = valid
        batch[f"{hand}_sample_index"] = owner[valid]
        batch[f"{hand}_frame_index"] = flat[valid]
    return batch
