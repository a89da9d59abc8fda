"""Readers/writers of the official and native layouts, every bad-input case, the main-signer rule,
the converter, and the real official label files."""
import gzip
import json
import os
import pickle

import numpy as np
import pytest

from datasets import convert
from datasets.formats import (
    DataFormatError,
    LabelEntry,
    pose_clip_from_dict,
    read_labels,
    read_pose_file,
    resolve_pose_path,
    select_main_signer,
    write_csl_news_labels,
    write_native_labels,
    write_official_labels,
    write_pose_npz,
    write_pose_pkl,
)
from datasets.keypoints import PART_INDICES

MAIN_POINTS = PART_INDICES["body"] + PART_INDICES["left"] + PART_INDICES["right"]


def _clip(frames=4, seed=0):
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0.2, 0.8, (frames, 133, 2)).astype(np.float32)
    scores = rng.uniform(0.4, 1.0, (frames, 133)).astype(np.float32)
    return keypoints, scores


def _official_pose(frames=4, people=1, seed=0):
    """An official pose dict: lists of (P, 133, 2) / (P, 133) arrays."""
    rng = np.random.default_rng(seed)
    return {
        "keypoints": [rng.uniform(0.2, 0.8, (people, 133, 2)) for _ in range(frames)],
        "scores": [rng.uniform(0.4, 1.0, (people, 133)) for _ in range(frames)],
    }


def _write_pickle(path, data):
    path.write_bytes(pickle.dumps(data))
    return path


def _person(confidence, centre):
    """One person's (133, 2) keypoints around `centre` and (133,) scores all equal to `confidence`."""
    keypoints = np.full((133, 2), centre, dtype=np.float32)
    keypoints[PART_INDICES["body"]] += np.linspace(-0.05, 0.05, 9)[:, None].astype(np.float32)
    return keypoints, np.full(133, confidence, dtype=np.float32)


ENTRIES = [
    LabelEntry("S000020_P0000_T00", "他今年四岁。", "他 今天 年龄 4", "S000020_P0000_T00.mp4"),
    LabelEntry("00295", "a", "", "00295.mp4"),
    LabelEntry("clip-3", "Are you all bored?", "", "sub/clip-3.mp4"),
]


# ----------------------------------------------------------------------------- pose round trips


def test_pose_pkl_round_trip(tmp_path):
    keypoints, scores = _clip()
    write_pose_pkl(tmp_path / "a.pkl", keypoints, scores, start=1, end=3)
    clip = read_pose_file(tmp_path / "a.pkl")
    np.testing.assert_array_equal(clip.keypoints, keypoints)
    np.testing.assert_array_equal(clip.scores, scores)
    assert (clip.start, clip.end, clip.num_frames) == (1, 3, 4)
    assert clip.keypoints.dtype == np.float32


def test_pose_npz_round_trip(tmp_path):
    keypoints, scores = _clip()
    write_pose_npz(tmp_path / "a.npz", keypoints, scores, start=2)
    clip = read_pose_file(tmp_path / "a.npz")
    np.testing.assert_array_equal(clip.keypoints, keypoints)
    np.testing.assert_array_equal(clip.scores, scores)
    assert (clip.start, clip.end) == (2, None)


def test_official_pickle_as_written_by_the_official_extractor(tmp_path):
    """float64 lists of (1, 133, 2), numpy-integer bounds: read as float32 (T, 133, 2)."""
    data = {**_official_pose(frames=5), "start": np.int64(1), "end": np.int64(5)}
    clip = read_pose_file(_write_pickle(tmp_path / "S1.pkl", data))
    assert clip.keypoints.shape == (5, 133, 2) and clip.scores.shape == (5, 133)
    np.testing.assert_allclose(clip.keypoints[2], data["keypoints"][2][0], rtol=1e-6)
    assert (clip.start, clip.end) == (1, 5)


# ----------------------------------------------------------------------------- label round trips


def test_official_labels_round_trip(tmp_path):
    write_official_labels(tmp_path / "labels.dev", ENTRIES)
    with gzip.open(tmp_path / "labels.dev") as handle:
        raw = pickle.load(handle)  # our own file: the official structure, gloss as a word list
    assert raw["S000020_P0000_T00"]["gloss"] == ["他", "今天", "年龄", "4"]
    assert read_labels(tmp_path / "labels.dev") == ENTRIES


