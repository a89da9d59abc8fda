"""The pipeline end to end on the hand-made broadcast: clips, crops, labels, manifest, resume, parallel, bad input."""
import hashlib
import importlib.util
import json
import shutil
import sys
import types

import cv2
import numpy as np
import pytest
from curation_cases import CROP, EXPECTED_CLIPS, SRT_A, broadcast, broadcast_dir, read_frames  # noqa: F401 (fixtures)

from curation import pipeline
from curation.demo import frame_index
from curation.manifest import read_manifest
from curation.pipeline import main
from datasets.formats import read_csl_news_labels, read_pose_file


def curate(broadcast, out, *extra):
    """Run the CLI on the broadcast folder; returns its exit status."""
    return main(["--videos", str(broadcast / "videos"), "--subtitles", str(broadcast / "subtitles"),
                 "--crop", CROP, "--out", str(out), *extra])


def digests(out):
    return {path.name: hashlib.sha1(path.read_bytes()).hexdigest() for path in sorted((out / "rgb_format").iterdir())}


def assert_same_corpus(out, reference):
    """The same labels, clip files and manifest clips as the reference run's."""
    assert (out / "CSL_News_Labels.json").read_bytes() == (reference / "CSL_News_Labels.json").read_bytes()
    assert digests(out) == digests(reference)
    clips = {name: record["clips"] for name, record in read_manifest(out / "manifest.jsonl").items()}
    assert clips == {name: record["clips"] for name, record in read_manifest(reference / "manifest.jsonl").items()}


@pytest.fixture(scope="module")
def corpus(broadcast_dir, tmp_path_factory):
    """The broadcast curated once with the defaults."""
    out = tmp_path_factory.mktemp("corpus")
    assert curate(broadcast_dir, out) == 0
    return out


def test_expected_clips_texts_and_frames(corpus):
    labels = json.loads((corpus / "CSL_News_Labels.json").read_text(encoding="utf-8"))
    assert labels == [{"video": f"{name}.mp4", "pose": f"{name}.pkl", "text": text}
                      for name, (text, _, _) in EXPECTED_CLIPS.items()]
    assert [entry.name for entry in read_csl_news_labels(corpus / "CSL_News_Labels.json")] == list(EXPECTED_CLIPS)
    for name, (_, start, end) in EXPECTED_CLIPS.items():
        frames = read_frames(corpus / "rgb_format" / f"{name}.mp4")
        assert [frame_index(frame) for frame in frames] == list(range(start, end)), name
        assert {frame.shape for frame in frames} == {(60, 80, 3)}


def test_manifest_records_sources_times_crop_outputs_and_warnings(corpus, broadcast_dir):
    records = read_manifest(corpus / "manifest.jsonl")
    assert sorted(records) == ["news_a", "news_b"]
    record = records["news_b"]
    assert record["status"] == "done" and record["error"] is None
    assert record["source"] == str(broadcast_dir / "videos" / "news_b.mp4")
    assert record["subtitles"] == str(broadcast_dir / "subtitles" / "news_b.srt")
    assert record["video_info"] == {"fps": 10.0, "frames": 120, "width": 160, "height": 120, "duration": 12.0}
    assert record["crop"] == {"relative": [0.5, 0.5, 1.0, 1.0], "pixels": [80, 60, 160, 120], "source": "--crop"}
    first = record["clips"][0]
    assert first == {"name": "news_b_0000", "text": "Tomorrow we go to school.", "start": 1.0, "end": 3.564,
                     "start_frame": 10, "end_frame": 36, "frames": 26, "duration": 2.6,
                     "cues": ["cue 1 (line 2)"], "video": "rgb_format/news_b_0000.mp4", "pose": None}
    assert record["clips"][1]["cues"] == ["cue 1 (line 2)", "cue 2 (line 6)"]
    assert len(record["warnings"]) == 2
    assert "news_b.srt: cue 3 (line 10) ends at 00:00:13.500, after the video's end; clamped" in record["warnings"][0]
    assert "news_b.srt: cue 4 (line 14) starts at 00:00:13.600" in record["warnings"][1]


def test_statistics_and_histograms_are_written(corpus):
    stats = json.loads((corpus / "stats.json").read_text())
    durations = [(end - start) / 10 for _, start, end in EXPECTED_CLIPS.values()]
    assert stats["clips"] == 7
    assert stats["hours"] == pytest.approx(sum(durations) / 3600)
    assert stats["mean_duration_s"] == pytest.approx(np.mean(durations))
    for name in ("duration_histogram.png", "text_length_histogram.png"):
        image = cv2.imread(str(corpus / name))
        assert image is not None and image.shape[0] > 100


