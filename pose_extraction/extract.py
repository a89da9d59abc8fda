"""Extract COCO-WholeBody pose files (official Uni-Sign layout) from videos.

    python -m pose_extraction --input VIDEO_OR_DIR --out DIR [--backend mediapipe|rtmlib]
        [--workers N] [--overwrite] [--allow-empty] [--max-side PIXELS]
    python -m pose_extraction --input DIR --out DIR --backend rtmlib --det yolox.onnx --pose rtmw.onnx
    python -m pose_extraction --input DIR --out DIR --engine ray [--address auto|HOST:PORT] [--format pose]

One `<name>.pkl` per video ({'keypoints': T x (1, 133, 2) in [0, 1], 'scores': T x (1, 133)}), sub-folders
kept. Finished files are skipped (resume) unless --overwrite. A JSON report (extraction_report.json in
--out) lists every video with its status, frame count and speed; the exit status is 1 when any video
failed (each failure is printed with its reason) and 2 when nothing can start: the backend cannot run
here, the input is missing or holds no video, or two videos would write the same pose file (or Ray is
missing or unreachable); 3 when a Ray cluster went away mid-job (run the command again: it resumes).
--engine ray runs the videos as tasks on a Ray cluster (docs/scaling.md).
See docs/video_to_text.md for the keypoint mapping and the known differences from RTMPose.
"""
import argparse
import sys

from pose_extraction.backends import BACKENDS, BackendSpec, BackendUnavailable
from pose_extraction.runner import REPORT_NAME, run_extraction
from pose_extraction.video import DEFAULT_MAX_SIDE
from utils.ray_engine import ClusterLost, RayUnavailable, add_ray_arguments, ray_settings


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="a video file or a folder of videos (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder for the pose files")
    parser.add_argument("--format", default="pkl", choices=("pkl", "pose"),
                        help="pkl: the official pickle layout (default); pose: pose-format's .pose (COCO-WholeBody "
                             "133 components, pixels of the video's frame size), which its viewer opens")
    parser.add_argument("--backend", default="mediapipe", choices=BACKENDS)
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (one backend each)")
    parser.add_argument("--overwrite", action="store_true", help="re-extract videos whose pose file exists")
    parser.add_argument("--allow-empty", action="store_true",
                        help="write all-zero pose files for videos where nobody is detected (default: fail)")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help="downscale larger frames to this longer side before detection (0: never)")
    parser.add_argument("--static-image-mode", action="store_true",
                        help="mediapipe: detect on every frame instead of tracking (slower)")
    parser.add_argument("--det", help="rtmlib: local person detector ONNX file")
    parser.add_argument("--pose", help="rtmlib: local whole-body pose ONNX file")
    parser.add_argument("--det-input-size", type=int, nargs=2, default=(640, 640), metavar=("W", "H"))
    parser.add_argument("--pose-input-size", type=int, nargs=2, default=(288, 384), metavar=("W", "H"))
    parser.add_argument("--device", default="cpu", help="rtmlib: onnxruntime device (cpu, cuda)")
    parser.add_argument("--report", default=None, help=f"JSON report path (default: OUT/{REPORT_NAME})")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    add_ray_arguments(parser)
    return parser


def spec_from_args(args) -> BackendSpec:
    return BackendSpec(args.backend, args.static_image_mode, args.det, args.pose, tuple(args.det_input_size),
                       tuple(args.pose_input_size), args.device)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        report = run_extraction(args.input, args.out, spec_from_args(args), args.workers, args.overwrite,
                                args.max_side, args.allow_empty, args.progress, args.report, args.format,
                                ray_settings(args, args.workers) if args.engine == "ray" else None)
    except (BackendUnavailable, RayUnavailable, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ClusterLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    print(report.summary(), file=sys.stderr if report.failed else sys.stdout)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
