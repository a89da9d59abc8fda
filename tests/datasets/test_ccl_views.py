"""CCL-SLR views (datasets/ccl_views.py): temporal crops, pose transforms, signing-space crops and MPM."""
import numpy as np
import pytest
import torch

from datasets.ccl_views import (FACE_JOINTS, HAND_JOINTS, ViewSettings, apply_patch_mask, augment_parts, crop_video,
                                jitter_colours, motion_preserving_mask, resample, signing_space_box, temporal_window,
                                to_unit_crop, view_frames)


def test_a_temporal_window_keeps_at_least_its_share_of_the_clip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        start, end = temporal_window(20, 0.6, rng)
        assert 0 <= start < end <= 20 and end - start >= 12


def test_resampling_spreads_frames_evenly_and_jitter_stays_in_its_slot():
    assert resample(0, 10, 5).tolist() == [1, 3, 5, 7, 9]
    assert resample(4, 6, 4).tolist() == [4, 4, 5, 5]
    jittered = resample(0, 100, 10, np.random.default_rng(1))
    assert all(10 * i <= frame < 10 * (i + 1) for i, frame in enumerate(jittered))


def test_evaluation_views_cover_the_whole_clip_without_randomness():
    assert view_frames(8, 4, ViewSettings(), None).tolist() == [1, 3, 5, 7]


def test_pose_augmentation_transforms_every_part_alike_and_drops_whole_joints():
    parts = {"body": np.random.default_rng(0).uniform(-0.5, 0.5, (6, 9, 3)).astype(np.float32),
             "left": np.zeros((6, 21, 3), dtype=np.float32)}
    settings = ViewSettings(joint_dropout=0.5)
    augmented = augment_parts(parts, settings, np.random.default_rng(3))
    assert augmented["body"].shape == (6, 9, 3) and not augmented["left"].any()  # missing joints stay missing
    dropped = ~augmented["body"].any(axis=(0, 2))
    assert dropped.any() and not augmented["body"][:, dropped].any()
    kept = ~dropped
    assert np.allclose(augmented["body"][:, kept, 2], parts["body"][:, kept, 2])  # scores untouched


def test_no_augmentation_settings_change_nothing_but_the_dropped_joints():
    parts = {"body": np.random.default_rng(0).uniform(-0.5, 0.5, (4, 9, 3)).astype(np.float32)}
    settings = ViewSettings(rotation_degrees=0, shear=0, scale_range=(1, 1), joint_dropout=0)
    assert np.allclose(augment_parts(parts, settings, np.random.default_rng(1))["body"], parts["body"])


def test_signing_space_box_holds_every_confident_point():
    keypoints = np.full((3, 133, 2), 0.5, dtype=np.float32)
    keypoints[0, 9] = (0.2, 0.3)
    keypoints[2, 120] = (0.8, 0.9)
    scores = np.ones((3, 133), dtype=np.float32)
    x0, y0, side = signing_space_box(keypoints, scores, (100, 200))
    assert x0 <= 40 and x0 + side >= 160 and y0 <= 30 and y0 + side >= 90
    assert side == pytest.approx(1.2 * 120)


def test_crops_outside_the_frame_are_zero_padded():
    frames = np.full((2, 20, 10, 3), 255, dtype=np.uint8)  # H 20, W 10: the box sticks out on the left
    video = crop_video(frames, (-10, 0, 20), 20)
    assert video.shape == (2, 3, 20, 20)
    assert video[:, :, :, :9].max() == 0 and video[:, :, :, 11:].min() == 1


def test_mpm_keeps_hands_arms_and_face_and_masks_the_stillest_patches():
    points = np.full((4, 133, 2), -1.0, dtype=np.float32)  # outside the crop unless set
    scores = np.ones((4, 133), dtype=np.float32)
    points[:, HAND_JOINTS] = (0.1, 0.1)  # patch (0, 0)
    points[:, FACE_JOINTS] = (0.9, 0.1)  # patch (0, 3)
    points[:, 9] = np.array([[0.4, 0.6], [0.6, 0.6], [0.4, 0.6], [0.6, 0.6]])  # a moving wrist: patches (2, 1), (2, 2)
    mask = motion_preserving_mask(points, scores, ratio=0.5, grid=4, rng=np.random.default_rng(0))
    assert mask.sum() == 8
    assert not mask[0, 0] and not mask[0, 3] and not mask[2, 1] and not mask[2, 2]


def test_mpm_masks_low_motion_before_high_motion():
    points = np.full((3, 133, 2), -1.0, dtype=np.float32)
    scores = np.ones((3, 133), dtype=np.float32)
    scores[:, 5:11] = 0  # no arm joints: nothing is kept for them
    scores[:, FACE_JOINTS] = 0
    scores[:, HAND_JOINTS] = 0
    scores[:, 91] = 1  # one hand joint moving through patches 1 -> 2 of a 2 x 2 grid, but kept
    points[:, 91] = [[0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    mask = motion_preserving_mask(points, scores, ratio=0.25, grid=2, rng=np.random.default_rng(0))
    assert mask.tolist() == [[True, False], [False, False]]  # the one patch never touched


def test_patch_mask_zeroes_whole_patches_in_every_frame():
    video = torch.ones(2, 3, 8, 8)
    masked = apply_patch_mask(video, np.array([[True, False], [False, False]]))
    assert masked[:, :, :4, :4].abs().sum() == 0 and masked[:, :, 4:, :].min() == 1 and masked[:, :, :, 4:].min() == 1


def test_keypoints_follow_the_crop():
    unit = to_unit_crop(np.array([[[0.5, 0.5]]], dtype=np.float32), (100, 100), np.array([25, 25, 50]),
                        (0.5, 0.5, 0.5, 0.5))
    assert np.allclose(unit, 0.0)


def test_colour_jitter_is_one_change_for_the_whole_view():
    video = torch.rand(3, 3, 8, 8)
    unchanged = jitter_colours(video, ViewSettings(color_jitter=0.0, grayscale=0.0), np.random.default_rng(0))
    assert torch.allclose(unchanged, video)
    grey = jitter_colours(video, ViewSettings(color_jitter=0.0, grayscale=1.0), np.random.default_rng(0))
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    brighter = jitter_colours(video * 0.5, ViewSettings(color_jitter=0.5, grayscale=0.0), np.random.default_rng(2))
    ratio = brighter / (video * 0.5)
    assert not torch.allclose(brighter, video * 0.5) and brighter.shape == video.shape
    assert ratio.isfinite().all()
