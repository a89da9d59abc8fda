"""datasets/pose_store.py: a built store serves exactly what the pose files give, and never stale data."""
import os

import numpy as np
import pytest
import torch

from datasets.formats import DataFormatError, LabelEntry, write_pose_npz, write_pose_pkl
from datasets.pose_store import STORE_DIR_NAME, PoseStore, build_store, main
from datasets.sign_dataset import SignDataset


def random_clip(frames, seed):
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0.2, 0.8, size=(frames, 133, 2)).astype(np.float32)
    scores = rng.uniform(0.0, 1.0, size=(frames, 133)).astype(np.float32)
    return keypoints, scores


@pytest.fixture
def pose_dir(tmp_path):
    """Four clips: a plain one, one with start/end bounds, a native .npz in a sub-folder, one over max_length."""
    root = tmp_path / "poses"
    write_pose_pkl(root / "plain.pkl", *random_clip(30, 0))
    write_pose_pkl(root / "bounded.pkl", *random_clip(40, 1), start=5, end=25)
    write_pose_npz(root / "sub" / "native.npz", *random_clip(12, 2))
    write_pose_pkl(root / "long.pkl", *random_clip(50, 3))
    return root


def entries():
    return [LabelEntry(name, "a text", "", f"{path}.mp4") for name, path in
            (("plain", "plain"), ("bounded", "bounded"), ("native", "sub/native"), ("long", "long"))]


def dataset(pose_dir, **options):
    return SignDataset(entries(), pose_dir, max_length=32, seed=3, **options)


def assert_same_samples(first, second):
    for index in range(len(first)):
        a, b = first[index], second[index]
        assert a["parts"].keys() == b["parts"].keys()
        for part in a["parts"]:
            assert torch.equal(a["parts"][part], b["parts"][part]), (a["name"], part)
        np.testing.assert_array_equal(a["frame_numbers"], b["frame_numbers"])


def test_store_samples_equal_file_samples(pose_dir):
    report = build_store(pose_dir, progress=False)
    assert report["clips"] == 4 and report["frames"] == 30 + 40 + 12 + 50 and not report["failed"]
    stored = dataset(pose_dir)
    assert isinstance(stored.pose_store, PoseStore)
    assert_same_samples(dataset(pose_dir, pose_store=None), stored)
    stored.set_epoch(1)  # the long clip is sub-sampled afresh: normalised from the stored keypoints
    files = dataset(pose_dir, pose_store=None)
    files.set_epoch(1)
    assert_same_samples(files, stored)


def test_store_serves_slices_without_reading_the_files(pose_dir, monkeypatch):
    build_store(pose_dir, progress=False)
    stored = dataset(pose_dir)
    monkeypatch.setattr("datasets.sign_dataset.read_pose_file", lambda *args: pytest.fail("a pose file was read"))
    assert len(stored[0]["parts"]["body"]) == 30


def test_a_changed_source_file_is_read_again_not_served_stale(pose_dir, caplog):
    build_store(pose_dir, progress=False)
    write_pose_pkl(pose_dir / "plain.pkl", *random_clip(22, 9))  # new content, new size
    stored, files = dataset(pose_dir), dataset(pose_dir, pose_store=None)
    assert_same_samples(files, stored)
    assert len(stored[0]["parts"]["body"]) == 22
    assert stored.pose_store.stale == {"plain.pkl"}
    assert "changed since the store was built" in caplog.text


def test_same_size_rewrite_is_detected_by_modification_time(pose_dir):
    build_store(pose_dir, progress=False)
    write_pose_pkl(pose_dir / "plain.pkl", *random_clip(30, 7))  # same frame count, same file size
    stat = os.stat(pose_dir / "plain.pkl")
    os.utime(pose_dir / "plain.pkl", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert_same_samples(dataset(pose_dir, pose_store=None), dataset(pose_dir))


def test_unreadable_files_are_left_out_and_still_fail_when_read(pose_dir):
    (pose_dir / "broken.pkl").write_bytes(b"not a pickle")
    report = build_store(pose_dir, progress=False)
    assert list(report["failed"]) == ["broken.pkl"]
    broken = SignDataset([LabelEntry("broken", "a text", "", "broken.mp4")], pose_dir)
    with pytest.raises(DataFormatError, match="broken.pkl"):
        broken[0]


def test_max_frames_applies_to_stored_clips(pose_dir):
    build_store(pose_dir, progress=False)
    with pytest.raises(DataFormatError, match="more than the limit of 20"):
        dataset(pose_dir, max_frames=20)[0]


def test_rebuild_replaces_the_store_and_leaves_nothing_behind(pose_dir):
    build_store(pose_dir, progress=False)
    (pose_dir / "long.pkl").unlink()
    report = build_store(pose_dir, progress=False)
    assert report["clips"] == 3
    assert sorted(path.name for path in pose_dir.iterdir() if path.name.startswith(STORE_DIR_NAME)) == [STORE_DIR_NAME]
    assert "long.pkl" not in PoseStore.find(pose_dir).clips


def test_command_line_builds_the_store(pose_dir, capsys):
    assert main(["--pose-dir", str(pose_dir), "--no-progress"]) == 0
    assert "4 clips, 132 frames" in capsys.readouterr().out
    assert PoseStore.find(pose_dir) is not None
