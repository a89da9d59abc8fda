"""Official normalisation (official_defaults.md 4.4) and frame sub-sampling (4.2) against hand-computed values.

The two-frame clip below was worked out on paper:
  confident body entries (score > 0.3) over both frames span x in [0.25, 0.65] and y in [0.2, 0.7]
  (the left elbow, score 0.2, and frame 1's nose, score 0.1, are left out), so the body scale is
  s = max(0.40, 0.50) = 0.5 and x' = (2x - 0.25 - 0.65) / 0.5 = 4x - 1.8, y' = (2y - 0.2 - 0.7) / 0.5 = 4y - 1.8.
  Hands and face: (point - root of the same frame) / 0.5, i.e. twice the offset from the root.
"""
import random

import numpy as np
import pytest

from datasets.keypoints import PART_INDICES, crop_scale, normalize_parts, sample_frame_indices

BODY_FRAME0 = {  # COCO index: (x, y, score)
    0: (0.50, 0.20, 0.9),  # nose
    3: (0.55, 0.20, 0.9),  # left ear
    4: (0.45, 0.20, 0.9),  # right ear
    5: (0.60, 0.40, 0.9),  # left shoulder
    6: (0.40, 0.40, 0.9),  # right shoulder
    7: (0.90, 0.60, 0.2),  # left elbow: not confident, outside the box
    8: (0.30, 0.60, 0.9),  # right elbow
    9: (0.65, 0.70, 0.9),  # left wrist
    10: (0.35, 0.70, 0.9),  # right wrist
}
BODY_FRAME1 = {**BODY_FRAME0, 0: (0.50, 0.20, 0.1), 10: (0.25, 0.50, 0.9)}

# Left hand, frame 0: wrist (root) at (0.65, 0.70); unlisted points sit on the wrist with score 0.9.
LEFT_FRAME0 = {
    91: (0.65, 0.70, 0.8),
    92: (0.70, 0.75, 0.9),
    95: (0.65, 0.50, 0.5),
    96: (1.00, 0.70, 0.9),
    97: (0.00, 0.70, 0.9),  # offset -0.65 -> -1.3, clipped to -1
    98: (0.70, 0.70, 1.5),  # score above 1 -> 1
    99: (0.75, 0.70, 0.3),  # score exactly 0.3 -> whole triple zeroed
    100: (0.75, 0.70, 0.31),
}
# Left hand, frame 1: an unconfident wrist is still the root; unlisted points sit on it with score 0.9.
LEFT_FRAME1 = {91: (0.60, 0.60, 0.1), 92: (0.65, 0.55, 0.9)}
# Face: nose tip 53 (root, last of face_all) at (0.50, 0.25); unlisted points sit on it with score 0.9.
FACE = {53: (0.50, 0.25, 0.9), 23: (0.40, 0.30, 0.9), 83: (0.50, 0.35, 0.9), 39: (0.52, 0.25, 0.2)}


def _fill(keypoints, scores, frame, points, default=None, part=None):
    """Write {index: (x, y, score)} into one frame; `default` (x, y, score) first fills the part's points."""
    if default is not None:
        keypoints[frame, part] = default[:2]
        scores[frame, part] = default[2]
    for index, (x, y, score) in points.items():
        keypoints[frame, index] = (x, y)
        scores[frame, index] = score


def _worked_clip():
    """The two-frame clip of the module docstring: keypoints (2, 133, 2), scores (2, 133), float64."""
    keypoints, scores = np.zeros((2, 133, 2)), np.zeros((2, 133))
    left, right, face = PART_INDICES["left"], PART_INDICES["right"], PART_INDICES["face_all"]
    _fill(keypoints, scores, 0, BODY_FRAME0)
    _fill(keypoints, scores, 1, BODY_FRAME1)
    _fill(keypoints, scores, 0, LEFT_FRAME0, (0.65, 0.70, 0.9), left)
    _fill(keypoints, scores, 1, LEFT_FRAME1, (0.60, 0.60, 0.9), left)
    # right hand: missing in frame 0 (scores 0, coordinates arbitrary), all on its wrist in frame 1
    keypoints[0, right] = np.linspace(0.1, 0.9, 42).reshape(21, 2)
    _fill(keypoints, scores, 1, {}, (0.25, 0.50, 0.9), right)
    for frame in (0, 1):
        _fill(keypoints, scores, frame, FACE, (0.50, 0.25, 0.9), face)
    return keypoints, scores


def _body_points(keypoints, scores):
    body = PART_INDICES["body"]
    return np.concatenate([keypoints[:, body], scores[:, body, None]], axis=-1)


def test_crop_scale_matches_hand_computed_box():
    keypoints, scores = _worked_clip()
    out, scale = crop_scale(_body_points(keypoints, scores))
    assert scale == pytest.approx(0.5)
    expected_xy = np.array([
        # nose, l-ear, r-ear, l-shoulder, r-shoulder, l-elbow, r-elbow, l-wrist, r-wrist
        [[0.2, -1.0], [0.4, -1.0], [0.0, -1.0], [0.6, -0.2], [-0.2, -0.2], [1.8, 0.6], [-0.6, 0.6], [0.8, 1.0], [-0.4, 1.0]],
        [[0.2, -1.0], [0.4, -1.0], [0.0, -1.0], [0.6, -0.2], [-0.2, -0.2], [1.8, 0.6], [-0.6, 0.6], [0.8, 1.0], [-0.8, 0.2]],
    ])
    confident = out[..., 2] > 0.3  # crop_scale leaves clipping/thresholding to normalize_parts
    np.testing.assert_allclose(out[..., :2][confident], expected_xy[confident], atol=1e-12)
    np.testing.assert_array_equal(out[..., 2], _body_points(keypoints, scores)[..., 2])


