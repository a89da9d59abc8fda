"""One training epoch as a user sees it (data loading included): official-equivalent settings vs recommended ones.

    python -m bench.epoch_time                          # 96 clips, batch 8, 1 torch thread
    python -m bench.epoch_time --clips 192 --json out/bench/epoch_time.json

Data: CSL-Daily-like clips. Targets and gloss counts are the first --clips samples of the official CSL-Daily
train labels (../shared/official_labels; a synthetic sentence set when absent), frame counts come from
bench/padding.py's gloss model (mean 4.01 s at 25 fps), and the keypoints are random plausible poses (their
values do not change the cost). Model: the official pose encoder (`--pose-preset official`) on the benchmark's
small mT5 (d_model 768, 2 + 2 layers, an embedded SentencePiece vocabulary of 1,000 over these targets).

Settings (both through runs/building.py and engine.train_one_epoch, as train.py runs them):
  official-equivalent: random batches, fp32, pose files read and normalised per sample, --num_workers 0 (our
      default; the official default of 8 loader processes does not fit 2 cores), full vocabulary, torch's default
      AdamW (--fused-adamw off);
  recommended: --length-grouped, --autocast bf16, the preprocessed pose store, --prune-vocabulary, the fused AdamW
      (our default), --num_workers 1 (one loader process beside the training process on 2 cores).
The two epochs alternate (--repeats rounds, order swapped every round); the median seconds per epoch and the
speed-up are printed. The recommended settings change the numbers (bf16, pruned softmax), not the data seen.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.padding import DEFAULT_CSL_LABELS, csl_daily_gloss_lengths  # noqa: E402
from datasets.formats import LabelEntry, read_labels, write_official_labels, write_pose_pkl  # noqa: E402
from datasets.pose_store import build_store  # noqa: E402
from datasets.sign_dataset import batch_collator  # noqa: E402
from engine import PlainStepper, build_optimizer, build_scheduler, train_one_epoch  # noqa: E402
from models.language_model import EmbeddedLMConfig, build_embedded_lm  # noqa: E402
from runs.arguments import get_args_parser  # noqa: E402
from runs.building import build_model, dataset_specs, seed_everything, train_sampler, training_set  # noqa: E402

BENCH_LM = EmbeddedLMConfig(vocab_size=1000, d_model=768, d_kv=64, d_ff=1024, num_layers=2, num_decoder_layers=2,
                            num_heads=12)
SETTINGS = {
    "official-equivalent": ["--num_workers", "0", "--fused-adamw", "off"],
    "recommended": ["--length-grouped", "--autocast", "bf16", "--prune-vocabulary", "--num_workers", "1"],
}


def csl_daily_like(work_dir, clips, seed=0) -> tuple[Path, list]:
    """Label file + pose files (files/ and a copy with a pose store, store/) of CSL-Daily-like clips."""
    if DEFAULT_CSL_LABELS.is_file():
        entries = read_labels(DEFAULT_CSL_LABELS)[:clips]
        lengths = csl_daily_gloss_lengths(DEFAULT_CSL_LABELS, fps=25, seed=seed)[:clips]
    else:  # no official labels: synthetic sentences of 2-9 glosses
        rng = np.random.default_rng(seed)
        entries = [LabelEntry(f"clip{i}", "我 今天 去 学校" * int(rng.integers(1, 3)), "我 今天 去 学校")
                   for i in range(clips)]
        lengths = np.round(25 * rng.lognormal(np.log(4.0), 0.3, clips)).astype(int)
    rng = np.random.default_rng(seed)
    entries = [LabelEntry(entry.name, entry.text, entry.gloss, f"{entry.name}.mp4") for entry in entries]
    for folder in ("files", "store"):
        for entry, frames in zip(entries, lengths):
            base = rng.uniform(0.3, 0.7, (1, 133, 2))
            keypoints = np.clip(base + 0.02 * rng.standard_normal((frames, 133, 2)), 0, 1).astype(np.float32)
            write_pose_pkl(work_dir / folder / f"{entry.name}.pkl", keypoints, np.full((frames, 133), 0.9, np.float32))
        write_official_labels(work_dir / folder / "labels.train", entries)
    build_store(work_dir / "store", progress=False)
    return work_dir, [int(n) for n in lengths]


def epoch_runner(work_dir, lm_dir, name, batch_size):
    """A function that trains one epoch with the settings `name`; returns (seconds, samples)."""
    folder = work_dir / ("store" if name == "recommended" else "files")
    args = get_args_parser().parse_args([
        "--dataset", "Synthetic", "--task", "SLT", "--labels-dir", str(folder), "--pose-dir", str(folder),
        "--lm-path", str(lm_dir), "--pose-preset", "official", "--batch-size", str(batch_size),
        "--gradient-accumulation-steps", "1", "--lr", "3e-4", "--no-progress", *SETTINGS[name]])
    specs = dataset_specs(args)
    seed_everything(0)
    model = build_model(args, specs[0]).train()
    dataset = training_set(args, specs)
    sampler = train_sampler(args, dataset, 1, 0)
    optimizer = build_optimizer(model, args.lr, fused=args.fused_adamw == "on")
    stepper = PlainStepper(model, optimizer, build_scheduler(optimizer, 100, len(sampler), 1), 1, 1.0)

    def run_epoch(epoch):
        sampler.set_epoch(epoch)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=batch_collator(model.target_encoder),
                            num_workers=args.num_workers)
        started = time.perf_counter()
        stats = train_one_epoch(stepper, loader, epoch, args, {"optimizer_step": 0, "skipped": 0, "nonfinite": 0,
                                                               "batch": 0})
        return time.perf_counter() - started, stats["samples_per_s"]

    return run_epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="epochs per setting (alternating)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        work_dir, lengths = csl_daily_like(Path(scratch), args.clips)
        texts = [entry.text for entry in read_labels(work_dir / "files" / "labels.train")]
        lm_dir = build_embedded_lm(texts, work_dir / "lm", BENCH_LM)
        runners = {name: epoch_runner(work_dir, lm_dir, name, args.batch_size) for name in SETTINGS}
        seconds = {name: [] for name in SETTINGS}
        for repeat in range(args.repeats):
            for name in (list(SETTINGS) if repeat % 2 == 0 else list(reversed(SETTINGS))):
                elapsed, _ = runners[name](repeat)
                seconds[name].append(elapsed)
                print(f"  epoch {repeat}: {name}: {elapsed:.1f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"\n{args.clips} CSL-Daily-like clips (frames mean {np.mean(lengths):.0f}, p5-p95 "
          f"{np.percentile(lengths, 5):.0f}-{np.percentile(lengths, 95):.0f}), batch {args.batch_size}, "
          f"{args.threads} torch thread(s)")
    for name, median in medians.items():
        values = seconds[name]
        print(f"  {name:<20} {median:7.1f} s per epoch ({min(values):.1f} - {max(values):.1f}), "
              f"{args.clips / median:.2f} samples/s")
    speedup = medians["official-equivalent"] / medians["recommended"]
    print(f"  speed-up: x{speedup:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"clips": args.clips, "batch_size": args.batch_size,
                                               "seconds": seconds, "speedup": speedup}, indent=1))
    return {"seconds": seconds, "speedup": speedup}


if __name__ == "__main__":
    main()
