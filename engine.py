"""The training and evaluation loops (one readable loop each), optimizer and schedule.

Official semantics (official_defaults.md section 2 and 5): AdamW with timm's no-decay rule,
cosine schedule stepped per optimizer step, global grad-norm clipping, gradient accumulation,
dev evaluation with beam search and the mean-over-batches label-smoothed loss.
"""
import json
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from tqdm import tqdm

from datasets.sign_dataset import DeviceBatches, model_inputs
from evaluation.metrics import csl_daily_postprocess
from evaluation.prediction_files import score_texts, write_predictions, write_references

AUTOCAST_DTYPES = {"off": None, "bf16": torch.bfloat16}  # --autocast: forward passes under torch.autocast


class NonFiniteError(RuntimeError):
    """A NaN/inf in training; the message names the step (and the batch's samples where one is to blame)."""


class NonFiniteLossError(NonFiniteError):
    """The loss became NaN/inf."""


class NonFiniteGradientError(NonFiniteError):
    """The gradients of an update hold NaN/inf; the update was not applied (the gradients are dropped)."""


class NonFiniteParametersError(NonFiniteError):
    """An update made parameters NaN/inf: the run stops under every policy; these weights are never saved."""


def check_finite_parameters(model):
    """Raise NonFiniteParametersError naming the first NaN/inf parameter (one fused norm, then a search)."""
    parameters = [parameter for parameter in model.parameters()]
    if torch.isfinite(torch.nn.utils.get_total_norm(parameters)):
        return
    name = next(name for name, parameter in model.named_parameters() if not torch.isfinite(parameter).all())
    raise NonFiniteParametersError(f"parameter '{name}' became NaN/inf")


def build_optimizer(model, lr, weight_decay=1e-4, eps=1e-9, betas=(0.9, 0.999), fused=True):
    """AdamW; no weight decay for parameters with ndim <= 1 or names ending in '.bias' (timm's rule).

    fused: torch's fused AdamW kernel (one pass over each tensor; ~4x faster on a CPU, the same update up to
    rounding, ~1e-9 relative per step); False: torch's default implementation, as the official run (timm's
    create_optimizer). Build it after the model is on its device."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, eps=eps, betas=betas, fused=fused or None)


NOT_HYPERPARAMETERS = ("params", "lr", "initial_lr")  # a group's parameters; the learning rates the schedule sets


@contextmanager
def command_hyperparameters(optimizer, scheduler):
    """Load a training state inside it; afterwards the optimizer and schedule take their hyperparameters from the
    command (AdamW's weight decay, eps, betas and kernel; the schedule's base learning rates) and everything
    else from the state (moments, step counts, the position in the schedule).

    torch's load_state_dict restores the saved group settings and base learning rates, which would silently keep
    the old value of a setting changed with --allow-changed-settings. Unchanged settings resume bit-exactly: the
    learning rate is recomputed as the schedule's own step computes it."""
    settings = [{key: value for key, value in group.items() if key not in NOT_HYPERPARAMETERS}
                for group in optimizer.param_groups]
    base_lrs = list(scheduler.base_lrs)
    yield
    scheduler.base_lrs = base_lrs
    for group, setting, base_lr, multiplier in zip(optimizer.param_groups, settings, base_lrs,
                                                    scheduler.lr_lambdas):
        group.update(setting, initial_lr=base_lr, lr=base_lr * multiplier(scheduler.last_epoch))


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


class PlainStepper:
    """One process: manual gradient accumulation, global grad-norm clipping, optimizer and scheduler steps."""

    def __init__(self, model, optimizer, scheduler, grad_accum, clip_norm):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.grad_accum, self.clip_norm = grad_accum, clip_norm
        self.micro_step = 0

    @property
    def module(self):
        return self.model

    def backward(self, loss):
        (loss / self.grad_accum).backward()

    def step(self) -> bool:
        """Count one micro-batch; at an accumulation boundary update the weights. True when it updated.

        Non-finite gradients: dropped, nothing updated, NonFiniteGradientError. Parameters made non-finite by
        the update: NonFiniteParametersError."""
        self.micro_step += 1
        if self.micro_step % self.grad_accum:
            return False
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        if not torch.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteGradientError(f"non-finite gradient norm {norm.item()}; the update was not applied")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        check_finite_parameters(self.model)
        return True

    def lr(self) -> float:
        """The learning rate of the next update."""
        return self.optimizer.param_groups[0]["lr"]


class DeepSpeedStepper(PlainStepper):
    """DeepSpeed engine: it scales the loss, accumulates, clips, steps optimizer and scheduler itself."""

    def __init__(self, engine):
        self.model, self.micro_step = engine, 0

    @property
    def module(self):
        return self.model.module

    @property
    def optimizer(self):
        return self.model.optimizer  # its param_groups are the base AdamW's (ZeRO wraps it)

    @property
    def scheduler(self):
        return self.model.lr_scheduler

    def backward(self, loss):
        self.model.backward(loss)

    def step(self) -> bool:
        boundary = self.model.is_gradient_accumulation_boundary()
        self.model.step()
        self.micro_step += 1
        if boundary:
            check_finite_parameters(self.model.module)
        return boundary


