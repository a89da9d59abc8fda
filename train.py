"""Train Uni-Sign: stage 1 pose pre-training, stage 2 RGB-pose pre-training, stage 3 fine-tuning.

One generative objective everywhere; the task only chooses the target (SLT: sentence, CSLR: glosses,
ISLR: word) and the metric that picks the best checkpoint. Flag names follow the official code.

  python train.py --dataset CSL_News --task SLT --output_dir out/stage1            # stage 1
  python train.py --dataset CSL_Daily --task SLT --finetune out/stage1/best_checkpoint.pth \\
      --batch-size 8 --gradient-accumulation-steps 1 --output_dir out/stage3          # stage 3
"""
import argparse
import json
import os
import random
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from datasets.formats import DEFAULT_MAX_FRAMES, DataFormatError
from datasets.preflight import SplitData, check_splits, format_issues, write_issues
from datasets.registry import get_dataset_spec, load_split
from datasets.rgb import RGBSampling
from datasets.samplers import LengthGroupedBatchSampler, ResumableRandomBatchSampler, frame_counts
from datasets.sign_dataset import SignDataset, collate_samples
from datasets.tasks import TASK_NAMES, get_task
from engine import (AUTOCAST_DTYPES, DeepSpeedStepper, NonFiniteError, NonFiniteParametersError, PlainStepper,
                    build_optimizer, build_scheduler, evaluate, train_one_epoch, write_json)
from models.checkpoint_layout import has_rgb_weights, load_model_weights
from models.efficientnet import TORCHVISION_B0_FILES, find_torchvision_weights, torchvision_cache
from models.hand_fusion import RGBConfig
from models.language_model import DEFAULT_LM_PATH
from models.pose_encoder import POSE_PRESETS, SUB_POSE_GROUPS, PoseEncoderConfig
from models.pretrained import ModelCard
from models.sync_batchnorm import convert_sync_batchnorm, count_batchnorms
from models.uni_sign import UniSign, UniSignConfig
from runs.errors import UsageError, user_errors
from runs.fingerprint import fingerprint_differences, run_fingerprint
from runs.folder import RunFolderError, check_writable, owned_run_folder
from utils.checkpoint import FORMAT, atomic_save, load_checkpoint_file, nonfinite_keys
from utils.logger import RunLogger
from utils.training_state import (capture_rng, load_resume_state, restore_rng, save_training_state,
                                  set_aside_later_states, state_dir, state_step)

