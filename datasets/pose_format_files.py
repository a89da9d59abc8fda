"""`.pose` files of the `pose-format` library (sign-language-datasets, `video_to_pose`, the pose viewer), both ways.

Reading (`read_pose_format`) accepts three component layouts and maps them to COCO-WholeBody 133 through
datasets/layouts.py (the mapping the MediaPipe backend uses for Holistic):

  holistic        POSE_LANDMARKS (33), FACE_LANDMARKS (468/478), LEFT_HAND_LANDMARKS, RIGHT_HAND_LANDMARKS (21)
                  [+ POSE_WORLD_LANDMARKS, ignored]: what `video_to_pose` (MediaPipe) writes
  coco_wholebody  BODY (23), FACE (68), LEFT_HAND, RIGHT_HAND (21): what `write_pose_format` writes
  openpose_137    pose_keypoints_2d (25), face_keypoints_2d (70), hand_left_keypoints_2d, hand_right_keypoints_2d

pose-format stores pixels (x, y) with the frame size in the header; they are divided by it (x/W, y/H).
Missing points (masked, confidence 0) get score 0. The first person of a multi-person file is used.
Writing (`write_pose_format`) uses pose-format's own COCO-WholeBody 133 header, so the file opens in its viewer.
"""
from pathlib import Path

import numpy as np

from datasets.clips import DEFAULT_MAX_FRAMES, DataFormatError, PoseClip, check_frame_count
from datasets.layouts import assemble_wholebody, holistic_to_wholebody_frames, openpose_to_wholebody_frames

LAYOUTS = {
    "holistic": ("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"),
    "coco_wholebody": ("BODY", "FACE", "LEFT_HAND", "RIGHT_HAND"),
    "openpose_137": ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d"),
}
TO_WHOLEBODY = {"holistic": holistic_to_wholebody_frames, "coco_wholebody": assemble_wholebody,
                "openpose_137": openpose_to_wholebody_frames}
DEFAULT_SIZE = (256, 256)  # pixels a normalised clip is written at when the video's size is unknown


def import_pose_format():
    try:
        import pose_format
    except ImportError as error:
        raise DataFormatError("reading or writing .pose files needs the pose-format package: "
                              "pip install --no-deps -r requirements-pose.txt") from error
    return pose_format


def read_pose_format(path, max_frames=DEFAULT_MAX_FRAMES) -> PoseClip:
    """A `.pose` file as one signer's COCO-WholeBody keypoints (T, 133, 2) in [0, 1] and scores (T, 133)."""
    pose_format = import_pose_format()
    try:
        pose = pose_format.Pose.read(Path(path).read_bytes())
    except Exception as error:  # the library raises struct/value/index errors on a broken file
        raise DataFormatError(f"{path}: not a readable .pose file ({type(error).__name__}: {error})") from error
    header, body = pose.header, pose.body
    layout = find_layout(path, [component.name for component in header.components])
    frames = body.data.shape[0]
    if frames == 0:
        raise DataFormatError(f"{path}: the .pose file has no frames")
    check_frame_count(frames, path, max_frames)
    size = np.array([header.dimensions.width or 1, header.dimensions.height or 1], np.float32)
    parts = [component_points(pose, name, size) for name in LAYOUTS[layout]]
    keypoints, scores = TO_WHOLEBODY[layout](*parts)
    if not (np.isfinite(keypoints).all() and np.isfinite(scores).all()):
        raise DataFormatError(f"{path}: the .pose file has NaN/inf coordinates")
    return PoseClip(keypoints.astype(np.float32), scores.astype(np.float32))


def find_layout(path, names) -> str:
    for layout, required in LAYOUTS.items():
        if set(required) <= set(names):
            return layout
    raise DataFormatError(f"{path}: unknown .pose component layout {names}; readable layouts: "
                          + "; ".join(f"{layout} {list(required)}" for layout, required in LAYOUTS.items()))


def component_points(pose, name, size) -> np.ndarray:
    """(T, N, 3) x/W, y/H, confidence of the first person's points of component `name` (masked -> 0)."""
    component = next(component for component in pose.header.components if component.name == name)
    start = pose.header.get_point_index(name, component.points[0])
    stop = start + len(component.points)
    data = pose.body.data[:, 0, start:stop, :2]  # (T, N, 2) masked array, pixels
    confidence = np.asarray(pose.body.confidence[:, 0, start:stop], np.float32)
    confidence = np.where(np.ma.getmaskarray(data).any(axis=-1), 0.0, confidence)
    points = np.ma.filled(data, 0.0).astype(np.float32) / size
    return np.concatenate([points, confidence[..., None]], axis=-1)


def write_pose_format(path, keypoints, scores, width=None, height=None, fps=25.0):
    """Write COCO-WholeBody keypoints (T, 133, 2) x/W, y/H and scores (T, 133) as a `.pose` file (pixels of a
    width x height frame; default 256 x 256); points with score 0 are masked."""
    import_pose_format()
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions
    from pose_format.utils.cocowholebody133_header import cocowholebody_components

    width, height = width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1]
    pixels = np.asarray(keypoints, np.float32) * np.array([width, height], np.float32)  # (T, 133, 2)
    confidence = np.asarray(scores, np.float32)
    mask = np.repeat((confidence <= 0)[..., None], 2, axis=-1)
    body = NumPyPoseBody(fps=float(fps or 25.0), data=np.ma.masked_array(pixels, mask)[:, None],
                         confidence=confidence[:, None])
    header = PoseHeader(0.2, PoseHeaderDimensions(int(width), int(height), 1), cocowholebody_components())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        Pose(header, body).write(handle)
