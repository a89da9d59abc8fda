"""Video (or pose file) -> text with a trained Uni-Sign checkpoint; the model is loaded once for all clips.

    python inference.py --video clip.mp4 --finetune out/quickstart/stage3_slt/best
    python inference.py --video clip.mp4 --finetune best_checkpoint.pth --lm-path out/quickstart/embedded_lm
    python inference.py --video a.mp4 b.pkl --finetune CKPT --lm-path DIR --task ISLR --topk 5
    python inference.py --video sign.mp4 --finetune CKPT --lm-path DIR --task ISLR --classes words.txt

Videos go through pose extraction first (--backend mediapipe by default, see utils/pose_extraction.py);
.pkl/.npz pose files are used as they are. Prints `<clip>: <translation>` per clip, and for --topk K > 1
(default 5 for ISLR) the K best candidates with their scores: beam search log-probabilities (length-
normalised), or with --classes FILE (one word per line) the probability over that closed word list.
--json prints one JSON object per clip instead. --rgb_support needs a checkpoint trained with it.
"""
import argparse
import json
import sys
from pathlib import Path

from datasets.formats import DEFAULT_MAX_FRAMES
from utils.checkpoint import CheckpointError
from utils.inference import InferenceError, SignTranslator
from utils.pose.backends import BACKENDS, BackendSpec, BackendUnavailable
from utils.pose.video import DEFAULT_MAX_SIDE


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", nargs="+", required=True, metavar="CLIP",
                        help="video files and/or pose files (.pkl official layout, .npz native)")
    parser.add_argument("--finetune", required=True,
                        help="a saved model directory (train.py's OUTPUT_DIR/best) or a checkpoint file (ours or "
                             "official)")
    parser.add_argument("--lm-path", default=None,
                        help="the MT5/T5 directory a checkpoint file was trained with (not needed for a directory)")
    parser.add_argument("--task", choices=["SLT", "CSLR", "ISLR"], default=None,
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
