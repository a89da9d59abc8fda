"""Train Uni-Sign: stage 1 pose pre-training, stage 2 RGB-pose pre-training, stage 3 fine-tuning.

One generative objective everywhere; the task only chooses the target (SLT: sentence, CSLR: glosses,
ISLR: word) and the metric that picks the best checkpoint. Flag names follow the official code.

  python train.py --dataset CSL_News --task SLT --output_dir out/stage1            # stage 1
  python train.py --dataset CSL_Daily --task SLT --finetune out/stage1/best_checkpoint.pth \\
      --batch-size 8 --gradient-accumulation-steps 1 --output_dir out/stage3          # stage 3
"""
import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from datasets.registry import get_dataset_spec, load_split
from datasets.sign_dataset import SignDataset, collate_samples
from engine import build_optimizer, build_scheduler, evaluate, is_better, train_one_epoch, write_json
from models.language_model import DEFAULT_LM_PATH
from models.pose_encoder import SUB_POSE_GROUPS, PoseEncoderConfig
from models.hand_fusion import RGBConfig
from models.uni_sign import UniSign, UniSignConfig
from utils.checkpoint import FORMAT, atomic_save, load_checkpoint_file, load_model_weights
from utils.logger import RunLogger

# Pose encoder widths: the official (hard-coded) sizes, and a small one for CPU runs of the embedded default.
POSE_PRESETS = {
    "official": dict(proj_dim=64, spatial_widths=(64, 128, 256)),
    "tiny": dict(proj_dim=32, spatial_widths=(32, 64, 64)),
}
# The official code keys the prompt language and the CSL-Daily character-level scoring on the dataset NAME
# (official_defaults.md 3.3 and 5), whatever the label files hold; other datasets use their configured language.
OFFICIAL_DATASETS = ("CSL_News", "CSL_Daily", "WLASL", "How2Sign", "OpenASL")


def prompt_language(spec) -> str:
    if spec.name in OFFICIAL_DATASETS:
        return "Chinese" if "CSL" in spec.name else "English"
    return spec.lang


def char_level_scoring(task, spec) -> bool:
    if spec.name in OFFICIAL_DATASETS:
        return task == "SLT" and spec.name == "CSL_Daily"
    return task == "SLT" and spec.lang == "Chinese"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="CSL_Daily", help="registry name (config/datasets.json)")
    group.add_argument("--task", default="SLT", choices=["SLT", "CSLR", "ISLR"])
    group.add_argument("--dataset-config", default=None, help="registry file (default config/datasets.json)")
    group.add_argument("--labels-dir", default=None, help="folder holding the split label files (overrides config)")
    group.add_argument("--pose-dir", default=None, help="pose folder (overrides config; may contain {split})")
    group.add_argument("--rgb-dir", default=None, help="video folder (overrides config; may contain {split})")
    group.add_argument("--max_length", type=int, default=256, help="max pose frames per sample (random subset above)")
    group.add_argument("--skip-policy", default="error", choices=["error", "skip"],
                       help="unreadable samples: stop with an error (default) or log, count and skip them")
    group.add_argument("--num_workers", type=int, default=0)

    group = parser.add_argument_group("model")
    group.add_argument("--lm-path", default=DEFAULT_LM_PATH, help="local MT5/T5 directory (default: %(default)s)")
    group.add_argument("--pose-preset", default="official", choices=sorted(POSE_PRESETS),
                       help="pose encoder widths; 'tiny' is for CPU runs of the embedded default")
    group.add_argument("--pose-parts", default="all", choices=sorted(SUB_POSE_GROUPS),
                       help="sub-pose groups (paper Table 13)")
    group.add_argument("--batch-independent", action="store_true",
                       help="zero padded frames before temporal convs so a sample's output does not depend on "
                            "its batch (official: off, the last-frame padding leaks into the last real frames)")
    group.add_argument("--batch-hands", action="store_true",
                       help="run both hands as one batch through their shared encoder (faster; changes "
                            "BatchNorm statistics in training)")
    group.add_argument("--label_smoothing", type=float, default=0.2)
    group.add_argument("--rgb_support", action="store_true", help="RGB hand branch with PGF fusion (stage 2 on)")
    group.add_argument("--rgb-sample-ratio", type=float, default=0.1,
                       help="P_samp: share of eligible frames whose hand crops are used (paper Table 9)")
    group.add_argument("--sampling-rule", default="official", choices=["official", "paper"],
                       help="score-aware sampling: the official code's rule or the paper's pseudo-code")
    group.add_argument("--fusion", default="da", choices=["da", "ca"],
                       help="PGF: cross + deformable attention (da) or cross-attention only (ca, Table 10)")
    group.add_argument("--gate-init", default="official", choices=["official", "trainable"],
                       help="fusion gate init; 'official' zero-init never trains (docs/rgb_branch.md)")
    group.add_argument("--efficientnet-weights", default="", help="torchvision ImageNet EfficientNet-B0 .pth file")
    group.add_argument("--official-crop", action="store_true",
                       help="reproduce the official crop wrap-around at negative box coordinates")
    group.add_argument("--crop-cache", default="", help="folder caching decoded hand crops across epochs")
    group.add_argument("--finetune", default="", help="initial weights: our checkpoint or an official one")
    group.add_argument("--partial-load", action="store_true", help="allow missing/unexpected keys in --finetune")

    group = parser.add_argument_group("optimisation")
    group.add_argument("--batch-size", type=int, default=16)
    group.add_argument("--gradient-accumulation-steps", type=int, default=8)
    group.add_argument("--gradient-clipping", type=float, default=1.0)
    group.add_argument("--epochs", type=int, default=20)
    group.add_argument("--opt", default="adamw", type=str.lower, choices=["adamw"])
    group.add_argument("--opt-eps", type=float, default=1e-9)
    group.add_argument("--opt-betas", type=float, nargs=2, default=None, help="default (0.9, 0.999)")
    group.add_argument("--weight-decay", type=float, default=1e-4)
    group.add_argument("--lr", type=float, default=1e-3, help="the paper's scripts pass 3e-4")
    group.add_argument("--warmup-epochs", type=float, default=0)
    group.add_argument("--seed", type=int, default=42)

    group = parser.add_argument_group("evaluation and output")
    group.add_argument("--output_dir", default="out/run")
    group.add_argument("--eval", action="store_true", help="only evaluate --finetune on dev and test")
    group.add_argument("--num-beams", type=int, default=4)
    group.add_argument("--max-new-tokens", type=int, default=100)
    group.add_argument("--symmetric-punct", action="store_true",
                       help="CSL-Daily SLT: fold full-width punctuation in predictions and references alike "
                            "(official: references only, see docs/evaluation.md)")
    group.add_argument("--eval-every", type=int, default=1, help="evaluate dev every N epochs")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    return parser


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rgb_config(args) -> RGBConfig | None:
    if not args.rgb_support:
        return None
    return RGBConfig(args.rgb_sample_ratio, args.sampling_rule, args.fusion, args.gate_init, args.official_crop,
                     args.efficientnet_weights)


