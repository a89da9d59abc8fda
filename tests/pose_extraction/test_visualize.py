"""Skeleton rendering: part colours, faded low-confidence points, MP4/PNG outputs, contact sheets."""
import cv2
import numpy as np
import pytest

from datasets.formats import write_pose_pkl
from tests.utils.pictures import write_video
from pose_extraction import visualize
from pose_extraction.visualize import FADE_ALPHA, PART_COLOURS, draw_pose

BACKGROUND = (40, 40, 40)


def spread_pose(frames=3):
    """A pose whose 133 points lie on a 12 x 12 grid (so that no two overlap), all confident."""
    grid = np.stack(np.meshgrid(np.linspace(0.05, 0.95, 12), np.linspace(0.05, 0.95, 12)), -1).reshape(-1, 2)
    keypoints = np.repeat(grid[None, :133], frames, axis=0).astype(np.float32)  # (T, 133, 2)
    return keypoints, np.ones((frames, 133), np.float32)


def pixel(image, point):
    height, width = image.shape[:2]
    return image[int(round(point[1] * height)), int(round(point[0] * width))]


def test_points_are_coloured_by_part_and_missing_points_are_not_drawn():
    keypoints, scores = spread_pose(1)
    scores[0, 60] = 0.0  # a missing face point
    image = np.full((600, 600, 3), BACKGROUND, np.uint8)
    draw_pose(image, keypoints[0], scores[0])
    for part, index in (("body", 3), ("feet", 20), ("face", 50), ("left_hand", 100), ("right_hand", 120)):
        assert tuple(pixel(image, keypoints[0, index])) == PART_COLOURS[part], part
    assert tuple(pixel(image, keypoints[0, 60])) == BACKGROUND


def test_low_confidence_points_are_faded():
    keypoints, scores = spread_pose(1)
    scores[0, 100] = 0.2  # below Uni-Sign's 0.3 threshold
    image = np.full((600, 600, 3), BACKGROUND, np.uint8)
    draw_pose(image, keypoints[0], scores[0])
    expected = FADE_ALPHA * np.array(PART_COLOURS["left_hand"]) + (1 - FADE_ALPHA) * np.array(BACKGROUND)
    np.testing.assert_allclose(pixel(image, keypoints[0, 100]), expected, atol=2)


def test_mp4_over_a_video_and_contact_sheet(tmp_path):
    keypoints, scores = spread_pose(5)
    write_pose_pkl(tmp_path / "clip.pkl", keypoints, scores)
    frames = [np.full((120, 160, 3), (0, 0, 200 - 30 * i), np.uint8) for i in range(5)]
    write_video(tmp_path / "clip.mp4", frames)
    written = visualize.render(tmp_path / "clip.pkl", tmp_path / "vis" / "out.mp4", video=tmp_path / "clip.mp4",
                               contact_sheet_frames=4)
    assert written == [tmp_path / "vis" / "out.mp4", tmp_path / "vis" / "out_sheet.png"]
    capture = cv2.VideoCapture(str(written[0]))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (120, 160, 3)
        assert abs(int(frame[2, 80, 2]) - (200 - 30 * count)) < 20  # the video's own pixels, frame by frame
        count += 1
    assert count == 5
    sheet = cv2.imread(str(written[1]))
    assert sheet.shape == (240, 320, 3)  # 4 frames -> 2 x 2 grid of 160 x 120


def test_png_on_a_blank_canvas_and_cli(tmp_path, capsys):
    keypoints, scores = spread_pose(4)
    write_pose_pkl(tmp_path / "clip.pkl", keypoints, scores)
    assert visualize.main(["--pose", str(tmp_path / "clip.pkl"), "--out", str(tmp_path / "one.png"),
                           "--size", "200", "100", "--frame", "3"]) == 0
    assert cv2.imread(str(tmp_path / "one.png")).shape == (100, 200, 3)
    assert visualize.main(["--pose", str(tmp_path / "clip.pkl"), "--out", str(tmp_path / "sheet.png"),
                           "--contact-sheet", "9"]) == 0
    assert cv2.imread(str(tmp_path / "sheet.png")).shape == (1024, 1024, 3)  # 4 frames -> 2 x 2 of 512
    assert visualize.main(["--pose", str(tmp_path / "clip.pkl"), "--out", str(tmp_path / "x.gif")]) == 2
    assert visualize.main(["--pose", str(tmp_path / "clip.pkl"), "--out", str(tmp_path / "x.png"),
                           "--frame", "10"]) == 1
    assert "outside the clip" in capsys.readouterr().err


def test_sheet_indices_are_evenly_spaced():
    assert visualize.sheet_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert visualize.sheet_indices(3, 8).tolist() == [0, 1, 2]


def test_shorter_video_renders_the_common_frames(tmp_path, capsys):
    keypoints, scores = spread_pose(6)
    write_pose_pkl(tmp_path / "clip.pkl", keypoints, scores)
    write_video(tmp_path / "short.mp4", [np.zeros((64, 64, 3), np.uint8)] * 3)
    visualize.render(tmp_path / "clip.pkl", tmp_path / "out.mp4", video=tmp_path / "short.mp4")
    assert "the video has 3 frames but the pose file 6" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot be opened"):
        visualize.render(tmp_path / "clip.pkl", tmp_path / "out.mp4", video=tmp_path / "missing.mp4")