DEFAULT_ACCUMULATION = 8  # the official default of --gradient-accumulation-steps
EVAL_OUTPUT_BYTES = 10**6  # free disk an evaluation needs for its prediction, reference and metric files


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="CSL_Daily",
                       help="registry name (config/datasets.json); several comma-separated names mix corpora")
    group.add_argument("--dataset-ratios", default="",
                       help="share of each --dataset in a training epoch, e.g. 0.7,0.3 (default: their sizes)")
    group.add_argument("--data-fraction", type=float, default=1.0,
                       help="train on a seeded random fraction of the training set (paper Table 8)")
    group.add_argument("--length-grouped", action="store_true",
                       help="batch samples of similar frame counts together (less padding; not official)")
    group.add_argument("--task", default="SLT", choices=TASK_NAMES)
    group.add_argument("--dataset-config", default=None, help="registry file (default config/datasets.json)")
    group.add_argument("--missing-dev", default="holdout", choices=["holdout", "test"],
                       help="datasets without a dev split (How2Sign): hold out the end of train (default) or "
                            "select on test as the official code does (test-selected numbers)")
    group.add_argument("--labels-dir", default=None, help="folder holding the split label files (overrides config)")
    group.add_argument("--pose-dir", default=None, help="pose folder (overrides config; may contain {split})")
    group.add_argument("--rgb-dir", default=None, help="video folder (overrides config; may contain {split})")
    group.add_argument("--max_length", type=int, default=256, help="max pose frames per sample (random subset above)")
    group.add_argument("--skip-policy", default="error", choices=["error", "skip"],
                       help="samples with problems (found by the data check before training, or unreadable "
                            "later): stop with an error (default) or log, count and skip them")
    group.add_argument("--skip-data-check", action="store_true",
                       help="do not check every split's samples before training (the check is cached per file)")
    group.add_argument("--max-frames", type=int, default=DEFAULT_MAX_FRAMES,
                       help="refuse pose files with more frames than this, before reading them (default %(default)s)")
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
                       help="run both hands as one batch through their shared encoder, so training normalises "
                            "them with the BatchNorm statistics evaluation uses (official: off, per-hand batch "
                            "statistics in training; docs/official_differences.md 3a). Recommended")
    group.add_argument("--label_smoothing", type=float, default=0.2)
    group.add_argument("--rgb_support", action="store_true", help="RGB hand branch with PGF fusion (stage 2 on)")
    group.add_argument("--rgb-sample-ratio", type=float, default=0.1,
                       help="P_samp: share of eligible frames whose hand crops are used (paper Table 9)")
    group.add_argument("--sampling-rule", default="official", choices=["official", "paper"],
                       help="score-aware sampling: the official code's rule or the paper's pseudo-code")
    group.add_argument("--fusion", default="da", choices=["da", "ca"],
                       help="PGF: cross + deformable attention (da) or cross-attention only (ca, Table 10)")
    group.add_argument("--gate-init", default="trainable", choices=["official", "trainable"],
                       help="fusion gate: both start at exactly 0 (stage 2 = stage 1 at init); the official one "
                            "never receives a gradient, so its RGB branch never trains (docs/rgb_branch.md)")
    group.add_argument("--efficientnet-weights", default="",
                       help="torchvision ImageNet EfficientNet-B0 .pth file (default: looked up in torchvision's "
                            "cache, $TORCH_HOME/hub/checkpoints)")
    group.add_argument("--efficientnet-init", default="imagenet", choices=["imagenet", "random"],
                       help="a new RGB branch starts from ImageNet weights (official, required) or, on purpose, "
                            "from a random CNN (synthetic runs)")
    group.add_argument("--official-crop", action="store_true",
                       help="reproduce the official crop wrap-around at negative box coordinates")
    group.add_argument("--crop-cache", default="", help="folder caching decoded hand crops across epochs")
    group.add_argument("--finetune", default="", help="initial weights: our checkpoint or an official one")
    group.add_argument("--partial-load", action="store_true", help="allow missing/unexpected keys in --finetune")

    group = parser.add_argument_group("optimisation")
    group.add_argument("--batch-size", type=int, default=16)
    group.add_argument("--gradient-accumulation-steps", type=int, default=None,
                       help=f"micro-batches per optimizer step (default {DEFAULT_ACCUMULATION}, or derived from "
                            f"--global-batch-size)")
    group.add_argument("--global-batch-size", type=int, default=0,
                       help="samples per optimizer step over all processes; the accumulation is derived from it, "
                            "the process count and --batch-size (the stage scripts pass the official 512/128/32)")
    group.add_argument("--sync-bn", default="auto", choices=["auto", "on", "off"],
                       help="synchronise BatchNorm statistics across processes (auto: on with more than one "
                            "process, as the official launch; CPU processes use models/sync_batchnorm.py)")
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
    group.add_argument("--output_dir", default="out/run",
                       help="the run's folder; one that holds a run needs --resume or --overwrite")
    group.add_argument("--overwrite", action="store_true",
                       help="start a new run in an --output_dir that holds one (the old run is moved aside, "
                            "not deleted)")
    group.add_argument("--eval", action="store_true", help="only evaluate --finetune on dev and test")
    group.add_argument("--num-beams", type=int, default=4)
    group.add_argument("--max-new-tokens", type=int, default=100)
    group.add_argument("--symmetric-punct", action="store_true",
                       help="CSL-Daily SLT: fold full-width punctuation in predictions and references alike "
                            "(official: references only, see docs/evaluation.md)")
    group.add_argument("--eval-every", type=int, default=1, help="evaluate dev every N epochs")
    group.add_argument("--resume", default="", help="continue a run exactly: its output_dir or a checkpoints/step-*.pth")
    group.add_argument("--allow-changed-settings", action="store_true",
                       help="--resume even though settings, model or data differ from the state's (named in the error)")
    group.add_argument("--save-every-steps", type=int, default=0,
                       help="also write a resumable training state every N optimizer steps (0: once per epoch)")
    group.add_argument("--keep-checkpoints", type=int, default=2, help="resumable training states to keep")
    group.add_argument("--nonfinite", default="stop", choices=["stop", "skip"],
                       help="on a NaN/inf loss: save a debug checkpoint and stop (default), or skip and count the batch")

    group = parser.add_argument_group("scale-out (DeepSpeed)")
    group.add_argument("--deepspeed", action="store_true",
                       help="train with the DeepSpeed engine (implied when started by the deepspeed launcher)")
    group.add_argument("--zero_stage", type=int, default=2, choices=[0, 1, 2], help="DeepSpeed ZeRO stage")
    group.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                       help="DeepSpeed precision (official: bf16; fp16 is not offered: the official fp16 path crashes)")
    group.add_argument("--local_rank", type=int, default=-1, help="set by the deepspeed launcher")
    group.add_argument("--autocast", default="off", choices=list(AUTOCAST_DTYPES),
                       help="bf16: run forward passes (training and evaluation) under torch.autocast in bfloat16, "
                            "weights and optimizer in fp32, on CPU or GPU; faster, not the official numerics "
                            "(docs/performance.md). Default: %(default)s")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.add_argument("--debug", action="store_true", help="show the traceback of data and usage errors too")
    return parser


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def dataset_specs(args) -> list:
    names = [name.strip() for name in args.dataset.split(",") if name.strip()]
    specs = [get_dataset_spec(name, args.dataset_config, args.labels_dir, args.pose_dir, args.rgb_dir)
             for name in names]
    if args.missing_dev == "test":
        for spec in specs:
            spec.select_on_test()
    return specs