def test_csl_news_labels_round_trip(tmp_path):
    entries = [
        LabelEntry("news_1", "新闻一。", "", "video/news_1.mp4", "pose/news_1.pkl"),
        LabelEntry("news_2", "新闻二。", "", "video/news_2.mp4", "pose/news_2.pkl"),
    ]
    write_csl_news_labels(tmp_path / "CSL_News_Labels.json", entries)
    assert read_labels(tmp_path / "CSL_News_Labels.json") == entries


def test_native_labels_round_trip(tmp_path):
    entries = ENTRIES + [LabelEntry("x", "text", "A B", "x.mp4", "poses/x.npz")]
    write_native_labels(tmp_path / "labels.jsonl", entries)
    assert read_labels(tmp_path / "labels.jsonl") == entries


# ----------------------------------------------------------------------------- bad pose files


def test_missing_pose_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"absent\.pkl: pose file not found"):
        read_pose_file(tmp_path / "absent.pkl")


@pytest.mark.parametrize("content", [b"\x80\x04garbage", pickle.dumps(_official_pose())[:-30]], ids=["corrupt", "truncated"])
def test_broken_pose_pickle(tmp_path, content):
    (tmp_path / "bad.pkl").write_bytes(content)
    with pytest.raises(DataFormatError, match=r"bad\.pkl: not a readable pickle"):
        read_pose_file(tmp_path / "bad.pkl")


def test_unsafe_pose_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    _write_pickle(tmp_path / "evil.pkl", {"keypoints": [Evil()], "scores": []})
    with pytest.raises(DataFormatError, match=r"evil\.pkl: refusing to unpickle '(posix|os)\.system'"):
        read_pose_file(tmp_path / "evil.pkl")
    assert not (tmp_path / "ran").exists()


def test_unreadable_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    with pytest.raises(DataFormatError, match=r"bad\.npz: not a readable \.npz archive"):
        read_pose_file(tmp_path / "bad.npz")


def _broken_pose(case):
    data = _official_pose(frames=3)
    if case == "not a dict":
        return [data["keypoints"]]
    if case == "missing scores":
        del data["scores"]
    elif case == "keypoints not a sequence":
        data["keypoints"] = 5
    elif case == "17 points":
        data["keypoints"][1] = np.zeros((1, 17, 2))
    elif case == "3 channels":
        data["keypoints"][0] = np.zeros((1, 133, 3))
    elif case == "scores with a channel axis":
        data["scores"][2] = np.zeros((1, 133, 1))
    elif case == "ragged frame":
        data["keypoints"][0] = [[0.1, 0.2], [0.3]]
    elif case == "frame counts differ":
        data["scores"].pop()
    elif case == "people differ":
        data["keypoints"][1] = np.zeros((2, 133, 2))
    elif case == "no frames":
        data = {"keypoints": [], "scores": []}
    elif case == "NaN":
        data["keypoints"][2][0, 95, 1] = np.nan
    elif case == "inf score":
        data["scores"][1][0, 3] = np.inf
    elif case == "bounds":
        data.update(start=2, end=2)
    elif case == "bounds past the end":
        data.update(start=0, end=9)
    elif case == "bounds not integers":
        data.update(start="one")
    return data


BAD_POSES = {
    "not a dict": "expected a dict with 'keypoints' and 'scores', got list",
    "missing scores": "missing field 'scores'",
    "keypoints not a sequence": "field 'keypoints' is a int, expected a sequence",
    "17 points": r"field 'keypoints' frame 1 has shape \(1, 17, 2\), expected \(P, 133, 2\)",
    "3 channels": r"field 'keypoints' frame 0 has shape \(1, 133, 3\)",
    "scores with a channel axis": r"field 'scores' frame 2 has shape \(1, 133, 1\), expected \(P, 133\)",
    "ragged frame": "field 'keypoints' frame 0 is not a numeric array",
    "frame counts differ": "'keypoints' has 3 frames but 'scores' has 2",
    "people differ": "frame 1 has 2 people in 'keypoints' but 1 in 'scores'",
    "no frames": "field 'keypoints' has no frames",
    "NaN": r"field 'keypoints' has NaN/inf values \(first at frame 2\)",
    "inf score": r"field 'scores' has NaN/inf values \(first at frame 1\)",
    "bounds": "frame bounds start=2 end=2 do not fit 3 frames",
    "bounds past the end": "frame bounds start=0 end=9 do not fit 3 frames",
    "bounds not integers": "frame bounds start/end are not integers",
}


