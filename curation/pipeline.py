"""Curate a CSL-News-style corpus: broadcast videos + timed text -> cropped sign clips + labels (paper 3.1).

    python -m curation.pipeline --videos DIR_OR_FILE (--subtitles DIR_OR_FILE | --asr funasr --asr-model DIR)
        (--preset NAME | --crop x0,y0,x1,y1) --out DIR [--extract-poses] [--workers N] [--overwrite]

Per video: read the timed text (subtitles named like the video: NAME.srt, NAME.vtt or NAME.json; or FunASR),
fit it into the video's duration, split it into clips at punctuation (`curation.segment`), crop the signer
region and cut each clip to OUT/rgb_format/NAME_NNNN.mp4 (`curation.crop`), and with --extract-poses
write OUT/pose_format/NAME_NNNN.pkl. Videos run in parallel (--workers, or --engine ray: tasks on a Ray
cluster, docs/scaling.md); every finished or failed video appends one JSON line to OUT/manifest.jsonl. A
rerun skips videos whose latest record is done with the same settings (source, subtitle file content, crop,
rules, cutter, poses) and whose outputs exist; --overwrite
redoes them. At the end the labels (OUT/CSL_News_Labels.json: every clip of every done video in the
manifest, sorted by name) and the statistics (OUT/stats.json + histogram PNGs) are rewritten.
Exit status: 0 when every video is done, 1 when some failed (see the manifest), 2 on a setup error, 3 when a Ray
cluster went away mid-job (run the command again: it resumes).
"""
import argparse
import hashlib
import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from curation import CurationError
from curation.crop import CUTTERS, DEFAULT_PRESETS, CropBox, cut_clips, parse_crop, partial_path, preset_box
from curation.manifest import MANIFEST_NAME, POSE_DIR, RGB_DIR, read_manifest
from curation.segment import DEFAULT_MARKS, SegmentRules, segment
from curation.stats import format_table, write_report
from curation.timed_text import SUBTITLE_SUFFIXES, TimedTextError, clamp_to_duration, load_subtitles, transcribe_funasr
from datasets.formats import LabelEntry, write_csl_news_labels, write_pose_pkl
from datasets.keypoints import NUM_KEYPOINTS
from utils.ray_engine import ClusterLost, RayUnavailable, add_ray_arguments, map_on_ray, ray_settings

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".ts", ".flv", ".webm", ".mpg", ".mpeg", ".m4v")
DEFAULT_LABELS_NAME = "CSL_News_Labels.json"  # the CSL_News file name train.py --labels-dir looks for


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Job:
    """One video and where its text comes from: a subtitle file, FunASR (both None), or `missing` explains."""

    video: Path
    subtitles: Path | None = None
    missing: str = ""


@dataclass(frozen=True)
class AsrOptions:
    model: str
    vad_model: str | None = None
    punc_model: str | None = None
    device: str = "cpu"


@dataclass(frozen=True)
class Options:
    out_dir: Path
    crop: CropBox
    rules: SegmentRules = field(default_factory=SegmentRules)
    cutter: str = "opencv"
    extract_poses: bool = False
    subtitle_encoding: str | None = None
    strict_times: bool = False
    asr: AsrOptions | None = None


# ----------------------------------------------------------------------------- inputs