def resolve_accumulation(args, world_size) -> int:
    """Micro-batches per optimizer step: --gradient-accumulation-steps, or derived from --global-batch-size."""
    if not args.global_batch_size:
        return args.gradient_accumulation_steps or DEFAULT_ACCUMULATION
    per_step = args.batch_size * world_size
    if args.global_batch_size % per_step:
        raise UsageError(f"--global-batch-size {args.global_batch_size} is not a multiple of --batch-size "
                         f"{args.batch_size} x {world_size} process(es) = {per_step}; change --batch-size "
                         f"(BATCH_SIZE) or --global-batch-size (GLOBAL_BATCH)")
    accumulation = args.global_batch_size // per_step
    if args.gradient_accumulation_steps not in (None, accumulation):
        raise UsageError(f"--gradient-accumulation-steps {args.gradient_accumulation_steps} contradicts "
                         f"--global-batch-size {args.global_batch_size} ({per_step} per step needs {accumulation})")
    return accumulation


def rgb_config(args, new_branch=True) -> RGBConfig | None:
    """The RGB branch settings; a new branch (not loaded from --finetune) gets the ImageNet weights file."""
    if not args.rgb_support:
        return None
    weights = imagenet_weights(args) if new_branch else ""
    return RGBConfig(fusion=args.fusion, gate_init=args.gate_init, backbone_weights=weights)


def rgb_dataset_settings(args, spec, split) -> dict | None:
    """SignDataset's `rgb` for `split`: videos, crop cache and the frame sampling (None for pose-only runs)."""
    if not args.rgb_support:
        return None
    return {"video_dir": spec.rgb_dir_for(split), "cache_dir": args.crop_cache,
            **RGBSampling.from_flags(vars(args)).to_dict()}


def imagenet_weights(args) -> str:
    """The EfficientNet-B0 ImageNet file a new RGB branch starts from ('' for --efficientnet-init random)."""
    if args.efficientnet_init == "random":
        return ""
    if args.efficientnet_weights:
        return args.efficientnet_weights
    found = find_torchvision_weights()
    if found is None:
        raise UsageError(
            "the RGB branch starts from ImageNet EfficientNet-B0 weights (paper 4.1, as the official stage 2): put "
            f"torchvision's {TORCHVISION_B0_FILES[0]} in {torchvision_cache()} or pass --efficientnet-weights FILE; "
            "--efficientnet-init random starts from a random CNN on purpose"
        )
    return str(found)


def checkpoint_has_rgb(checkpoint) -> bool:
    return checkpoint is not None and has_rgb_weights(checkpoint["model"])


def model_config(args, spec, finetune_checkpoint) -> UniSignConfig:
    """Architecture from the --finetune checkpoint when it records one, else from the flags."""
    new_rgb_branch = not checkpoint_has_rgb(finetune_checkpoint)
    if finetune_checkpoint is not None and "config" in finetune_checkpoint:
        config = UniSignConfig.from_dict(finetune_checkpoint["config"])
        config.lang, config.label_smoothing = spec.prompt_language(), args.label_smoothing
        config.pose.batch_independent, config.pose.batch_hands = args.batch_independent, args.batch_hands
        config.rgb = rgb_config(args, new_rgb_branch)
        return config
    pose = PoseEncoderConfig(
        parts=SUB_POSE_GROUPS[args.pose_parts],
        batch_independent=args.batch_independent,
        batch_hands=args.batch_hands,
        **POSE_PRESETS[args.pose_preset],
    )
    return UniSignConfig(lang=spec.prompt_language(), label_smoothing=args.label_smoothing, num_beams=args.num_beams,
                         max_new_tokens=args.max_new_tokens, pose=pose, rgb=rgb_config(args, new_rgb_branch))


