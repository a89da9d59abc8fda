"""Video (or pose file) -> text with a trained Uni-Sign checkpoint; the model is loaded once for all clips.

    python inference.py --video clip.mp4 --finetune out/quickstart/stage3_slt/best
    python inference.py --video clip.mp4 --finetune best_checkpoint.pth --lm-path out/quickstart/embedded_lm
    python inference.py --video a.mp4 b.pkl --finetune CKPT --lm-path DIR --task ISLR --topk 5
    python inference.py --video sign.mp4 --finetune CKPT --lm-path DIR --task ISLR --classes words.txt

Videos go through pose extraction first (--backend mediapipe by default, see pose_extraction/extract.py);
.pkl/.npz pose files are used as they are. Prints `<clip>: <translation>` per clip, and for --topk K > 1
(default 5 for ISLR) the K best candidates with their scores: beam search log-probabilities (length-
normalised), or with --classes FILE (one word per line) the probability over that closed word list.
--json prints one JSON object per clip instead. --rgb_support needs a checkpoint trained with it.

From Python (docs/python_api.md):

    from inference import SignTranslator
    translator = SignTranslator.from_checkpoint("out/quickstart/stage3_slt/best")  # or a .pth file + lm_path=
    translator.translate("clip.mp4").text          # video -> pose extraction -> model
    translator.translate("clip.pkl", topk=5).candidates   # pose file, 5-best list with scores

A clip goes through exactly the dataset's path: official frame sub-sampling above max_length
(`sample_frame_indices`, seeded), `normalize_parts`, then `UniSign.generate` (beam search). For ISLR,
`topk` returns the K best beams (text, length-normalised log-probability); with a class list the words are
instead ranked by `UniSign.score_candidates` (closed set: log-likelihood and softmax over the list).
"""
import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from datasets.formats import DEFAULT_MAX_FRAMES, PoseClip, coordinate_range_problem, read_pose_file
from datasets.keypoints import PARTS, SCORE_THRESHOLD, normalize_parts, sample_frame_indices
from datasets.rgb import RGBSampling, build_rgb_sample, collate_rgb
from datasets.tasks import TASK_NAMES
from models.uni_sign import UniSign
from pose_extraction.backends import BACKENDS, BackendSpec, BackendUnavailable, create_backend
from pose_extraction.runner import extract_video_poses
from pose_extraction.video import DEFAULT_MAX_SIDE, is_video
from utils.checkpoint import CheckpointError

RGB_NEEDS_CHECKPOINT = "RGB-pose inference needs a checkpoint trained with --rgb_support"


class InferenceError(RuntimeError):
    """The checkpoint, the input or the options do not allow this inference; the message says why."""


@dataclass
class Translation:
    source: str
    text: str  # the best hypothesis
    candidates: list = field(default_factory=list)  # [(text, score)], best first, when topk > 1 or classes
    num_frames: int = 0  # frames of the clip (before sub-sampling)


