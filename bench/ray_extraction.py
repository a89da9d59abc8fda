"""Pose extraction throughput: the local engine vs Ray tasks, with 1 and 2 workers, on rendered synthetic videos.

    python -m bench.ray_extraction                       # 8 clips, 2 repeats
    python -m bench.ray_extraction --videos 16 --repeats 3 --json out/bench/ray_extraction.json

Each measurement is a whole `run_extraction` job into an empty folder (MediaPipe Holistic, the default
backend): local engine with 1 process / 2 processes, and Ray on a fresh local cluster of 1 / 2 CPUs
(cluster start-up timed apart; worker start-up and MediaPipe set-up inside the job, as a user sees them).
Prints videos/s (median over repeats, with the spread), and the per-video overhead of Ray: (Ray job time -
local job time) / videos at the same worker count. Needs Ray (requirements-scale.txt) and MediaPipe.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from datasets.synthetic import generate_corpus  # noqa: E402
from pose_extraction.runner import run_extraction  # noqa: E402
from utils import ray_engine  # noqa: E402


def rendered_videos(folder, count) -> tuple[Path, int]:
    """`count` rendered clips of the tiny synthetic corpus in their own folder, and their total frames."""
    corpus = folder / "corpus"
    generate_corpus(corpus, seed=0, size="tiny", videos=True)
    videos = folder / "videos"
    videos.mkdir()
    for clip in sorted((corpus / "sentences" / "rgb_format").glob("*.mp4"))[:count]:
        shutil.copy(clip, videos / clip.name)
    import cv2

    frames = sum(int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT)) for clip in videos.iterdir())
    return videos, frames


def timed_job(videos, out, workers, engine):
    """Seconds of one extraction job (and of the Ray cluster's start, 0 for the local engine)."""
    shutil.rmtree(out, ignore_errors=True)
    cluster_seconds, settings = 0.0, None
    if engine == "ray":
        settings = ray_engine.RaySettings(local_cpus=workers)
        started = time.perf_counter()
        ray_engine.connect(settings)
        cluster_seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = run_extraction(videos, out, workers=workers, progress=False, ray_settings=settings)
    seconds = time.perf_counter() - started
    if engine == "ray":
        ray_engine.shutdown()
    assert not report.failed, report.summary()
    return seconds, cluster_seconds


def measure(videos, scratch, repeats) -> dict:
    runs = {f"{engine}_{workers}": [] for workers in (1, 2) for engine in ("local", "ray")}
    cluster = []
    for repeat in range(repeats):
        for name in (runs if repeat % 2 == 0 else reversed(list(runs))):  # alternate the order between repeats
            engine, workers = name.split("_")
            seconds, cluster_seconds = timed_job(videos, scratch / name, int(workers), engine)
            runs[name].append(seconds)
            cluster += [cluster_seconds] if engine == "ray" else []
            print(f"  repeat {repeat}: {name}: {seconds:.1f} s", flush=True)
    return {"runs": runs, "ray_cluster_start_s": statistics.median(cluster)}


def summarise(result, count, frames) -> dict:
    rows = {}
    for name, seconds in result["runs"].items():
        median = statistics.median(seconds)
        rows[name] = {"seconds": median, "spread": [min(seconds), max(seconds)], "videos_per_s": count / median,
                      "ms_per_frame": 1000 * median / frames}
    for workers in (1, 2):
        local, ray = rows[f"local_{workers}"]["seconds"], rows[f"ray_{workers}"]["seconds"]
        rows[f"ray_{workers}"]["overhead_s_per_video"] = (ray - local) / count
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        videos, frames = rendered_videos(scratch, args.videos)
        count = len(list(videos.iterdir()))
        print(f"{count} rendered clips, {frames} frames; {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
        result = measure(videos, scratch, args.repeats)
    rows = summarise(result, count, frames)
    print(f"\n{'job':<10} {'s (median)':>11} {'spread':>15} {'videos/s':>9} {'ms/frame':>9} {'Ray overhead s/video':>21}")
    for name, row in rows.items():
        overhead = f"{row['overhead_s_per_video']:+.2f}" if "overhead_s_per_video" in row else ""
        spread = f"{row['spread'][0]:.1f}-{row['spread'][1]:.1f}"
        print(f"{name:<10} {row['seconds']:>11.1f} {spread:>15} {row['videos_per_s']:>9.2f} {row['ms_per_frame']:>9.1f} "
              f"{overhead:>21}")
    print(f"Ray local cluster start: {result['ray_cluster_start_s']:.1f} s (once per job, not per video)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"videos": count, "frames": frames, "rows": rows,
                                               "ray_cluster_start_s": result["ray_cluster_start_s"]}, indent=1))


if __name__ == "__main__":
    main()
