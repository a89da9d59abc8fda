"""CCL-SLR runs on train.py's engine (runs.training.Run: plain or DeepSpeed steps, exact resume, checkpoints, logs,
NaN policy, progress): contrastive pre-training without labels, and ISLR fine-tuning with a classifier.

Pre-training selects its best epoch by a label-free dev score: top-1 retrieval of a clip's second view among all
dev clips from its first view, within each modality and across them (`retrieval_top1`, their mean).
"""
from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.ccl_clips import CCLClipDataset, ccl_collator
from datasets.ccl_views import ViewSettings
from datasets.registry import load_split
from datasets.sign_dataset import DeviceBatches
from engine import EvalResult, collect_predictions, write_json
from evaluation.islr_topk import benchmark_subsets, label_key, read_class_list
from evaluation.metrics import islr_topk
from models.ccl_classifier import CCLClassifier
from models.ccl_slr import CCLSLR, KIND, CCLConfig, check_ccl_checkpoint
from models.pose_encoder import POSE_PRESETS, PoseEncoderConfig
from models.task_heads import Vocabulary, VocabularyTargets
from models.video_encoder import VIDEO_PRESETS
from runs.building import (checkpoint_payload, dataset_specs, eval_loader, head_vocabulary, initialise_pose_encoder,
                           is_main_process, seed_everything, training_set)
from runs.errors import UsageError
from runs.folder import owned_run_folder
from runs.training import Run, report_results
from utils.checkpoint import load_checkpoint_file

CLASSIFIER_KIND = "ccl_slr_classifier"
EVAL_VIEW_FLAGS = ("pose_frames", "rgb_frames", "rgb_size", "temporal_crop", "rotation", "shear", "joint_dropout",
                   "color_jitter", "grayscale", "mpm_ratio", "mpm_grid")  # --eval takes them from the checkpoint
TOP_K = (1, 5)


# --------------------------------------------------------------------------- settings from flags

def modalities_of(args) -> tuple:
    names = tuple(name.strip() for name in args.modalities.split(",") if name.strip())
    if not names or set(names) - {"pose", "rgb"}:
        raise UsageError(f"--modalities takes pose, rgb or pose,rgb, not {args.modalities!r}")
    return tuple(m for m in ("pose", "rgb") if m in names)


def view_settings(args) -> ViewSettings:
    return ViewSettings(args.pose_frames, args.rgb_frames, args.rgb_size, args.temporal_crop, args.rotation,
                        args.shear, tuple(args.scale_range), args.joint_dropout, tuple(args.crop_scale),
                        args.color_jitter, args.grayscale, args.mpm_ratio, args.mpm_grid)


def ccl_config(args, steps_per_epoch: int) -> CCLConfig:
    pose = asdict(PoseEncoderConfig(**POSE_PRESETS[args.pose_preset], output_dim=args.pose_feature_dim,
                                    batch_hands=args.batch_hands))
    video = dict(VIDEO_PRESETS[args.video_preset], pool_grid=args.video_pool_grid)
    return CCLConfig(modalities_of(args), pose, video, args.embed_dim,
                     args.ccl_objective, args.temperature, args.queue_size, args.momentum, args.cross_weight,
                     int(round(args.cross_warmup_epochs * steps_per_epoch)), args.spm, args.spm_topk,
                     int(round(args.spm_warmup_epochs * steps_per_epoch)))


def ccl_split(args, spec, split, mode, entries=None) -> CCLClipDataset:
    """The CCL-SLR dataset of one spec's split (its label `entries` when already read)."""
    video_dir = spec.rgb_dir_for(split) if "rgb" in modalities_of(args) else None
    entries = load_split(spec, split) if entries is None else entries
    return CCLClipDataset(entries, spec.pose_dir_for(split), view_settings(args), video_dir, mode, args.seed,
                          args.skip_policy, args.max_frames, task=args.task)