def load_model(source, lm_path=None, lang=None, rgb_support=False, device=None):
    """(UniSign in eval mode, the flags it was trained with) from a saved directory or a checkpoint file.

    `source` is what `UniSign.from_pretrained` loads: a `save_pretrained` directory (train.py's OUTPUT_DIR/best),
    our checkpoint file or an official one (both need `lm_path`). The prompt language is `lang`, else the
    model's (official checkpoints record none: Chinese). A model trained with --rgb_support is always built with
    its RGB branch (so that it loads); `rgb_support` asks for RGB-pose inference and needs such a model.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, trained = UniSign.load_pretrained(source, lm_path=lm_path, device=device, lang=lang)
    except CheckpointError as error:
        raise InferenceError(f"{source} does not load into this version of the model code ({error})") from error
    trained_with_rgb = model.config.rgb is not None
    if rgb_support and not trained_with_rgb:
        raise InferenceError(f"{RGB_NEEDS_CHECKPOINT}; {source} has no RGB branch weights")
    if trained_with_rgb and not rgb_support:
        print(f"note: {source} was trained with --rgb_support; running pose-only "
              f"(pass --rgb_support to use the hand crops of the video)", file=sys.stderr)
    return model, trained


def trained_rgb_sampling(trained: dict) -> RGBSampling:
    """The RGB sampling a model was trained with: a saved directory records it, a checkpoint file its flags."""
    if trained.get("rgb_sampling"):
        return RGBSampling.from_dict(trained["rgb_sampling"])
    return RGBSampling.from_flags(trained)


class SignTranslator:
    """A loaded model plus a lazily built pose extractor; `translate` one clip at a time."""

    def __init__(self, model, task="SLT", max_length=256, num_beams=4, max_new_tokens=100, classes=None,
                 rgb=False, backend_spec=BackendSpec(), max_side=DEFAULT_MAX_SIDE, seed=0, max_frames=DEFAULT_MAX_FRAMES,
                 force=False, rgb_sampling=None):
        """max_frames: longer pose files are refused unread; force: translate pose input whose coordinates lie
        outside [0, 1] (refused by default: the model would see garbage and still print a sentence);
        rgb_sampling: which frames' hand crops an RGB-pose model sees (default: the official RGBSampling)."""
        self.model = model
        self.task = task
        self.max_length = max_length
        self.num_beams = num_beams
        self.max_new_tokens = max_new_tokens
        self.classes = list(classes) if classes else None
        self.rgb = rgb
        self.backend_spec = backend_spec
        self.max_side = max_side
        self.seed = seed
        self.max_frames = max_frames
        self.force = force
        self.rgb_sampling = rgb_sampling or RGBSampling()
        self._backend = None

    @classmethod
    def from_checkpoint(cls, checkpoint, lm_path=None, task=None, lang=None, rgb_support=False, device=None,
                        **options):
        """Build the model from `checkpoint`: a saved directory, or a checkpoint file (ours or official) with the
        LM directory `lm_path`.

        task, max_length, num_beams and max_new_tokens default to the model's training flags (a saved directory
        records the decoding its run was evaluated with), else SLT, 256 and the model config's decoding;
        `options` go to the constructor.
        """
        model, trained = load_model(checkpoint, lm_path, lang, rgb_support, device)
        task = task or trained.get("task") or "SLT"
        defaults = {"max_length": 256, "num_beams": model.config.num_beams,
                    "max_new_tokens": model.config.max_new_tokens}
        for key, default in defaults.items():
            if options.get(key) is None:
                options[key] = trained.get(key, default)
        options.setdefault("rgb_sampling", trained_rgb_sampling(trained))
        return cls(model, task=task, rgb=rgb_support, **options)

    # ------------------------------------------------------------------ inputs

    @property
    def device(self):
        return next(self.model.parameters()).device

    def extract(self, video, on_frame=None) -> PoseClip:
        """Video -> one signer's poses with the configured backend (built on first use, then reused);
        `on_frame()` after each frame (progress)."""
        if self._backend is None:
            self._backend = create_backend(self.backend_spec)
        poses = extract_video_poses(video, self._backend, self.max_side, on_frame)
        if poses.frames_with_person == 0:
            raise InferenceError(f"{video}: no person detected in any of the {poses.num_frames} frames")
        return PoseClip(poses.keypoints, poses.scores)

    def load_clip(self, source):
        """(PoseClip, video path or None) from a video, a pose file, a PoseClip or (keypoints, scores)."""
        if not isinstance(source, (PoseClip, tuple)) and is_video(source):
            return self.extract(source), Path(source)
        if isinstance(source, PoseClip):
            clip = source
        elif isinstance(source, tuple):
            clip = PoseClip(*(np.asarray(array, np.float32) for array in source))
        else:
            clip = read_pose_file(source, self.max_frames)
        self._check_coordinates(clip, source)
        return clip, None

    def _check_coordinates(self, clip, source):
        problem = coordinate_range_problem(clip.keypoints, clip.scores, SCORE_THRESHOLD)
        if problem and not self.force:
            name = source if isinstance(source, (str, Path)) else "<clip>"
            raise InferenceError(f"{name}: field 'keypoints': {problem}; pass --force to translate it anyway")

    def model_inputs(self, clip: PoseClip):
        """Official sub-sampling + normalisation -> ({part: (1, T, V, 3)}, mask (1, T), frame numbers (T,))."""
        end = clip.end if clip.end is not None else clip.num_frames
        rng = random.Random(f"{self.seed}-inference")
        frame_numbers = clip.start + sample_frame_indices(end - clip.start, self.max_length, rng)
        parts = normalize_parts(clip.keypoints[frame_numbers], clip.scores[frame_numbers])
        parts = {name: torch.from_numpy(parts[name]).float()[None].to(self.device) for name in PARTS}
        mask = torch.ones(1, len(frame_numbers), dtype=torch.long, device=self.device)
        return parts, mask, frame_numbers

    def rgb_inputs(self, video, clip, frame_numbers):
        """Hand crops for the RGB branch, sampled and cropped as the dataset does."""
        if video is None:
            raise InferenceError("RGB-pose inference needs the video, not only a pose file")
        settings = self.rgb_sampling
        sample = build_rgb_sample(video, clip.keypoints[frame_numbers], clip.scores[frame_numbers], frame_numbers,
                                  settings.sample_ratio, np.random.default_rng(self.seed),
                                  official_crop=settings.official_crop, rule=settings.sampling_rule)
        batch = collate_rgb([sample])
        return {key: value.to(self.device) if torch.is_tensor(value) else value for key, value in batch.items()}

    # ------------------------------------------------------------------ outputs

    def translate(self, source, topk=1) -> Translation:
        """Translate one clip; `topk` > 1 also returns the K best candidates with scores."""
        clip, video = self.load_clip(source)
        name = str(source) if isinstance(source, (str, Path)) else "<clip>"
        return self.translate_clip(clip, video, name, topk)

    def translate_clip(self, clip: PoseClip, video=None, name="<clip>", topk=1) -> Translation:
        """Translate poses already read or extracted (`video`: their video, needed by RGB-pose inference)."""
        parts, mask, frame_numbers = self.model_inputs(clip)
        rgb = self.rgb_inputs(video, clip, frame_numbers) if self.rgb else None
        if self.classes:
            candidates = self._rank_classes(parts, mask, rgb, topk)
        elif topk > 1:
            candidates = self.model.generate(parts, mask, rgb=rgb, num_beams=max(self.num_beams, topk),
                                             max_new_tokens=self.max_new_tokens, num_return_sequences=topk)[0]
        else:
            text = self.model.generate(parts, mask, rgb=rgb, num_beams=self.num_beams,
                                       max_new_tokens=self.max_new_tokens)[0]
            return Translation(name, text, [], clip.num_frames)
        return Translation(name, candidates[0][0], [(text, float(score)) for text, score in candidates],
                           clip.num_frames)

    def translate_many(self, sources, topk=1):
        """Translate clips one by one (batch of 1: a clip's result never depends on its neighbours)."""
        return [self.translate(source, topk) for source in sources]

    def _rank_classes(self, parts, mask, rgb, topk):
        """Closed-set ranking: [(word, probability over the class list)] for the best max(topk, 1) words."""
        log_likelihood = self.model.score_candidates(parts, mask, self.classes, rgb=rgb)[0]  # (C,)
        probabilities = log_likelihood.double().softmax(-1)
        order = probabilities.argsort(descending=True)[: max(1, topk)]
        return [(self.classes[int(i)], float(probabilities[i])) for i in order]

    def close(self):
        if self._backend is not None:
            self._backend.close()
            self._backend = None