@pytest.mark.parametrize("case", BAD_POSES)
def test_bad_pose_content_names_file_and_problem(tmp_path, case):
    path = _write_pickle(tmp_path / "S7.pkl", _broken_pose(case))
    with pytest.raises(DataFormatError, match=rf"S7\.pkl: {BAD_POSES[case]}"):
        read_pose_file(path)


# ----------------------------------------------------------------------------- main signer


def test_several_people_pick_the_more_confident_not_index_0(tmp_path):
    bystander, signer = _person(0.5, (0.8, 0.5)), _person(0.9, (0.2, 0.5))
    data = {
        "keypoints": [np.stack([bystander[0], signer[0]]), np.stack([signer[0], bystander[0]])],
        "scores": [np.stack([bystander[1], signer[1]]), np.stack([signer[1], bystander[1]])],
    }
    clip = read_pose_file(_write_pickle(tmp_path / "two.pkl", data))
    assert clip.keypoints.shape == (2, 133, 2)
    for frame in range(2):
        np.testing.assert_array_equal(clip.keypoints[frame], signer[0])
        np.testing.assert_array_equal(clip.scores[frame], signer[1])


def test_main_signer_confidence_counts_body_and_hands_only():
    face_heavy, hands_heavy = _person(0.2, (0.5, 0.5)), _person(0.2, (0.3, 0.5))
    face_heavy[1][PART_INDICES["face_all"]] = 1.0  # the face is not part of the rule
    hands_heavy[1][MAIN_POINTS] = 0.6
    keypoints = np.stack([face_heavy[0], hands_heavy[0]])[None]
    scores = np.stack([face_heavy[1], hands_heavy[1]])[None]
    chosen_keypoints, _ = select_main_signer(keypoints, scores)
    np.testing.assert_array_equal(chosen_keypoints[0], hands_heavy[0])


def test_main_signer_tie_goes_to_the_more_central_person():
    off_centre, central = _person(0.8, (0.1, 0.1)), _person(0.8, (0.45, 0.55))
    keypoints = np.stack([off_centre[0], central[0]])[None]
    scores = np.stack([off_centre[1], central[1]])[None]
    chosen_keypoints, chosen_scores = select_main_signer(keypoints, scores)
    np.testing.assert_array_equal(chosen_keypoints[0], central[0])
    np.testing.assert_array_equal(chosen_scores[0], central[1])


def test_ragged_people_counts_across_frames(tmp_path):
    lone = _person(0.15, (0.5, 0.5))  # unconfident, but the only person of frame 0
    weak, strong = _person(0.3, (0.5, 0.5)), _person(0.95, (0.6, 0.4))
    data = {
        "keypoints": [lone[0][None], np.stack([weak[0], weak[0], strong[0]]), lone[0]],  # last: no person axis
        "scores": [lone[1][None], np.stack([weak[1], weak[1], strong[1]]), lone[1]],
    }
    clip = pose_clip_from_dict(data, "ragged.pkl")
    assert clip.num_frames == 3
    np.testing.assert_array_equal(clip.keypoints[[0, 2]], [lone[0], lone[0]])  # padding is never chosen
    np.testing.assert_array_equal(clip.scores[[0, 2]], [lone[1], lone[1]])
    np.testing.assert_array_equal(clip.keypoints[1], strong[0])


# ----------------------------------------------------------------------------- labels: bad input


def _write_official_raw(path, data):
    with gzip.open(path, "wb") as handle:
        pickle.dump(data, handle)
    return path


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_text_official(tmp_path, text):
    record = {"name": "S1", "gloss": ["A"], "text": text, "video_path": "S1.mp4"}
    path = _write_official_raw(tmp_path / "labels.dev", {"S0": {**record, "name": "S0", "text": "ok"}, "S1": record})
    with pytest.raises(DataFormatError, match=r"labels\.dev: sample 'S1' field 'text' is empty or missing"):
        read_labels(path)


def test_empty_text_csl_news(tmp_path):
    path = tmp_path / "news.json"
    path.write_text(json.dumps([{"video": "v/a.mp4", "pose": "p/a.pkl", "text": " "}]))
    with pytest.raises(DataFormatError, match=r"news\.json: item 0: sample 'a' field 'text' is empty"):
        read_labels(path)