def test_resume_skips_finished_videos_and_overwrite_redoes_them(broadcast, tmp_path, capsys):
    out = tmp_path / "out"
    assert curate(broadcast, out) == 0
    before = {path.name: path.stat().st_mtime_ns for path in (out / "rgb_format").iterdir()}
    capsys.readouterr()
    assert curate(broadcast, out) == 0
    assert "2 videos: 2 already curated, 0 to do" in capsys.readouterr().out
    assert {path.name: path.stat().st_mtime_ns for path in (out / "rgb_format").iterdir()} == before
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 2

    # Changed subtitles redo that video only; its old clips are replaced.
    (broadcast / "subtitles" / "news_a.srt").write_text(SRT_A.replace("好的", "好的。"), encoding="utf-8")
    assert curate(broadcast, out) == 0
    assert "2 videos: 1 already curated, 1 to do" in capsys.readouterr().out
    names = sorted(path.stem for path in (out / "rgb_format").iterdir())
    assert names == sorted(EXPECTED_CLIPS)  # "好的。" (0.5 s) merges back into the clip before it

    assert curate(broadcast, out, "--overwrite") == 0
    assert "2 videos: 0 already curated, 2 to do" in capsys.readouterr().out
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 5


def test_a_failed_video_is_retried_on_the_next_run(broadcast, tmp_path, capsys):
    out = tmp_path / "out"
    srt = broadcast / "subtitles" / "news_b.srt"
    srt.rename(srt.with_suffix(".bak"))
    assert curate(broadcast, out) == 1
    captured = capsys.readouterr()
    assert "news_b: FAILED: " in captured.out and "no subtitle file news_b.srt/news_b.vtt/news_b.json" in captured.out
    assert read_manifest(out / "manifest.jsonl")["news_b"]["status"] == "failed"
    assert len(read_csl_news_labels(out / "CSL_News_Labels.json")) == 4  # news_a's clips only
    srt.with_suffix(".bak").rename(srt)
    assert curate(broadcast, out) == 0
    assert "2 videos: 1 already curated, 1 to do" in capsys.readouterr().out
    assert len(read_csl_news_labels(out / "CSL_News_Labels.json")) == 7


def test_two_workers_give_the_same_output_as_one(broadcast_dir, corpus, tmp_path):
    out = tmp_path / "parallel"
    assert curate(broadcast_dir, out, "--workers", "2") == 0
    assert_same_corpus(out, corpus)


def test_ray_tasks_give_the_same_output_as_one_process(broadcast_dir, corpus, tmp_path, local_ray_cluster):
    out = tmp_path / "ray"
    assert curate(broadcast_dir, out, "--engine", "ray") == 0
    assert_same_corpus(out, corpus)


# ----------------------------------------------------------------------------- bad input


def test_non_utf8_subtitles_fail_that_video_with_file_and_line(broadcast, tmp_path, capsys):
    srt = broadcast / "subtitles" / "news_a.srt"
    srt.write_bytes(SRT_A.encode("gb18030"))
    assert curate(broadcast, tmp_path / "out") == 1
    error = read_manifest(tmp_path / "out" / "manifest.jsonl")["news_a"]["error"]
    assert error.startswith(f"{srt}:3: not valid utf-8-sig text") and "--subtitle-encoding" in error
    other = broadcast / "subtitles" / "news_b.srt"  # --subtitle-encoding applies to every subtitle file
    other.write_bytes(other.read_text(encoding="utf-8").encode("gb18030"))
    assert curate(broadcast, tmp_path / "out", "--subtitle-encoding", "gb18030") == 0


def test_out_of_order_subtitles_fail_with_the_cue(broadcast, tmp_path):
    srt = broadcast / "subtitles" / "news_a.srt"
    srt.write_text(SRT_A.replace("00:00:08,500 --> 00:00:11,000", "00:00:02,000 --> 00:00:02,500"), encoding="utf-8")
    assert curate(broadcast, tmp_path / "out") == 1
    assert "news_a.srt: cue 4 (line 14): out of order" in read_manifest(tmp_path / "out" / "manifest.jsonl")[
        "news_a"]["error"]
    assert not list((tmp_path / "out" / "rgb_format").glob("news_a_*"))


