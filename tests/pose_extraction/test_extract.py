"""Pose extraction: the Holistic -> COCO-WholeBody mapping, real pictures, the CLI path and bad input.

Picture tests need MediaPipe (`pip install --no-deps mediapipe==0.10.14`) and messi5.jpg (Debian's
opencv-doc) or scikit-image's astronaut; they skip cleanly without them.
"""
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets import layouts
from datasets.formats import read_pose_file
from datasets.keypoints import PART_INDICES, normalize_parts
from datasets.safe_pickle import safe_load
from pose_extraction import backends, mapping
from pose_extraction.backends import BackendSpec, BackendUnavailable, RtmlibBackend
from pose_extraction.extract import main as extraction_main
from pose_extraction.runner import REPORT_NAME, plan_jobs, run_extraction
from pose_extraction.video import downscale
from tests.utils.pictures import (astronaut_bgr, mediapipe_backend, messi_bgr, require_mediapipe, shifted_frames,
                                  write_video)

REPO_ROOT = Path(__file__).resolve().parents[2]
LEFT_HAND, RIGHT_HAND, FACE = slice(91, 112), slice(112, 133), slice(23, 91)


# ----------------------------------------------------------------------------- mapping (no MediaPipe needed)


def test_mapping_tables_cover_the_layout():
    assert len(layouts.BODY_FROM_BLAZEPOSE) == 17 and len(layouts.FEET_FROM_BLAZEPOSE) == 6
    assert len(layouts.FACE_FROM_FACEMESH) == 68 and len(set(layouts.FACE_FROM_FACEMESH)) == 68
    assert len(set(layouts.BODY_FROM_BLAZEPOSE)) == 17
    assert max(layouts.POSE_FROM_BLAZEPOSE) < 33 and max(layouts.FACE_FROM_FACEMESH) < 468
    # the face points Uni-Sign uses: jaw every other point, the inner lips, the nose tip (FaceMesh 1)
    face = dict(zip(range(23, 91), layouts.FACE_FROM_FACEMESH))
    assert face[53] == 1 and face[31] == 152  # nose tip, chin
    assert [face[i] for i in range(83, 91)] == [78, 81, 13, 311, 308, 402, 14, 178]


def _landmarks(count, offset):
    """Distinct recognisable coordinates: point i at (offset + i / 1000, 0.5)."""
    points = np.zeros((count, 3), np.float32)
    points[:, 0], points[:, 1], points[:, 2] = offset + np.arange(count) / 1000, 0.5, 0.9
    return points


def test_holistic_parts_land_in_their_index_ranges():
    pose, face = _landmarks(33, 0.0), _landmarks(468, 0.1)[:, :2]
    left, right = _landmarks(21, 0.6)[:, :2], _landmarks(21, 0.7)[:, :2]
    keypoints, scores = mapping.holistic_to_wholebody(pose, face, left, right)
    assert keypoints.shape == (133, 2) and scores.shape == (133,) and keypoints.dtype == np.float32
    np.testing.assert_allclose(keypoints[9, 0], 0.015)  # COCO left wrist <- BlazePose 15 (left_wrist)
    np.testing.assert_allclose(keypoints[10, 0], 0.016)  # right wrist <- 16
    np.testing.assert_allclose(keypoints[19, 0], 0.029)  # left heel <- 29
    np.testing.assert_allclose(keypoints[53, 0], 0.101)  # nose tip <- FaceMesh 1
    np.testing.assert_allclose(keypoints[LEFT_HAND, 0], 0.6 + np.arange(21) / 1000, atol=1e-6)  # Holistic left
    np.testing.assert_allclose(keypoints[RIGHT_HAND, 0], 0.7 + np.arange(21) / 1000, atol=1e-6)
    np.testing.assert_allclose(scores[:23], 0.9)  # BlazePose visibility
    assert (scores[23:] == 1).all()  # found face / hands carry no confidence: 1


def test_missing_parts_and_out_of_frame_points_score_zero():
    pose = _landmarks(33, 0.2)
    pose[27, :2] = (0.5, 1.4)  # left ankle below the image
    keypoints, scores = mapping.holistic_to_wholebody(pose, None, None, _landmarks(21, 0.3)[:, :2])
    assert (scores[FACE] == 0).all() and (keypoints[FACE] == 0).all()
    assert (scores[LEFT_HAND] == 0).all() and (scores[RIGHT_HAND] == 1).all()
    assert scores[15] == 0 and keypoints[15, 1] == 1.0  # clipped into the image, not observed
    empty_keypoints, empty_scores = mapping.holistic_to_wholebody()
    assert not empty_keypoints.any() and not empty_scores.any()


