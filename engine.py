"""The training and evaluation loops (one readable loop each), optimizer and schedule.

Official semantics (official_defaults.md section 2 and 5): AdamW with timm's no-decay rule,
cosine schedule stepped per optimizer step, global grad-norm clipping, gradient accumulation,
dev evaluation with beam search and the mean-over-batches label-smoothed loss.
"""
import json
import math
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from datasets.sign_dataset import batch_to_device
from utils.metrics import csl_daily_postprocess
from utils.prediction_files import score_texts, write_predictions, write_references

# Task -> (metric that picks the best checkpoint, larger is better)
SELECTION_METRIC = {"SLT": ("bleu4", True), "CSLR": ("wer", False), "ISLR": ("top1_acc_pi", True)}


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the message names the step and the batch's samples."""


def build_optimizer(model, lr, weight_decay=1e-4, eps=1e-9, betas=(0.9, 0.999)):
    """AdamW; no weight decay for parameters with ndim <= 1 or names ending in '.bias' (timm's rule)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, eps=eps, betas=betas)


def cosine_multiplier(step, warmup_steps, total_steps) -> float:
    """transformers' 'cosine' schedule: linear warm-up, then half a cosine down to 0."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_scheduler(optimizer, epochs, batches_per_epoch, grad_accum, warmup_epochs=0):
    """Official step counts: W = int(warmup * len(loader) / accum), N = int(epochs * len(loader) / accum)."""
    warmup = int(warmup_epochs * batches_per_epoch / grad_accum)
    total = int(epochs * batches_per_epoch / grad_accum)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_multiplier(step, warmup, total))


def train_one_epoch(model, loader, optimizer, scheduler, epoch, args, state, log=None):
    """One pass over `loader`; returns {'loss': mean micro-batch loss, 'skipped': n, 'samples_per_s': ...}.

    `state` carries the global micro-step and optimizer-step counters across epochs.
    """
    device = next(model.parameters()).device
    model.train()
    losses, samples, start = [], 0, time.time()
    progress = tqdm(loader, desc=f"epoch {epoch}", dynamic_ncols=True, disable=not getattr(args, "progress", True))
    for batch in progress:
        state["skipped"] += batch["skipped"]
        if not batch["names"]:
            continue
        batch = batch_to_device(batch, device)
        output = model(batch["parts"], batch["attention_mask"], batch["targets"], batch.get("rgb"))
        if not torch.isfinite(output.loss):
            raise NonFiniteLossError(
                f"non-finite loss {output.loss.item()} at epoch {epoch} micro-step {state['micro_step']} "
                f"(optimizer step {state['optimizer_step']}); samples: {', '.join(batch['names'])}"
            )
        (output.loss / args.gradient_accumulation_steps).backward()
        state["micro_step"] += 1
        if state["micro_step"] % args.gradient_accumulation_steps == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.gradient_clipping)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            state["optimizer_step"] += 1
        losses.append(output.loss.item())
        samples += len(batch["names"])
        progress.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if log is not None:
            log.scalars("train", state["micro_step"], loss=losses[-1], lr=scheduler.get_last_lr()[0])
    elapsed = time.time() - start
    return {
        "loss": sum(losses) / max(1, len(losses)),
        "skipped": state["skipped"],
        "samples_per_s": samples / max(elapsed, 1e-9),
    }


@dataclass
class EvalResult:
    metrics: dict
    names: list
    predictions: list  # post-processed as scored
    references: list

    def save(self, output_dir, split):
        """Write `<split>_pres.txt`, `<split>_refs.txt` (official format) and `<split>_metrics.json`."""
        output_dir.mkdir(parents=True, exist_ok=True)
        write_predictions(output_dir / f"{split}_pres.txt", zip(self.names, self.predictions))
        write_references(output_dir / f"{split}_refs.txt", zip(self.names, self.references))
        write_json(output_dir / f"{split}_metrics.json", self.metrics)


@torch.no_grad()
def evaluate(model, loader, task, split="dev", char_level=False, symmetric_punct=False, num_beams=4,
             max_new_tokens=100, progress=True) -> EvalResult:
    """Loss (mean over batches, as official) + beam-search predictions + the task's metrics."""
    device = next(model.parameters()).device
    model.eval()
    names, predictions, references, losses, skipped = [], [], [], [], 0
    for batch in tqdm(loader, desc=f"eval {split}", dynamic_ncols=True, disable=not progress):
        skipped += batch["skipped"]
        if not batch["names"]:
            continue
        batch = batch_to_device(batch, device)
        losses.append(model(batch["parts"], batch["attention_mask"], batch["targets"], batch.get("rgb")).loss.item())
        predictions += model.generate(batch["parts"], batch["attention_mask"], batch.get("rgb"), num_beams=num_beams,
                                      max_new_tokens=max_new_tokens)
        references += batch["targets"]
        names += batch["names"]
    if char_level:  # official CSL-Daily SLT post-processing; the files hold the processed text
        pairs = [csl_daily_postprocess(p, r, symmetric_punct) for p, r in zip(predictions, references)]
        predictions, references = [p for p, _ in pairs], [r for _, r in pairs]
    metrics = score_texts(predictions, references, task)
    metrics.update(loss=sum(losses) / max(1, len(losses)), skipped=skipped)
    return EvalResult(metrics, names, predictions, references)


def is_better(task, metrics, best) -> bool:
    """Whether `metrics` beats `best` on the task's selection metric (dev BLEU-4 / WER / top-1)."""
    name, larger_is_better = SELECTION_METRIC[task]
    return metrics[name] > best[name] if larger_is_better else metrics[name] < best[name]


def write_json(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
