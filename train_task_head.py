"""Task-specific fine-tuning baselines (paper Table 7): Uni-Sign features + an MLP (ISLR) or BiLSTM-CTC (CSLR) head.

Same datasets, registry, flags and output layout as train.py (args.json, results.json {"dev", "test"},
<split>_pres.txt / <split>_refs.txt / <split>_metrics.json, best_checkpoint.pth), plus:

  --features sign|lm_enc      F_sign (temporal-encoder output) or F_lm,enc (mT5 encoder output)
  --feature-point pre_proj|post_proj   where F_sign is read (default: before pose_proj, see models/task_heads.py)
  --head-hidden-dim N --lstm-layers N --head-dropout P --freeze-backbone

Training is train.py's loop (runs.training.Run): --resume, --save-every-steps, --nonfinite, the run logs and DeepSpeed
(--deepspeed --zero_stage N --dtype bf16, or the deepspeed launcher) work the same way. best_checkpoint.pth holds
the whole model (backbone + head) under "model", the backbone's config, the vocabulary and the head's settings
("task_head"); `--eval --finetune best_checkpoint.pth` re-evaluates it.

  python train_task_head.py --dataset MSASL --task ISLR --features lm_enc \\
      --finetune out/stage1_youtube_asl/best_checkpoint.pth --output_dir out/t7_msasl_lm_enc
  python train_task_head.py --dataset CSL_Daily --task CSLR --features sign \\
      --finetune out/stage1_csl_news/best_checkpoint.pth --output_dir out/t7_csl_sign
"""
from pathlib import Path

import torch

from datasets.sign_dataset import model_inputs
from datasets.tasks import get_task
from engine import EvalResult, collect_predictions
from evaluation.prediction_files import SCORERS
from models.task_heads import FEATURE_POINTS, FEATURES, TaskHeadModel, Vocabulary
from models.uni_sign import UniSign
from runs.arguments import get_args_parser
from runs.building import (build_model, checkpoint_payload, dataset_specs, eval_loader, head_vocabulary,
                           is_main_process, model_config, seed_everything)
from runs.errors import UsageError, user_errors
from runs.folder import owned_run_folder
from runs.training import Run, report_results, run_training
from utils.checkpoint import load_checkpoint_file


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


def head_settings(args) -> dict:
    """TaskHeadModel's keyword arguments besides backbone and vocabulary (stored in the checkpoints)."""
    return {"task": args.task, "features": args.features, "feature_point": args.feature_point,
            "hidden_dim": args.head_hidden_dim, "lstm_layers": args.lstm_layers, "dropout": args.head_dropout,
            "label_smoothing": args.label_smoothing, "freeze_backbone": args.freeze_backbone}


def evaluate_head(model, loader, task, progress=False) -> EvalResult:
    """Predictions of the head on a split + evaluation.metrics scores (ISLR top-1 P-I/P-C, CSLR WER)."""
    def loss_and_predictions(batch):
        inputs = model_inputs(batch)
        return model(**inputs, labels=batch["labels"]).loss, model.predict(**inputs)

    names, predictions, references, loss, skipped = collect_predictions(model, loader, loss_and_predictions, "eval",
                                                                         progress)
    metrics = SCORERS[get_task(task).scoring](predictions, references)
    metrics.update(loss=loss, skipped=skipped)
    return EvalResult(metrics, names, predictions, references)


class TaskHeadRun(Run):
    """runs.training.Run with a TaskHeadModel: same loop, resume, checkpoints, logs and DeepSpeed; head metrics."""

    def make_model(self):
        backbone = build_model(self.args, self.specs[0])
        self.vocab = head_vocabulary(self.args, self.specs)
        model = TaskHeadModel(backbone, vocab=self.vocab, **head_settings(self.args))
        return model.to(next(backbone.parameters()).device)

    def payload(self, epoch, metrics=None) -> dict:
        """The backbone's payload (format, config, args) with the whole model's weights, vocabulary and head."""
        return {**checkpoint_payload(self.model.backbone, self.args, epoch, metrics), "model": self.model.state_dict(),
                "vocab": self.vocab.to_dict(), "task_head": head_settings(self.args)}

    def evaluate(self, split):
        return evaluate_head(self.model, self.eval_loaders[split], self.args.task, self.args.progress)

    def load_best(self):
        self.model.load_state_dict(load_checkpoint_file(self.output_dir / "best_checkpoint.pth")["model"])

    def save_best_model(self, results):
        """A head model is not a UniSign: its best_checkpoint.pth is what `--eval --finetune` reads."""


def load_task_head_model(args, spec, path) -> TaskHeadModel:
    """A train_task_head.py checkpoint (best_checkpoint.pth, checkpoint.pth) as a TaskHeadModel."""
    state = load_checkpoint_file(path)
    if "task_head" not in state:
        raise UsageError(f"{path} is not a train_task_head.py checkpoint (no 'task_head' entry); "
                         "evaluate Uni-Sign checkpoints with train.py --eval")
    backbone = UniSign.from_lm_path(model_config(args, spec, state), args.lm_path)
    model = TaskHeadModel(backbone, vocab=Vocabulary.from_dict(state["vocab"]), **state["task_head"])
    model.load_state_dict(state["model"])
    return model.to("cuda" if torch.cuda.is_available() else "cpu")


def run_task_head_evaluation(args) -> dict:
    if not args.finetune:
        raise UsageError("--eval needs --finetune CHECKPOINT (a train_task_head.py best_checkpoint.pth)")
    with owned_run_folder(args.output_dir, training=False, is_main=is_main_process()):
        seed_everything(args.seed)
        specs = dataset_specs(args)
        model = load_task_head_model(args, specs[0], args.finetune)
        output_dir = Path(args.output_dir)
        results = {}
        for split in ("dev", "test"):
            result = evaluate_head(model, eval_loader(args, specs, split, model.target_encoder), model.task, args.progress)
            result.save(output_dir, split)
            results[split] = result.metrics
        return report_results(results, output_dir)


def main(argv=None):
    args = get_task_head_parser().parse_args(argv)
    with user_errors(args.debug):
        if get_task(args.task).head is None:
            raise UsageError("task-specific heads exist for --task ISLR (MLP) and CSLR (BiLSTM + CTC)")
        return run_task_head_evaluation(args) if args.eval else run_training(args, TaskHeadRun)


if __name__ == "__main__":
    main()
