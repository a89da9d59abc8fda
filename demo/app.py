"""A web demo of a trained Uni-Sign model: a video (upload or webcam) or a pose file in, skeleton and text out.

    python script/quickstart.py                                     # once: trains the quickstart's models
    python demo/app.py --finetune out/quickstart/stage3_slt/best    # then open http://127.0.0.1:7860
    python -m demo --finetune best_checkpoint.pth --lm-path LM_DIR --share   # a public *.gradio.live link

Videos go through pose extraction (MediaPipe by default; --backend rtmlib --det DET.onnx --pose POSE.onnx),
the skeleton is drawn over the video, and the model's output is shown: the translation (SLT), the gloss
sequence (CSLR) or the five best signs with their scores (ISLR; --classes FILE ranks a closed word list).
Pose files (.pkl, .npz, .pose) skip extraction. Bad input (not a video, no person, empty, longer than
--max-seconds) is reported in the page; the server keeps serving. Needs `pip install -r
requirements-demo.txt` (Gradio). docs/demo.md: GPU, sharing, limits.
"""
import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python demo/app.py`: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.formats import POSE_SUFFIXES  # noqa: E402
from demo.service import DemoInputError, DemoLimits, DemoResult, DemoService  # noqa: E402
from inference import InferenceError, SignTranslator, read_classes  # noqa: E402
from pose_extraction.backends import BACKENDS, BackendSpec  # noqa: E402
from utils.checkpoint import CheckpointError  # noqa: E402

TITLE = "Uni-Sign: sign language video to text"
OUTPUT_LABELS = {"SLT": "Translation", "CSLR": "Gloss sequence", "ISLR": "Best sign"}


def import_gradio():
    try:
        import gradio
    except ImportError as error:
        raise SystemExit("error: the demo needs Gradio: pip install -r requirements-demo.txt") from error
    return gradio


def candidates_markdown(result: DemoResult) -> str:
    """ISLR: the ranked signs as a Markdown table (empty for the other tasks)."""
    if not result.candidates:
        return ""
    rows = [f"| {rank} | {text} | {score:.4f} |" for rank, (text, score) in enumerate(result.candidates, 1)]
    return "\n".join([f"Top {len(rows)} ({result.score_kind})", "", "| rank | sign | score |", "|---|---|---|", *rows])


def status_line(result: DemoResult) -> str:
    return f"Done: {result.num_frames} frames, task {result.task}."


def build_app(service: DemoService):
    """The Gradio page around `service` (gr.Blocks; launch it, or mount it in a FastAPI app)."""
    gr = import_gradio()

    def translate(video, pose_file, progress=gr.Progress()):
        try:
            result = service.run(video, pose_file, progress=lambda fraction, text: progress(fraction, desc=text))
        except DemoInputError as error:
            return None, "", "", f"Error: {error}"
        skeleton = str(result.skeleton_video) if result.skeleton_video else None
        return skeleton, result.text, candidates_markdown(result), status_line(result)

    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"# {TITLE}\nTask: **{service.task}**. Upload or record a video of one signer (up to "
                    f"{service.limits.max_seconds:.0f} s), or upload a pose file (.pkl / .npz / .pose), then press Translate.")
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload", "webcam"], elem_id="video_input")
                pose_file = gr.File(label="or a pose file", file_types=list(POSE_SUFFIXES), elem_id="pose_input")
                run = gr.Button("Translate", variant="primary", elem_id="translate")
            with gr.Column():
                skeleton = gr.Video(label="Skeleton", interactive=False, elem_id="skeleton")
                text = gr.Textbox(label=OUTPUT_LABELS[service.task], interactive=False, elem_id="output_text")
                ranked = gr.Markdown(elem_id="candidates")
                status = gr.Markdown(elem_id="status")
        run.click(translate, inputs=[video, pose_file], outputs=[skeleton, text, ranked, status])
    return app


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--finetune", required=True,
                        help="a saved model directory (train.py's OUTPUT_DIR/best) or a checkpoint file")
    parser.add_argument("--lm-path", default=None, help="the MT5/T5 directory of a checkpoint file")
    parser.add_argument("--task", choices=sorted(OUTPUT_LABELS), default=None,
                        help="default: the model's training task")
    parser.add_argument("--classes", default=None, help="ISLR: rank this closed word list (one per line)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--max-seconds", type=float, default=DemoLimits.max_seconds,
                        help="longest clip accepted (default %(default)s)")
    parser.add_argument("--backend", default="mediapipe", choices=BACKENDS, help="pose extraction backend")
    parser.add_argument("--det", help="rtmlib: local detector ONNX file")
    parser.add_argument("--pose", help="rtmlib: local whole-body pose ONNX file")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 serves the local network")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also serve through a public Gradio link")
    return parser


def build_service(args) -> DemoService:
    options = {"backend_spec": BackendSpec(args.backend, det=args.det, pose=args.pose)}
    if args.classes:
        options["classes"] = read_classes(args.classes)
    translator = SignTranslator.from_checkpoint(args.finetune, args.lm_path, args.task, device=args.device, **options)
    limits = DemoLimits(max_seconds=args.max_seconds, max_frames=int(args.max_seconds * 25))
    return DemoService(translator, limits)


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    try:
        service = build_service(args)
    except (InferenceError, CheckpointError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from error
    build_app(service).queue().launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
