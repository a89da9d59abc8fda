"""From the command line's flags to the objects of a run: dataset specs, datasets, loaders, the model.

The only place (with runs/training.py) where the argparse namespace meets the library: datasets/ and
models/ take plain values and config objects.
"""
import os
import random
import sys

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from datasets.formats import DataFormatError
from datasets.preflight import SplitData, check_splits, format_issues, write_issues
from datasets.registry import get_dataset_spec, load_split
from datasets.rgb import RGBSampling
from datasets.samplers import LengthGroupedBatchSampler, ResumableRandomBatchSampler, frame_counts
from datasets.sign_dataset import SignDataset, batch_collator, target_text
from datasets.tasks import get_task
from models.checkpoint_layout import has_rgb_weights, load_model_weights
from models.efficientnet import TORCHVISION_B0_FILES, find_torchvision_weights, torchvision_cache
from models.hand_fusion import RGBConfig
from models.pose_encoder import POSE_PRESETS, SUB_POSE_GROUPS, PoseEncoderConfig
from models.pose_transfer import describe_transfer, load_pose_encoder
from models.task_heads import Vocabulary
from models.uni_sign import UniSign, UniSignConfig
from models.vocabulary import corpus_token_ids
from runs.errors import UsageError
from utils.checkpoint import FORMAT, load_checkpoint_file


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
    if args.init_pose_encoder:
        initialise_pose_encoder(model.pose_encoder, args.init_pose_encoder)
    model.loss_chunk_tokens = args.loss_chunk_tokens
    model.packed_decoding = args.packed_decoding == "on"
    if args.prune_vocabulary and model.config.vocabulary is None:
        kept = corpus_token_ids(model.tokenizer, training_texts(args, dataset_specs(args)) + prompt_texts(model))
        print(f"vocabulary pruned to the training targets' tokens: {len(kept)} of {len(model.tokenizer)}",
              file=sys.stderr)
        model.prune_vocabulary(kept)
    elif model.config.vocabulary is not None and not args.eval:  # training a pruned checkpoint on new targets
        warn_unknown_target_tokens(model, training_texts(args, dataset_specs(args)))
    return model


def initialise_pose_encoder(pose_encoder, path, state=None):
    """Load `pose_encoder` from the Uni-Sign or CCL-SLR checkpoint at `path` (its loaded `state` if given) and say
    what it took (models/pose_transfer.py)."""
    left = load_pose_encoder(pose_encoder, load_checkpoint_file(path) if state is None else state, path)
    print(describe_transfer(path, left), file=sys.stderr)


def warn_unknown_target_tokens(model, texts, chunk=1024):
    """A pruned model trained on new targets: say how many of their tokens it cannot produce (they become <unk>)."""
    tokenizer, unknown, total = model.tokenizer, 0, 0
    for start in range(0, len(texts), chunk):
        ids = torch.as_tensor([token for row in tokenizer.base(texts[start:start + chunk]).input_ids for token in row])
        unknown += int(((tokenizer.to_pruned[ids] == tokenizer.unk_token_id) & (ids != tokenizer.unk_token_id)).sum())
        total += len(ids)
    if unknown:
        print(f"warning: {unknown} of {total} target tokens of the training split are outside the pruned vocabulary "
              f"of {len(tokenizer)} tokens and become <unk>; prune at this stage instead (fine-tune from an "
              f"unpruned checkpoint with --prune-vocabulary)", file=sys.stderr)


def training_texts(args, specs, entries=None) -> list[str]:
    """The targets of the training splits of every --dataset (what a pruned vocabulary keeps); `entries`:
    {dataset name: its training label entries} when the run has read them already."""
    return [target_text(entry, args.task) for spec in specs
            for entry in (entries[spec.name] if entries is not None else load_split(spec, "train"))]


def head_vocabulary(args, specs, entries=None) -> Vocabulary:
    """A classifier's vocabulary: the training words (ISLR), or the gloss tokens for CTC (CSLR)."""
    targets = training_texts(args, specs, entries)
    if get_task(args.task).head == "classification":
        return Vocabulary(targets)
    return Vocabulary([token for text in targets for token in text.split()], ctc=True)


def prompt_texts(model) -> list[str]:
    return [model.prompt_text(lang) for lang in ("Chinese", "English")]


def split_dataset(args, spec, split) -> SignDataset:
    return SignDataset(load_split(spec, split), spec.pose_dir_for(split), args.task, args.max_length, args.seed,
                       args.skip_policy, rgb_dataset_settings(args, spec, split), spec.prompt_language(),
                       args.max_frames)


def training_set(args, specs, make_corpus=None) -> Dataset:
    """The training set: one corpus, or several mixed by --dataset-ratios; optionally a --data-fraction of it.

    make_corpus(spec) -> the corpus dataset of a spec's train split (default: split_dataset's SignDataset)."""
    corpora = [(make_corpus or (lambda spec: split_dataset(args, spec, "train")))(spec) for spec in specs]
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


def eval_loader(args, specs, split, target_encoder, make_dataset=None, collator=batch_collator) -> DataLoader:
    """Batches of `split` in file order, labelled by the model's `target_encoder`.

    make_dataset(spec) -> the split's dataset of one spec (default: split_dataset's SignDataset), batched by
    collator(target_encoder)."""
    datasets = [(make_dataset or (lambda spec: split_dataset(args, spec, split)))(spec) for spec in specs]
    dataset = datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=False, collate_fn=collator(target_encoder),
                      num_workers=args.num_workers, generator=torch.Generator().manual_seed(args.seed))


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


def checkpoint_payload(model, args, epoch, metrics=None) -> dict:
    return {
        "format": FORMAT,
        "model": model.state_dict(),
        "config": model.config.to_dict(),
        "args": {key: value for key, value in vars(args).items() if isinstance(value, (str, int, float, bool))},
        "epoch": epoch,
        "metrics": metrics or {},
    }


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


def is_main_process() -> bool:
    """Rank 0 (the deepspeed launcher sets RANK before the process starts)."""
    return int(os.environ.get("RANK", "0")) == 0
