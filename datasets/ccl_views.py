"""CCL-SLR's views of a clip: spatio-temporal augmentation of poses and RGB, and Motion-Preserving Masking.

Pose view: a temporal crop (a random window of at least `temporal_crop` of the clip), resampled to
`pose_frames`; one random 2x2 transform (rotation, shear, scale) of every part's normalised x, y; joint
dropout (a joint's x, y and score zeroed over the whole view, as a missed detection looks).

RGB view: the signing-space crop of the clip (one square box around the confident body, hand and face points of
all frames, enlarged by BOX_SCALE), a temporal crop with jittered frame positions (`rgb_frames`), a random
resized crop (area share in `crop_scale`), colour jitter and random grey (one draw per view, all frames alike),
ImageNet normalisation, then MPM.

MPM (Motion-Preserving Masking): the crop is cut into `mpm_grid` x `mpm_grid` patches. Motion per patch is the
sum of the speeds of the arm and hand joints (pose velocities between consecutive view frames) that fall in
it. Patches holding any arm, hand or face joint in any frame are always kept; of the others, the
`mpm_ratio` share of all patches with the least motion (ties in random order) is set to 0 (the mean colour
after normalisation) in every frame of the view. Everything is vectorised over frames and joints.
"""
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from datasets.keypoints import SCORE_THRESHOLD
from datasets.rgb import IMAGENET_MEAN, IMAGENET_STD

BOX_SCALE = 1.2
ARM_JOINTS = np.arange(5, 11)  # shoulders, elbows, wrists (COCO-WholeBody)
HAND_JOINTS = np.arange(91, 133)
FACE_JOINTS = np.concatenate([np.arange(0, 5), np.arange(23, 91)])
MOTION_JOINTS = np.concatenate([ARM_JOINTS, HAND_JOINTS])
KEPT_JOINTS = np.concatenate([ARM_JOINTS, HAND_JOINTS, FACE_JOINTS])
SIGNING_JOINTS = np.concatenate([np.arange(0, 11), np.arange(23, 133)])  # upper body, face, hands


@dataclass
class ViewSettings:
    """How CCL-SLR's views are made (the train_ccl.py flags of the same names)."""

    pose_frames: int = 32
    rgb_frames: int = 16
    rgb_size: int = 112
    temporal_crop: float = 0.6  # smallest share of the clip a view keeps
    rotation_degrees: float = 15.0
    shear: float = 0.2
    scale_range: tuple = (0.8, 1.2)
    joint_dropout: float = 0.1
    crop_scale: tuple = (0.6, 1.0)  # RGB random resized crop: share of the crop's area kept
    color_jitter: float = 0.4  # brightness, contrast and saturation factors in [1 - j, 1 + j] (0: off)
    grayscale: float = 0.2  # probability of a grey view
    mpm_ratio: float = 0.5  # share of patches MPM may mask (0: MPM off)
    mpm_grid: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- time

def temporal_window(num_frames, min_share, rng) -> tuple:
    """A random window [start, end) of at least ceil(min_share * num_frames) frames (>= 1)."""
    shortest = max(1, int(np.ceil(min_share * num_frames)))
    length = int(rng.integers(shortest, num_frames + 1))
    start = int(rng.integers(0, num_frames - length + 1))
    return start, start + length


def resample(start, end, count, rng=None) -> np.ndarray:
    """`count` frame indices spread evenly over [start, end); with `rng` each is jittered within its slot."""
    slots = np.linspace(start, end, count + 1)
    positions = (slots[:-1] + slots[1:]) / 2 if rng is None else rng.uniform(slots[:-1], slots[1:])
    return np.clip(np.floor(positions), start, end - 1).astype(np.int64)


def view_frames(num_frames, count, settings: ViewSettings, rng, jitter=False) -> np.ndarray:
    """Frame indices of a view: the whole clip evenly (rng None, evaluation) or a random temporal crop."""
    if rng is None:
        return resample(0, num_frames, count)
    start, end = temporal_window(num_frames, settings.temporal_crop, rng)
    return resample(start, end, count, rng if jitter else None)


