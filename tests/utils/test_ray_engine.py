"""utils/ray_engine.py on a real local Ray cluster (2 CPUs, tests/conftest.py): results, bounded submission, lost
workers retried or reported, a cluster that goes away (simulated: ray.wait fails as when the head node dies)."""
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import lose_ray_cluster_after
from utils import ray_engine
from utils.ray_engine import ClusterLost, RaySettings, RayUnavailable, map_on_ray


@pytest.fixture(scope="module")
def local_cluster(local_ray_cluster):
    local_ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    return local_ray_cluster


def square(job):
    return job * job


def die_once(job):
    """Kill the worker process the first time a job runs (a crashed worker, not an error of the job)."""
    number, marker = job
    if number == 1 and not Path(marker).exists():
        Path(marker).write_text("died once")
        os._exit(1)
    return number


def test_results_of_every_job(local_cluster):
    assert sorted(map_on_ray(square, range(7), RaySettings(max_in_flight=2), None)) == [0, 1, 4, 9, 16, 25, 36]


def test_a_task_whose_worker_died_is_retried_or_else_reported(local_cluster, tmp_path):
    jobs = [(number, str(tmp_path / "marker")) for number in range(3)]
    assert sorted(map_on_ray(die_once, jobs, RaySettings(max_retries=1), None)) == [0, 1, 2]
    (tmp_path / "marker").unlink()
    results = list(map_on_ray(die_once, jobs, RaySettings(max_retries=0), lambda job, error: (job[0], error)))
    assert sorted(result for result in results if isinstance(result, int)) == [0, 2]
    assert [error for result in results if isinstance(result, tuple) for error in result[1:]] == [
        "task lost after 0 retries: WorkerCrashedError"]


def test_a_cluster_that_goes_away_stops_the_job_with_a_resume_hint(local_cluster, monkeypatch):
    lose_ray_cluster_after(local_cluster, monkeypatch, waits=2)
    results = []
    with pytest.raises(ClusterLost, match=r"went away after 2 of 5 videos .*run the same command again to resume"):
        for result in map_on_ray(square, range(5), RaySettings(max_in_flight=1), None):
            results.append(result)
    assert results == [0, 1]


def test_a_request_the_cluster_cannot_place_is_refused(local_cluster):
    with pytest.raises(RayUnavailable, match="cannot run one task of 1.0 CPUs and 1.0 GPUs"):
        list(map_on_ray(square, [1], RaySettings(gpus_per_task=1.0), None))


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from pose_extraction.extract import main as extraction_main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when it is not installed
    with pytest.raises(RayUnavailable, match="pip install -r requirements-scale.txt"):
        ray_engine.import_ray()
    (tmp_path / "clip.mp4").write_bytes(b"x")
    assert extraction_main(["--input", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out"), "--engine", "ray",
                            "--no-progress"]) == 2
    assert "error: --engine ray needs Ray: pip install -r requirements-scale.txt" in capsys.readouterr().err