def test_empty_text_jsonl_names_the_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"name": "a", "text": "fine"}\n\n{"name": "b", "text": ""}\n')
    with pytest.raises(DataFormatError, match=r"labels\.jsonl:3: sample 'b' field 'text' is empty"):
        read_labels(path)


@pytest.mark.parametrize(
    "filename, content, message",
    [
        ("labels.jsonl", '{"name": "a", "text": "x"}\n{oops\n', r"labels\.jsonl:2: invalid JSON"),
        ("labels.jsonl", '{"text": "x"}\n', r"labels\.jsonl:1: expected a JSON object with field 'name'"),
        ("labels.jsonl", "[1, 2]\n", r"labels\.jsonl:1: expected a JSON object with field 'name'"),
        ("labels.jsonl", "\n", r"labels\.jsonl: the label file holds no samples"),
        ("news.json", '{"video": "a"}', r"news\.json: expected a JSON list"),
        ("news.json", '[{"video": "a", "text": "x"}]', r"news\.json: item 0 lacks one of the fields video, pose, text"),
        ("news.json", "[", r"news\.json: not a readable JSON label file"),
    ],
)
def test_bad_text_label_files(tmp_path, filename, content, message):
    (tmp_path / filename).write_text(content)
    with pytest.raises(DataFormatError, match=message):
        read_labels(tmp_path / filename)


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "the label file holds no samples"),
        (["S1"], "expected a dict name -> record, got list"),
        ({"S1": "text"}, "sample 'S1' is a str, expected a dict"),
    ],
)
def test_bad_official_label_files(tmp_path, data, message):
    path = _write_official_raw(tmp_path / "labels.test", data)
    with pytest.raises(DataFormatError, match=rf"labels\.test: {message}"):
        read_labels(path)


def test_missing_and_corrupt_label_files(tmp_path):
    with pytest.raises(DataFormatError, match=r"labels\.dev: label file not found"):
        read_labels(tmp_path / "labels.dev")
    (tmp_path / "labels.train").write_bytes(gzip.compress(b"not a pickle"))
    with pytest.raises(DataFormatError, match=r"labels\.train: not a readable pickle"):
        read_labels(tmp_path / "labels.train")


# ----------------------------------------------------------------------------- pose paths


def test_pose_path_follows_the_official_rule(tmp_path):
    entry = LabelEntry("clip", "t", "", "sub/clip.mp4")
    assert resolve_pose_path(tmp_path, entry) == tmp_path / "sub" / "clip.pkl"
    assert resolve_pose_path(tmp_path, LabelEntry("00295", "t")) == tmp_path / "00295.pkl"
    write_pose_npz(tmp_path / "sub" / "clip.npz", *_clip())  # a native twin is used when the .pkl is absent
    assert resolve_pose_path(tmp_path, entry) == tmp_path / "sub" / "clip.npz"


