"""The command line of train.py (and of eval.py and train_task_head.py, which extend it).

Flag names follow the official code; `resolve_accumulation` turns the batch flags into micro-batches per step.
"""
import argparse

from datasets.formats import DEFAULT_MAX_FRAMES
from datasets.tasks import TASK_NAMES
from engine import AUTOCAST_DTYPES
from models.language_model import DEFAULT_LM_PATH
from models.pose_encoder import POSE_PRESETS, SUB_POSE_GROUPS
from runs.errors import UsageError

DEFAULT_ACCUMULATION = 8  # the official default of --gradient-accumulation-steps
TRAIN_DESCRIPTION = """Train Uni-Sign: stage 1 pose pre-training, stage 2 RGB-pose pre-training, stage 3 fine-tuning.

One generative objective everywhere; the task only chooses the target (SLT: sentence, CSLR: glosses,
ISLR: word) and the metric that picks the best checkpoint. Flag names follow the official code.

  python train.py --dataset CSL_News --task SLT --output_dir out/stage1            # stage 1
  python train.py --dataset CSL_Daily --task SLT --finetune out/stage1/best_checkpoint.pth \\
      --batch-size 8 --gradient-accumulation-steps 1 --output_dir out/stage3          # stage 3
"""


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=TRAIN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    group.add_argument("--loss-chunk-tokens", type=int, default=0,
                       help="memory-lean loss: compute the LM head and cross-entropy over chunks of N target tokens, "
                            "recomputing each chunk's logits in the backward pass, so (batch, length, vocabulary) "
                            "logits are never held at once (0: off, the official full logits; 256 is a good value "
                            "for mT5's 250k vocabulary). Same loss and gradients up to rounding")
    group.add_argument("--prune-vocabulary", action="store_true",
                       help="keep only the tokens of the training splits' targets (and the prompts) in mT5's "
                            "embedding and LM head (250k -> a few thousand rows; models/vocabulary.py); the map back "
                            "to the original ids is saved with the model. A pruned --finetune stays pruned")
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
    group.add_argument("--init-pose-encoder", default="",
                       help="start the pose encoder from a CCL-SLR pre-training checkpoint (train_ccl.py) or another "
                            "Uni-Sign checkpoint (after --finetune)")

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
    group.add_argument("--fused-adamw", default="on", choices=["on", "off"],
                       help="on: torch's fused AdamW kernel (about 4x faster optimizer steps on a CPU, the same update "
                            "up to rounding); off: torch's default AdamW, as the official run")
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
    group.add_argument("--packed-decoding", default="on", choices=["on", "off"],
                       help="beam search on a CPU in fp32 through decoder and LM-head weights packed for MKL's "
                            "GEMM, kept from batch to batch while the weights are unchanged: the same products "
                            "summed in another order (~1e-6 relative), 2x faster per decoding step at mT5-Base, "
                            "1.7 GB of packs while evaluating there; off: torch's linear as the official code "
                            "(docs/performance.md). Default: %(default)s")
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
