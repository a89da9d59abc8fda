"""Train Uni-Sign: stage 1 pose pre-training, stage 2 RGB-pose pre-training, stage 3 fine-tuning.

One generative objective everywhere; the task only chooses the target (SLT: sentence, CSLR: glosses,
ISLR: word) and the metric that picks the best checkpoint. Flag names follow the official code.

  python train.py --dataset CSL_News --task SLT --output_dir out/stage1            # stage 1
  python train.py --dataset CSL_Daily --task SLT --finetune out/stage1/best_checkpoint.pth \\
      --batch-size 8 --gradient-accumulation-steps 1 --output_dir out/stage3          # stage 3
"""
import shlex
import sys

from runs.arguments import get_args_parser
from runs.errors import user_errors
from runs.training import run_evaluation, run_training


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    with user_errors(args.debug):
        if args.eval:
            return run_evaluation(args)
        return run_training(args, command=shlex.join(["python", "train.py", *argv]))


if __name__ == "__main__":
    main()