# --------------------------------------------------------------------------- poses

def affine_matrix(settings: ViewSettings, rng) -> np.ndarray:
    """rotation @ shear @ scale, a random (2, 2) matrix."""
    angle = np.deg2rad(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-settings.shear, settings.shear)],
                      [rng.uniform(-settings.shear, settings.shear), 1.0]])
    return rotation @ shear @ np.diag(rng.uniform(*settings.scale_range, size=2))


def augment_parts(parts: dict, settings: ViewSettings, rng) -> dict:
    """Normalised parts {p: (T, V, 3)} -> the same shapes, transformed by one random matrix, joints dropped."""
    matrix = affine_matrix(settings, rng)
    augmented = {}
    for part, values in parts.items():
        values = np.array(values, dtype=np.float32)
        values[..., :2] = np.clip(values[..., :2] @ matrix.T.astype(np.float32), -1.0, 1.0)
        dropped = rng.random(values.shape[1]) < settings.joint_dropout  # (V,)
        values[:, dropped] = 0.0
        augmented[part] = values
    return augmented


# --------------------------------------------------------------------------- RGB

def signing_space_box(keypoints, scores, frame_size, threshold=SCORE_THRESHOLD) -> np.ndarray:
    """One square box (x0, y0, side) in pixels around the clip's confident upper-body, face and hand points.

    keypoints (T, 133, 2) as x/W, y/H; frame_size (H, W). The whole frame when no point is confident."""
    height, width = frame_size
    points = keypoints[:, SIGNING_JOINTS] * np.array([width, height], dtype=np.float32)
    confident = points[scores[:, SIGNING_JOINTS] > threshold]
    if len(confident) == 0:
        side = max(height, width)
        return np.array([(width - side) / 2, (height - side) / 2, side], dtype=np.float32)
    low, high = confident.min(0), confident.max(0)
    side = max(float((high - low).max()) * BOX_SCALE, 16.0)
    centre = (low + high) / 2
    return np.array([centre[0] - side / 2, centre[1] - side / 2, side], dtype=np.float32)


def crop_video(frames: np.ndarray, box, size) -> torch.Tensor:
    """uint8 frames (N, H, W, 3) -> float (N, 3, size, size) in [0, 1]: the box (zero outside the frame),
    resized bilinearly."""
    x0, y0, side = (int(round(v)) for v in box)
    count, height, width = frames.shape[:3]
    crop = np.zeros((count, side, side, 3), dtype=np.uint8)
    top, left, bottom, right = max(0, y0), max(0, x0), min(height, y0 + side), min(width, x0 + side)
    if bottom > top and right > left:
        crop[:, top - y0: bottom - y0, left - x0: right - x0] = frames[:, top:bottom, left:right]
    video = torch.from_numpy(crop).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, side, side)
    return F.interpolate(video, size=(size, size), mode="bilinear", align_corners=False)


def random_resized_box(settings: ViewSettings, rng) -> np.ndarray:
    """(u0, v0, w, h) in unit crop coordinates: area share in crop_scale, aspect ratio in [3/4, 4/3]."""
    area = rng.uniform(*settings.crop_scale)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    width, height = min(1.0, np.sqrt(area * aspect)), min(1.0, np.sqrt(area / aspect))
    return np.array([rng.uniform(0, 1 - width), rng.uniform(0, 1 - height), width, height])


def resized_crop(video: torch.Tensor, unit_box) -> torch.Tensor:
    """(N, 3, S, S) -> the unit box of every frame, resized back to S x S."""
    size = video.shape[-1]
    u0, v0, w, h = unit_box
    x0, y0 = int(u0 * size), int(v0 * size)
    x1, y1 = max(x0 + 1, int(round((u0 + w) * size))), max(y0 + 1, int(round((v0 + h) * size)))
    return F.interpolate(video[:, :, y0:y1, x0:x1], size=(size, size), mode="bilinear", align_corners=False)


