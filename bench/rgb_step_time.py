"""Training step time of pose-only vs RGB-pose Uni-Sign at P_samp 0 / 10 / 25 / 50 % (paper Table 9: 1.0x/1.3x/1.7x/2.2x).

Batches come from the synthetic sentence set with rendered videos, through the real dataset path
(score-aware sampling, decord decoding, hand crops); they are built once per setting before timing, so the
step time is the model's (forward, backward, clip, AdamW step) and the data time is reported beside it.

    python -m bench.rgb_step_time                       # embedded default, tiny pose preset, CPU
    python -m bench.rgb_step_time --pose-preset official --lm-path pretrained_weight/mt5-base   # a GPU run
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from datasets.formats import read_labels  # noqa: E402
from datasets.sign_dataset import batch_to_device, collate_samples  # noqa: E402
from datasets.synthetic import generate_corpus  # noqa: E402
from engine import PlainStepper, build_optimizer, build_scheduler  # noqa: E402
from models.language_model import EmbeddedLMConfig, build_embedded_lm  # noqa: E402
from models.pose_encoder import POSE_PRESETS  # noqa: E402
from runs.arguments import get_args_parser  # noqa: E402
from runs.building import build_model, dataset_specs, seed_everything, split_dataset  # noqa: E402

SETTINGS = [("pose-only", None), ("RGB-pose 0%", 0.0), ("RGB-pose 10%", 0.1), ("RGB-pose 25%", 0.25),
            ("RGB-pose 50%", 0.5)]
PAPER = {"pose-only": 1.0, "RGB-pose 0%": None, "RGB-pose 10%": 1.3, "RGB-pose 25%": 1.7, "RGB-pose 50%": 2.2}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="synthetic corpus with --videos (default: generate the tiny one)")
    parser.add_argument("--lm-path", default=None, help="MT5 directory (default: build the embedded default LM)")
    parser.add_argument("--pose-preset", default="tiny", choices=sorted(POSE_PRESETS))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=3, help="distinct batches, cycled")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--gate-init", default="trainable", choices=["official", "trainable"],
                        help="'trainable' so that the RGB branch's backward runs as in a learning model")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def prepare(args, work_dir):
    data = Path(args.data) if args.data else work_dir / "corpus"
    if not args.data:
        generate_corpus(data, seed=0, size="tiny", videos=True)
    lm_path = args.lm_path
    if lm_path is None:
        texts = [entry.text for entry in read_labels(data / "sentences" / "labels.train")]
        lm_path = build_embedded_lm(texts, work_dir / "lm", EmbeddedLMConfig(vocab_size=300))
    return data, lm_path


def train_args(args, data, lm_path, ratio):
    flags = ["--dataset", "Synthetic", "--labels-dir", str(data / "sentences"),
             "--pose-dir", str(data / "sentences" / "pose_format"), "--rgb-dir", str(data / "sentences" / "rgb_format"),
             "--lm-path", str(lm_path), "--pose-preset", args.pose_preset, "--batch-size", str(args.batch_size),
             "--gradient-accumulation-steps", "1", "--gate-init", args.gate_init]
    if ratio is not None:
        flags += ["--rgb_support", "--rgb-sample-ratio", str(ratio), "--efficientnet-init", "random"]
    return get_args_parser().parse_args(flags)


def measure(args, data, lm_path, ratio) -> dict:
    run_args = train_args(args, data, lm_path, ratio)
    seed_everything(0)
    spec = dataset_specs(run_args)[0]
    model = build_model(run_args, spec)
    dataset = split_dataset(run_args, spec, "train")
    started = time.perf_counter()
    batches = [collate_samples([dataset[i * args.batch_size + j] for j in range(args.batch_size)], model.target_encoder)
               for i in range(args.batches)]
    data_seconds = (time.perf_counter() - started) / args.batches
    device = next(model.parameters()).device
    batches = [batch_to_device(batch, device) for batch in batches]
    optimizer = build_optimizer(model, 1e-4)
    stepper = PlainStepper(model, optimizer, build_scheduler(optimizer, 1, 10**6, 1), 1, 1.0)
    model.train()
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            synchronize(device)
            started = time.perf_counter()
        batch = batches[step % len(batches)]
        stepper.backward(model(batch["parts"], batch["frame_mask"], batch["labels"], batch.get("rgb")).loss)
        stepper.step()
    synchronize(device)
    crops = sum(int(batch["rgb"][f"{hand}_valid"].sum()) for batch in batches for hand in ("left", "right")) \
        if ratio is not None else 0
    return {"step_seconds": (time.perf_counter() - started) / args.steps, "data_seconds": data_seconds,
            "crops_per_batch": crops / len(batches)}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as work_dir:
        data, lm_path = prepare(args, Path(work_dir))
        results = {name: measure(args, data, lm_path, ratio) for name, ratio in SETTINGS}
    base = results["pose-only"]["step_seconds"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}, pose preset {args.pose_preset}, batch {args.batch_size}, {args.steps} timed steps")
    print("| setting | hand crops / batch | step time (s) | relative | paper (Table 9) | data time / batch (s) |")
    print("|---|---|---|---|---|---|")
    for name, figures in results.items():
        paper = f"{PAPER[name]:.1f}x" if PAPER[name] else "-"
        print(f"| {name} | {figures['crops_per_batch']:.1f} | {figures['step_seconds']:.3f} | "
              f"{figures['step_seconds'] / base:.2f}x | {paper} | {figures['data_seconds']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
