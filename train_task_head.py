"""Task-specific fine-tuning baselines (paper Table 7): Uni-Sign features + an MLP (ISLR) or BiLSTM-CTC (CSLR) head.

Same datasets, registry, flags and output layout as train.py (args.json, results.json {"dev", "test"},
<split>_pres.txt / <split>_refs.txt / <split>_metrics.json, best_checkpoint.pth), plus:

  --features sign|lm_enc      F_sign (temporal-encoder output) or F_lm,enc (mT5 encoder output)
  --feature-point pre_proj|post_proj   where F_sign is read (default: before pose_proj, see models/task_heads.py)
  --head-hidden-dim N --lstm-layers N --head-dropout P --freeze-backbone

  python train_task_head.py --dataset MSASL --task ISLR --features lm_enc \\
      --finetune out/stage1_youtube_asl/best_checkpoint.pth --output_dir out/t7_msasl_lm_enc
  python train_task_head.py --dataset CSL_Daily --task CSLR --features sign \\
      --finetune out/stage1_csl_news/best_checkpoint.pth --output_dir out/t7_csl_sign
"""
import copy
import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from datasets.sign_dataset import collate_samples, target_text
from engine import (EvalResult, PlainStepper, build_optimizer, build_scheduler, collect_predictions, is_better,
                    train_one_epoch, write_json)
from models.task_heads import FEATURE_POINTS, FEATURES, TaskHeadModel, Vocabulary
from train import (build_model, dataset_specs, eval_loader, get_args_parser, report_results, seed_everything,
                   set_epoch, train_sampler, training_set)
from utils.checkpoint import atomic_save, load_checkpoint_file
from utils.metrics import islr_accuracy, wer


def get_task_head_parser():
    parser = get_args_parser()
    parser.description = __doc__
    group = parser.add_argument_group("task-specific head (paper Table 7)")
    group.add_argument("--features", default="sign", choices=FEATURES,
                       help="F_sign (pose temporal encoders) or F_lm,enc (mT5 encoder over [prompt; sign features])")
    group.add_argument("--feature-point", default="pre_proj", choices=FEATURE_POINTS,
                       help="F_sign before (temporal-encoder output, default) or after pose_proj")
    group.add_argument("--head-hidden-dim", type=int, default=512,
                       help="MLP hidden width (ISLR); BiLSTM total width, half per direction (CSLR)")
    group.add_argument("--lstm-layers", type=int, default=1)
    group.add_argument("--head-dropout", type=float, default=0.1)
    group.add_argument("--freeze-backbone", action="store_true", help="train the head only")
    parser.set_defaults(task="ISLR", label_smoothing=0.0)
    return parser


def build_vocabulary(dataset, task) -> Vocabulary:
    """Classes (ISLR: the training words) or gloss tokens (CSLR) of a training set's label entries."""
    entries = [entry for part in _base_datasets(dataset) for entry in part.entries]
    targets = [target_text(entry, task) for entry in entries]
    if task == "ISLR":
        return Vocabulary(targets)
    return Vocabulary([token for text in targets for token in text.split()], ctc=True)


def _base_datasets(dataset):
    from torch.utils.data import ConcatDataset, Subset

    if isinstance(dataset, ConcatDataset):
        return [base for part in dataset.datasets for base in _base_datasets(part)]
    if isinstance(dataset, Subset):
        return _base_datasets(dataset.dataset)
    return [dataset]


def evaluate_head(model, loader, task, progress=False) -> EvalResult:
    """Predictions of the head on a split + utils.metrics scores (ISLR top-1 P-I/P-C, CSLR WER)."""
    def head_predictions(batch):
        return model.predict(batch["parts"], batch["attention_mask"], batch.get("rgb"), batch.get("langs"))

    names, predictions, references, loss, skipped = collect_predictions(model, loader, head_predictions, "eval",
                                                                         progress)
    metrics = islr_accuracy(predictions, references) if task == "ISLR" else wer(predictions, references)
    metrics.update(loss=loss, skipped=skipped)
    return EvalResult(metrics, names, predictions, references)