def jitter_colours(video: torch.Tensor, settings: ViewSettings, rng) -> torch.Tensor:
    """(N, 3, S, S) in [0, 1]: one random brightness, contrast and saturation change (in random order) for all
    frames, then grey with probability `grayscale`. Keeps a view from being told apart by a signer's colours."""
    strength = settings.color_jitter
    for change in rng.permutation(3):
        factor = float(rng.uniform(1 - strength, 1 + strength))
        if change == 0:
            video = video * factor
        elif change == 1:
            video = (video - video.mean(dim=(1, 2, 3), keepdim=True)) * factor + video.mean(dim=(1, 2, 3), keepdim=True)
        else:
            grey = luminance(video)
            video = (video - grey) * factor + grey
    if rng.random() < settings.grayscale:
        video = luminance(video).expand_as(video)
    return video.clamp(0.0, 1.0)


def luminance(video: torch.Tensor) -> torch.Tensor:
    """(N, 3, S, S) -> (N, 1, S, S) ITU-R 601 luma."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=video.dtype).view(1, 3, 1, 1)
    return (video * weights).sum(1, keepdim=True)


def to_unit_crop(keypoints, frame_size, box, unit_box=(0.0, 0.0, 1.0, 1.0)) -> np.ndarray:
    """Keypoints (N, J, 2) as x/W, y/H -> coordinates in [0, 1] of the (resized) crop's view."""
    height, width = frame_size
    pixels = keypoints * np.array([width, height], dtype=np.float32)
    unit = (pixels - box[:2]) / box[2]
    return (unit - np.asarray(unit_box[:2])) / np.asarray(unit_box[2:])


def normalise_video(video: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (video - mean) / std


# --------------------------------------------------------------------------- MPM

def patch_index(points, grid) -> np.ndarray:
    """Unit crop coordinates (..., 2) -> flat patch index (...), -1 outside the crop."""
    cells = np.floor(points * grid).astype(np.int64)
    inside = ((cells >= 0) & (cells < grid)).all(-1)
    return np.where(inside, cells[..., 1] * grid + cells[..., 0], -1)


def motion_preserving_mask(points, scores, ratio, grid, rng, threshold=SCORE_THRESHOLD) -> np.ndarray:
    """points (N, 133, 2) in unit crop coordinates, scores (N, 133) -> (grid, grid) bool, True = masked."""
    confident = scores > threshold
    cells = np.where(confident, patch_index(points, grid), -1)  # (N, 133)
    kept = np.zeros(grid * grid, dtype=bool)
    kept_cells = cells[:, KEPT_JOINTS]
    kept[kept_cells[kept_cells >= 0]] = True
    motion = np.zeros(grid * grid)
    if len(points) > 1:
        speeds = np.linalg.norm(np.diff(points[:, MOTION_JOINTS], axis=0), axis=-1)  # (N - 1, J)
        moving = confident[1:, MOTION_JOINTS] & confident[:-1, MOTION_JOINTS]
        where = cells[1:, MOTION_JOINTS]
        valid = moving & (where >= 0)
        motion = np.bincount(where[valid], weights=speeds[valid], minlength=grid * grid)
    candidates = np.flatnonzero(~kept)
    count = min(len(candidates), int(round(ratio * grid * grid)))
    order = candidates[rng.permutation(len(candidates))]  # random order among equal motion
    masked = np.zeros(grid * grid, dtype=bool)
    masked[order[np.argsort(motion[order], kind="stable")[:count]]] = True
    return masked.reshape(grid, grid)


def apply_patch_mask(video: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    """(N, 3, S, S) with the True patches of a (G, G) mask set to 0 in every frame."""
    size, grid = video.shape[-1], mask.shape[0]
    rows = np.minimum(np.arange(size) * grid // size, grid - 1)
    pixel_mask = torch.from_numpy(mask[rows][:, rows])  # (S, S)
    return video.masked_fill(pixel_mask, 0.0)