@pytest.mark.parametrize(
    "entry",
    [
        LabelEntry("x", "t", "", "../../etc/x.mp4"),
        LabelEntry("x", "t", "", "a/../../x.mp4"),
        LabelEntry("x", "t", "", "/etc/x.mp4"),
        LabelEntry("x", "t", "", "x.mp4", "../outside.npz"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "pose_path"],
)
def test_label_pointing_outside_the_root_is_refused(tmp_path, entry):
    with pytest.raises(DataFormatError, match=r"sample 'x': pose path '.*' points outside the pose root"):
        resolve_pose_path(tmp_path / "poses", entry)


def test_symlinked_sub_folder_stays_usable(tmp_path):
    elsewhere = tmp_path / "disk2"
    write_pose_pkl(elsewhere / "clip.pkl", *_clip())
    (tmp_path / "poses").mkdir()
    (tmp_path / "poses" / "dev").symlink_to(elsewhere)
    path = resolve_pose_path(tmp_path / "poses", LabelEntry("clip", "t", "", "dev/clip.mp4"))
    assert read_pose_file(path).num_frames == 4


# ----------------------------------------------------------------------------- converter


def _official_dataset(root):
    """Official layout with a multi-person clip, start/end bounds and a sub-folder."""
    two = _official_pose(frames=3, people=2, seed=1)
    two["scores"][1][0] *= 0.1  # person 0 is the bystander in frame 1
    clips = {
        "S000020_P0000_T00": {**_official_pose(seed=2), "start": 1, "end": 3},
        "00295": two,
        "clip-3": _official_pose(seed=3),
    }
    for entry in ENTRIES:
        (root / "poses" / entry.video_path).parent.mkdir(parents=True, exist_ok=True)
        _write_pickle(root / "poses" / entry.video_path.replace(".mp4", ".pkl"), clips[entry.name])
    write_official_labels(root / "labels.dev", ENTRIES)
    return root / "labels.dev", root / "poses"


def _load_all(labels, pose_dir):
    entries = read_labels(labels)
    return entries, [read_pose_file(resolve_pose_path(pose_dir, entry)) for entry in entries]


def _assert_same_clips(clips, expected):
    for clip, reference in zip(clips, expected, strict=True):
        np.testing.assert_array_equal(clip.keypoints, reference.keypoints)
        np.testing.assert_array_equal(clip.scores, reference.scores)
        assert (clip.start, clip.end) == (reference.start, reference.end)


def test_convert_to_native_loads_back_equal(tmp_path):
    labels, pose_dir = _official_dataset(tmp_path / "official")
    assert convert.main(["--labels", str(labels), "--pose-dir", str(pose_dir), "--out", str(tmp_path / "native")]) == 0
    entries, clips = _load_all(tmp_path / "native" / "labels.jsonl", tmp_path / "native" / "poses")
    original_entries, original_clips = _load_all(labels, pose_dir)
    assert [entry.pose_path for entry in entries] == ["S000020_P0000_T00.npz", "00295.npz", "sub/clip-3.npz"]
    assert [(e.name, e.text, e.gloss, e.video_path) for e in entries] == [
        (e.name, e.text, e.gloss, e.video_path) for e in original_entries
    ]
    _assert_same_clips(clips, original_clips)
    assert clips[0].start == 1 and clips[0].end == 3
    with np.load(tmp_path / "native" / "poses" / "00295.npz") as archive:  # one signer, no pickles
        assert archive["keypoints"].shape == (3, 133, 2) and archive["keypoints"].dtype == np.float32


def test_convert_round_trip_back_to_official(tmp_path):
    labels, pose_dir = _official_dataset(tmp_path / "official")
    convert.convert_to_native(labels, pose_dir, tmp_path / "native")
    code = convert.main([
        "--labels", str(tmp_path / "native" / "labels.jsonl"), "--pose-dir", str(tmp_path / "native" / "poses"),
        "--out", str(tmp_path / "back"), "--to", "official",
    ])
    assert code == 0
    assert sorted(path.name for path in (tmp_path / "back").iterdir()) == ["labels", "poses"]
    entries, clips = _load_all(tmp_path / "back" / "labels", tmp_path / "back" / "poses")
    original_entries, original_clips = _load_all(labels, pose_dir)
    assert entries == original_entries
    _assert_same_clips(clips, original_clips)
    assert (tmp_path / "back" / "poses" / "sub" / "clip-3.pkl").is_file()


def test_convert_stops_at_bad_data(tmp_path, capsys):
    labels, pose_dir = _official_dataset(tmp_path / "official")
    (pose_dir / "00295.pkl").unlink()
    assert convert.main(["--labels", str(labels), "--pose-dir", str(pose_dir), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "00295.pkl: pose file not found" in error and "datasets.check_data" in error


# ----------------------------------------------------------------------------- real official label files

REAL_LABEL_COUNTS = {
    "CSL_Daily/labels.dev": 1077,
    "CSL_Daily/labels.test": 1176,
    "WLASL/labels-2000.dev": 3916,
    "WLASL/labels-2000.test": 2878,
    "How2Sign/labels.test": 2349,
    "OpenASL/labels.dev": 967,
    "OpenASL/labels.test": 976,
}


@pytest.mark.parametrize("relative", REAL_LABEL_COUNTS)
def test_real_official_label_files_load(shared_dir, relative):
    path = shared_dir / "official_labels" / relative
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    entries = read_labels(path)
    assert len(entries) == REAL_LABEL_COUNTS[relative]
    assert len({entry.name for entry in entries}) == len(entries)
    assert all(entry.text.strip() and entry.video_path for entry in entries)


def test_real_csl_daily_entry_fields(shared_dir):
    path = shared_dir / "official_labels" / "CSL_Daily" / "labels.dev"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    first = read_labels(path)[0]
    assert first == LabelEntry("S000020_P0000_T00", "他今年四岁。", "他 今天 年龄 4", "S000020_P0000_T00.mp4")


# ----------------------------------------------------------------------------- field types and hostile files


@pytest.mark.parametrize("record, message", [
    ({"name": "a", "text": "hi", "pose_path": 123}, r"labels\.jsonl:1: sample 'a' field 'pose_path' is int 123, expected a string"),
    ({"name": "a", "text": "hi", "gloss": 5}, r"labels\.jsonl:1: sample 'a' field 'gloss' is int 5, expected a string"),
    ({"name": "a", "text": "hi", "gloss": ["HI", 7]}, r"sample 'a' field 'gloss' is int 7"),
    ({"name": ["a", "b"], "text": "hi"}, r"labels\.jsonl:1: sample '\['a', 'b'\]' field 'name' is list \['a', 'b'\], expected a string"),
    ({"name": "a", "text": "bad \ud800 text"}, r"sample 'a' field 'text' is not valid Unicode \(lone surrogate '\\ud800' at character 4\)"),
    ({"name": "a", "text": 3.5}, r"sample 'a' field 'text' is float 3.5, expected a string"),
    ({"name": "a", "text": "hi", "video_path": ["a.mp4"]}, r"sample 'a' field 'video_path' is list"),
])
def test_every_bad_jsonl_field_is_named_with_file_line_and_sample(tmp_path, record, message):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")  # json escapes the lone surrogate
    with pytest.raises(DataFormatError, match=message):
        read_labels(path)


def test_text_stored_as_bytes_is_named_not_called_empty(tmp_path):
    path = tmp_path / "labels.dev"
    with gzip.open(path, "wb") as handle:
        pickle.dump({"a": {"name": "a", "text": "hello".encode(), "gloss": ["HELLO"]}}, handle)
    with pytest.raises(DataFormatError, match=r"labels\.dev: sample 'a' field 'text' is bytes, expected text"):
        read_labels(path)


def test_lone_surrogate_in_an_official_pickle_is_refused(tmp_path):
    path = tmp_path / "labels.dev"
    write_official_labels(path, [LabelEntry("a", "ok"), LabelEntry("b", "broken \udc80", "GLOSS")])
    with pytest.raises(DataFormatError, match=r"sample 'b' field 'text' is not valid Unicode"):
        read_labels(path)


def test_a_plain_non_gzip_label_pickle_is_accepted(tmp_path):
    path = tmp_path / "labels.dev"
    path.write_bytes(pickle.dumps({"a": {"name": "a", "text": "hello", "gloss": ["HELLO"], "video_path": "a.mp4"}}))
    assert read_labels(path) == [LabelEntry("a", "hello", "HELLO", "a.mp4")]


def _peak_bytes(function):
    import tracemalloc

    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_small_pickle_of_millions_of_shared_frames_is_refused_before_stacking(tmp_path):
    keypoints, scores = _clip(frames=1)
    frames = 2_000_000  # stacked: 2e6 x 133 x 2 float32 = 2.1 GB
    path = tmp_path / "bomb.pkl"
    path.write_bytes(pickle.dumps({"keypoints": [keypoints[0][None]] * frames, "scores": [scores[0][None]] * frames},
                                  protocol=4))
    assert path.stat().st_size < 20 * 2**20

    def read():
        with pytest.raises(DataFormatError, match=r"bomb\.pkl: field 'keypoints' has 2000000 frames, more than the "
                                                  r"limit of 100000 \(raise it with --max-frames"):
            read_pose_file(path)

    assert _peak_bytes(read) < 200 * 2**20  # the reference list, never the stacked frames
    with pytest.raises(DataFormatError, match="limit of 10"):
        read_pose_file(tmp_path / "bomb.pkl", max_frames=10)


def test_a_compressed_npz_that_expands_to_gigabytes_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.npz"
    frames = 400_000  # 426 MB of zeros, under 1 MB compressed
    np.savez_compressed(path, keypoints=np.zeros((frames, 133, 2), np.float32),
                        scores=np.zeros((frames, 133), np.float32))

    def read():
        with pytest.raises(DataFormatError, match=r"bomb\.npz: field 'keypoints' has 400000 frames, more than the limit"):
            read_pose_file(path)

    assert _peak_bytes(read) < 50 * 2**20
    write_pose_npz(tmp_path / "fine.npz", *_clip(frames=5))
    assert read_pose_file(tmp_path / "fine.npz", max_frames=5).num_frames == 5