def ccl_loader(args, specs, split, mode, target_encoder=None) -> DataLoader:
    split_of = functools.partial(ccl_split, args, split=split, mode=mode)
    return eval_loader(args, specs, split, target_encoder, split_of, ccl_collator)


# --------------------------------------------------------------------------- evaluation

@dataclass
class RetrievalResult:
    metrics: dict

    def save(self, output_dir, split):
        write_json(Path(output_dir) / f"{split}_metrics.json", self.metrics)


def top1_retrieval(queries: torch.Tensor, candidates: torch.Tensor) -> float:
    """Percent of rows whose most similar candidate is the same row (L2-normalised (N, D) each)."""
    return 100.0 * float(((queries @ candidates.t()).argmax(1) == torch.arange(len(queries))).float().mean())


@torch.no_grad()
def evaluate_retrieval(model: CCLSLR, loader, progress=False) -> RetrievalResult:
    """Intra-modal (view 0 -> view 1) and cross-modal (pose view 0 <-> RGB view 1) top-1 retrieval over a split."""
    device = next(model.parameters()).device
    model.eval()
    embeddings = {(m, v): [] for m in model.config.modalities for v in (0, 1)}
    batches = DeviceBatches(loader, device)
    for batch in tqdm(batches, desc="retrieval", dynamic_ncols=True, disable=not progress):
        for modality in model.config.modalities:
            for view in (0, 1):
                embeddings[modality, view].append(model.embed(modality, batch[modality][view]).cpu())
    stacked = {key: torch.cat(values) for key, values in embeddings.items()}
    metrics = {f"view_top1_{m}": top1_retrieval(stacked[m, 0], stacked[m, 1]) for m in model.config.modalities}
    if len(model.config.modalities) == 2:
        metrics["cross_top1_pose_rgb"] = top1_retrieval(stacked["pose", 0], stacked["rgb", 1])
        metrics["cross_top1_rgb_pose"] = top1_retrieval(stacked["rgb", 0], stacked["pose", 1])
    metrics["retrieval_top1"] = sum(metrics.values()) / len(metrics)
    metrics.update(clips=len(stacked[model.config.modalities[0], 0]), skipped=batches.skipped)
    return RetrievalResult(metrics)


def ranked_classes(logits: torch.Tensor, vocab: Vocabulary, classes=None, k=max(TOP_K)) -> list:
    """Per row the class names by descending logit (top k), among `classes` (vocabulary indices) or all."""
    if classes is not None:
        logits = logits[:, classes]
    top = logits.topk(min(k, logits.shape[1]), 1).indices.tolist()
    return [[vocab.decode(index if classes is None else classes[index]) for index in row] for row in top]


def subset_scores(logits, references, vocab: Vocabulary, subsets: dict) -> dict:
    """Benchmark subsets (WLASL100, MSASL200, ...: their classes): top-1/top-5 over the clips of the subset's
    classes, ranking only among the subset's classes the model knows; n = the clips scored."""
    scores = {}
    for name, class_names in subsets.items():
        wanted = {label_key(text) for text in class_names}
        classes = [index for index, token in enumerate(vocab.itos) if label_key(token) in wanted]
        rows = [row for row, text in enumerate(references) if label_key(text) in wanted]
        if not rows or not classes:
            scores[name] = {"n": 0}
            continue
        ranked = ranked_classes(logits[rows], vocab, classes)
        scores[name] = {**islr_topk(ranked, [references[row] for row in rows], ks=TOP_K), "n": len(rows)}
    return scores


@torch.no_grad()
def evaluate_classifier(model: CCLClassifier, loader, vocab: Vocabulary, progress=False, subsets=None) -> EvalResult:
    """Top-1 predictions and per-instance / per-class top-1 and top-5 accuracy over a split (and per subset)."""

    def loss_and_logits(batch):
        output = model(**classifier_inputs(batch), labels=batch["labels"])
        return output.loss, list(output.logits.cpu())  # one (num_classes,) row per clip

    names, rows, references, loss, skipped = collect_predictions(model, loader, loss_and_logits, "eval", progress)
    logits = torch.stack(rows) if rows else torch.zeros(0, len(vocab))
    ranked = ranked_classes(logits, vocab)
    metrics = islr_topk(ranked, references, ks=TOP_K)
    metrics.update(loss=loss, skipped=skipped)
    if subsets:
        metrics["subsets"] = subset_scores(logits, references, vocab, subsets)
    return EvalResult(metrics, names, [candidates[0] for candidates in ranked], references)