def build_model(args, spec) -> UniSign:
    """Build from flags (or the --finetune checkpoint's config) and load --finetune.

    A pose-only checkpoint (stage 1) loads into an RGB-pose model (stage 2): only the RGB branch is new.
    """
    finetune = load_checkpoint_file(args.finetune) if args.finetune else None
    model = UniSign.from_lm_path(model_config(args, spec, finetune), args.lm_path)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    if finetune is not None:
        adds_rgb = args.rgb_support and not checkpoint_has_rgb(finetune)
        report = load_model_weights(model, args.finetune, partial=args.partial_load or adds_rgb, checkpoint=finetune)
        surprises = [key for key in report["missing"] if "hand_fusion" not in key] + report["unexpected"]
        if adds_rgb and surprises and not args.partial_load:
            raise UsageError(f"{args.finetune}: keys outside the new RGB branch do not fit: {surprises[:5]}")
        if report["missing"] or report["unexpected"]:
            print(f"partial load: {len(report['missing'])} missing, {len(report['unexpected'])} unexpected keys")
    return model


def split_dataset(args, spec, split) -> SignDataset:
    return SignDataset(load_split(spec, split), spec.pose_dir_for(split), args.task, args.max_length, args.seed,
                       args.skip_policy, rgb_dataset_settings(args, spec, split), spec.prompt_language(),
                       args.max_frames)