def test_output_paths_mirror_the_input_folder_and_must_be_unique(tmp_path):
    for name in ("a.mp4", "sub/b.MOV", "notes.txt"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"")
    jobs = plan_jobs(tmp_path / "in", tmp_path / "out")
    assert [(v.name, o.relative_to(tmp_path / "out").as_posix()) for v, o in jobs] == [
        ("a.mp4", "a.pkl"), ("b.MOV", "sub/b.pkl")]
    (tmp_path / "in" / "a.avi").write_bytes(b"")
    with pytest.raises(ValueError, match="would both write"):
        plan_jobs(tmp_path / "in", tmp_path / "out")


def test_downscale_keeps_aspect_and_small_frames():
    frame = np.zeros((3000, 4000, 3), np.uint8)
    assert downscale(frame, 1000).shape == (750, 1000, 3)
    small = np.zeros((100, 80, 3), np.uint8)
    assert downscale(small, 1000) is small and downscale(frame, 0) is frame


# ----------------------------------------------------------------------------- real pictures


@pytest.fixture(scope="module")
def static_backend():
    backend = mediapipe_backend(static_image_mode=True)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def messi_pose(static_backend):
    image = messi_bgr()
    return static_backend(image)


def test_messi_has_body_face_and_both_hands(messi_pose):
    keypoints, scores = messi_pose
    assert (scores[PART_INDICES["body"]] > 0.5).all()
    assert (scores[FACE] == 1).all() and (scores[LEFT_HAND] == 1).all() and (scores[RIGHT_HAND] == 1).all()
    assert ((keypoints >= 0) & (keypoints <= 1)).all()


def test_messi_hands_are_on_the_right_side_of_the_person(messi_pose):
    keypoints, _ = messi_pose
    left_wrist, right_wrist = keypoints[9], keypoints[10]
    assert left_wrist[0] > right_wrist[0] + 0.3  # he faces the camera: his left arm is on the image right
    for hand, wrist, other in ((LEFT_HAND, left_wrist, right_wrist), (RIGHT_HAND, right_wrist, left_wrist)):
        points = keypoints[hand]
        assert np.linalg.norm(points[0] - wrist) < 0.02  # hand root (91 / 112) on the body wrist (9 / 10)
        assert np.linalg.norm(points - wrist, axis=1).max() < 0.1
        assert np.linalg.norm(points.mean(0) - other) > 0.3


def test_messi_face_points_are_placed_sensibly(messi_pose):
    keypoints, _ = messi_pose
    nose_tip, chin, nose = keypoints[53], keypoints[31], keypoints[0]
    assert np.linalg.norm(nose_tip - nose) < 0.03  # FaceMesh nose tip agrees with BlazePose's nose
    jaw = keypoints[23:40]
    assert chin[1] == jaw[:, 1].max()  # the chin is the lowest jaw point
    inner_lips = keypoints[83:91]
    assert nose_tip[1] < inner_lips[:, 1].mean() < chin[1]  # mouth between nose tip and chin
    face = keypoints[FACE]
    assert np.ptp(face[:, 0]) < 0.15 and np.ptp(face[:, 1]) < 0.15  # all 68 points on one small head


def test_astronaut_has_body_and_face_but_no_hands(static_backend):
    keypoints, scores = static_backend(astronaut_bgr())
    assert (scores[[0, 3, 4, 5, 6]] > 0.5).all()  # nose, ears, shoulders
    assert (scores[FACE] == 1).all()
    assert (scores[91:] == 0).all()
    parts = normalize_parts(keypoints[None], scores[None])
    assert not parts["left"].any() and not parts["right"].any()  # missing hands normalise to zeros


def test_huge_frame_is_downscaled_and_keeps_normalised_coordinates(static_backend, messi_pose):
    huge = cv2.resize(messi_bgr(), None, fx=7, fy=7, interpolation=cv2.INTER_LINEAR)  # 3836 x 2394
    keypoints, scores = static_backend(downscale(huge, 1280))
    reference, reference_scores = messi_pose
    both = (scores > 0.3) & (reference_scores > 0.3)
    assert both[:17].all() and both[91:].all()
    error = np.linalg.norm(keypoints - reference, axis=1)[both]
    assert np.median(error) < 0.01 and error.max() < 0.05