def probe_video(path) -> VideoInfo:
    """Frame rate, frame count and size of a video (OpenCV's container metadata)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise CurationError(f"{path}: OpenCV cannot open the video")
    info = VideoInfo(capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
                     int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    capture.release()
    if info.fps <= 0 or info.frames <= 0:
        raise CurationError(f"{path}: the video reports {info.frames} frames at {info.fps} fps")
    return info


def _subtitle_job(video, folder) -> Job:
    found = [folder / f"{video.stem}{suffix}" for suffix in SUBTITLE_SUFFIXES
             if (folder / f"{video.stem}{suffix}").is_file()]
    if len(found) > 1:
        raise CurationError(f"{video}: several subtitle files match ({', '.join(map(str, found))}); keep one")
    if not found:
        names = "/".join(f"{video.stem}{suffix}" for suffix in SUBTITLE_SUFFIXES)
        return Job(video, missing=f"{video}: no subtitle file {names} in {folder}")
    return Job(video, found[0])


def find_jobs(videos, subtitles=None) -> list:
    """Jobs for a video file or folder (its video files, sorted) and a subtitle file or folder (None: ASR)."""
    videos = Path(videos)
    if videos.is_dir():
        files = sorted(path for path in videos.iterdir() if path.suffix.lower() in VIDEO_SUFFIXES)
    elif videos.is_file():
        files = [videos]
    else:
        raise CurationError(f"--videos {videos}: no such file or folder")
    if not files:
        raise CurationError(f"--videos {videos}: no video files ({' '.join(VIDEO_SUFFIXES)})")
    stems = [path.stem for path in files]
    duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
    if duplicates:
        raise CurationError(f"--videos: several videos share the name(s) {', '.join(duplicates)}; clip names "
                            "are made from video names, so they must be unique")
    if subtitles is None:
        return [Job(path) for path in files]
    subtitles = Path(subtitles)
    if subtitles.is_file():
        if len(files) != 1:
            raise CurationError("--subtitles FILE goes with a single --videos FILE; for a folder of videos give a "
                                "folder of subtitles named like the videos")
        return [Job(files[0], subtitles)]
    if not subtitles.is_dir():
        raise CurationError(f"--subtitles {subtitles}: no such file or folder")
    return [_subtitle_job(path, subtitles) for path in files]


def _file_sha1(path) -> str | None:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest() if path and Path(path).is_file() else None


def job_settings(job, options) -> dict:
    """Everything that decides a video's outputs; a finished video is redone when these change."""
    settings = {
        "source": str(job.video.resolve()),
        "subtitles": str(job.subtitles.resolve()) if job.subtitles else None,
        "subtitles_sha1": _file_sha1(job.subtitles),
        "asr": asdict(options.asr) if options.asr and not job.subtitles else None,
        "crop": options.crop.relative(),
        "rules": asdict(options.rules),
        "cutter": options.cutter,
        "extract_poses": options.extract_poses,
        "subtitle_encoding": options.subtitle_encoding,
        "strict_times": options.strict_times,
    }
    return json.loads(json.dumps(settings))


# ----------------------------------------------------------------------------- poses


def _pose_front_end():
    """The pose front-end's API (pose_extraction/: MediaPipe by default), imported only when poses are wanted."""
    try:
        from pose_extraction import backends, runner
    except ImportError as error:
        raise CurationError(
            f"--extract-poses needs the pose front-end (pose_extraction/, pose_extraction/extract.py), which cannot be "
            f"imported ({error}); run without --extract-poses and extract the poses of OUT/{RGB_DIR} later"
        ) from error
    return backends, runner


def check_pose_front_end():
    """Fail before any work when the MediaPipe pose backend cannot run here (without loading its model)."""
    backends, _ = _pose_front_end()
    try:
        backends.check_backend(backends.BackendSpec())
    except backends.BackendUnavailable as error:
        raise CurationError(f"--extract-poses: {error}") from error


@lru_cache(maxsize=1)
def load_pose_extractor():
    """clip path -> (keypoints (T, 133, 2), scores (T, 133)); one MediaPipe backend per process."""
    backends, runner = _pose_front_end()
    backend = backends.create_backend(backends.BackendSpec())

    def extract(path):
        poses = runner.extract_video_poses(path, backend)
        return poses.keypoints, poses.scores

    return extract


def extract_clip_poses(extractor, clip_path, pose_path) -> bool:
    """Run the pose extractor on one clip and write the official pose pickle; False when nobody was seen."""
    keypoints, scores = (np.asarray(array, np.float32) for array in extractor(str(clip_path)))
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 2) or scores.shape != keypoints.shape[:2]:
        raise CurationError(f"{clip_path}: the pose extractor returned shapes {keypoints.shape} and {scores.shape}, "
                            f"expected (T, {NUM_KEYPOINTS}, 2) and (T, {NUM_KEYPOINTS})")
    write_pose_pkl(pose_path, keypoints, scores)
    return bool((scores > 0).any())


