"""COCO-WholeBody keypoint layout and the official Uni-Sign normalisation.

Everything here is vectorised over frames (numpy); see official_defaults.md section 4.

Layout of the 133 points: body 0-16, feet 17-22, face 23-90, left hand 91-111, right hand 112-132.
Uni-Sign keeps four part groups (69 points): body (9), left hand (21), right hand (21), face (18).
"""
import random

import numpy as np

NUM_KEYPOINTS = 133
SCORE_THRESHOLD = 0.3

# Part index lists in the official order (the ModuleDict order of the model: body, left, right, face_all).
PART_INDICES = {
    # nose, left/right ear, left/right shoulder, left/right elbow, left/right wrist
    "body": [0, 3, 4, 5, 6, 7, 8, 9, 10],
    "left": list(range(91, 112)),  # 91 = left wrist (root)
    "right": list(range(112, 133)),  # 112 = right wrist (root)
    # every other jaw point, the 8 inner-lip points, the nose tip (root, last)
    "face_all": [23, 25, 27, 29, 31, 33, 35, 37, 39] + list(range(83, 91)) + [53],
}
PARTS = tuple(PART_INDICES)

# Index (within the part) of the point the part is made relative to; the body has no root.
PART_ROOT = {"left": 0, "right": 0, "face_all": -1}

# Fingertips (thumb, index, middle, ring, little) used by score-aware RGB sampling.
FINGERTIPS = {"left": [95, 99, 103, 107, 111], "right": [116, 120, 124, 128, 132]}


def crop_scale(body, threshold=SCORE_THRESHOLD):
    """Map the body into [-1, 1] with one square box over the whole clip.

    body: (T, 9, 3) array of (x, y, score). Returns (normalised body, scale s); s = 0 when fewer than
    4 (frame, joint) entries are confident or the box is degenerate, and then the body is all zeros.
    """
    valid = body[..., 2] > threshold  # (T, 9)
    if valid.sum() < 4:
        return np.zeros_like(body), 0.0
    xs, ys = body[..., 0][valid], body[..., 1][valid]
    xmin, xmax, ymin, ymax = xs.min(), xs.max(), ys.min(), ys.max()
    scale = max(xmax - xmin, ymax - ymin)
    if scale == 0:
        return np.zeros_like(body), 0.0
    out = body.copy()
    out[..., 0] = (2 * body[..., 0] - xmin - xmax) / scale
    out[..., 1] = (2 * body[..., 1] - ymin - ymax) / scale
    return out, float(scale)


def _clip_and_threshold(part, threshold=SCORE_THRESHOLD):
    """Clip (x, y, score) to [-1, 1], then zero the whole triple where the clipped score <= threshold."""
    part = np.clip(part, -1.0, 1.0)
    part[part[..., 2] <= threshold] = 0.0
    return part


def normalize_parts(keypoints, scores, threshold=SCORE_THRESHOLD):
    """Official per-part normalisation of one clip.

    keypoints: (T, 133, 2) x/W, y/H in [0, 1]; scores: (T, 133).
    Returns {part: float64 array (T, V_part, 3)} for body, left, right, face_all.
    """
    points = np.concatenate([keypoints, scores[..., None]], axis=-1).astype(np.float64)  # (T, 133, 3)
    body, scale = crop_scale(points[:, PART_INDICES["body"]], threshold)
    parts = {"body": _clip_and_threshold(body, threshold)}
    for name in ("left", "right", "face_all"):
        part = points[:, PART_INDICES[name]].copy()  # (T, V, 3)
        if scale == 0:
            parts[name] = np.zeros_like(part)
            continue
        root = part[:, PART_ROOT[name], :2]  # (T, 2), whatever its score
        part[..., :2] = (part[..., :2] - root[:, None, :]) / scale
        parts[name] = _clip_and_threshold(part, threshold)
    return parts


def sample_frame_indices(num_frames, max_length, rng: random.Random):
    """Official sub-sampling: all frames when T <= max_length, else a sorted uniform random subset."""
    if num_frames <= max_length:
        return np.arange(num_frames)
    return np.array(sorted(rng.sample(range(num_frames), max_length)))
