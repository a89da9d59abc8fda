import math

import cv2
import numpy as np
import pytest
import torch

import datasets.rgb as rgb
from datasets.rgb import (HandCropCache, build_rgb_sample, collate_rgb, crop_hands, crop_keypoints, hand_boxes,
                          normalize_crops, read_video_frames, score_aware_sample)

W, H, T = 128, 96, 20
RED, BLUE = (255, 0, 0), (0, 0, 255)  # RGB
MEAN, STD = np.array(rgb.IMAGENET_MEAN), np.array(rgb.IMAGENET_STD)


def hand_points(cx, cy, half=8):
    """21 pixel points on a (2*half)-wide square around (cx, cy): wrist at the bottom centre."""
    grid = np.stack(np.meshgrid(np.linspace(-half, half, 5), np.linspace(-half, half, 4)), -1).reshape(-1, 2)
    return np.concatenate([[[0, half]], grid], axis=0) + (cx, cy)  # (21, 2)


def left_centre(t):
    return 30 + 2 * t, 40


def right_centre(t):
    return 95, 60


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 20-frame 128x96 video with a red square on the left hand and a blue one on the right hand."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (W, H))
    keypoints = np.zeros((T, 133, 2))
    for t in range(T):
        frame = np.full((H, W, 3), 60, np.uint8)
        for part, centre, colour in (("left", left_centre(t), RED), ("right", right_centre(t), BLUE)):
            pts = hand_points(*centre)
            lo, hi = pts.min(0).astype(int), pts.max(0).astype(int)
            cv2.rectangle(frame, tuple(lo), tuple(hi), colour[::-1], -1)  # BGR for OpenCV
            keypoints[t, rgb.PART_INDICES[part]] = pts / (W, H)
        writer.write(frame)
    writer.release()
    scores = np.full((T, 133), 0.9)
    return path, keypoints, scores


def unnormalize(image):
    """(3, S, S) normalised tensor -> (S, S, 3) float RGB in [0, 255]."""
    return (image.permute(1, 2, 0).numpy() * STD + MEAN) * 255


class RecordingRng:
    """Stands in for np.random.Generator: records choice() arguments and returns the candidates reversed."""

    def choice(self, a, size, replace, p=None):
        self.args = dict(a=np.asarray(a), size=size, replace=replace, p=p)
        candidates = np.arange(a) if np.ndim(a) == 0 else np.asarray(a)
        return candidates[::-1][:size]


# --------------------------------------------------------------------------- sampling

def test_official_rule_probabilities_by_hand():
    hand = np.array([[0.9] * 21, [0.2] * 21, [0.8] * 21, [0.5] * 21, [0.4] * 21])  # means > 0.3: 0, 2, 3, 4
    tips = np.array([[0.9, 0.95, 1, 1, 1], [0, 0, 0, 0, 0], [0.5, 0.6, 1, 1, 1], [0.3, 1, 1, 1, 1], [0.7, 1, 1, 1, 1]])
    rng = RecordingRng()
    picked = score_aware_sample(hand, tips, ratio=0.5, rng=rng)
    c = np.array([0.9, 0.5, 0.3, 0.7])
    w = 0.9 - c + 1e-5  # (1e-5, 0.4, 0.6, 0.2) + 1e-5
    np.testing.assert_array_equal(rng.args["a"], [0, 2, 3, 4])
    np.testing.assert_allclose(rng.args["p"], w / w.sum())
    assert rng.args["size"] == 2 and rng.args["replace"] is False
    np.testing.assert_array_equal(picked, [3, 4])  # RecordingRng returned [4, 3]: sorted


def test_sample_size_is_ceil_of_ratio_times_eligible():
    rng = np.random.default_rng(0)
    for n, ratio, k in ((11, 0.1, 2), (10, 0.1, 1), (1, 0.1, 1), (7, 0.25, 2)):
        picked = score_aware_sample(np.full((n, 21), 0.9), np.full((n, 5), 0.9), ratio, rng)
        assert len(picked) == k and len(set(picked)) == k and np.all(np.diff(picked) > 0)


def test_no_eligible_frame_ratio_zero_and_one():
    rng = np.random.default_rng(0)
    hand = np.full((6, 21), 0.9)
    hand[[1, 4]] = 0.3  # not > 0.3
    tips = np.full((6, 5), 0.5)
    np.testing.assert_array_equal(score_aware_sample(np.full((6, 21), 0.1), tips, 0.5, rng), [-1])
    np.testing.assert_array_equal(score_aware_sample(hand, tips, 0.0, rng), [-1])
    np.testing.assert_array_equal(score_aware_sample(hand, tips, 1.0, rng), [0, 2, 3, 5])