def test_overlapping_subtitles_are_trimmed_with_a_warning_or_fail_when_strict(broadcast, tmp_path):
    srt = broadcast / "subtitles" / "news_a.srt"
    srt.write_text(SRT_A.replace("00:00:04,000 --> 00:00:07,000", "00:00:03,800 --> 00:00:07,000"), encoding="utf-8")
    assert curate(broadcast, tmp_path / "out") == 0
    warnings = read_manifest(tmp_path / "out" / "manifest.jsonl")["news_a"]["warnings"]
    assert warnings == [f"{srt}: cue 2 (line 6) (ends 00:00:04.000) overlaps cue 3 (line 10) (starts 00:00:03.800); "
                        "trimmed the end of cue 2 (line 6) to 00:00:03.800"]
    assert curate(broadcast, tmp_path / "strict", "--strict-times") == 1


def test_empty_subtitle_text_is_skipped_with_a_warning(broadcast, tmp_path):
    srt = broadcast / "subtitles" / "news_a.srt"
    srt.write_text(SRT_A.replace("谢谢大家！", ""), encoding="utf-8")
    assert curate(broadcast, tmp_path / "out") == 0
    record = read_manifest(tmp_path / "out" / "manifest.jsonl")["news_a"]
    assert record["warnings"] == [f"{srt}: cue 4 (line 14) has no text; skipped"]
    assert len(record["clips"]) == 3


