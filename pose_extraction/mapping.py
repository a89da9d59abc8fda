"""MediaPipe Holistic results of one frame -> the 133-point COCO-WholeBody layout (datasets/layouts.py).

The index tables and the vectorised mapping live in datasets/layouts.py, where reading `.pose` files of
the Holistic layout uses the same mapping; this module turns MediaPipe's landmark lists into its arrays.
"""
import numpy as np

from datasets.layouts import NUM_BLAZEPOSE, NUM_FACEMESH, NUM_HAND, holistic_to_wholebody_frames


def _with_confidence(points, count, confidence=1.0):
    """(N, 2) or (N, 3) points (or None: not found) -> (1, N, 3) x, y, confidence."""
    if points is None:
        return np.zeros((1, count, 3), np.float32)
    points = np.asarray(points, np.float32)
    if points.shape[-1] == 3:
        return points[None]
    return np.concatenate([points, np.full((len(points), 1), confidence, np.float32)], axis=-1)[None]


def holistic_to_wholebody(pose=None, face=None, left_hand=None, right_hand=None):
    """Assemble one frame's 133 COCO-WholeBody keypoints from Holistic's parts.

    pose: (33, 3) BlazePose x, y, visibility or None; face: (468+, 2) FaceMesh x, y or None;
    left_hand / right_hand: (21, 2) x, y of the person's left / right hand or None. All x/W, y/H.
    Returns keypoints (133, 2) float32 clipped to [0, 1] and scores (133,) float32: BlazePose visibility
    for body/feet, 1 for every point of a found face/hand, 0 for missing parts and for points that fall
    outside the image (they were not observed).
    """
    face = None if face is None else np.asarray(face, np.float32)[:, :2]
    keypoints, scores = holistic_to_wholebody_frames(
        _with_confidence(pose, NUM_BLAZEPOSE), _with_confidence(face, NUM_FACEMESH),
        _with_confidence(left_hand, NUM_HAND), _with_confidence(right_hand, NUM_HAND))
    return keypoints[0], scores[0]


def landmarks_to_array(landmark_list, with_visibility=False):
    """A MediaPipe NormalizedLandmarkList (or None) -> (N, 2) / (N, 3) float32 array (or None)."""
    if landmark_list is None:
        return None
    if with_visibility:
        return np.array([(p.x, p.y, p.visibility) for p in landmark_list.landmark], np.float32)
    return np.array([(p.x, p.y) for p in landmark_list.landmark], np.float32)


def pixels_to_normalised(keypoints, width, height):
    """Pixel keypoints (..., 133, 2) -> x/W, y/H float32, unclipped (what the official RTMPose script writes)."""
    return (np.asarray(keypoints, np.float32) / np.array([width, height], np.float32)).astype(np.float32)