def test_low_fingertip_confidence_is_sampled_more_often():
    rng = np.random.default_rng(0)
    hand = np.full((4, 21), 0.9)
    tips = np.array([[0.95] * 5, [0.9] * 5, [0.5] * 5, [0.1] * 5])
    counts = np.bincount(np.concatenate([score_aware_sample(hand, tips, 0.25, rng) for _ in range(2000)]), minlength=4)
    w = 0.95 - np.array([0.95, 0.9, 0.5, 0.1]) + 1e-5
    np.testing.assert_allclose(counts / 2000, w / w.sum(), atol=0.03)


def test_paper_rule():
    rng = RecordingRng()
    hand = np.array([[1.0] * 21, [0.0] * 21, [0.75] * 21, [0.5] * 21, [0.9] * 21, [1.2] * 21])
    picked = score_aware_sample(hand, None, ratio=0.5, rng=rng, rule="paper")
    np.testing.assert_array_equal(rng.args["a"], 6)
    assert rng.args["size"] == 3 and rng.args["replace"] is True  # int(6 * 0.5), with replacement
    w = np.array([0, 1, 0.25, 0.5, 0.1, 0])  # 1 - mean, clipped at 0: frame 1 (no hand at all) is the likeliest
    np.testing.assert_allclose(rng.args["p"], w / w.sum())
    np.testing.assert_array_equal(picked, [3, 4, 5])
    real = np.random.default_rng(0)
    assert score_aware_sample(np.ones((9, 21)), None, 0.1, real, rule="paper")[0] == -1  # int(0.9) = 0
    merged = score_aware_sample(np.zeros((10, 21)), None, 1.0, real, rule="paper")  # duplicates merged
    assert len(merged) == len(set(merged)) and np.all(np.diff(merged) > 0)
    with pytest.raises(ValueError, match="unknown sampling rule"):
        score_aware_sample(hand, None, rule="uniform")


# --------------------------------------------------------------------------- boxes and crops

def test_hand_boxes_by_hand():
    left = np.array([[[0.1, 0.2], [0.3, 0.25]]])  # extent 0.2*W = 20 px, 0.05*H = 5 px
    right = np.array([[[0.5, 0.5], [0.55, 0.7]], [[0.0, 0.0], [0.01, 0.02]]])  # extent 5 px, 20 px
    boxes, side = hand_boxes({"left": left, "right": right}, (100, 100))
    assert side == int(20 * 1.2 / 2) * 2 == 24
    np.testing.assert_array_equal(boxes["left"], [[20 - 12, 22 - 12, 20 + 12, 22 + 12]])
    # second right box: centre (0.5, 1) px -> (-11.5, -11, 12.5, 13) truncated towards zero
    np.testing.assert_array_equal(boxes["right"], [[52 - 12, 60 - 12, 52 + 12, 60 + 12], [-11, -11, 12, 13]])
    boxes, side = hand_boxes({"left": left, "right": np.zeros((0, 21, 2))}, (100, 100))
    assert side == 24 and list(boxes) == ["left"]


def test_partly_outside_box_clamped_and_official():
    frame = np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3)
    box = np.array([[-6, 10, 14, 30]])  # 6 columns left of the frame
    clamped = crop_hands(frame[None], box, 20, image_size=20)[0]
    assert not clamped[:, :6].any()  # zero padding where the box leaves the frame
    np.testing.assert_array_equal(clamped[:, 6:], frame[10:30, 0:14])
    official = crop_hands(frame[None], box, 20, image_size=20, official_crop=True)[0]
    assert frame[10:30, -6:14].size == 0 and not official.any()  # numpy: -6 means column 44 -> empty slice
    for box in ([[10, 5, 30, 25]], [[40, 30, 60, 50]]):  # inside, and over the bottom-right corner
        np.testing.assert_array_equal(crop_hands(frame[None], np.array(box), 20, 20, official_crop=True),
                                      crop_hands(frame[None], np.array(box), 20, 20))
    corner = crop_hands(frame[None], np.array([[40, 30, 60, 50]]), 20, 20)[0]
    np.testing.assert_array_equal(corner[:10, :10], frame[30:, 40:])
    assert not corner[10:].any() and not corner[:, 10:].any()