def model_config(args, spec, finetune_checkpoint) -> UniSignConfig:
    """Architecture from the --finetune checkpoint when it records one, else from the flags."""
    if finetune_checkpoint is not None and "config" in finetune_checkpoint:
        config = UniSignConfig.from_dict(finetune_checkpoint["config"])
        config.lang, config.label_smoothing = prompt_language(spec), args.label_smoothing
        config.pose.batch_independent, config.pose.batch_hands = args.batch_independent, args.batch_hands
        config.rgb = rgb_config(args)
        return config
    pose = PoseEncoderConfig(
        parts=SUB_POSE_GROUPS[args.pose_parts],
        batch_independent=args.batch_independent,
        batch_hands=args.batch_hands,
        **POSE_PRESETS[args.pose_preset],
    )
    return UniSignConfig(lang=prompt_language(spec), label_smoothing=args.label_smoothing, num_beams=args.num_beams,
                         max_new_tokens=args.max_new_tokens, pose=pose, rgb=rgb_config(args))


def build_model(args, spec) -> UniSign:
    """Build from flags (or the --finetune checkpoint's config) and load --finetune.

    A pose-only checkpoint (stage 1) loads into an RGB-pose model (stage 2): only the RGB branch is new.
    """
    finetune = load_checkpoint_file(args.finetune) if args.finetune else None
    model = UniSign.from_lm_path(model_config(args, spec, finetune), args.lm_path)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    if args.finetune:
        adds_rgb = args.rgb_support and not any("hand_fusion" in key or "rgb" in key for key in finetune["model"])
        report = load_model_weights(model, args.finetune, partial=args.partial_load or adds_rgb)
        unexpected_missing = [key for key in report["missing"] if not (adds_rgb and "hand_fusion" in key)]
        if unexpected_missing and not args.partial_load:
            sys.exit(f"{args.finetune}: missing keys outside the RGB branch: {unexpected_missing[:5]}")
        if report["missing"] or report["unexpected"]:
            print(f"partial load: {len(report['missing'])} missing, {len(report['unexpected'])} unexpected keys")
    return model


