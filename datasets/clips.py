"""A pose clip (one signer's keypoints), the data error every reader raises, and the frame limit.

The readers (datasets/formats.py: .pkl, .npz; datasets/pose_format_files.py: .pose) all return a `PoseClip`.
"""
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_FRAMES = 100_000  # longer clips are refused before their frames are stacked (hostile or broken files)


class DataFormatError(ValueError):
    """A data file is missing, unreadable or malformed; the message names the file and the problem."""


@dataclass
class PoseClip:
    """One clip's keypoints for a single signer."""

    keypoints: np.ndarray  # (T, 133, 2) float32, x/W and y/H
    scores: np.ndarray  # (T, 133) float32 confidences
    start: int = 0  # official optional frame bounds: the clip is frames [start, end)
    end: int | None = None

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]


def check_frame_count(frames, source, max_frames=DEFAULT_MAX_FRAMES):
    """Refuse a clip longer than `max_frames` before anything is stacked (None: no limit)."""
    if max_frames is not None and frames > max_frames:
        raise DataFormatError(
            f"{source}: field 'keypoints' has {frames} frames, more than the limit of {max_frames} "
            f"(raise it with --max-frames if the clip is genuine)"
        )
