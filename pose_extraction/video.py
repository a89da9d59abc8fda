"""Reading video frames for pose extraction (OpenCV, sequential decoding).

Frames are decoded one after the other until the decoder stops: the container's frame count and frame
rate are only reported, never trusted, so variable-frame-rate files and files with a wrong header count
give one pose per decoded frame. Frames larger than `max_side` are downscaled (aspect kept) before
detection; keypoints are stored as x/W, y/H, so the scale does not change them.
"""
from dataclasses import dataclass
from pathlib import Path

import cv2

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
DEFAULT_MAX_SIDE = 1280


class VideoReadError(RuntimeError):
    """A video cannot be opened or yields no frame; the message names the file."""


@dataclass
class VideoInfo:
    width: int  # of the original frames
    height: int
    fps: float  # as declared by the container (0 when unknown)
    declared_frames: int  # CAP_PROP_FRAME_COUNT, may be wrong or 0


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def find_videos(root):
    """A video file -> [it]; a folder -> its videos (recursively, sorted)."""
    root = Path(root)
    if root.is_dir():
        return sorted(path for path in root.rglob("*") if path.is_file() and is_video(path))
    return [root]


def downscale(frame, max_side=DEFAULT_MAX_SIDE):
    """Shrink a (H, W, 3) frame so that its longer side is at most `max_side` (None/0: never)."""
    height, width = frame.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return frame
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def open_video(path):
    """(cv2.VideoCapture, VideoInfo) or VideoReadError."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"{path}: cannot be opened as a video (unreadable file or unsupported codec)")
    info = VideoInfo(
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        declared_frames=max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
    )
    return capture, info


def iter_frames(capture, max_side=DEFAULT_MAX_SIDE):
    """Yield BGR frames (H', W', 3) uint8, downscaled to `max_side`, until the decoder stops."""
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield downscale(frame, max_side)