def test_crop_box_outside_the_frame_is_a_setup_error(broadcast, tmp_path, capsys):
    status = main(["--videos", str(broadcast / "videos"), "--subtitles", str(broadcast / "subtitles"),
                   "--crop", "0.6,0.5,1.2,1.0", "--out", str(tmp_path / "out")])
    assert status == 2
    assert "crop box (0.6, 0.5, 1.2, 1.0) (--crop) lies outside the frame: x1=1.2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_preset_and_missing_inputs_are_setup_errors(broadcast, tmp_path, capsys):
    assert main(["--videos", str(broadcast / "videos"), "--subtitles", str(broadcast / "subtitles"),
                 "--preset", "nope", "--out", str(tmp_path / "out")]) == 2
    assert "unknown crop preset 'nope'" in capsys.readouterr().err
    assert main(["--videos", str(tmp_path / "none"), "--subtitles", str(broadcast / "subtitles"),
                 "--preset", "full_frame", "--out", str(tmp_path / "out")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_ffmpeg_cutter_without_ffmpeg_is_a_setup_error(broadcast, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pipeline.shutil, "which", lambda name: None)
    assert curate(broadcast, tmp_path / "out", "--cutter", "ffmpeg") == 2
    assert "--cutter ffmpeg: no 'ffmpeg' on PATH" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_cutter_gives_the_same_read_frames(broadcast_dir, tmp_path):
    out = tmp_path / "out"
    assert curate(broadcast_dir, out, "--cutter", "ffmpeg") == 0
    for name, (_, start, end) in EXPECTED_CLIPS.items():
        frames = read_frames(out / "rgb_format" / f"{name}.mp4")
        assert [frame_index(frame) for frame in frames] == list(range(start, end)), name


def test_funasr_backend_through_the_pipeline_gives_the_subtitle_clips(broadcast, corpus, tmp_path, monkeypatch):
    class FakeAutoModel:  # what FunASR (paraformer + punctuation, sentence_timestamp=True) returns for news_a
        def __init__(self, **kwargs):
            pass

        def generate(self, input, **kwargs):
            cues = [("今天天气很好，", 500, 1846), ("我们去公园。", 1846, 3000), ("好的", 3500, 4000),
                    ("明天下雨吗？", 4000, 7000), ("谢谢大家！", 8500, 11000)]
            return [{"key": input, "sentence_info": [{"text": text, "start": start, "end": end}
                                                     for text, start, end in cues]}]

    monkeypatch.setitem(sys.modules, "funasr", types.SimpleNamespace(AutoModel=FakeAutoModel))
    (tmp_path / "model").mkdir()
    status = main(["--videos", str(broadcast / "videos" / "news_a.mp4"), "--asr", "funasr",
                   "--asr-model", str(tmp_path / "model"), "--crop", CROP, "--out", str(tmp_path / "out")])
    assert status == 0
    texts = [entry.text for entry in read_csl_news_labels(tmp_path / "out" / "CSL_News_Labels.json")]
    assert texts == [text for name, (text, _, _) in EXPECTED_CLIPS.items() if name.startswith("news_a")]
    assert read_manifest(tmp_path / "out" / "manifest.jsonl")["news_a"]["settings"]["asr"]["model"] == str(
        tmp_path / "model")
    assert digests(tmp_path / "out") == {name: digest for name, digest in digests(corpus).items()
                                         if name.startswith("news_a")}


def test_single_video_and_subtitle_file_with_a_preset(broadcast, tmp_path):
    status = main(["--videos", str(broadcast / "videos" / "news_a.mp4"),
                   "--subtitles", str(broadcast / "subtitles" / "news_a.srt"),
                   "--preset", "full_frame", "--out", str(tmp_path / "out")])
    assert status == 0
    record = read_manifest(tmp_path / "out" / "manifest.jsonl")["news_a"]
    assert record["crop"]["source"] == "preset full_frame" and record["crop"]["pixels"] == [0, 0, 160, 120]
    assert len(record["clips"]) == 4


# ----------------------------------------------------------------------------- pose extraction


def test_extract_poses_without_the_front_end_is_a_clear_error(broadcast, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pose_extraction", None)  # as if pose_extraction/ were absent
    assert curate(broadcast, tmp_path / "out", "--extract-poses") == 2
    assert "--extract-poses needs the pose front-end (pose_extraction/" in capsys.readouterr().err
    assert not list((tmp_path / "out" / "rgb_format").iterdir())


def test_extract_poses_without_mediapipe_is_a_clear_error(broadcast, tmp_path, monkeypatch, capsys):
    backends = pytest.importorskip("pose_extraction.backends")

    def unavailable():
        raise backends.BackendUnavailable("mediapipe is not installed")

    monkeypatch.setattr(backends, "import_mediapipe", unavailable)
    assert curate(broadcast, tmp_path / "out", "--extract-poses") == 2
    assert "--extract-poses: mediapipe is not installed" in capsys.readouterr().err


def fake_extractor(video_path):
    """Stands in for the MediaPipe front-end: one moving point per clip frame (the first clip: nobody)."""
    frames = len(read_frames(video_path))
    keypoints = np.full((frames, 133, 2), 0.5, np.float32)
    keypoints[:, 0, 0] = np.linspace(0.1, 0.9, frames)
    seen = not video_path.endswith("_0000.mp4")
    return keypoints, np.full((frames, 133), float(seen), np.float32)


def test_extract_poses_writes_a_pose_file_per_clip(broadcast, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "check_pose_front_end", lambda: None)
    monkeypatch.setattr(pipeline, "load_pose_extractor", lambda: fake_extractor)
    assert curate(broadcast, tmp_path / "out", "--extract-poses") == 0
    record = read_manifest(tmp_path / "out" / "manifest.jsonl")["news_a"]
    for clip in record["clips"]:
        pose = read_pose_file(tmp_path / "out" / clip["pose"])
        assert clip["pose"] == f"pose_format/{clip['name']}.pkl" and pose.num_frames == clip["frames"]
    assert record["warnings"] == ["rgb_format/news_a_0000.mp4: no person detected in any frame (all-zero poses)"]


def test_a_bad_extractor_result_fails_the_video(broadcast, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "check_pose_front_end", lambda: None)
    monkeypatch.setattr(pipeline, "load_pose_extractor", lambda: lambda path: (np.zeros((3, 17, 2)), np.zeros((3, 17))))
    assert curate(broadcast, tmp_path / "out", "--extract-poses") == 1
    record = read_manifest(tmp_path / "out" / "manifest.jsonl")["news_a"]
    assert "the pose extractor returned shapes (3, 17, 2) and (3, 17)" in record["error"]
    assert not list((tmp_path / "out" / "rgb_format").iterdir())


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="mediapipe is not installed")
def test_extract_poses_with_mediapipe(broadcast, tmp_path):
    assert curate(broadcast, tmp_path / "out", "--extract-poses") == 0
    for record in read_manifest(tmp_path / "out" / "manifest.jsonl").values():
        for clip in record["clips"]:  # the test inset shows no person: all-zero poses, one per frame
            assert read_pose_file(tmp_path / "out" / clip["pose"]).num_frames == clip["frames"]