# ----------------------------------------------------------------------------- one video


def load_timed_text(job, options):
    """The job's timed text from its subtitle file or from FunASR."""
    if job.missing:
        raise TimedTextError(job.missing)
    if job.subtitles is not None:
        return load_subtitles(job.subtitles, options.subtitle_encoding, options.strict_times)
    if options.asr is None:
        raise TimedTextError(f"{job.video}: no subtitles given and no ASR backend chosen")
    asr = options.asr
    return transcribe_funasr(job.video, asr.model, asr.vad_model, asr.punc_model, asr.device, options.strict_times)


def _clip_record(name, clip, frames, info, cues, options) -> dict:
    start_frame, end_frame = frames
    return {
        "name": name,
        "text": clip.text,
        "start": round(clip.start, 3),
        "end": round(clip.end, 3),
        "start_frame": start_frame,
        "end_frame": end_frame,
        "frames": end_frame - start_frame,
        "duration": round((end_frame - start_frame) / info.fps, 3),
        "cues": [cues[index].where for index in clip.cues],
        "video": f"{RGB_DIR}/{name}.mp4",
        "pose": f"{POSE_DIR}/{name}.pkl" if options.extract_poses else None,
    }


def _frame_ranges(clips, info, record):
    """[start, end) frames per clip; clips that cover no frame are moved to record['dropped']."""
    kept = []
    for clip in clips:
        start = round(clip.start * info.fps)
        end = min(round(clip.end * info.fps), info.frames)
        if end > start:
            kept.append((clip, (start, end)))
        else:
            record["dropped"].append({"start": round(clip.start, 3), "end": round(clip.end, 3), "text": clip.text,
                                      "reason": "covers no video frame"})
    return kept


def _cut(job, options, info, box, planned, record, written):
    """Cut the planned clips; a video ending early truncates (or drops) its last clips, with a warning."""
    out = options.out_dir
    paths = [out / RGB_DIR / f"{job.video.stem}_{number:04d}.mp4" for number in range(len(planned))]
    written.extend(paths)
    ends = cut_clips(options.cutter, job.video, [frames for _, frames in planned], box, paths, info.fps)
    kept = []
    for (clip, (start, end)), actual_end, path in zip(planned, ends, paths):
        if actual_end < end:
            record["warnings"].append(f"{job.video}: the video ended at frame {actual_end}, before the reported "
                                      f"{info.frames} frames; clip {path.name} (frames {start}-{end}) cut short")
        if actual_end <= start:
            path.unlink()
            record["dropped"].append({"start": round(clip.start, 3), "end": round(clip.end, 3), "text": clip.text,
                                      "reason": "the video ended before this clip"})
        else:
            kept.append((path.stem, clip, (start, actual_end)))
    return kept


def _curate(job, options, record, written):
    """The steps of one video, filling `record`; every file written is listed in `written` first."""
    info = probe_video(job.video)
    record["video_info"] = {**asdict(info), "duration": round(info.duration, 3)}
    box = options.crop.pixels(info.width, info.height, job.video)
    record["crop"] = {"relative": options.crop.relative(), "pixels": list(box), "source": options.crop.source}
    timed = clamp_to_duration(load_timed_text(job, options), info.duration)
    record["warnings"].extend(timed.warnings)
    clips, dropped = segment(timed.cues, options.rules)
    record["dropped"].extend({"start": round(item.start, 3), "end": round(item.end, 3), "text": item.text,
                              "reason": item.reason} for item in dropped)
    planned = _frame_ranges(clips, info, record)
    cut = _cut(job, options, info, box, planned, record, written)
    record["clips"] = [_clip_record(name, clip, frames, info, timed.cues, options) for name, clip, frames in cut]
    if options.extract_poses:
        extractor = load_pose_extractor()
        for clip in record["clips"]:
            written.append(options.out_dir / clip["pose"])
            if not extract_clip_poses(extractor, options.out_dir / clip["video"], options.out_dir / clip["pose"]):
                record["warnings"].append(f"{clip['video']}: no person detected in any frame (all-zero poses)")