def main(argv=None):
    args = get_task_head_parser().parse_args(argv)
    if args.task not in ("ISLR", "CSLR"):
        sys.exit("task-specific heads exist for --task ISLR (MLP) and CSLR (BiLSTM + CTC)")
    if args.deepspeed:
        sys.exit("train_task_head.py trains in one process; drop --deepspeed")
    seed_everything(args.seed)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / "args.json", vars(args))
    specs = dataset_specs(args)
    backbone = build_model(args, specs[0])
    train = training_set(args, specs)
    vocab = build_vocabulary(train, args.task)
    model = TaskHeadModel(backbone, args.task, args.features, vocab, args.feature_point, args.head_hidden_dim,
                          args.lstm_layers, args.head_dropout, args.label_smoothing, args.freeze_backbone)
    model.to(next(backbone.parameters()).device)
    loaders = {split: eval_loader(args, specs, split) for split in ("dev", "test")}
    if args.eval:  # --finetune was a task-head checkpoint: load the head too
        if not args.finetune:
            sys.exit("--eval needs --finetune CHECKPOINT")
        state = load_checkpoint_file(args.finetune)
        if "head_model" not in state:
            sys.exit(f"{args.finetune} is not a train_task_head.py checkpoint")
        model.vocab = Vocabulary.from_dict(state["vocab"])
        model.load_state_dict(state["head_model"])
        results = {}
        for split, loader in loaders.items():
            result = evaluate_head(model, loader, args.task, args.progress)
            result.save(output_dir, split)
            results[split] = result.metrics
        return report_results(results, output_dir)

    sampler = train_sampler(args, train, 1, 0)
    if len(sampler) == 0:
        sys.exit(f"train split of {args.dataset} has fewer samples than --batch-size {args.batch_size}")
    loader = DataLoader(train, batch_sampler=sampler, collate_fn=collate_samples, num_workers=args.num_workers,
                        generator=torch.Generator().manual_seed(args.seed))
    betas = tuple(args.opt_betas) if args.opt_betas else (0.9, 0.999)
    optimizer = build_optimizer(model, args.lr, args.weight_decay, args.opt_eps, betas)
    scheduler = build_scheduler(optimizer, args.epochs, len(sampler), args.gradient_accumulation_steps,
                                args.warmup_epochs)
    stepper = PlainStepper(model, optimizer, scheduler, args.gradient_accumulation_steps, args.gradient_clipping)
    progress = {"epoch": 0, "batch": 0, "optimizer_step": 0, "skipped": 0, "nonfinite": 0}
    best, best_state, history = None, None, []
    for epoch in range(args.epochs):
        set_epoch(train, epoch)
        sampler.set_epoch(epoch, start_batch=0)
        progress.update(epoch=epoch, batch=0)
        stats = train_one_epoch(stepper, loader, epoch, args, progress)
        dev = evaluate_head(model, loaders["dev"], args.task, args.progress)
        history.append({"epoch": epoch, "train_loss": stats["loss"], **{f"dev_{k}": v for k, v in dev.metrics.items()}})
        print(f"epoch {epoch}: train loss {stats['loss']:.4f}, dev {json.dumps(dev.metrics)}")
        if best is None or is_better(args.task, dev.metrics, best):
            best, best_state = dev.metrics, copy.deepcopy(model.state_dict())
            dev.save(output_dir, "dev")
            atomic_save({"head_model": best_state, "vocab": vocab.to_dict(), "epoch": epoch, "metrics": best,
                         "args": {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool))}},
                        output_dir / "best_checkpoint.pth")
    write_json(output_dir / "history.json", history)
    model.load_state_dict(best_state)
    test = evaluate_head(model, loaders["test"], args.task, args.progress)
    test.save(output_dir, "test")
    return report_results({"dev": best, "test": test.metrics}, output_dir)


if __name__ == "__main__":
    main()
