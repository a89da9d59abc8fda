"""Crop boxes, presets, and cutting clips: the output frames are exactly the inset region."""
import shutil

import cv2
import numpy as np
import pytest

from curation.crop import (CropBox, CropError, cut_clips, ffmpeg_command, load_presets, parse_crop, preset_box,
                           write_preview)
from curation.demo import INSET, broadcast_frame, frame_index, inset_image, write_broadcast
from curation_cases import read_frames


def test_parse_crop_and_pixels():
    box = parse_crop("0.5,0.5,1,1")
    assert box.relative() == [0.5, 0.5, 1.0, 1.0]
    assert box.pixels(160, 120) == (80, 60, 160, 120)
    assert CropBox(0.1, 0.1, 0.45, 0.9).pixels(101, 51) == (10, 5, 44, 45)  # even width and height


@pytest.mark.parametrize("text, message", [
    ("0.6,0.5,1.2,1.0", r"lies outside the frame: x1=1.2 not in \[0, 1\]"),
    ("-0.1,0.5,0.5,1", "lies outside the frame: x0=-0.1"),
    ("0.5,0.5,0.5,1", "is empty: need x0 < x1"),
    ("0.5,0.5,1", "expected four numbers"),
    ("a,b,c,d", "expected four numbers"),
])
def test_bad_crop_boxes_are_errors(text, message):
    with pytest.raises(CropError, match=message):
        parse_crop(text)


def test_a_box_too_small_for_the_frame_is_an_error():
    with pytest.raises(CropError, match=r"news\.mp4: crop box .* is only 0x2 pixels on a 40x30 frame"):
        CropBox(0.5, 0.5, 0.51, 0.6).pixels(40, 30, "news.mp4")


def test_presets_file_is_valid():
    presets = load_presets()
    assert {"bottom_right_inset", "full_frame"} <= set(presets)
    for name in presets:
        box = preset_box(name)
        assert box.source == f"preset {name}" and presets[name]["description"]
    with pytest.raises(CropError, match="unknown crop preset 'nope'; known presets: bottom_left_inset"):
        preset_box("nope")


def test_preset_outside_the_frame_names_the_preset(tmp_path):
    path = tmp_path / "presets.json"
    path.write_text('{"wide": {"crop": [0.5, 0.5, 1.5, 1.0]}}')
    with pytest.raises(CropError, match=r"\(preset wide\) lies outside the frame: x1=1.5"):
        preset_box("wide", path)


def test_opencv_cut_gives_exactly_the_inset_frames(tmp_path):
    video = tmp_path / "news.mp4"
    write_broadcast(video, seconds=4, fps=10)
    box = CropBox(*INSET).pixels(160, 120)
    outs = [tmp_path / "c0.mp4", tmp_path / "c1.mp4"]
    ends = cut_clips("opencv", video, [(3, 12), (20, 31)], box, outs, 10)
    assert ends == [12, 31]
    for out, (start, end) in zip(outs, [(3, 12), (20, 31)]):
        frames = read_frames(out)
        assert [frame.shape for frame in frames] == [(60, 80, 3)] * (end - start)
        assert [frame_index(frame) for frame in frames] == list(range(start, end))
        for index, frame in zip(range(start, end), frames):
            expected = inset_image(index, 80, 60).astype(float)
            assert np.abs(frame.astype(float) - expected).mean() < 12  # mp4v is lossy
            blue_minus_red = frame[..., 0].astype(float) - frame[..., 2]
            assert abs(blue_minus_red.mean()) < 8  # no studio background (blue-ish) leaked into the crop
    assert not list(tmp_path.glob(".*partial*"))


def test_a_video_shorter_than_reported_truncates_the_last_clip(tmp_path):
    video = tmp_path / "news.mp4"
    write_broadcast(video, seconds=2, fps=10)
    ends = cut_clips("opencv", video, [(5, 15), (18, 30)], CropBox(*INSET).pixels(160, 120),
                     [tmp_path / "a.mp4", tmp_path / "b.mp4"], 10)
    assert ends == [15, 20]
    assert len(read_frames(tmp_path / "b.mp4")) == 2


def test_ffmpeg_command_and_missing_ffmpeg(tmp_path, monkeypatch):
    command = ffmpeg_command("in.mp4", 35, 70, 10, (80, 60, 160, 120), "out.mp4")
    assert command[command.index("-ss") + 1] == "3.500000"
    assert command[command.index("-frames:v") + 1] == "35"
    assert "crop=80:60:80:60" in command and command[-1] == "out.mp4"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CropError, match="no 'ffmpeg' on PATH"):
        cut_clips("ffmpeg", "in.mp4", [(0, 5)], (80, 60, 160, 120), [tmp_path / "a.mp4"], 10)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_cut_gives_the_inset_frames(tmp_path):
    video = tmp_path / "news.mp4"
    write_broadcast(video, seconds=4, fps=10)
    cut_clips("ffmpeg", video, [(12, 25)], CropBox(*INSET).pixels(160, 120), [tmp_path / "c.mp4"], 10)
    assert [frame_index(frame) for frame in read_frames(tmp_path / "c.mp4")] == list(range(12, 25))


def test_preview_draws_the_box(tmp_path):
    video = tmp_path / "news.mp4"
    write_broadcast(video, seconds=1, fps=10)
    write_preview(video, CropBox(*INSET), tmp_path / "preview.png")
    preview = cv2.imread(str(tmp_path / "preview.png"))
    assert preview.shape == broadcast_frame(0).shape
    assert tuple(preview[60, 100]) == (0, 0, 255)  # the red box edge at the inset's top