# ----------------------------------------------------------------------------- the CLI path


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    """good.mp4 (4 frames), sub/short.mp4 (2), broken.mp4 (not a video), empty.mp4 (0 frames), blank.mp4."""
    require_mediapipe()
    image = messi_bgr()
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "good.mp4", shifted_frames(image, 4))
    write_video(root / "sub" / "short.mp4", shifted_frames(image, 2, step=-8))
    (root / "broken.mp4").write_bytes(b"this is not a video" * 10)
    write_video(root / "empty.mp4", [], fps=25)
    write_video(root / "blank.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 3)
    return root


def _statuses(report):
    return {Path(result.video).name: result for result in report.results}


def test_folder_extraction_writes_official_files_and_reports_failures(video_dir, tmp_path):
    out = tmp_path / "poses"
    report = run_extraction(video_dir, out, progress=False)
    results = _statuses(report)
    assert {name: r.status for name, r in results.items()} == {
        "good.mp4": "done", "short.mp4": "done", "broken.mp4": "failed", "empty.mp4": "failed", "blank.mp4": "failed"}
    assert "cannot be opened" in results["broken.mp4"].error
    assert "cannot be opened" in results["empty.mp4"].error or "no frame" in results["empty.mp4"].error
    assert "no person detected in any of the 3 frames" in results["blank.mp4"].error
    raw = safe_load(out / "good.pkl")  # the official layout: lists of per-frame (1, 133, 2) / (1, 133)
    assert set(raw) == {"keypoints", "scores"} and len(raw["keypoints"]) == 4
    assert raw["keypoints"][0].shape == (1, 133, 2) and raw["scores"][0].shape == (1, 133)
    clip = read_pose_file(out / "sub" / "short.pkl")  # sub-folders kept
    assert clip.keypoints.shape == (2, 133, 2) and ((clip.keypoints >= 0) & (clip.keypoints <= 1)).all()
    assert not (out / "broken.pkl").exists() and not (out / "blank.pkl").exists()
    assert not [path for path in out.rglob(".*")]  # no temporary file left behind
    saved = json.loads((out / REPORT_NAME).read_text())
    assert len([row for row in saved["results"] if row["status"] == "failed"]) == 3
    assert results["good.mp4"].frames == 4 and results["good.mp4"].ms_per_frame > 0


def test_resume_skips_finished_files_and_overwrite_redoes_them(video_dir, tmp_path):
    source = video_dir / "sub"
    out = tmp_path / "poses"
    assert _statuses(run_extraction(source, out, progress=False))["short.mp4"].status == "done"
    written = (out / "short.pkl").stat().st_mtime_ns
    assert _statuses(run_extraction(source, out, progress=False))["short.mp4"].status == "skipped"
    assert (out / "short.pkl").stat().st_mtime_ns == written
    assert _statuses(run_extraction(source, out, overwrite=True, progress=False))["short.mp4"].status == "done"
    assert (out / "short.pkl").stat().st_mtime_ns != written


def test_allow_empty_writes_zero_score_frames(video_dir, tmp_path):
    report = run_extraction(video_dir / "blank.mp4", tmp_path, allow_empty=True, progress=False)
    assert report.results[0].status == "done"
    clip = read_pose_file(tmp_path / "blank.pkl")
    assert clip.num_frames == 3 and not clip.scores.any()


def test_downscaled_video_frames_give_the_same_pose(video_dir, tmp_path):
    run_extraction(video_dir / "good.mp4", tmp_path / "full", max_side=0, progress=False)
    run_extraction(video_dir / "good.mp4", tmp_path / "small", max_side=400, progress=False)
    full, small = read_pose_file(tmp_path / "full" / "good.pkl"), read_pose_file(tmp_path / "small" / "good.pkl")
    both = (full.scores > 0.3) & (small.scores > 0.3)
    error = np.linalg.norm(full.keypoints - small.keypoints, axis=-1)[both]
    assert both[:, :17].all() and np.median(error) < 0.01


def test_truncated_video_gives_one_pose_per_decoded_frame(tmp_path):
    """Header frame count and frame rate are not trusted: a cut-off file yields what decodes."""
    require_mediapipe()
    image = cv2.resize(messi_bgr(), (274, 172))
    path = write_video(tmp_path / "cut.avi", shifted_frames(image, 8), fps=7.5, fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])  # drop the tail (and the AVI index)
    capture = cv2.VideoCapture(str(path))
    decodable = 0
    while capture.read()[0]:
        decodable += 1
    capture.release()
    report = run_extraction(path, tmp_path / "out", progress=False)
    result = report.results[0]
    assert result.status == "done" and 0 < result.frames == decodable < 8
    assert read_pose_file(tmp_path / "out" / "cut.pkl").num_frames == decodable


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")
def test_variable_frame_rate_video(tmp_path):
    """A real VFR file (irregular timestamps, made by ffmpeg): one pose per decoded frame."""
    require_mediapipe()
    source = write_video(tmp_path / "cfr.mp4", shifted_frames(cv2.resize(messi_bgr(), (274, 172)), 6))
    vfr = tmp_path / "vfr.mkv"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(source), "-vf", "setpts='N*N*1000/TB/25000'",
                    "-fps_mode", "vfr", "-c:v", "mjpeg", str(vfr)], check=True)
    report = run_extraction(vfr, tmp_path / "out", progress=False)
    assert report.results[0].status == "done" and report.results[0].frames == 6


