"""Extract one pose file per video: resume, parallel workers (local processes or Ray tasks), failure report.

Per video: decode frames (pose_extraction.video) -> backend per frame -> keypoints (T, 133, 2), scores (T, 133)
-> `datasets.formats.write_pose_pkl` to a temporary file beside the target, then an atomic rename, so a
pose file that exists is always complete (that is what resume relies on).

Defined outputs for bad input (each a failure with a reason, other videos go on):
  * unreadable file / unsupported codec, zero decodable frames -> failure, no pose file;
  * nobody detected in any frame -> failure "no person detected", no pose file, unless allow_empty,
    which writes the all-zero (score 0) frames; frames without a person inside a video with one are
    always kept as all-zero frames, so pose frame i is video frame i.
"""
import functools
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datasets.formats import DataFormatError, read_pose_file, write_pose_pkl
from datasets.pose_format_files import write_pose_format
from pose_extraction.backends import BackendSpec, check_backend, create_backend
from pose_extraction.video import DEFAULT_MAX_SIDE, VideoReadError, find_videos, iter_frames, open_video
from utils.ray_engine import map_on_ray

REPORT_NAME = "extraction_report.json"


class NoPersonError(RuntimeError):
    """No frame of a video shows a person."""


@dataclass
class PoseSequence:
    """One video's extracted poses."""

    keypoints: np.ndarray  # (T, 133, 2) float32, x/W, y/H
    scores: np.ndarray  # (T, 133) float32
    width: int  # original frame size
    height: int
    fps: float  # declared by the container (0 if unknown)

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)

    @property
    def frames_with_person(self) -> int:
        return int((self.scores > 0).any(axis=1).sum())


@dataclass
class VideoResult:
    video: str
    output: str
    status: str  # "done", "skipped" (output existed) or "failed"
    error: str = ""
    frames: int = 0
    frames_with_person: int = 0
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    fps: float = 0.0

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.seconds / self.frames if self.frames else 0.0