def test_official_wrap_takes_pixels_from_the_far_edge():
    frame = np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3)
    box = np.array([[-12, 10, -2, 20]])  # entirely left of the frame
    official = crop_hands(frame[None], box, 10, image_size=10, official_crop=True)[0]
    np.testing.assert_array_equal(official, frame[10:20, 38:48])  # the right edge of the frame instead
    assert not crop_hands(frame[None], box, 10, image_size=10)[0].any()


def test_box_fully_outside_gives_black_crop():
    frame = np.full((40, 50, 3), 200, np.uint8)
    for box in ([[60, 10, 80, 30]], [[-30, -30, -10, -10]]):
        assert not crop_hands(frame[None], np.array(box), 20, image_size=16).any()


def test_crop_keypoints_and_normalisation():
    kp = np.array([[[0.5, 0.5], [0.0, 1.0]]])  # pixels (25, 20), (0, 40) in a 50x40 frame
    out = crop_keypoints(kp, np.array([[15, 10, 35, 30]]), 20, (40, 50))
    np.testing.assert_allclose(out, [[[0.5, 0.5], [0.0, 1.0]]])
    assert out.dtype == np.float32
    crops = np.zeros((1, 4, 4, 3), np.uint8)
    crops[..., 0] = 255
    x = normalize_crops(crops)
    assert x.shape == (1, 3, 4, 4)
    np.testing.assert_allclose(x[0, :, 0, 0], (np.array([1.0, 0, 0]) - MEAN) / STD, rtol=1e-6)


# --------------------------------------------------------------------------- video reading

def test_read_video_frames(clip):
    path, _, _ = clip
    frames = read_video_frames(path, [7, 2, 7])
    assert frames.shape == (3, H, W, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], frames[2])
    cx, cy = left_centre(2)
    assert frames[1, cy, cx, 0] > 180 and frames[1, cy, cx, 2] < 80  # red square, RGB order


