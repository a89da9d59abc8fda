"""What the web demo does with one upload, without the web page: check, extract poses, draw, translate.

`DemoService.run(video=..., pose_file=...)` (.pkl, .npz, .pose) returns a `DemoResult` (text, ranked candidates for ISLR, the
skeleton video) or raises `DemoInputError` with the one-line message the page shows. The page
(demo/app.py) only wires this to Gradio components, so everything here is tested without a browser too.
"""
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from datasets.formats import POSE_SUFFIXES, DataFormatError, PoseClip
from inference import InferenceError, SignTranslator
from pose_extraction.backends import BackendUnavailable
from pose_extraction.video import VideoReadError, is_video, open_video
from pose_extraction.visualize import blank_frames, open_writer, render_frames, video_frames

SKELETON_FPS = 25.0  # pose files carry no frame rate


class DemoInputError(ValueError):
    """An upload the demo cannot use; the message is shown in the page as it is."""


@dataclass(frozen=True)
class DemoLimits:
    max_seconds: float = 60.0  # longer videos are refused before pose extraction
    max_frames: int = 1500  # longer pose files are refused (25 fps x 60 s)


@dataclass
class DemoResult:
    task: str
    text: str  # SLT: the translation; CSLR: the gloss sequence; ISLR: the best sign
    candidates: list = field(default_factory=list)  # ISLR: [(sign, score)], best first
    skeleton_video: Path | None = None  # the poses drawn over the input (or a blank canvas), browser-playable
    num_frames: int = 0
    score_kind: str = ""  # what the candidates' scores are


class DemoService:
    """One loaded translator serving uploads one at a time (Gradio queues concurrent requests)."""

    def __init__(self, translator: SignTranslator, limits=DemoLimits(), work_dir=None, topk=5):
        self.translator = translator
        self.limits = limits
        self.topk = topk
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="uni_sign_demo_"))
        self.work_dir.mkdir(parents=True, exist_ok=True)

    @property
    def task(self) -> str:
        return self.translator.task

    def run(self, video=None, pose_file=None, progress=None) -> DemoResult:
        """Translate a video (or a .pkl/.npz pose file); `progress(fraction, description)` reports the stages."""
        report = progress or (lambda fraction, description: None)
        source = self._choose_source(video, pose_file)
        if is_video(source):
            clip = self._extract(source, report)
        else:
            report(0.1, "reading the pose file")
            clip = self._read_pose_file(source)
        report(0.7, "drawing the skeleton")
        skeleton = self._draw(clip, source if is_video(source) else None)
        report(0.8, "translating")
        translation = self._translate(clip, source)
        report(1.0, "done")
        candidates = translation.candidates if self.task == "ISLR" else []
        kind = ("probability over the class list" if self.translator.classes else "beam log-probability per token") \
            if candidates else ""
        return DemoResult(self.task, translation.text, candidates, skeleton, clip.num_frames, kind)

    # ------------------------------------------------------------------ inputs

    def _choose_source(self, video, pose_file) -> Path:
        chosen = [Path(item) for item in (video, pose_file) if item]
        if not chosen:
            raise DemoInputError("nothing to translate: upload or record a video, or upload a pose file")
        if len(chosen) > 1:
            raise DemoInputError("both a video and a pose file were given: clear one of them")
        source = chosen[0]
        if not source.is_file() or source.stat().st_size == 0:
            raise DemoInputError(f"{source.name}: the upload is empty")
        if not is_video(source) and source.suffix.lower() not in POSE_SUFFIXES:
            raise DemoInputError(f"{source.name}: not a video or a pose file ({', '.join(POSE_SUFFIXES)})")
        return source

    def _extract(self, video, report) -> PoseClip:
        """Check that the video decodes and fits the limit, then extract its poses."""
        try:
            capture, info = open_video(video)
            readable, _ = capture.read()
            capture.release()
        except VideoReadError as error:
            raise DemoInputError(f"{video.name}: not a readable video ({error})") from error
        if not readable:
            raise DemoInputError(f"{video.name}: not a readable video (no frame decodes)")
        seconds = info.declared_frames / info.fps if info.fps > 0 else 0.0
        if seconds > self.limits.max_seconds:
            raise DemoInputError(f"{video.name}: the clip lasts {seconds:.0f} s; this demo takes clips up to "
                                 f"{self.limits.max_seconds:.0f} s (--max-seconds)")
        total, done = max(1, info.declared_frames), [0]

        def on_frame():
            done[0] += 1
            report(0.05 + 0.6 * min(1.0, done[0] / total), f"pose extraction: frame {done[0]} of ~{total}")

        report(0.05, "pose extraction")
        try:
            return self.translator.extract(video, on_frame)
        except InferenceError as error:  # no person in any frame
            raise DemoInputError(f"{video.name}: no person found in the video") from error
        except (VideoReadError, BackendUnavailable) as error:
            raise DemoInputError(f"{video.name}: {error}") from error

    def _read_pose_file(self, path) -> PoseClip:
        try:
            clip, _ = self.translator.load_clip(path)
        except (DataFormatError, InferenceError, OSError, ValueError) as error:
            raise DemoInputError(str(error) if path.name in str(error) else f"{path.name}: {error}") from error
        if clip.num_frames > self.limits.max_frames:
            raise DemoInputError(f"{path.name}: {clip.num_frames} frames; this demo takes up to "
                                 f"{self.limits.max_frames} (--max-seconds x 25 fps)")
        return clip

    # ------------------------------------------------------------------ outputs

    def _translate(self, clip, source):
        try:
            return self.translator.translate_clip(clip, source if is_video(source) else None, source.name,
                                                  self.topk if self.task == "ISLR" else 1)
        except InferenceError as error:
            raise DemoInputError(f"{source.name}: {error}") from error

    def _draw(self, clip: PoseClip, video=None) -> Path:
        """The poses over the video's frames (or a grey canvas), as a browser-playable WebM (VP8)."""
        if video is not None:
            frames, fps = video_frames(video)
        else:
            frames, fps = blank_frames(clip.num_frames, (384, 384)), SKELETON_FPS
        path = self.work_dir / f"skeleton_{uuid.uuid4().hex[:12]}.webm"
        writer = None
        try:
            for _, image in render_frames(clip.keypoints, clip.scores, frames):
                writer = writer or open_writer(path, fps or SKELETON_FPS, (image.shape[1], image.shape[0]))
                writer.write(image)
        finally:
            if writer is not None:
                writer.release()
        return path if writer is not None else None