@dataclass
class ExtractionReport:
    backend: str
    results: list = field(default_factory=list)

    def by_status(self, status):
        return [result for result in self.results if result.status == status]

    @property
    def failed(self):
        return self.by_status("failed")

    def summary(self) -> str:
        done = self.by_status("done")
        frames, seconds = sum(r.frames for r in done), sum(r.seconds for r in done)
        speed = f", {1000 * seconds / frames:.1f} ms/frame" if frames else ""
        lines = [f"pose extraction ({self.backend}): {len(done)} extracted ({frames} frames{speed}), "
                 f"{len(self.by_status('skipped'))} skipped (already done), {len(self.failed)} failed"]
        lines += [f"  FAILED {result.video}: {result.error}" for result in self.failed]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        rows = [{**asdict(result), "ms_per_frame": round(result.ms_per_frame, 2)} for result in self.results]
        return {"backend": self.backend, "summary": self.summary(), "results": rows}

    def write(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")


# ----------------------------------------------------------------------------- one video


def extract_video_poses(video, backend, max_side=DEFAULT_MAX_SIDE, on_frame=None) -> PoseSequence:
    """Run `backend` over every decodable frame of `video`; VideoReadError when none decodes."""
    capture, info = open_video(video)
    backend.start_video()
    keypoints, scores = [], []
    try:
        for frame in iter_frames(capture, max_side):
            frame_keypoints, frame_scores = backend(frame)  # (133, 2), (133,)
            keypoints.append(frame_keypoints)
            scores.append(frame_scores)
            if on_frame is not None:
                on_frame()
    finally:
        capture.release()
    if not keypoints:
        raise VideoReadError(f"{video}: no frame could be decoded (empty or broken video)")
    return PoseSequence(np.stack(keypoints), np.stack(scores), info.width, info.height, info.fps)


def write_pose_atomic(path, keypoints, scores, width=None, height=None, fps=None):
    """Write the pose file (`.pkl` official layout, or a pose-format `.pose` with the video's size and frame rate)
    to a hidden temporary file in the same folder, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix == ".pose":
            write_pose_format(temporary, keypoints, scores, width, height, fps)
        else:
            write_pose_pkl(temporary, keypoints, scores)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def extract_to_file(video, output, backend, max_side=DEFAULT_MAX_SIDE, allow_empty=False, on_frame=None):
    """Extract one video into `output`; returns a VideoResult (failures are caught and described)."""
    started = time.perf_counter()
    result = VideoResult(str(video), str(output), "done")
    try:
        poses = extract_video_poses(video, backend, max_side, on_frame)
        result.frames, result.frames_with_person = poses.num_frames, poses.frames_with_person
        result.width, result.height, result.fps = poses.width, poses.height, poses.fps
        if poses.frames_with_person == 0 and not allow_empty:
            raise NoPersonError(f"no person detected in any of the {poses.num_frames} frames "
                                f"(pass --allow-empty to write all-zero pose files)")
        write_pose_atomic(output, poses.keypoints, poses.scores, poses.width, poses.height, poses.fps)
    except Exception as error:  # one bad video must not stop the others; the report names it
        result.status, result.error = "failed", f"{type(error).__name__}: {error}"
    result.seconds = time.perf_counter() - started
    return result


# ----------------------------------------------------------------------------- many videos


def plan_jobs(source, out_dir, suffix=".pkl"):
    """[(video, pose file)]: a folder keeps its sub-folder layout, '<name>.<ext>' -> '<name><suffix>' (.pkl, .pose)."""
    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    videos = find_videos(source)
    if source.is_dir():
        jobs = [(video, (out_dir / video.relative_to(source)).with_suffix(suffix)) for video in videos]
    else:
        jobs = [(video, out_dir / f"{video.stem}{suffix}") for video in videos]
    owners = {}
    for video, output in jobs:
        if output in owners:
            raise ValueError(f"{owners[output]} and {video} would both write {output}; rename one of them")
        owners[output] = video
    return jobs


_WORKER = {}  # the backend of this worker process, built once by _init_worker


def _init_worker(spec, max_side, allow_empty):
    _WORKER.update(backend=create_backend(spec), max_side=max_side, allow_empty=allow_empty)


def _work(job):
    video, output = job
    return extract_to_file(video, output, _WORKER["backend"], _WORKER["max_side"], _WORKER["allow_empty"])


def _progress_bar(total, enabled, unit):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=not enabled, dynamic_ncols=True)


def _run_sequential(jobs, spec, max_side, allow_empty, progress):
    backend = create_backend(spec)
    frame_bar = _progress_bar(None, progress and len(jobs) == 1, "frame")  # one video: show frames
    try:
        with _progress_bar(len(jobs), progress and len(jobs) > 1, "video") as bar:
            for video, output in jobs:
                yield extract_to_file(video, output, backend, max_side, allow_empty, frame_bar.update)
                bar.update()
    finally:
        frame_bar.close()
        backend.close()


def _ray_job(job, spec, max_side, allow_empty):
    """One video as a Ray task; the worker process keeps its backend for the next videos it is given."""
    if _WORKER.get("settings") != (spec, max_side, allow_empty):
        previous = _WORKER.pop("backend", None)
        if previous is not None:
            previous.close()
        _init_worker(spec, max_side, allow_empty)
        _WORKER["settings"] = (spec, max_side, allow_empty)
    return _work(job)


def _lost_video(job, error) -> VideoResult:
    video, output = job
    return VideoResult(str(video), str(output), "failed", error)


def _run_ray(jobs, spec, max_side, allow_empty, progress, settings):
    task = functools.partial(_ray_job, spec=spec, max_side=max_side, allow_empty=allow_empty)
    with _progress_bar(len(jobs), progress, "video") as bar:
        for result in map_on_ray(task, jobs, settings, _lost_video):
            bar.update()
            yield result


def _run_parallel(jobs, spec, max_side, allow_empty, progress, workers):
    context = multiprocessing.get_context("spawn")  # MediaPipe graphs must not be inherited through fork
    with ProcessPoolExecutor(workers, context, _init_worker, (spec, max_side, allow_empty)) as pool, \
            _progress_bar(len(jobs), progress, "video") as bar:
        futures = [pool.submit(_work, job) for job in jobs]
        for future in as_completed(futures):
            bar.update()
            yield future.result()


def run_extraction(source, out_dir, spec=BackendSpec(), workers=1, overwrite=False,
                   max_side=DEFAULT_MAX_SIDE, allow_empty=False, progress=True, report_path=None, file_format="pkl",
                   ray_settings=None):
    """Extract every video under `source` into `out_dir`; returns an ExtractionReport (also written as JSON).
    `file_format`: 'pkl' (the official layout) or 'pose' (pose-format, COCO-WholeBody 133 components).
    `ray_settings` (utils/ray_engine.RaySettings): run the videos as tasks on a Ray cluster instead of `workers`
    local processes.

    Finished pose files (that exist and read back) are skipped unless `overwrite`. BackendUnavailable is raised
    before any work; ClusterLost when a Ray cluster goes away (the next run resumes).
    """
    check_backend(spec)
    jobs = plan_jobs(source, out_dir, f".{file_format}")
    if not jobs:
        raise FileNotFoundError(f"{source}: no video found")
    report = ExtractionReport(spec.name)
    todo = []
    for video, output in jobs:
        if not overwrite and is_finished(output):
            report.results.append(VideoResult(str(video), str(output), "skipped"))
        else:
            todo.append((video, output))
    try:
        report.results.extend(_runner(todo, spec, max_side, allow_empty, progress, workers, ray_settings))
    finally:  # a stopped job still reports what it finished
        report.results.sort(key=lambda result: result.video)
        report.write(report_path or Path(out_dir) / REPORT_NAME)
    return report


def is_finished(output) -> bool:
    """A pose file that exists and reads back (a resumed job redoes a damaged one)."""
    if not output.exists():
        return False
    try:
        read_pose_file(output)
    except DataFormatError:
        return False
    return True


def _runner(todo, spec, max_side, allow_empty, progress, workers, ray_settings):
    if not todo:
        return iter(())
    if ray_settings is not None:
        return _run_ray(todo, spec, max_side, allow_empty, progress, ray_settings)
    workers = max(1, min(workers, len(todo)))
    if workers == 1:
        return _run_sequential(todo, spec, max_side, allow_empty, progress)
    return _run_parallel(todo, spec, max_side, allow_empty, progress, workers)