# ----------------------------------------------------------------------------- command line


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", nargs="+", required=True, metavar="CLIP",
                        help="video files and/or pose files (.pkl official layout, .npz native)")
    parser.add_argument("--finetune", required=True,
                        help="a saved model directory (train.py's OUTPUT_DIR/best) or a checkpoint file (ours or "
                             "official)")
    parser.add_argument("--lm-path", default=None,
                        help="the MT5/T5 directory a checkpoint file was trained with (not needed for a directory)")
    parser.add_argument("--task", choices=TASK_NAMES, default=None,
                        help="default: the checkpoint's training task (else SLT)")
    parser.add_argument("--topk", type=int, default=None, help="candidates to print (default 5 for ISLR, else 1)")
    parser.add_argument("--classes", default=None, help="ISLR: rank this closed word list (one per line)")
    parser.add_argument("--rgb_support", action="store_true", help="RGB-pose inference (needs the video)")
    parser.add_argument("--lang", choices=["Chinese", "English"], default=None,
                        help="prompt language (default: the checkpoint's; official checkpoints: Chinese)")
    parser.add_argument("--num-beams", type=int, default=None, help="default: the checkpoint's (else 4)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the checkpoint's (else 100)")
    parser.add_argument("--max_length", type=int, default=None,
                        help="max pose frames (random subset above; default: the checkpoint's, else 256)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the frame sub-sampling")
    parser.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                        help="refuse pose files with more frames, before reading them (default %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="translate pose files whose coordinates lie outside [0, 1] (refused by default)")
    group = parser.add_argument_group("pose extraction (videos only)")
    group.add_argument("--backend", default="mediapipe", choices=BACKENDS)
    group.add_argument("--det", help="rtmlib: local detector ONNX file")
    group.add_argument("--pose", help="rtmlib: local whole-body pose ONNX file")
    group.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE)
    parser.add_argument("--json", action="store_true", help="one JSON object per clip")
    return parser


def read_classes(path):
    words = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not words:
        raise InferenceError(f"{path}: the class list is empty")
    return words


def format_translation(result, as_json):
    if as_json:
        return json.dumps({"clip": result.source, "text": result.text, "frames": result.num_frames,
                           "candidates": [{"text": text, "score": score} for text, score in result.candidates]},
                          ensure_ascii=False)
    lines = [f"{result.source}: {result.text}"]
    lines += [f"  {rank}. {text}  ({score:.4f})" for rank, (text, score) in enumerate(result.candidates, 1)]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    options = dict(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, max_length=args.max_length,
                   seed=args.seed, max_side=args.max_side, max_frames=args.max_frames, force=args.force,
                   backend_spec=BackendSpec(args.backend, det=args.det, pose=args.pose))
    try:
        if args.classes:
            options["classes"] = read_classes(args.classes)
        translator = SignTranslator.from_checkpoint(args.finetune, args.lm_path, args.task, args.lang,
                                                    args.rgb_support, args.device, **options)
    except (InferenceError, CheckpointError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    topk = args.topk or (5 if translator.task == "ISLR" else 1)
    failures = 0
    for clip in args.video:
        try:
            print(format_translation(translator.translate(clip, topk), args.json), flush=True)
        except (InferenceError, BackendUnavailable, OSError, ValueError, RuntimeError) as error:
            failures += 1
            message = str(error)
            print(f"error: {message if message.startswith(clip) else f'{clip}: {message}'}", file=sys.stderr)
    translator.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