def _remove(paths):
    """Delete output files and their partly written twins, where they exist."""
    for path in paths:
        for candidate in (path, partial_path(path)):
            candidate.unlink(missing_ok=True)


def new_record(job, options, error=None) -> dict:
    """A video's manifest record before its curation: status 'failed' until it is done."""
    return {"video": job.video.stem, "source": str(job.video),
            "subtitles": str(job.subtitles) if job.subtitles else None,
            "status": "failed", "error": error, "settings": job_settings(job, options),
            "clips": [], "dropped": [], "warnings": []}


def process_video(job, options) -> dict:
    """Curate one video; returns its manifest record (status 'done' or 'failed' with the error)."""
    started = time.time()
    record = new_record(job, options)
    written = []
    try:
        _curate(job, options, record, written)
        record["status"] = "done"
    except Exception as error:  # one broken video must not stop a run over thousands; the manifest keeps why
        _remove(written)
        record["clips"] = []
        record["error"] = str(error) if isinstance(error, CurationError) else f"{type(error).__name__}: {error}"
    record["seconds"] = round(time.time() - started, 3)
    return record


# ----------------------------------------------------------------------------- the run


def _outputs(record, out_dir) -> list:
    return [out_dir / clip[key] for clip in record["clips"] for key in ("video", "pose") if clip[key]]


def is_finished(record, settings, out_dir) -> bool:
    """A video need not be redone: done with the same settings, and all its outputs are there."""
    return (record is not None and record["status"] == "done" and record["settings"] == settings
            and all(path.is_file() for path in _outputs(record, out_dir)))


def _process_all(jobs, options, workers, ray_settings=None):
    """Records of the jobs, as they finish (in order with one worker; Ray tasks with `ray_settings`).

    Workers are spawned, not forked: a fork copies the caller's threads' locks (OpenCV, torch) mid-state.
    """
    if ray_settings is not None:
        lost = partial(_lost_video_record, options=options)
        yield from map_on_ray(partial(process_video, options=options), jobs, ray_settings, lost)
        return
    if workers <= 1:
        for job in jobs:
            yield process_video(job, options)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(process_video, job, options) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def _lost_video_record(job, error, options) -> dict:
    return {**new_record(job, options, error), "seconds": 0.0}


def write_labels(path, records) -> list:
    """CSL-News labels of all clips of the given records, sorted by clip name; returns the clip records."""
    clips = sorted((clip for record in records for clip in record["clips"]), key=lambda clip: clip["name"])
    entries = [LabelEntry(clip["name"], clip["text"], "", Path(clip["video"]).name, f"{clip['name']}.pkl")
               for clip in clips]
    write_csl_news_labels(path, entries)
    return clips


def _describe(record) -> str:
    if record["status"] != "done":
        return f"{record['video']}: FAILED: {record['error']}"
    return (f"{record['video']}: {len(record['clips'])} clips, {len(record['dropped'])} dropped, "
            f"{len(record['warnings'])} warnings ({record['seconds']:.1f} s)")


