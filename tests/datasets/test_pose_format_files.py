"""datasets/pose_format_files.py: `.pose` files (pose-format library) in three layouts, and our own `.pose` output."""
import numpy as np
import pytest
import torch

pose_format = pytest.importorskip("pose_format", reason="pose-format is not installed (requirements-pose.txt)")
from pose_format import Pose  # noqa: E402
from pose_format.numpy import NumPyPoseBody  # noqa: E402
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions  # noqa: E402
from pose_format.utils.openpose import BODY_POINTS, OpenPose_Components  # noqa: E402

from datasets.convert import main as convert_main  # noqa: E402
from datasets.formats import DataFormatError, LabelEntry, read_pose_file, write_pose_pkl  # noqa: E402
from datasets.pose_format_files import write_pose_format  # noqa: E402
from datasets.sign_dataset import SignDataset  # noqa: E402
from pose_extraction.mapping import holistic_to_wholebody  # noqa: E402
from pose_extraction.runner import write_pose_atomic  # noqa: E402

WIDTH, HEIGHT = 640, 480


def write_pose(path, components, points, confidence):
    """A .pose file of one person: points (T, N, dims) in pixels, confidence (T, N) (0 = masked)."""
    mask = np.repeat((confidence <= 0)[..., None], points.shape[-1], axis=-1)
    body = NumPyPoseBody(25.0, np.ma.masked_array(points.astype(np.float32), mask)[:, None],
                         confidence.astype(np.float32)[:, None])
    header = PoseHeader(0.2, PoseHeaderDimensions(WIDTH, HEIGHT, 1), components)
    with open(path, "wb") as handle:
        Pose(header, body).write(handle)
    return path


def random_points(frames, count, rng):
    """(T, N, 3) normalised x, y in the frame and a confidence."""
    return np.concatenate([rng.uniform(0.05, 0.95, (frames, count, 2)), rng.uniform(0.3, 1.0, (frames, count, 1))], -1)


def test_our_pose_output_gives_the_same_training_tensors_as_the_pickle(tmp_path):
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0.1, 0.9, (12, 133, 2)).astype(np.float32)
    scores = rng.uniform(0.0, 1.0, (12, 133)).astype(np.float32)
    scores[3, 91:112] = 0.0  # a frame without the left hand
    write_pose_atomic(tmp_path / "pkl" / "clip.pkl", keypoints, scores)
    write_pose_atomic(tmp_path / "pose" / "clip.pose", keypoints, scores, WIDTH, HEIGHT, 25.0)
    entry = LabelEntry("clip", "hello", video_path="clip.mp4")
    from_pkl = SignDataset([entry], tmp_path / "pkl", max_length=8)[0]
    from_pose = SignDataset([entry], tmp_path / "pose", max_length=8)[0]  # found as clip.pose (no clip.pkl)
    assert np.array_equal(from_pkl["frame_numbers"], from_pose["frame_numbers"])
    for part in from_pkl["parts"]:
        torch.testing.assert_close(from_pose["parts"][part], from_pkl["parts"][part], atol=1e-6, rtol=0)
    stored = Pose.read((tmp_path / "pose" / "clip.pose").read_bytes())  # what the pose-format viewer reads
    assert [c.name for c in stored.header.components] == ["BODY", "FACE", "LEFT_HAND", "RIGHT_HAND"]
    assert (stored.header.dimensions.width, stored.header.dimensions.height, stored.body.fps) == (WIDTH, HEIGHT, 25.0)