def make_loader(dataset, batch_size, shuffle, seed, num_workers):
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle, generator=generator,
                      collate_fn=collate_samples, num_workers=num_workers)


def build_loaders(args, spec, splits):
    loaders = {}
    for split in splits:
        rgb = None
        if args.rgb_support:
            rgb = {"video_dir": spec.rgb_dir_for(split), "sample_ratio": args.rgb_sample_ratio,
                   "sampling_rule": args.sampling_rule, "official_crop": args.official_crop,
                   "cache_dir": args.crop_cache}
        dataset = SignDataset(load_split(spec, split), spec.pose_dir_for(split), args.task, args.max_length,
                              args.seed, args.skip_policy, rgb)
        loaders[split] = make_loader(dataset, args.batch_size, split == "train", args.seed, args.num_workers)
    return loaders


def save_checkpoint(model, path, args, epoch, metrics=None):
    atomic_save({
        "format": FORMAT,
        "model": model.state_dict(),
        "config": model.config.to_dict(),
        "args": {key: value for key, value in vars(args).items() if isinstance(value, (str, int, float, bool))},
        "epoch": epoch,
        "metrics": metrics or {},
    }, path)


def evaluate_split(model, loaders, split, args, spec):
    char_level = char_level_scoring(args.task, spec)
    return evaluate(model, loaders[split], args.task, split, char_level, args.symmetric_punct, args.num_beams,
                    args.max_new_tokens, args.progress)


def report_results(results, output_dir) -> dict:
    write_json(output_dir / "results.json", results)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return results


def run_training(args):
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(args.seed)
    spec = get_dataset_spec(args.dataset, args.dataset_config, args.labels_dir, args.pose_dir, args.rgb_dir)
    model = build_model(args, spec)
    loaders = build_loaders(args, spec, ("train", "dev", "test"))
    if len(loaders["train"]) == 0:
        sys.exit(f"train split of {args.dataset} has fewer samples than --batch-size {args.batch_size}")
    betas = tuple(args.opt_betas) if args.opt_betas else (0.9, 0.999)
    optimizer = build_optimizer(model, args.lr, args.weight_decay, args.opt_eps, betas)
    scheduler = build_scheduler(optimizer, args.epochs, len(loaders["train"]), args.gradient_accumulation_steps,
                                args.warmup_epochs)
    log = RunLogger(output_dir)
    write_json(output_dir / "args.json", vars(args))
    best, state = None, {"micro_step": 0, "optimizer_step": 0, "skipped": 0}
    for epoch in range(args.epochs):
        loaders["train"].dataset.set_epoch(epoch)
        loaders["train"].generator.manual_seed(args.seed + epoch)
        train_stats = train_one_epoch(model, loaders["train"], optimizer, scheduler, epoch, args, state, log)
        epoch_row = {"train_loss": train_stats["loss"], "samples_per_s": train_stats["samples_per_s"]}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            dev = evaluate_split(model, loaders, "dev", args, spec)
            epoch_row.update({f"dev_{key}": value for key, value in dev.metrics.items()})
            print(f"epoch {epoch}: train loss {train_stats['loss']:.4f}, dev {json.dumps(dev.metrics)}")
            if best is None or is_better(args.task, dev.metrics, best.metrics):
                best = dev
                best.save(output_dir, "dev")
                save_checkpoint(model, output_dir / "best_checkpoint.pth", args, epoch, dev.metrics)
        save_checkpoint(model, output_dir / "checkpoint.pth", args, epoch)
        log.scalars("epoch", epoch, **epoch_row)
    log.close()
    # The best checkpoint's dev files are written already; evaluate it on test.
    load_model_weights(model, output_dir / "best_checkpoint.pth")
    test = evaluate_split(model, loaders, "test", args, spec)
    test.save(output_dir, "test")
    return report_results({"dev": best.metrics, "test": test.metrics}, output_dir)


def run_evaluation(args):
    if not args.finetune:
        sys.exit("--eval needs --finetune CHECKPOINT")
    seed_everything(args.seed)
    spec = get_dataset_spec(args.dataset, args.dataset_config, args.labels_dir, args.pose_dir, args.rgb_dir)
    model = build_model(args, spec)
    loaders = build_loaders(args, spec, ("dev", "test"))
    results = {}
    for split in ("dev", "test"):
        result = evaluate_split(model, loaders, split, args, spec)
        result.save(Path(args.output_dir), split)
        results[split] = result.metrics
    return report_results(results, Path(args.output_dir))


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    return run_evaluation(args) if args.eval else run_training(args)


if __name__ == "__main__":
    main()