def run(jobs, options, workers=1, overwrite=False, labels_name=DEFAULT_LABELS_NAME, log=print,
        ray_settings=None) -> dict:
    """Curate the jobs into options.out_dir (resumable; local processes, or Ray tasks with `ray_settings`);
    returns a summary dict. ClusterLost when a Ray cluster goes away (the manifest keeps what finished)."""
    out = Path(options.out_dir)
    for folder in (out / RGB_DIR, out / POSE_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST_NAME
    latest = read_manifest(manifest)
    todo = []
    for job in jobs:
        previous = latest.get(job.video.stem)
        if not overwrite and is_finished(previous, job_settings(job, options), out):
            continue
        if previous is not None:
            _remove(_outputs(previous, out))
        todo.append(job)
    if options.extract_poses and todo:
        check_pose_front_end()
    log(f"{len(jobs)} videos: {len(jobs) - len(todo)} already curated, {len(todo)} to do")
    failed = []
    for record in _process_all(todo, options, workers, ray_settings):
        with open(manifest, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        latest[record["video"]] = record
        failed += [record["video"]] if record["status"] != "done" else []
        log(_describe(record))
    done = [record for record in latest.values() if record["status"] == "done"]
    clips = write_labels(out / labels_name, done)
    stats = write_report(out, [clip["duration"] for clip in clips], [clip["text"] for clip in clips])
    return {"videos": len(jobs), "processed": len(todo), "skipped": len(jobs) - len(todo), "failed": failed,
            "labels": str(out / labels_name), "stats": stats}


# ----------------------------------------------------------------------------- command line


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", required=True, help="a video file or a folder of videos")
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--subtitles", help="a subtitle file (.srt/.vtt/.json) or a folder of NAME.srt|vtt|json")
    text.add_argument("--asr", choices=["funasr"], help="transcribe the videos with FunASR instead")
    parser.add_argument("--asr-model", help="local FunASR model directory")
    parser.add_argument("--asr-vad-model", help="local FunASR VAD model directory")
    parser.add_argument("--asr-punc-model", help="local FunASR punctuation model directory")
    parser.add_argument("--asr-device", default="cpu")
    parser.add_argument("--subtitle-encoding", default=None, help="subtitle text encoding (default UTF-8)")
    parser.add_argument("--strict-times", action="store_true",
                        help="overlapping cues are an error (default: trim the earlier cue, with a warning)")
    crop = parser.add_mutually_exclusive_group(required=True)
    crop.add_argument("--preset", help="signer-region preset name (see --presets)")
    crop.add_argument("--crop", help="signer region x0,y0,x1,y1 as fractions of the frame")
    parser.add_argument("--presets", default=None, help=f"presets file (default {DEFAULT_PRESETS})")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--min-duration", type=float, default=SegmentRules.min_duration, help="seconds")
    parser.add_argument("--max-duration", type=float, default=SegmentRules.max_duration, help="seconds")
    parser.add_argument("--pause", type=float, default=SegmentRules.pause,
                        help="a silence this long (s) between cues ends a clip")
    parser.add_argument("--split-marks", default=DEFAULT_MARKS, help="punctuation that ends a clip")
    parser.add_argument("--cutter", choices=CUTTERS, default="opencv", help="opencv (mp4v) or ffmpeg (H.264)")
    parser.add_argument("--extract-poses", action="store_true", help="also write OUT/pose_format/NAME.pkl")
    parser.add_argument("--workers", type=int, default=1, help="videos processed in parallel")
    parser.add_argument("--overwrite", action="store_true", help="redo videos that are already curated")
    parser.add_argument("--labels-name", default=DEFAULT_LABELS_NAME, help="label file name inside --out")
    add_ray_arguments(parser)
    return parser


def options_from_args(args) -> Options:
    """Options from parsed arguments (errors as CurationError)."""
    try:
        rules = SegmentRules(args.min_duration, args.max_duration, args.pause, args.split_marks)
    except ValueError as error:
        raise CurationError(f"segmentation rules: {error}") from error
    if args.cutter == "ffmpeg" and shutil.which("ffmpeg") is None:
        raise CurationError("--cutter ffmpeg: no 'ffmpeg' on PATH (install it, or use the default --cutter opencv)")
    if args.asr and not args.asr_model:
        raise CurationError("--asr funasr needs --asr-model DIR (a local FunASR model directory)")
    asr = AsrOptions(args.asr_model, args.asr_vad_model, args.asr_punc_model, args.asr_device) if args.asr else None
    crop = preset_box(args.preset, args.presets) if args.preset else parse_crop(args.crop)
    return Options(Path(args.out), crop, rules, args.cutter, args.extract_poses, args.subtitle_encoding,
                   args.strict_times, asr)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        options = options_from_args(args)
        jobs = find_jobs(args.videos, args.subtitles)
        ray = ray_settings(args, max(1, args.workers)) if args.engine == "ray" else None
        summary = run(jobs, options, max(1, args.workers), args.overwrite, args.labels_name, ray_settings=ray)
    except (CurationError, RayUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ClusterLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    print(format_table(summary["stats"]))
    print(f"labels: {summary['labels']}")
    if summary["failed"]:
        print(f"{len(summary['failed'])} videos failed (see {Path(args.out) / MANIFEST_NAME}): "
              f"{', '.join(summary['failed'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