def test_a_holistic_pose_file_maps_as_the_mediapipe_backend_maps_its_landmarks(tmp_path):
    holistic = pytest.importorskip("pose_format.utils.holistic", reason="needs mediapipe (requirements-pose.txt)")
    rng = np.random.default_rng(1)
    pose, face = random_points(4, 33, rng), random_points(4, 468, rng)
    left, right, world = random_points(4, 21, rng), random_points(4, 21, rng), random_points(4, 33, rng)
    face[..., 2] = left[..., 2] = right[..., 2] = 1.0  # Holistic: found face/hand points have confidence 1
    right[2, :, 2] = 0.0  # no right hand in frame 2
    parts = np.concatenate([pose, face, left, right, world], axis=1)  # (T, 576, 3)
    pixels = parts[..., :3] * np.array([WIDTH, HEIGHT, 1.0])
    pixels[..., 2] = 0.0  # z
    path = write_pose(tmp_path / "holistic.pose", holistic.holistic_components("XYZC"), pixels, parts[..., 2])
    clip = read_pose_file(path)
    for frame in range(4):
        found_right = right[frame, :, :2] if frame != 2 else None
        keypoints, scores = holistic_to_wholebody(pose[frame], face[frame, :, :2], left[frame, :, :2], found_right)
        np.testing.assert_allclose(clip.keypoints[frame], keypoints, atol=1e-6)
        np.testing.assert_allclose(clip.scores[frame], scores, atol=1e-6)
    assert (clip.scores[2, 112:] == 0).all() and (clip.scores[1, 112:] == 1).all()


def test_an_openpose_137_pose_file_maps_body_25_face_and_hands_by_name(tmp_path):
    rng = np.random.default_rng(2)
    parts = random_points(3, 137, rng)
    path = write_pose(tmp_path / "openpose.pose", OpenPose_Components, parts[..., :2] * [WIDTH, HEIGHT], parts[..., 2])
    clip = read_pose_file(path)
    coco_body = {5: "LShoulder", 6: "RShoulder", 9: "LWrist", 10: "RWrist", 1: "LEye", 4: "REar", 19: "LHeel",
                 21: "RSmallToe"}
    for coco, name in coco_body.items():
        np.testing.assert_allclose(clip.keypoints[:, coco], parts[:, BODY_POINTS.index(name), :2], atol=1e-6)
    np.testing.assert_allclose(clip.keypoints[:, 23:91], parts[:, 25:93, :2], atol=1e-6)  # iBUG 68, pupils dropped
    np.testing.assert_allclose(clip.keypoints[:, 91:133], parts[:, 95:137, :2], atol=1e-6)  # left, right hand
    np.testing.assert_allclose(clip.scores[:, 91:133], parts[:, 95:137, 2], atol=1e-6)


def test_an_unknown_layout_names_the_file_and_its_components(tmp_path):
    component = PoseHeaderComponent("MY_POINTS", ["a", "b"], [(0, 1)], [(0, 0, 0)], "XYC")
    path = write_pose(tmp_path / "odd.pose", [component], np.ones((2, 2, 2)) * 10, np.ones((2, 2)))
    with pytest.raises(DataFormatError, match=r"odd.pose: unknown .pose component layout \['MY_POINTS'\]"):
        read_pose_file(path)
    (tmp_path / "broken.pose").write_bytes(b"\x00\x01 not a pose file")
    with pytest.raises(DataFormatError, match="broken.pose: not a readable .pose file"):
        read_pose_file(tmp_path / "broken.pose")


def test_convert_to_pose_and_back_keeps_the_clip_frames(tmp_path):
    rng = np.random.default_rng(3)
    keypoints, scores = rng.uniform(0.1, 0.9, (10, 133, 2)), rng.uniform(0.2, 1.0, (10, 133))
    write_pose_pkl(tmp_path / "poses" / "a.pkl", keypoints, scores, start=2, end=8)
    (tmp_path / "labels.jsonl").write_text('{"name": "a", "text": "hello", "video_path": "a.mp4"}\n')
    assert convert_main(["--labels", str(tmp_path / "labels.jsonl"), "--pose-dir", str(tmp_path / "poses"),
                         "--out", str(tmp_path / "as_pose"), "--to", "pose"]) == 0
    clip = read_pose_file(tmp_path / "as_pose" / "poses" / "a.pose")
    assert clip.num_frames == 6 and (clip.start, clip.end) == (0, None)  # frames [2, 8) of the original
    np.testing.assert_allclose(clip.keypoints, keypoints[2:8], atol=1e-6)
    assert convert_main(["--labels", str(tmp_path / "as_pose" / "labels.jsonl"), "--pose-dir",
                         str(tmp_path / "as_pose" / "poses"), "--out", str(tmp_path / "back"), "--to", "native"]) == 0
    np.testing.assert_allclose(read_pose_file(tmp_path / "back" / "poses" / "a.npz").scores, scores[2:8], atol=1e-6)