def training_set(args, specs) -> Dataset:
    """The training set: one corpus, or several mixed by --dataset-ratios; optionally a --data-fraction of it."""
    corpora = [split_dataset(args, spec, "train") for spec in specs]
    rng = np.random.default_rng(args.seed)
    total = sum(len(corpus) for corpus in corpora)
    ratios = [float(r) for r in args.dataset_ratios.split(",")] if args.dataset_ratios else None
    if ratios is not None and len(ratios) != len(corpora):
        raise UsageError(f"--dataset-ratios has {len(ratios)} values for {len(corpora)} datasets")
    parts = []
    for index, corpus in enumerate(corpora):
        # Each corpus contributes ratio * total samples per epoch (repeating a small corpus, subsampling a big one).
        count = len(corpus) if ratios is None else int(round(ratios[index] / sum(ratios) * total))
        count = int(round(count * args.data_fraction))
        order = np.concatenate([rng.permutation(len(corpus)) for _ in range(-(-count // len(corpus)))])[:count]
        parts.append(corpus if count == len(corpus) and args.data_fraction == 1 else Subset(corpus, order.tolist()))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def set_epoch(dataset, epoch):
    """Propagate the epoch (it seeds frame sub-sampling) through Subset / ConcatDataset wrappers."""
    if isinstance(dataset, ConcatDataset):
        for part in dataset.datasets:
            set_epoch(part, epoch)
    elif isinstance(dataset, Subset):
        set_epoch(dataset.dataset, epoch)
    else:
        dataset.set_epoch(epoch)


def train_sampler(args, dataset, world_size, rank):
    if args.length_grouped:
        lengths = [length for part in _leaves(dataset) for length in _part_lengths(args, part)]
        return LengthGroupedBatchSampler(lengths, args.batch_size, True, args.seed, True, world_size, rank)
    return ResumableRandomBatchSampler(len(dataset), args.batch_size, True, args.seed, True, world_size, rank)


def _leaves(dataset):
    return dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]


def _part_lengths(args, part):
    base = part.dataset if isinstance(part, Subset) else part
    lengths = frame_counts(base.entries, base.pose_dir, args.max_length)
    return [lengths[index] for index in part.indices] if isinstance(part, Subset) else lengths


def eval_loader(args, specs, split) -> DataLoader:
    datasets = [split_dataset(args, spec, split) for spec in specs]
    dataset = datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=False, collate_fn=collate_samples,
                      num_workers=args.num_workers, generator=torch.Generator().manual_seed(args.seed))


def checkpoint_payload(model, args, epoch, metrics=None) -> dict:
    return {
        "format": FORMAT,
        "model": model.state_dict(),
        "config": model.config.to_dict(),
        "args": {key: value for key, value in vars(args).items() if isinstance(value, (str, int, float, bool))},
        "epoch": epoch,
        "metrics": metrics or {},
    }


def evaluate_split(model, loader, split, args, spec):
    return evaluate(model, loader, args.task, split, spec.char_level_scoring(args.task), args.symmetric_punct,
                    args.num_beams, args.max_new_tokens, args.progress, args.autocast)


def report_results(results, output_dir) -> dict:
    write_json(output_dir / "results.json", results)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return results


def split_data(args, specs, split, dataset) -> list:
    """SplitData of every SignDataset inside `dataset` (Subset / ConcatDataset wrappers unwrapped)."""
    leaves = [part.dataset if isinstance(part, Subset) else part for part in _leaves(dataset)]
    return [SplitData(split, spec.labels.get(split) or spec.labels["train"], leaf) for spec, leaf in zip(specs, leaves)]


def check_run_data(args, splits, tokenizer, output_dir, report=True):
    """The data check before training (datasets/preflight.py): stop on problems, or skip their samples.

    Warnings (coordinates outside [0, 1]) are printed once per file; every problem and warning is also
    written to output_dir/data_problems.txt, data_warnings.txt."""
    result = check_splits(splits, tokenizer, args.max_frames)
    if report:
        print(f"data check: {result.samples} samples in {len(splits)} split files, {len(result.problems)} problems, "
              f"{len(result.warnings)} warnings ({result.seconds:.1f} s)", file=sys.stderr)
        for line in format_issues(result.warnings):
            print(f"warning: {line}", file=sys.stderr)
        for name, issues in (("data_warnings.txt", result.warnings), ("data_problems.txt", result.problems)):
            if issues:
                write_issues(output_dir / name, issues)
    if not result.problems:
        return
    fatal = args.skip_policy == "error" or any(not issue.sample for _, issue in result.problems)
    if report:
        for line in format_issues(result.problems):
            print(("" if fatal else "skipping: ") + line, file=sys.stderr)
    if fatal:
        first = result.problems[0]
        raise DataFormatError(
            f"data check: {len(result.problems)} problem(s) before training, nothing was trained (all in "
            f"{output_dir / 'data_problems.txt'}); first: [{first[0]}] {first[1].line()}"
        )
    for data in splits:
        data.dataset.exclude(result.bad_samples.get(data.split, set()))


def checkpoint_bytes(model, keep) -> int:
    """Disk a run of `model` writes: `keep` states (weights + 2 AdamW moments) and 2 weight-only checkpoints."""
    weights = sum(tensor.numel() * tensor.element_size() for tensor in model.state_dict().values())
    return weights * (3 * keep + 2)


def is_main_process() -> bool:
    """Rank 0 (the deepspeed launcher sets RANK before the process starts)."""
    return int(os.environ.get("RANK", "0")) == 0


class Run:
    """One training run: model, data, optimiser (plain or DeepSpeed), progress, checkpoints, logs."""

    def __init__(self, args, command=""):
        self.args = args
        self.command = command  # the command line that started the run, for the model card
        self.output_dir = Path(args.output_dir)
        self.distributed = args.deepspeed or "LOCAL_RANK" in os.environ or args.local_rank >= 0
        if self.distributed:
            import deepspeed

            deepspeed.init_distributed()
        self.rank = torch.distributed.get_rank() if self.distributed else 0
        self.world_size = torch.distributed.get_world_size() if self.distributed else 1
        args.gradient_accumulation_steps = resolve_accumulation(args, self.world_size)
        seed_everything(args.seed)
        self.specs = dataset_specs(args)
        self.model = self.make_model()
        if args.sync_bn == "on" or (args.sync_bn == "auto" and self.world_size > 1):
            self.model = self.synchronise_batchnorm(self.model)
        if self.rank == 0:
            check_writable(self.output_dir, checkpoint_bytes(self.model, args.keep_checkpoints))
        train = training_set(args, self.specs)
        self.eval_loaders = {split: eval_loader(args, self.specs, split) for split in ("dev", "test")}
        if not args.skip_data_check:
            splits = split_data(args, self.specs, "train", train)
            splits += [item for split, loader in self.eval_loaders.items()
                       for item in split_data(args, self.specs, split, loader.dataset)]
            check_run_data(args, splits, self.uni_sign().tokenizer, self.output_dir, report=self.rank == 0)
        self.sampler = train_sampler(args, train, self.world_size, self.rank)
        # An own generator: creating a loader iterator must not draw from the global RNG (exact resume).
        self.train_loader = DataLoader(train, batch_sampler=self.sampler, collate_fn=collate_samples,
                                       num_workers=args.num_workers, generator=torch.Generator().manual_seed(args.seed))
        if len(self.sampler) == 0:
            raise UsageError(f"train split of {args.dataset} has fewer samples than --batch-size {args.batch_size} "
                             f"per process")
        if self.rank == 0:
            print(f"global batch {args.batch_size * args.gradient_accumulation_steps * self.world_size} = "
                  f"{args.batch_size} per process x {args.gradient_accumulation_steps} accumulation x "
                  f"{self.world_size} process(es); {len(self.sampler) // args.gradient_accumulation_steps} optimizer "
                  f"steps per epoch", file=sys.stderr)
        self.stepper = self._stepper()
        self.progress = {"epoch": 0, "batch": 0, "optimizer_step": 0, "skipped": 0, "nonfinite": 0,
                         "dev_pending": False}
        self.best = None  # dev metrics of the best epoch
        self.fingerprint = run_fingerprint(vars(args), self.uni_sign().config.to_dict(), label_files(self.specs))
        self.log = RunLogger(self.output_dir) if self.rank == 0 else None

    # ------------------------------------------------------------------ what is trained (train_task_head.py overrides)
    def make_model(self):
        """The model to train: Uni-Sign built from the flags (or the --finetune checkpoint's config)."""
        return build_model(self.args, self.specs[0])

    def synchronise_batchnorm(self, model):
        """BatchNorm statistics over all processes (the official launch converts to SyncBatchNorm)."""
        if self.world_size == 1:
            print("note: --sync-bn on with one process changes nothing", file=sys.stderr)
            return model
        converted = convert_sync_batchnorm(model)
        if self.rank == 0:
            print(f"SyncBatchNorm: {count_batchnorms(converted)} BatchNorm modules synchronised over "
                  f"{self.world_size} processes", file=sys.stderr)
        return converted

    def uni_sign(self) -> UniSign:
        """The Uni-Sign model being trained (train_task_head.py: the head's Uni-Sign backbone)."""
        return getattr(self.model, "backbone", self.model)

    def payload(self, epoch, metrics=None) -> dict:
        """The weights and what rebuilds the model: best_checkpoint.pth, checkpoint.pth, training states."""
        return checkpoint_payload(self.model, self.args, epoch, metrics)

    def evaluate(self, split):
        return evaluate_split(self.model, self.eval_loaders[split], split, self.args, self.specs[0])

    def load_best(self):
        load_model_weights(self.model, self.output_dir / "best_checkpoint.pth")

    def _stepper(self):
        args = self.args
        betas = tuple(args.opt_betas) if args.opt_betas else (0.9, 0.999)
        optimizer = build_optimizer(self.model, args.lr, args.weight_decay, args.opt_eps, betas)
        scheduler = build_scheduler(optimizer, args.epochs, len(self.sampler), args.gradient_accumulation_steps,
                                    args.warmup_epochs)
        if not self.distributed:
            return PlainStepper(self.model, optimizer, scheduler, args.gradient_accumulation_steps,
                                args.gradient_clipping)
        import deepspeed

        engine, _, _, _ = deepspeed.initialize(model=self.model, optimizer=optimizer, lr_scheduler=scheduler,
                                               config=deepspeed_config(args))
        return DeepSpeedStepper(engine)

    # ------------------------------------------------------------------ checkpoints
    def finite_payload(self, epoch, metrics=None) -> dict:
        """payload(), refused (NonFiniteParametersError) when any weight is NaN/inf: such weights are never saved."""
        payload = self.payload(epoch, metrics)
        bad = nonfinite_keys(payload["model"])
        if bad:
            raise NonFiniteParametersError(f"weights '{bad[0]}' ({len(bad)} tensors) are NaN/inf at optimizer step "
                                           f"{self.progress['optimizer_step']}; not saved")
        return payload

    def save_state(self, progress):
        """A resumable training state (every rank holds the same weights under ZeRO <= 2; rank 0 writes)."""
        if self.distributed:
            self.stepper.model.save_checkpoint(str(self.output_dir / "deepspeed"), tag=f"step-{progress['optimizer_step']:08d}",
                                               client_state=self._client_state(progress))
            return
        payload = {**self.finite_payload(progress["epoch"]), **self._client_state(progress),
                   "optimizer": self.stepper.optimizer.state_dict(), "scheduler": self.stepper.scheduler.state_dict()}
        save_training_state(self.output_dir, payload, progress["optimizer_step"], self.args.keep_checkpoints)

    def _client_state(self, progress):
        return {"progress": dict(progress), "sampler": self.sampler.state_dict(progress["batch"]),
                "rng": capture_rng(), "best": self.best, "micro_step": self.stepper.micro_step,
                "fingerprint": self.fingerprint}

    def resume(self, path):
        if self.distributed:
            _, state = self.stepper.model.load_checkpoint(str(Path(path) / "deepspeed"))
            if state is None:
                raise RunFolderError(f"{path}: no DeepSpeed checkpoint to resume from")
            self.check_fingerprint(state, Path(path) / "deepspeed")
        else:
            state, state_path = load_resume_state(path)
            self.check_fingerprint(state, state_path)
            self.model.load_state_dict(state["model"])
            self.stepper.optimizer.load_state_dict(state["optimizer"])
            self.stepper.scheduler.load_state_dict(state["scheduler"])
            if state_path.parent.resolve() == state_dir(self.output_dir).resolve():
                set_aside_later_states(self.output_dir, state_step(state_path))
        self.progress, self.best = {"dev_pending": False, **state["progress"]}, state["best"]
        self.stepper.micro_step = state["micro_step"]
        self.restore_sampler(state["sampler"], path)
        restore_rng(state["rng"])
        print(f"resumed at epoch {self.progress['epoch']}, batch {self.progress['batch']}, "
              f"optimizer step {self.progress['optimizer_step']}")

    def restore_sampler(self, sampler_state, source):
        """The batch position of the state; with other data (--allow-changed-settings) only at an epoch boundary."""
        try:
            self.sampler.load_state_dict(sampler_state)
        except ValueError as error:
            if self.args.allow_changed_settings and self.progress["batch"] == 0:
                print(f"warning: {error}; continuing at the start of epoch {self.progress['epoch']}", file=sys.stderr)
                return
            raise RunFolderError(f"--resume {source}: {error}; a changed data set can only be resumed at an "
                                 f"epoch boundary, with --allow-changed-settings") from error

    def check_fingerprint(self, state, source):
        """Refuse a state made with other settings, model or data (unless --allow-changed-settings)."""
        if "fingerprint" not in state:
            print(f"warning: {source} records no run settings (an older version wrote it); they are not compared",
                  file=sys.stderr)
            return
        differences = fingerprint_differences(state["fingerprint"], self.fingerprint)
        if differences and not self.args.allow_changed_settings:
            raise RunFolderError(f"--resume {source}: the run was made with other settings: {'; '.join(differences)}. "
                                 f"Resume with the run's settings, or pass --allow-changed-settings")
        for difference in differences:
            print(f"warning: resuming with a changed setting: {difference}", file=sys.stderr)

    def save_debug_checkpoint(self, error) -> str:
        """Where the model at the failure was saved, or why it was not (non-finite weights are never saved)."""
        path = self.output_dir / f"debug_nonfinite_step{self.progress['optimizer_step']:08d}.pth"
        try:
            atomic_save({**self.finite_payload(self.progress["epoch"]), "error": str(error)}, path)
        except NonFiniteParametersError as refused:
            return f"{refused}; the last training states are in {state_dir(self.output_dir)}"
        return f"model saved for debugging to {path}"

    # ------------------------------------------------------------------ loop
    def train(self) -> dict:
        args = self.args
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.output_dir / "args.json", vars(args))
        if args.resume:
            self.resume(args.resume)
            if self.progress["dev_pending"]:  # the state was written, its dev evaluation never ended
                self.evaluate_dev(self.progress["epoch"] - 1, {})
        every = args.save_every_steps
        on_step = (lambda progress: self.save_state(progress) if progress["optimizer_step"] % every == 0 else None) \
            if every > 0 else None
        for epoch in range(self.progress["epoch"], args.epochs):
            self.progress["epoch"] = epoch
            set_epoch(self.train_loader.dataset, epoch)
            self.sampler.set_epoch(epoch, start_batch=self.progress["batch"])
            try:
                stats = train_one_epoch(self.stepper, self.train_loader, epoch, args, self.progress, self.log, on_step)
            except NonFiniteError as error:
                raise NonFiniteError(f"{error}\n{self.save_debug_checkpoint(error)}") from error
            self.progress.update(epoch=epoch + 1, batch=0)
            self.end_of_epoch(epoch, stats)
        return self.finish()

    def end_of_epoch(self, epoch, stats):
        """Save the training state first (an evaluation failure loses no epoch), then evaluate dev, save again."""
        args = self.args
        row = {"train_loss": stats["loss"], "samples_per_s": stats["samples_per_s"],
               "skipped": self.progress["skipped"], "nonfinite": self.progress["nonfinite"]}
        self.progress["dev_pending"] = (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs
        self.save_state(self.progress)
        if self.progress["dev_pending"]:
            self.evaluate_dev(epoch, row)
            self.save_state(self.progress)
        if self.rank == 0:
            atomic_save(self.finite_payload(epoch), self.output_dir / "checkpoint.pth")
            self.log.scalars("epoch", epoch, **row)
        if self.distributed:
            torch.distributed.barrier()

    def evaluate_dev(self, epoch, row):
        """Dev metrics of the current weights (rank 0); a new best writes best_checkpoint.pth and the dev files."""
        self.progress["dev_pending"] = False
        if self.rank != 0:
            return
        dev = self.evaluate("dev")
        row.update({f"dev_{key}": value for key, value in dev.metrics.items()})
        print(f"epoch {epoch}: dev {json.dumps(dev.metrics)}")
        if self.best is None or get_task(self.args.task).is_better(dev.metrics, self.best):
            self.best = dev.metrics
            dev.save(self.output_dir, "dev")
            atomic_save(self.finite_payload(epoch, dev.metrics), self.output_dir / "best_checkpoint.pth")

    def finish(self) -> dict:
        """Evaluate the best checkpoint on test (its dev files are already written)."""
        if self.rank != 0:
            return {}
        self.log.close()
        self.load_best()
        test = self.evaluate("test")
        test.save(self.output_dir, "test")
        results = {"dev": self.best, "test": test.metrics}
        self.save_best_model(results)
        return report_results(results, self.output_dir)

    def save_best_model(self, results):
        """OUTPUT_DIR/best: the best weights as a directory `UniSign.from_pretrained` loads, with a model card."""
        sampling = RGBSampling.from_flags(vars(self.args)).to_dict() if self.args.rgb_support else None
        decoding = {"num_beams": self.args.num_beams, "max_new_tokens": self.args.max_new_tokens}
        card = ModelCard(task=self.args.task, dataset=self.args.dataset, metrics=results,
                         training_command=self.command, max_length=self.args.max_length, rgb_sampling=sampling,
                         decoding=decoding)
        self.model.save_pretrained(self.output_dir / "best", card)


def label_files(specs) -> dict:
    """{'<dataset>/<split>': label file} of every configured split (the run fingerprint's data)."""
    return {f"{spec.name}/{split}": path for spec in specs for split, path in spec.labels.items()}


def deepspeed_config(args) -> dict:
    return {
        "train_micro_batch_size_per_gpu": args.batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "gradient_clipping": args.gradient_clipping,
        "zero_optimization": {"stage": args.zero_stage},
        "bf16": {"enabled": args.dtype == "bf16"},
        "steps_per_print": 10**9,
    }


def run_training(args, run_class=None, command=""):
    """Train in a folder this run owns (locked, claimed, checked); returns the results."""
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in its folder and --overwrite starts a new one: pass one of them")
    with owned_run_folder(args.output_dir, True, args.resume or None, args.overwrite, is_main_process()):
        return (run_class or Run)(args, command).train()


def run_evaluation(args):
    if not args.finetune:
        raise UsageError("--eval needs --finetune CHECKPOINT")
    with owned_run_folder(args.output_dir, training=False, is_main=is_main_process(), required_bytes=EVAL_OUTPUT_BYTES):
        seed_everything(args.seed)
        specs = dataset_specs(args)
        model = build_model(args, specs[0])
        loaders = {split: eval_loader(args, specs, split) for split in ("dev", "test")}
        output_dir = Path(args.output_dir)
        if not args.skip_data_check:
            splits = [item for split, loader in loaders.items()
                      for item in split_data(args, specs, split, loader.dataset)]
            check_run_data(args, splits, model.tokenizer, output_dir)
        results = {}
        for split, loader in loaders.items():
            result = evaluate_split(model, loader, split, args, specs[0])
            result.save(output_dir, split)
            results[split] = result.metrics
        return report_results(results, output_dir)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    with user_errors(args.debug):
        if args.eval:
            return run_evaluation(args)
        return run_training(args, command=shlex.join(["python", "train.py", *argv]))


if __name__ == "__main__":
    main()
