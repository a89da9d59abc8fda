"""CCL-SLR samples and batches: a pose file (+ its video) -> views (datasets/ccl_views.py) -> fixed-size batches.

A sample is {name, pose: [view, ...] each {part: (T_pose, V, 3)}, rgb: [(T_rgb, 3, S, S), ...] (RGB mode), target}.
Pre-training makes two augmented views per modality (query, key) and reads no label; fine-tuning makes one
augmented view and evaluation one plain view (the whole clip, evenly resampled, no spatial change), with the
target word. A batch is {names, pose: [{parts {p: (B, T_pose, V, 3)}, frame_mask (B, T_pose)}, ...],
rgb: [(B, T_rgb, 3, S, S), ...] or None, targets, skipped[, labels]}.

Every view has the same number of frames, so nothing is padded. A clip whose video is missing or unreadable in
RGB mode raises (or is skipped and counted under skip_policy='skip'): no view is ever a zero tensor.
"""
import functools
from pathlib import Path

import numpy as np
import torch

from datasets.ccl_views import (apply_patch_mask, augment_parts, crop_video, jitter_colours, motion_preserving_mask,
                                normalise_video, random_resized_box, resized_crop, signing_space_box, to_unit_crop,
                                view_frames)
from datasets.keypoints import PARTS, normalize_parts
from datasets.rgb import read_video_frames
from datasets.sign_dataset import SignDataset, counting_skipped

VIEW_MODES = {"pretrain": 2, "finetune": 1, "eval": 1}  # views per sample


class CCLClipDataset(SignDataset):
    """SignDataset's pose reading (store, skip policy, exclusions, frame limit) with CCL-SLR views.

    video_dir: the clips' videos (RGB mode) or None (pose only); mode: 'pretrain', 'finetune' or 'eval'."""

    def __init__(self, entries, pose_dir, settings, video_dir=None, mode="pretrain", seed=42, skip_policy="error",
                 max_frames=None, task="ISLR"):
        if mode not in VIEW_MODES:
            raise ValueError(f"mode must be one of {tuple(VIEW_MODES)}, not {mode!r}")
        super().__init__(entries, pose_dir, task=task, seed=seed, skip_policy=skip_policy, max_frames=max_frames)
        self.settings, self.mode = settings, mode
        self.rgb = {"video_dir": str(video_dir)} if video_dir is not None else None  # the data check's video test

    def _load(self, entry, index):
        clip, stored = self._read_clip(entry)
        start = clip.start
        end = clip.end if clip.end is not None else clip.num_frames
        rng = None if self.mode == "eval" else np.random.default_rng([self.seed, self.epoch, index])
        views = range(VIEW_MODES[self.mode])
        sample = {"name": entry.name, "target": entry.text if self.mode != "pretrain" else None,
                  "pose": [self._pose_view(clip, stored, start, end, rng) for _ in views]}
        if self.rgb is not None:
            settings = self.settings
            frames = [start + view_frames(end - start, settings.rgb_frames, settings, rng, jitter=True) for _ in views]
            decoded, where = np.unique(np.concatenate(frames), return_inverse=True)  # one decode for all views
            pixels = read_video_frames(Path(self.rgb["video_dir"]) / entry.video_path, decoded)  # (N, H, W, 3)
            box = signing_space_box(clip.keypoints[start:end], clip.scores[start:end], pixels.shape[1:3])
            positions = np.split(where, len(frames))
            sample["rgb"] = [self._rgb_view(clip, pixels[at], box, frame_numbers, rng)
                             for at, frame_numbers in zip(positions, frames)]
        return sample

    def _pose_view(self, clip, stored, start, end, rng) -> dict:
        frames = start + view_frames(end - start, self.settings.pose_frames, self.settings, rng)
        parts = stored.normalised_parts(frames) if stored is not None else None
        if parts is None:
            parts = normalize_parts(clip.keypoints[frames], clip.scores[frames])
        parts = {part: np.asarray(values, dtype=np.float32) for part, values in parts.items()}
        if rng is not None:
            parts = augment_parts(parts, self.settings, rng)
        return {part: torch.from_numpy(values) for part, values in parts.items()}

    def _rgb_view(self, clip, pixels, box, frames, rng) -> torch.Tensor:
        """pixels (N, H, W, 3) of the view's `frames` -> (N, 3, S, S): crop, random resized crop, MPM."""
        settings, frame_size = self.settings, pixels.shape[1:3]
        video = crop_video(pixels, box, settings.rgb_size)
        unit_box = (0.0, 0.0, 1.0, 1.0)
        if rng is not None:
            unit_box = random_resized_box(settings, rng)
            video = jitter_colours(resized_crop(video, unit_box), settings, rng)
        video = normalise_video(video)
        if rng is not None and settings.mpm_ratio > 0:
            points = to_unit_crop(clip.keypoints[frames], frame_size, box, unit_box)
            mask = motion_preserving_mask(points, clip.scores[frames], settings.mpm_ratio, settings.mpm_grid, rng)
            video = apply_patch_mask(video, mask)
        return video


@counting_skipped
def collate_ccl(samples, target_encoder=None) -> dict:
    """Stack CCL-SLR samples (same view sizes); skipped (None) samples are dropped and counted."""
    views = len(samples[0]["pose"])
    frames = len(samples[0]["pose"][0]["body"])
    batch = {
        "names": [sample["name"] for sample in samples],
        "pose": [{"parts": {part: torch.stack([s["pose"][v][part] for s in samples]) for part in PARTS},
                  "frame_mask": torch.ones(len(samples), frames, dtype=torch.long)} for v in range(views)],
        "rgb": [torch.stack([s["rgb"][v] for s in samples]) for v in range(views)] if "rgb" in samples[0] else None,
        "targets": [sample["target"] for sample in samples],
    }
    if target_encoder is not None:
        batch["labels"] = target_encoder(batch["targets"])
    return batch


def ccl_collator(target_encoder=None):
    return functools.partial(collate_ccl, target_encoder=target_encoder)