def test_normalize_parts_matches_hand_computed_values():
    parts = normalize_parts(*_worked_clip())
    assert set(parts) == {"body", "left", "right", "face_all"}
    assert all(part.dtype == np.float64 for part in parts.values())

    body = np.array([
        [[0.2, -1.0, 0.9], [0.4, -1.0, 0.9], [0.0, -1.0, 0.9], [0.6, -0.2, 0.9], [-0.2, -0.2, 0.9],
         [0.0, 0.0, 0.0], [-0.6, 0.6, 0.9], [0.8, 1.0, 0.9], [-0.4, 1.0, 0.9]],
        [[0.0, 0.0, 0.0], [0.4, -1.0, 0.9], [0.0, -1.0, 0.9], [0.6, -0.2, 0.9], [-0.2, -0.2, 0.9],
         [0.0, 0.0, 0.0], [-0.6, 0.6, 0.9], [0.8, 1.0, 0.9], [-0.8, 0.2, 0.9]],
    ])
    np.testing.assert_allclose(parts["body"], body, atol=1e-12)

    left = np.tile([0.0, 0.0, 0.9], (2, 21, 1))
    left[0, 0] = [0.0, 0.0, 0.8]  # 91 wrist
    left[0, 1] = [0.1, 0.1, 0.9]  # 92
    left[0, 4] = [0.0, -0.4, 0.5]  # 95
    left[0, 5] = [0.7, 0.0, 0.9]  # 96
    left[0, 6] = [-1.0, 0.0, 0.9]  # 97: -1.3 clipped
    left[0, 7] = [0.1, 0.0, 1.0]  # 98: score 1.5 clipped
    left[0, 8] = [0.0, 0.0, 0.0]  # 99: score 0.3 zeroed
    left[0, 9] = [0.2, 0.0, 0.31]  # 100
    left[1, 0] = [0.0, 0.0, 0.0]  # 91: unconfident wrist zeroed, but still the root of frame 1
    left[1, 1] = [0.1, -0.1, 0.9]  # 92
    np.testing.assert_allclose(parts["left"], left, atol=1e-12)

    right = np.zeros((2, 21, 3))
    right[1] = [0.0, 0.0, 0.9]
    np.testing.assert_allclose(parts["right"], right, atol=1e-12)

    face = np.tile([0.0, 0.0, 0.9], (2, 18, 1))
    face[:, 0] = [-0.2, 0.1, 0.9]  # 23
    face[:, 8] = [0.0, 0.0, 0.0]  # 39: score 0.2 zeroed
    face[:, 9] = [0.0, 0.2, 0.9]  # 83
    np.testing.assert_allclose(parts["face_all"], face, atol=1e-12)


def test_missing_hand_frame_is_all_zeros():
    parts = normalize_parts(*_worked_clip())
    assert not parts["right"][0].any()
    assert parts["right"][1].any()


def test_all_zero_confidence_clip_is_all_zeros():
    rng = np.random.default_rng(0)
    keypoints, scores = rng.uniform(0, 1, (3, 133, 2)), np.zeros((3, 133))
    assert crop_scale(_body_points(keypoints, scores))[1] == 0.0
    parts = normalize_parts(keypoints, scores)
    assert all(not part.any() for part in parts.values())
    assert [part.shape for part in parts.values()] == [(3, 9, 3), (3, 21, 3), (3, 21, 3), (3, 18, 3)]


def test_fewer_than_four_confident_body_entries_zero_every_part():
    keypoints, scores = _worked_clip()
    scores[:, PART_INDICES["body"]] = 0.0
    scores[0, [0, 5, 6]] = 0.9  # three confident body entries in the whole clip
    parts = normalize_parts(keypoints, scores)
    assert all(not part.any() for part in parts.values())


def test_degenerate_body_box_zeroes_every_part():
    keypoints, scores = _worked_clip()
    keypoints[:, PART_INDICES["body"]] = (0.5, 0.5)  # confident body points all on one spot: s = 0
    parts = normalize_parts(keypoints, scores)
    assert all(not part.any() for part in parts.values())


def test_score_threshold_and_clipping_semantics():
    keypoints, scores = _worked_clip()
    scores[0, 92:95] = [0.3, 0.30001, 7.0]
    left = normalize_parts(keypoints, scores)["left"][0]
    np.testing.assert_array_equal(left[1], [0.0, 0.0, 0.0])  # exactly 0.3: zeroed (<= threshold)
    assert left[2, 2] == pytest.approx(0.30001)  # just above: kept
    assert left[3, 2] == 1.0  # above 1: clipped to 1


def test_sample_frame_indices_keeps_short_clips_whole():
    for frames in (1, 10, 256):
        np.testing.assert_array_equal(sample_frame_indices(frames, 256, random.Random(0)), np.arange(frames))


def test_sample_frame_indices_subsamples_long_clips():
    indices = sample_frame_indices(1000, 256, random.Random(7))
    assert len(indices) == 256
    assert np.all(np.diff(indices) > 0)  # sorted and unique
    assert indices.min() >= 0 and indices.max() < 1000
    np.testing.assert_array_equal(indices, sample_frame_indices(1000, 256, random.Random(7)))  # seeded: repeatable
    np.testing.assert_array_equal(indices, sorted(random.Random(7).sample(range(1000), 256)))  # the official draw
    assert not np.array_equal(indices, sample_frame_indices(1000, 256, random.Random(8)))
