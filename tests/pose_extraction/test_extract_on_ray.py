"""Pose extraction as Ray tasks (--engine ray) on a local 2-CPU cluster: the same files as the local engine, a
failing video reported without stopping the job, a lost cluster stopping it with a message, the next run
resuming, and damaged outputs redone."""
import json
import shutil

import numpy as np
import pytest

from datasets.formats import read_pose_file
from datasets.synthetic import generate_corpus
from pose_extraction.extract import main as extraction_main
from tests.conftest import lose_ray_cluster_after
from tests.utils.pictures import require_mediapipe


@pytest.fixture(scope="module")
def rendered_videos(tmp_path_factory):
    """Three rendered clips of the synthetic corpus (MediaPipe finds the cartoon signer) and a broken file."""
    require_mediapipe()
    corpus = tmp_path_factory.mktemp("ray_corpus")
    generate_corpus(corpus, seed=0, size="tiny", videos=True)
    folder = tmp_path_factory.mktemp("ray_videos")
    for name in ("sent_dev_00000", "sent_dev_00001", "sent_test_00000"):
        shutil.copy(corpus / "sentences" / "rgb_format" / f"{name}.mp4", folder / f"{name}.mp4")
    (folder / "broken.mp4").write_bytes(b"not a video" * 20)
    return folder


def extract(videos, out, *extra):
    return extraction_main(["--input", str(videos), "--out", str(out), "--no-progress", *extra])


def test_ray_tasks_write_the_files_of_the_local_engine_and_report_the_broken_video(local_ray_cluster,
                                                                                  rendered_videos, tmp_path, capsys):
    assert extract(rendered_videos, tmp_path / "local") == 1  # broken.mp4 fails, the others are written
    assert extract(rendered_videos, tmp_path / "ray", "--engine", "ray", "--format", "pkl") == 1
    assert "FAILED" in capsys.readouterr().err
    written = sorted(path.name for path in (tmp_path / "ray").glob("*.pkl"))
    assert written == ["sent_dev_00000.pkl", "sent_dev_00001.pkl", "sent_test_00000.pkl"]
    for name in written:
        local, remote = read_pose_file(tmp_path / "local" / name), read_pose_file(tmp_path / "ray" / name)
        np.testing.assert_array_equal(remote.keypoints, local.keypoints)
        np.testing.assert_array_equal(remote.scores, local.scores)


def test_a_lost_cluster_stops_the_job_and_the_next_run_resumes(local_ray_cluster, rendered_videos, tmp_path,
                                                               monkeypatch, capsys):
    lose_ray_cluster_after(local_ray_cluster, monkeypatch, waits=2)
    assert extract(rendered_videos, tmp_path / "out", "--engine", "ray", "--max-in-flight", "1") == 3
    assert "went away after 2 of 4 videos" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "extraction_report.json").read_text())
    assert len(report["results"]) == 2  # what finished before the loss is reported
    done = sum(result["status"] == "done" for result in report["results"])
    monkeypatch.undo()
    assert extract(rendered_videos, tmp_path / "out", "--engine", "ray") == 1  # only broken.mp4 fails
    assert f"{3 - done} extracted" in capsys.readouterr().err and done > 0


def test_a_damaged_pose_file_is_redone_on_resume(local_ray_cluster, rendered_videos, tmp_path, capsys):
    single = rendered_videos / "sent_dev_00000.mp4"
    assert extract(single, tmp_path, "--engine", "ray") == 0
    (tmp_path / "sent_dev_00000.pkl").write_bytes(b"truncated")
    capsys.readouterr()
    assert extract(single, tmp_path, "--engine", "ray") == 0
    assert "1 extracted" in capsys.readouterr().out and read_pose_file(tmp_path / "sent_dev_00000.pkl").num_frames > 0
