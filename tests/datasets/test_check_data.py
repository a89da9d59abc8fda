"""`python -m datasets.check_data`: clean data passes, every kind of problem is reported on its own line."""
import gzip
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets.check_data import check_dataset, format_summary, main
from datasets.formats import LabelEntry, write_official_labels, write_pose_npz, write_pose_pkl

REPO_ROOT = Path(__file__).resolve().parents[2]


def _pose(frames=4, people=1, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "keypoints": [rng.uniform(0.1, 0.9, (people, 133, 2)) for _ in range(frames)],
        "scores": [rng.uniform(0.4, 1.0, (people, 133)) for _ in range(frames)],
    }


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))


def _dataset(root, poses):
    """Official layout: labels.dev + poses/<name>.pkl for {name: pose dict, or None for no pose file}."""
    entries = [LabelEntry(name, f"sentence {name}", "A B", f"{name}.mp4") for name in poses]
    for name, data in poses.items():
        if data is not None:
            _write(root / "poses" / f"{name}.pkl", data)
    write_official_labels(root / "labels.dev", entries)
    return root / "labels.dev", root / "poses"


def _run_cli(labels, pose_dir, *extra):
    return subprocess.run(
        [sys.executable, "-m", "datasets.check_data", "--labels", str(labels), "--pose-dir", str(pose_dir), *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_clean_dataset_exits_0(tmp_path):
    poses = {"a": _pose(3), "b": _pose(5, seed=1), "c": {**_pose(8, seed=2), "start": 2, "end": 6}}
    labels, pose_dir = _dataset(tmp_path, poses)
    result = _run_cli(labels, pose_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: no problems found" in result.stdout
    assert "3 / 4.0 / 5" in result.stdout  # frames used: 3, 5 and 6 - 2


def _problem_dataset(root):
    """One sample per kind of pose/label problem; the value is (pose dict or None, video_path override)."""
    nan = _pose(seed=3)
    nan["keypoints"][2][0, 100, 0] = np.nan
    pixels = _pose(seed=4)
    pixels["keypoints"] = [frame * 640 for frame in pixels["keypoints"]]
    negative = _pose(seed=5)
    negative["scores"][1][0, 7] = -0.5
    bad_shape = _pose(seed=6)
    bad_shape["keypoints"][0] = np.zeros((1, 17, 2))
    poses = {
        "good": _pose(),
        "missing": None,
        "unsafe": {"keypoints": [_Evil(root / "executed")], "scores": []},
        "nan": nan,
        "pixels": pixels,
        "negative": negative,
        "shape": bad_shape,
        "empty": {"keypoints": [], "scores": []},
        "bounds": {**_pose(seed=7), "start": 3, "end": 1},
    }
    labels, pose_dir = _dataset(root, poses)
    (pose_dir / "truncated.pkl").write_bytes(pickle.dumps(_pose())[:-50])
    with gzip.open(labels) as handle:
        records = pickle.load(handle)
    records["truncated"] = {"name": "truncated", "gloss": [], "text": "t", "video_path": "truncated.mp4"}
    records["notext"] = {"name": "notext", "gloss": [], "text": "", "video_path": "good.mp4"}
    records["escape"] = {"name": "escape", "gloss": [], "text": "t", "video_path": "../../etc/x.mp4"}
    with gzip.open(labels, "wb") as handle:
        pickle.dump(records, handle)
    return labels, pose_dir


EXPECTED_KINDS = {
    "missing": "missing-pose",
    "unsafe": "unsafe-pickle",
    "nan": "nan",
    "pixels": "coordinate-range",
    "negative": "score-range",
    "shape": "bad-shape",
    "empty": "zero-frames",
    "bounds": "bad-bounds",
    "truncated": "corrupt-file",
}


def test_each_problem_kind_is_reported(tmp_path):
    labels, pose_dir = _problem_dataset(tmp_path)
    report = check_dataset(labels, pose_dir)
    assert not report.clean
    assert (report.samples, report.ok) == (12, 1)
    by_kind = {issue.kind: issue for issue in report.problems}
    assert sorted(by_kind) == sorted([*EXPECTED_KINDS.values(), "empty-text", "outside-root"])
    assert len(report.problems) == 11  # exactly one line per problem
    for name, kind in EXPECTED_KINDS.items():
        assert by_kind[kind].file == str(pose_dir / f"{name}.pkl"), kind
    assert by_kind["nan"].field == "keypoints" and "frame 2" in by_kind["nan"].message
    assert by_kind["score-range"].field == "scores"
    assert "refusing to unpickle" in by_kind["unsafe-pickle"].message
    assert by_kind["empty-text"].file == str(labels) and "'notext'" in by_kind["empty-text"].message
    assert by_kind["outside-root"].field == "video_path" and "../../etc/x.pkl" in by_kind["outside-root"].message
    assert not (tmp_path / "executed").exists()


def test_cli_prints_one_line_per_problem_and_exits_1(tmp_path):
    labels, pose_dir = _problem_dataset(tmp_path)
    result = _run_cli(labels, pose_dir)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "11 problem(s):" in lines
    problem_lines = lines[lines.index("11 problem(s):") + 1:]
    assert len(problem_lines) == 11
    for name in EXPECTED_KINDS:
        assert sum(line.startswith(f"{pose_dir / name}.pkl: ") for line in problem_lines) == 1, name
    assert any(line.startswith(f"{labels}: text: ") for line in problem_lines)
    assert "  missing-pose" in result.stdout and "  unsafe-pickle" in result.stdout  # summary by kind
    assert not (tmp_path / "executed").exists()


def test_notes_do_not_fail_the_check(tmp_path):
    multi = _pose(frames=6, people=2)
    multi["keypoints"][0], multi["scores"][0] = multi["keypoints"][0][:1], multi["scores"][0][:1]  # ragged
    above_one = _pose(seed=1)
    above_one["scores"][0][0, :5] = 1.2  # RTMPose scores can exceed 1; the normalisation clips them
    unconfident_outside = _pose(seed=2)
    unconfident_outside["keypoints"][1][0, 15] = (0.5, 1.6)  # an ankle below the frame...
    unconfident_outside["scores"][1][0, 15] = 0.1  # ...that the extractor was not sure about
    poses = {"multi": multi, "long": _pose(frames=9), "above": above_one, "low": unconfident_outside}
    labels, pose_dir = _dataset(tmp_path, poses)
    report = check_dataset(labels, pose_dir, max_length=8)
    assert report.clean and report.ok == 4
    assert report.multi_person_frames == 5
    assert sorted(note.kind for note in report.notes) == ["long-clip", "multi-person", "score-above-1"]
    summary = format_summary(report)
    assert "5 in 1 files" in summary and "clips > max_length 8 (note)" in summary
    assert main(["--labels", str(labels), "--pose-dir", str(pose_dir), "--max-length", "8"]) == 0


def test_duplicate_names_and_bad_records_in_jsonl(tmp_path, capsys):
    poses = tmp_path / "poses"
    write_pose_npz(poses / "a.npz", *(np.full((3, 133, 2), 0.5), np.full((3, 133), 0.9)))
    lines = [
        {"name": "a", "text": "one", "video_path": "a.mp4", "pose_path": "a.npz"},
        {"name": "a", "text": "two", "video_path": "a.mp4", "pose_path": "a.npz"},
        {"name": "b", "text": "three", "video_path": "../b.mp4", "pose_path": "a.npz"},
        {"name": "c", "text": "four", "pose_path": "/etc/passwd.npz"},
    ]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps(line) for line in lines) + "\n{broken\n")
    assert main(["--labels", str(labels), "--pose-dir", str(poses)]) == 1
    output = capsys.readouterr().out
    assert f"{labels}: name: sample name 'a' appears 2 times" in output
    assert f"{labels}: video_path: sample 'b': video path '../b.mp4' points outside the video root" in output
    assert f"{labels}: pose_path: sample 'c': pose path '/etc/passwd.npz' points outside the pose root" in output
    assert f"{labels}: record: line 5: invalid JSON" in output
    report = check_dataset(labels, poses)
    assert (report.samples, report.ok, len(report.problems)) == (5, 0, 4)


def test_csl_news_labels_are_checked(tmp_path):
    write_pose_pkl(tmp_path / "pose" / "n1.pkl", np.full((2, 133, 2), 0.5), np.full((2, 133), 0.9))
    labels = tmp_path / "CSL_News_Labels.json"
    labels.write_text(json.dumps([
        {"video": "video/n1.mp4", "pose": "pose/n1.pkl", "text": "新闻。"},
        {"video": "video/n2.mp4", "pose": "pose/n2.pkl", "text": "没有姿态。"},
        {"video": "video/n3.mp4", "text": "no pose field"},
    ]))
    report = check_dataset(labels, tmp_path)
    assert sorted(issue.kind for issue in report.problems) == ["bad-record", "missing-pose"]
    assert report.text_chars == [3, 5]


def test_unreadable_label_file_fails(tmp_path, capsys):
    (tmp_path / "labels.dev").write_bytes(b"\x1f\x8b broken gzip")
    assert main(["--labels", str(tmp_path / "labels.dev"), "--pose-dir", str(tmp_path)]) == 1
    assert f"{tmp_path / 'labels.dev'}: labels: corrupt gzip stream" in capsys.readouterr().out


def test_converted_dataset_checks_clean(tmp_path):
    from datasets.convert import convert_to_native

    labels, pose_dir = _dataset(tmp_path / "official", {"a": _pose(), "b": {**_pose(6, people=2), "start": 1}})
    convert_to_native(labels, pose_dir, tmp_path / "native")
    report = check_dataset(tmp_path / "native" / "labels.jsonl", tmp_path / "native" / "poses")
    assert report.clean and report.frames == [4, 5]


@pytest.mark.parametrize("split", ["labels.dev"])
def test_real_label_file_without_poses_reports_missing_poses(shared_dir, tmp_path, split):
    path = shared_dir / "official_labels" / "CSL_Daily" / split
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    report = check_dataset(path, tmp_path)
    assert report.samples == 1077 and report.ok == 0
    assert {issue.kind for issue in report.problems} == {"missing-pose"}
    assert len(report.text_chars) == 1077


def test_missing_pose_directory_is_one_problem(tmp_path):
    labels, _ = _dataset(tmp_path, {"a": None, "b": None})
    report = check_dataset(labels, tmp_path / "no-such-dir")
    assert [issue.kind for issue in report.problems] == ["missing-pose-dir"]
    assert (report.samples, report.ok) == (2, 0)


def test_bad_field_types_are_each_one_problem_naming_line_sample_and_field(tmp_path, capsys):
    poses = tmp_path / "poses"
    write_pose_npz(poses / "ok.npz", np.full((3, 133, 2), 0.5), np.full((3, 133), 0.9))
    lines = [
        {"name": "ok", "text": "fine", "pose_path": "ok.npz"},
        {"name": "p", "text": "x", "pose_path": 123},
        {"name": "g", "text": "x", "gloss": 5},
        {"name": ["l", "ist"], "text": "x"},
        {"name": "s", "text": "lone \ud800"},
    ]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert main(["--labels", str(labels), "--pose-dir", str(poses)]) == 1
    output = capsys.readouterr().out
    assert f"{labels}: pose_path: line 2: sample 'p' field 'pose_path' is int 123, expected a string" in output
    assert f"{labels}: gloss: line 3: sample 'g' field 'gloss' is int 5" in output
    assert f"{labels}: name: line 4: sample '['l', 'ist']' field 'name' is list" in output
    assert f"{labels}: text: line 5: sample 's' field 'text' is not valid Unicode (lone surrogate" in output
    assert check_dataset(labels, poses).ok == 1


def test_text_stored_as_bytes_is_reported_as_bytes(tmp_path):
    labels = tmp_path / "labels.dev"
    with gzip.open(labels, "wb") as handle:
        pickle.dump({"a": {"name": "a", "text": b"hello", "video_path": "a.mp4"}}, handle)
    _write(tmp_path / "poses" / "a.pkl", _pose())
    (problem,) = check_dataset(labels, tmp_path / "poses").problems
    assert (problem.field, problem.kind) == ("text", "bad-record") and "is bytes, expected text" in problem.message


def test_a_plain_pickle_label_file_is_accepted_with_a_note(tmp_path):
    labels = tmp_path / "labels.dev"
    labels.write_bytes(pickle.dumps({"a": {"name": "a", "text": "hello", "video_path": "a.mp4"}}))
    _write(tmp_path / "poses" / "a.pkl", _pose())
    report = check_dataset(labels, tmp_path / "poses")
    assert report.clean and [note.kind for note in report.notes] == ["plain-pickle"]


def test_a_clip_over_the_frame_limit_is_reported_not_read(tmp_path, capsys):
    frame = _pose(frames=1)
    labels, poses = _dataset(tmp_path, {"ok": _pose(), "huge": {"keypoints": frame["keypoints"] * 300_000,
                                                                 "scores": frame["scores"] * 300_000}})
    assert main(["--labels", str(labels), "--pose-dir", str(poses)]) == 1
    output = capsys.readouterr().out
    assert f"{poses / 'huge.pkl'}: keypoints: field 'keypoints' has 300000 frames, more than the limit of 100000" in output
    assert "  too-long" in output
    report = check_dataset(labels, poses, max_frames=300_000)
    assert report.clean


def test_findings_are_cached_by_file_size_and_mtime(tmp_path, monkeypatch):
    from datasets import check_data

    labels, poses = _dataset(tmp_path, {"a": _pose(), "b": _pose(seed=1)})
    cache = tmp_path / "cache.json"
    check_dataset(labels, poses, cache_path=cache)
    reads = []
    original = check_data._read_findings
    monkeypatch.setattr(check_data, "_read_findings", lambda path, limit: reads.append(path.name) or original(path, limit))
    assert check_dataset(labels, poses, cache_path=cache).clean and reads == []
    _write(poses / "b.pkl", {"keypoints": [], "scores": []})  # changed: read again, and found broken
    report = check_dataset(labels, poses, cache_path=cache)
    assert reads == ["b.pkl"] and [problem.kind for problem in report.problems] == ["zero-frames"]