def classifier_inputs(batch) -> dict:
    """One view per modality (fine-tuning and evaluation datasets make one)."""
    return {"pose": batch["pose"][0], "rgb": batch["rgb"][0] if batch.get("rgb") else None}


# --------------------------------------------------------------------------- runs

class CCLRun(Run):
    """What both CCL-SLR runs share: CCL datasets and collate, the data check without a tokenizer, plain weights."""

    mode = "pretrain"

    def build_data(self):
        args = self.args
        if "rgb" in modalities_of(args) and any(not spec.rgb_dir for spec in self.specs):
            raise UsageError(f"--modalities {args.modalities} needs the videos of {args.dataset} (--rgb-dir, or "
                             f"'rgb_dir' in the registry); use --modalities pose for pose-only training")
        entries = self.train_entries
        train = training_set(args, self.specs,
                             lambda spec: ccl_split(args, spec, "train", self.mode, entries[spec.name]))
        self.eval_loaders = {split: ccl_loader(args, self.specs, split, self.eval_mode, self.target_encoder())
                             for split in ("dev", "test")}
        self.check_data(train, tokenizer=None)  # no text targets to tokenise
        return train

    @functools.cached_property
    def train_entries(self) -> dict:
        """{dataset name: its training label entries}, read once per run."""
        return {spec.name: load_split(spec, "train") for spec in self.specs}

    def target_encoder(self):
        return None

    def collate_fn(self):
        return ccl_collator(self.target_encoder())

    def model_config(self) -> dict:
        return self.model.config.to_dict()

    def load_best(self):
        self.model.load_state_dict(load_checkpoint_file(self.output_dir / "best_checkpoint.pth")["model"])

    def save_best_model(self, results):
        """best_checkpoint.pth is the model (CCLSLR.from_checkpoint, train_ccl.py --init)."""