def autocast(device, name="off"):
    """The forward-pass precision context: nothing ('off', official numerics) or torch.autocast in bf16."""
    dtype = AUTOCAST_DTYPES[name]
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def count_nonfinite(error, skipped, epoch, progress_state, names, policy):
    """Count a non-finite loss or gradient; policy 'skip': report it (the caller skips the `skipped` batch or
    update), else raise it with the epoch, batch, optimizer step and the batch's samples."""
    progress_state["nonfinite"] += 1
    located = type(error)(f"{error} at epoch {epoch}, batch {progress_state['batch']} (optimizer step "
                          f"{progress_state['optimizer_step']}); samples: {', '.join(names)}")
    if policy != "skip":
        raise located from error
    tqdm.write(f"skipping {skipped}: {located}")


def supervised_loss(model, batch):
    """The loss of a model trained on labelled batches (Uni-Sign, task heads): model(inputs, labels).loss."""
    return model(**model_inputs(batch), labels=batch["labels"]).loss


def train_one_epoch(stepper, loader, epoch, args, progress_state, log=None, on_step=None, batch_loss=supervised_loss):
    """One pass over `loader` (which may start mid-epoch on resume); `batch_loss(model, batch)` -> the loss.

    progress_state: {'optimizer_step', 'skipped', 'nonfinite', 'batch'} carried across epochs; 'batch' is the
    position in this epoch. A non-finite loss raises NonFiniteLossError (after `on_nonfinite`) or, with
    args.nonfinite == 'skip', is counted and its batch skipped. `on_step(progress_state)` runs after every
    optimizer step (periodic checkpoints).
    """
    device = next(stepper.module.parameters()).device
    stepper.model.train()
    losses, samples, start = [], 0, time.time()
    batches = DeviceBatches(loader, device, counts=progress_state)
    progress = tqdm(batches, desc=f"epoch {epoch}", dynamic_ncols=True, disable=not getattr(args, "progress", True))
    for batch in progress:
        with autocast(device, getattr(args, "autocast", "off")):
            loss = batch_loss(stepper.model, batch)
        if not torch.isfinite(loss):
            count_nonfinite(NonFiniteLossError(f"non-finite loss {loss.item()}"), "batch", epoch, progress_state,
                            batch["names"], args.nonfinite)
            continue
        stepper.backward(loss)
        try:
            updated = stepper.step()
        except NonFiniteParametersError as error:
            raise NonFiniteParametersError(f"{error} at epoch {epoch}, batch {progress_state['batch']} (optimizer "
                                           f"step {progress_state['optimizer_step'] + 1})") from error
        except NonFiniteGradientError as error:
            count_nonfinite(error, "update", epoch, progress_state, batch["names"], args.nonfinite)
            continue
        if updated:
            progress_state["optimizer_step"] += 1
            if on_step is not None:
                on_step(progress_state)
        losses.append(loss.item())
        samples += len(batch["names"])
        progress.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{stepper.lr():.2e}")
        if log is not None:
            log.scalars("train", stepper.micro_step, epoch=epoch, loss=losses[-1], lr=stepper.lr(),
                        samples_per_s=samples / max(time.time() - start, 1e-9))
    return {
        "loss": sum(losses) / max(1, len(losses)),
        "samples_per_s": samples / max(time.time() - start, 1e-9),
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
def collect_predictions(model, loader, evaluate_batch, desc="eval", progress=True):
    """Run a model over a loader: `evaluate_batch(batch)` -> (loss, one prediction per clip: a text, or e.g. a row
    of class logits) per batch.

    Returns (names, predictions, references, mean loss over batches (as official), skipped samples)."""
    device = next(model.parameters()).device
    model.eval()
    names, predictions, references, losses = [], [], [], []
    batches = DeviceBatches(loader, device)
    for batch in tqdm(batches, desc=desc, dynamic_ncols=True, disable=not progress):
        loss, batch_predictions = evaluate_batch(batch)
        losses.append(loss.item())
        predictions += batch_predictions
        references += batch["targets"]
        names += batch["names"]
    return names, predictions, references, sum(losses) / max(1, len(losses)), batches.skipped


def evaluate(model, loader, task, split="dev", char_level=False, symmetric_punct=False, num_beams=4,
             max_new_tokens=100, progress=True, precision="off") -> EvalResult:
    """Loss + beam-search predictions (one encoder pass per batch) + the task's metrics; `precision`: --autocast."""
    device = next(model.parameters()).device

    def loss_and_beam_search(batch):
        with autocast(device, precision):
            output, texts = model.evaluate_batch(**model_inputs(batch), labels=batch["labels"], num_beams=num_beams,
                                                 max_new_tokens=max_new_tokens)
        return output.loss, texts

    names, predictions, references, loss, skipped = collect_predictions(model, loader, loss_and_beam_search,
                                                                         f"eval {split}", progress)
    if char_level:  # official CSL-Daily SLT post-processing; the files hold the processed text
        pairs = [csl_daily_postprocess(p, r, symmetric_punct) for p, r in zip(predictions, references)]
        predictions, references = [p for p, _ in pairs], [r for _, r in pairs]
    metrics = score_texts(predictions, references, task)
    metrics.update(loss=loss, skipped=skipped)
    return EvalResult(metrics, names, predictions, references)


def write_json(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