def test_cli_runs_parallel_workers_and_exits_non_zero_on_failures(video_dir, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for name in ("good.mp4", "broken.mp4"):
        (source / name).write_bytes((video_dir / name).read_bytes())
    (source / "again.mp4").write_bytes((video_dir / "sub" / "short.mp4").read_bytes())
    completed = subprocess.run(
        [sys.executable, "-m", "pose_extraction", "--input", str(source), "--out", str(tmp_path / "out"),
         "--workers", "2", "--no-progress"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1, completed.stderr
    assert "2 extracted" in completed.stderr and "FAILED" in completed.stderr and "broken.mp4" in completed.stderr
    assert read_pose_file(tmp_path / "out" / "good.pkl").num_frames == 4
    assert read_pose_file(tmp_path / "out" / "again.pkl").num_frames == 2


def test_cli_exit_status_zero_when_all_succeed_and_two_when_no_video(video_dir, tmp_path, capsys):
    assert extraction_main(["--input", str(video_dir / "sub"), "--out", str(tmp_path), "--no-progress"]) == 0
    assert "1 extracted" in capsys.readouterr().out
    assert extraction_main(["--input", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2


# ----------------------------------------------------------------------------- backends without their packages


def test_missing_mediapipe_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(BackendUnavailable, match="pip install --no-deps mediapipe==0.10.14"):
        backends.create_backend(BackendSpec("mediapipe"))
    (tmp_path / "clip.mp4").write_bytes(b"x")
    assert extraction_main(["--input", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out")]) == 2
    assert "mediapipe" in capsys.readouterr().err


def test_rtmlib_needs_local_model_files_and_the_package(monkeypatch, tmp_path):
    with pytest.raises(BackendUnavailable, match="--det"):
        backends.check_backend(BackendSpec("rtmlib", pose=str(tmp_path / "missing.onnx")))
    det, pose = tmp_path / "det.onnx", tmp_path / "pose.onnx"
    det.write_bytes(b"onnx"), pose.write_bytes(b"onnx")
    monkeypatch.setitem(sys.modules, "rtmlib", None)
    with pytest.raises(BackendUnavailable, match="pip install rtmlib"):
        backends.check_backend(BackendSpec("rtmlib", det=str(det), pose=str(pose)))


def test_rtmlib_backend_normalises_and_keeps_the_main_signer(monkeypatch, tmp_path):
    """A stand-in rtmlib: two people in pixels; the confident one is kept, divided by the frame size."""
    calls = {}

    class Wholebody:
        def __init__(self, **kwargs):
            calls.update(kwargs)
            self.people = 2

        def __call__(self, image):
            keypoints = np.zeros((self.people, 133, 2), np.float32)
            keypoints[:, :, 0], keypoints[:, :, 1] = 100.0, 50.0
            keypoints[1:, :, 0] = 300.0
            scores = np.full((self.people, 133), 0.2, np.float32)
            scores[1:] = 0.9  # the second person is the confident signer
            return keypoints, scores

    monkeypatch.setitem(sys.modules, "rtmlib", types.SimpleNamespace(Wholebody=Wholebody))
    det, pose = tmp_path / "det.onnx", tmp_path / "pose.onnx"
    det.write_bytes(b"onnx"), pose.write_bytes(b"onnx")
    backend = RtmlibBackend(det, pose, (416, 416), (192, 256))
    assert calls["det"] == str(det) and calls["pose_input_size"] == (192, 256) and calls["to_openpose"] is False
    keypoints, scores = backend(np.zeros((100, 400, 3), np.uint8))  # W = 400, H = 100
    np.testing.assert_allclose(keypoints[0], (0.75, 0.5))
    np.testing.assert_allclose(scores, 0.9)
    backend._model.people = 0
    keypoints, scores = backend(np.zeros((100, 400, 3), np.uint8))
    assert not keypoints.any() and not scores.any()


def test_pose_format_output_reads_back_as_the_pickle_output(video_dir, tmp_path):
    """--format pose: the same extraction written as pose-format's .pose (opens in its viewer) reads back as the
    .pkl's keypoints (to float32 rounding of the pixel round trip)."""
    pytest.importorskip("pose_format", reason="pose-format is not installed (requirements-pose.txt)")
    assert extraction_main(["--input", str(video_dir / "good.mp4"), "--out", str(tmp_path / "pkl"), "--no-progress"]) == 0
    assert extraction_main(["--input", str(video_dir / "good.mp4"), "--out", str(tmp_path / "pose"), "--format", "pose",
                         "--no-progress"]) == 0
    from_pkl, from_pose = read_pose_file(tmp_path / "pkl" / "good.pkl"), read_pose_file(tmp_path / "pose" / "good.pose")
    np.testing.assert_array_equal(from_pose.scores, from_pkl.scores)
    np.testing.assert_allclose(from_pose.keypoints, np.where(from_pkl.scores[..., None] > 0, from_pkl.keypoints, 0),
                               atol=1e-6)