class CCLPretrainRun(CCLRun):
    mode, eval_mode = "pretrain", "pretrain"  # dev: two fixed augmented views per clip (seeded, epoch 0)

    def make_model(self):
        args = self.args
        if args.ccl_objective == "in_batch" and args.batch_size < 2:
            raise UsageError(f"--ccl-objective in_batch needs --batch-size >= 2 (negatives come from the batch), "
                             f"not {args.batch_size}")
        steps_per_epoch = max(1, sum(map(len, self.train_entries.values())) // args.batch_size)
        model = CCLSLR(ccl_config(args, steps_per_epoch))
        if args.finetune and "pose" in model.config.modalities:
            initialise_pose_encoder(model.encoders["pose"].pose_encoder, args.finetune)
            if model.moco:
                model.key_encoders.load_state_dict(model.encoders.state_dict())
        return model

    def batch_loss(self, model, batch):
        return model(pose=batch["pose"], rgb=batch.get("rgb")).loss

    def payload(self, epoch, metrics=None) -> dict:
        return {**checkpoint_payload(self.model, self.args, epoch, metrics), "kind": KIND}

    def evaluate(self, split):
        return evaluate_retrieval(self.model, self.eval_loaders[split], self.args.progress)

    def is_better(self, metrics, best) -> bool:
        return metrics["retrieval_top1"] > best["retrieval_top1"]


class CCLFinetuneRun(CCLRun):
    mode, eval_mode = "finetune", "eval"

    def make_model(self):
        args = self.args
        self.vocab = head_vocabulary(args, self.specs, self.train_entries)
        state = load_checkpoint_file(args.finetune) if args.finetune else None
        config = ccl_config(args, 1)
        if state is not None and state.get("kind") == KIND:  # the pre-trained architecture, the chosen branches
            config = CCLConfig.from_dict({**state["config"], "modalities": modalities_of(args)})
        model = CCLClassifier(config, len(self.vocab), args.head_dropout, args.label_smoothing)
        if state is not None:
            self.initialise(model, state)
        return model

    def initialise(self, model, state):
        """From a CCL-SLR pre-training checkpoint (its encoders) or a Uni-Sign checkpoint (the pose encoder)."""
        if state.get("kind") == KIND:
            loaded = model.load_pretrained(state["model"])
            print(f"initialised {', '.join(loaded) or 'nothing'} from {self.args.finetune}", file=sys.stderr)
        elif "pose" in model.encoders:
            initialise_pose_encoder(model.encoders["pose"].pose_encoder, self.args.finetune, state)
        else:
            check_ccl_checkpoint(state, self.args.finetune)

    def target_encoder(self):
        return VocabularyTargets(self.vocab)

    def batch_loss(self, model, batch):
        return model(**classifier_inputs(batch), labels=batch["labels"]).loss

    def payload(self, epoch, metrics=None) -> dict:
        return {**checkpoint_payload(self.model, self.args, epoch, metrics), "kind": CLASSIFIER_KIND,
                "vocab": self.vocab.to_dict()}

    def evaluate(self, split):
        return evaluate_classifier(self.model, self.eval_loaders[split], self.vocab, self.args.progress)


def run_ccl_evaluation(args) -> dict:
    """--eval --finetune CKPT: a fine-tuned classifier's top-1/top-5 (or a pre-training checkpoint's retrieval)
    on dev and test, written to --output_dir as a training run's are."""
    if not args.finetune:
        raise UsageError("--eval needs --finetune CHECKPOINT (a train_ccl.py best_checkpoint.pth)")
    with owned_run_folder(args.output_dir, training=False, is_main=is_main_process()):
        seed_everything(args.seed)
        specs, state = dataset_specs(args), load_checkpoint_file(args.finetune)
        evaluate_split = checkpoint_evaluator(args, state, "cuda" if torch.cuda.is_available() else "cpu")
        results = {}
        for split in ("dev", "test"):
            result = evaluate_split(specs, split)
            result.save(Path(args.output_dir), split)
            results[split] = result.metrics
        return report_results(results, Path(args.output_dir))


def checkpoint_evaluator(args, state, device):
    """The checkpoint's model, built once -> evaluate(specs, split), its views made as in its training run (its
    branches, frames, size)."""
    config = CCLConfig.from_dict(state["config"])
    trained = {flag: state["args"][flag] for flag in EVAL_VIEW_FLAGS if flag in state.get("args", {})}
    args = argparse.Namespace(**{**vars(args), **trained, "modalities": ",".join(config.modalities)})
    if state.get("kind") == KIND:
        model = CCLSLR(config)
        model.load_state_dict(state["model"])
        model.to(device)
        return lambda specs, split: evaluate_retrieval(model, ccl_loader(args, specs, split, "pretrain"), args.progress)
    if state.get("kind") != CLASSIFIER_KIND:
        raise UsageError(f"{args.finetune} is not a train_ccl.py checkpoint (no 'kind' entry)")
    vocab = Vocabulary.from_dict(state["vocab"])
    model = CCLClassifier(config, len(vocab))
    model.load_state_dict(state["model"])
    model.to(device)
    subsets = class_subsets(args)
    return lambda specs, split: evaluate_classifier(
        model, ccl_loader(args, specs, split, "eval", VocabularyTargets(vocab)), vocab, args.progress, subsets)


def class_subsets(args) -> dict | None:
    """--class-lists FILE [--subsets N,...]: the benchmark subsets to score (evaluation/islr_topk.py's files)."""
    if not args.class_lists:
        return None
    benchmark, classes = read_class_list(args.class_lists)
    return benchmark_subsets(benchmark, classes, args.subsets)