def test_missing_video(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
        read_video_frames(tmp_path / "absent.mp4", [0])


def test_video_shorter_than_requested(clip):
    path, _, _ = clip
    with pytest.raises(ValueError, match=r"clip\.mp4 has 20 frames but frame 29"):
        read_video_frames(path, [3, 29])


def test_unreadable_and_undecodable_video(clip, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="cannot open video .*bad.mp4"):
        read_video_frames(bad, [0])
    data = bytearray(clip[0].read_bytes())
    start, end = data.find(b"mdat") + 8, data.find(b"moov")
    data[start + 100:end - 100] = np.random.default_rng(0).integers(0, 256, end - start - 200, dtype=np.uint8).tobytes()
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt.mp4: frames \[.*19\] could not be decoded"):
        read_video_frames(corrupt, [0, 19])


# --------------------------------------------------------------------------- samples, cache, collate

def test_build_rgb_sample_crops_are_centred_on_the_hands(clip):
    path, keypoints, scores = clip
    sample = build_rgb_sample(path, keypoints, scores, np.arange(T), ratio=0.2, rng=np.random.default_rng(0))
    for hand, colour in (("left", 0), ("right", 2)):
        idx = sample[f"{hand}_sampled_indices"]
        assert len(idx) == math.ceil(0.2 * T) and torch.all(idx[1:] > idx[:-1])
        assert sample[f"{hand}_hands"].shape == (len(idx), 3, 112, 112)
        kp = sample[f"{hand}_skeletons_norm"]
        assert kp.shape == (len(idx), 21, 2) and kp.dtype == torch.float32
        assert kp.min() >= 0 and kp.max() <= 1
        for image, points in zip(sample[f"{hand}_hands"], kp):
            pixels = unnormalize(image)
            assert pixels[56, 56, colour] > 180 and pixels[56, 56, 1] < 80  # the hand's square at the centre
            x, y = (points[0].numpy() * 111).round().astype(int)  # wrist: on the square's bottom edge
            assert pixels[max(y - 3, 0), x, colour] > 150
            assert pixels[4, 4, colour] < 120  # the crop margin is background


def test_frame_numbers_map_positions_to_video_frames(clip):
    path, keypoints, scores = clip
    positions = np.arange(10)  # the clip is every other video frame: 0, 2, ..., 18
    sample = build_rgb_sample(path, keypoints[::2], scores[::2], positions * 2, ratio=1.0, rng=np.random.default_rng(0))
    assert sample["left_sampled_indices"].tolist() == list(range(10))
    first, last = unnormalize(sample["left_hands"][0]), unnormalize(sample["left_hands"][-1])
    assert first[56, 56, 0] > 180 and last[56, 56, 0] > 180


def test_placeholders(clip):
    path, keypoints, scores = clip
    scores = scores.copy()
    scores[:, rgb.PART_INDICES["right"]] = 0.1
    sample = build_rgb_sample(path, keypoints, scores, np.arange(T), ratio=0.1, rng=np.random.default_rng(0))
    assert sample["right_sampled_indices"].tolist() == [-1]
    assert not sample["right_hands"].any() and sample["right_hands"].shape == (1, 3, 112, 112)
    assert not sample["right_skeletons_norm"].any() and sample["right_skeletons_norm"].shape == (1, 21, 2)
    assert sample["left_sampled_indices"][0] >= 0
    flat = np.zeros_like(keypoints)  # every hand is a single point: common side 0 -> both placeholders
    sample = build_rgb_sample(path, flat, scores, np.arange(T), ratio=0.1, rng=np.random.default_rng(0))
    assert sample["left_sampled_indices"].tolist() == [-1] == sample["right_sampled_indices"].tolist()


def test_no_eligible_hand_does_not_read_the_video(tmp_path, clip):
    _, keypoints, scores = clip
    sample = build_rgb_sample(tmp_path / "absent.mp4", keypoints, np.zeros_like(scores), np.arange(T),
                              rng=np.random.default_rng(0))
    assert sample["left_sampled_indices"].tolist() == [-1] == sample["right_sampled_indices"].tolist()


def test_cache_hit_avoids_decoding(clip, tmp_path, monkeypatch):
    path, keypoints, scores = clip
    cache = HandCropCache(tmp_path / "cache")
    calls = []

    def reader(video, frames):
        if calls:
            raise AssertionError("video decoded twice")
        calls.append(video)
        return read_video_frames(video, frames)

    monkeypatch.setattr(rgb, "read_video_frames", reader)
    args = (path, keypoints, scores, np.arange(T), 0.3)
    first = build_rgb_sample(*args, rng=np.random.default_rng(5), cache=cache)
    second = build_rgb_sample(*args, rng=np.random.default_rng(5), cache=cache)
    assert len(calls) == 1
    for key in first:
        assert torch.equal(first[key], second[key]), key
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    with pytest.raises(AssertionError, match="decoded twice"):  # other frames or crop mode: a new key
        build_rgb_sample(*args, rng=np.random.default_rng(5), cache=cache, official_crop=True)


def test_cache_ignores_unreadable_files(tmp_path):
    cache = HandCropCache(tmp_path)
    key = "ab" + "0" * 62
    cache.save(key, {"x": np.arange(3)})
    np.testing.assert_array_equal(cache.load(key)["x"], np.arange(3))
    (tmp_path / "ab" / f"{key}.npz").write_bytes(b"garbage")
    assert cache.load(key) is None
    assert cache.load("cd" + "0" * 62) is None


def test_collate_rgb(clip):
    path, keypoints, scores = clip
    rng = np.random.default_rng(0)
    no_right = scores.copy()
    no_right[:, rgb.PART_INDICES["right"]] = 0.0
    samples = [build_rgb_sample(path, keypoints, scores, np.arange(T), 0.1, rng),
               build_rgb_sample(path, keypoints, no_right, np.arange(T), 0.1, rng),
               build_rgb_sample(path, keypoints[:10], scores[:10], np.arange(10), 0.3, rng)]
    batch = collate_rgb(samples)
    assert batch["left_rgb_len"] == [2, 2, 3] and batch["right_rgb_len"] == [2, 1, 3]
    assert batch["right_hands"].shape == (6, 3, 112, 112) and batch["right_skeletons_norm"].shape == (6, 21, 2)
    assert batch["right_valid"].tolist() == [True, True, False, True, True, True]
    assert batch["right_sample_index"].tolist() == [0, 0, 2, 2, 2]
    assert batch["right_frame_index"].tolist() == batch["right_sampled_indices"][batch["right_valid"]].tolist()
    assert batch["left_sample_index"].tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert batch["left_sampled_indices"].dtype == torch.long
