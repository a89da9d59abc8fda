"""A training run and an evaluation run of Uni-Sign, as train.py (and eval.py, train_task_head.py) start them.

`Run` owns the model, the data, the optimiser (plain or DeepSpeed), progress, checkpoints and logs;
`run_training` / `run_evaluation` claim the run folder first (runs/folder.py).
"""
import json
import os
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from datasets.rgb import RGBSampling
from datasets.sign_dataset import batch_collator
from datasets.tasks import get_task
from engine import (DeepSpeedStepper, NonFiniteError, NonFiniteParametersError, PlainStepper, build_optimizer,
                    build_scheduler, command_hyperparameters, evaluate, supervised_loss, train_one_epoch, write_json)
from models.checkpoint_layout import load_model_weights
from models.pretrained import ModelCard
from models.sync_batchnorm import convert_sync_batchnorm, count_batchnorms
from models.uni_sign import UniSign
from runs.arguments import resolve_accumulation
from runs.building import (build_model, check_run_data, checkpoint_payload, dataset_specs, deepspeed_config,
                           eval_loader, is_main_process, label_files, seed_everything, set_epoch, split_data,
                           train_sampler, training_set)
from runs.errors import UsageError
from runs.fingerprint import fingerprint_differences, run_fingerprint
from runs.folder import RunFolderError, check_writable, owned_run_folder
from utils.checkpoint import atomic_save, nonfinite_keys
from utils.logger import RunLogger
from utils.training_state import (capture_rng, load_resume_state, restore_rng, save_training_state,
                                  set_aside_later_states, state_dir, state_step)

EVAL_OUTPUT_BYTES = 10**6  # free disk an evaluation needs for its prediction, reference and metric files


def evaluate_split(model, loader, split, args, spec):
    return evaluate(model, loader, args.task, split, spec.char_level_scoring(args.task), args.symmetric_punct,
                    args.num_beams, args.max_new_tokens, args.progress, args.autocast)


def report_results(results, output_dir) -> dict:
    write_json(output_dir / "results.json", results)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return results


def checkpoint_bytes(model, keep) -> int:
    """Disk a run of `model` writes: `keep` states (weights + 2 AdamW moments) and 2 weight-only checkpoints."""
    weights = sum(tensor.numel() * tensor.element_size() for tensor in model.state_dict().values())
    return weights * (3 * keep + 2)


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
        train = self.build_data()
        self.sampler = train_sampler(args, train, self.world_size, self.rank)
        # An own generator: creating a loader iterator must not draw from the global RNG (exact resume).
        self.train_loader = DataLoader(train, batch_sampler=self.sampler, collate_fn=self.collate_fn(),
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
        self.fingerprint = run_fingerprint(vars(args), self.model_config(), label_files(self.specs))
        self.log = RunLogger(self.output_dir) if self.rank == 0 else None

    # ------------------------------------------------------------------ what is trained (train_task_head.py overrides)
    def make_model(self):
        """The model to train: Uni-Sign built from the flags (or the --finetune checkpoint's config)."""
        return build_model(self.args, self.specs[0])

    def build_data(self):
        """The training set; sets self.eval_loaders and runs the data check."""
        args = self.args
        train = training_set(args, self.specs)
        self.eval_loaders = {split: eval_loader(args, self.specs, split, self.model.target_encoder)
                             for split in ("dev", "test")}
        self.check_data(train, self.uni_sign().tokenizer)
        return train

    def check_data(self, train, tokenizer):
        """The data check of the training set and the evaluation loaders' datasets (unless --skip-data-check)."""
        if self.args.skip_data_check:
            return
        splits = split_data(self.args, self.specs, "train", train)
        splits += [item for split, loader in self.eval_loaders.items()
                   for item in split_data(self.args, self.specs, split, loader.dataset)]
        check_run_data(self.args, splits, tokenizer, self.output_dir, report=self.rank == 0)

    def collate_fn(self):
        return batch_collator(self.model.target_encoder)

    def batch_loss(self, model, batch):
        """The training loss of a batch (engine.train_one_epoch calls it with the engine-wrapped model)."""
        return supervised_loss(model, batch)

    def is_better(self, metrics, best) -> bool:
        """Whether dev `metrics` beat the best so far (the task's selection metric)."""
        return get_task(self.args.task).is_better(metrics, best)

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

    def model_config(self) -> dict:
        """The architecture a resumed state must match (part of the run fingerprint)."""
        return self.uni_sign().config.to_dict()

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
        optimizer = build_optimizer(self.model, args.lr, args.weight_decay, args.opt_eps, betas,
                                    fused=args.fused_adamw == "on")
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
        with command_hyperparameters(self.stepper.optimizer, self.stepper.scheduler):
            state = self.load_state(path)
        self.progress, self.best = {"dev_pending": False, **state["progress"]}, state["best"]
        self.stepper.micro_step = state["micro_step"]
        self.restore_sampler(state["sampler"], path)
        restore_rng(state["rng"])
        print(f"resumed at epoch {self.progress['epoch']}, batch {self.progress['batch']}, "
              f"optimizer step {self.progress['optimizer_step']}")

    def load_state(self, path) -> dict:
        """Weights, optimizer and schedule from a training state; the state's other entries."""
        if self.distributed:
            _, state = self.stepper.model.load_checkpoint(str(Path(path) / "deepspeed"))
            if state is None:
                raise RunFolderError(f"{path}: no DeepSpeed checkpoint to resume from")
            self.check_fingerprint(state, Path(path) / "deepspeed")
            return state
        state, state_path = load_resume_state(path)
        self.check_fingerprint(state, state_path)
        self.model.load_state_dict(state["model"])
        self.stepper.optimizer.load_state_dict(state["optimizer"])
        self.stepper.scheduler.load_state_dict(state["scheduler"])
        if state_path.parent.resolve() == state_dir(self.output_dir).resolve():
            set_aside_later_states(self.output_dir, state_step(state_path))
        return state

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
                stats = train_one_epoch(self.stepper, self.train_loader, epoch, args, self.progress, self.log, on_step,
                                        self.batch_loss)
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
        if self.best is None or self.is_better(dev.metrics, self.best):
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
        loaders = {split: eval_loader(args, specs, split, model.target_encoder) for split in ("dev", "test")}
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
