"""CCL-SLR pre-training and ISLR fine-tuning on train.py's engine (see `python train_ccl.py --help`)."""
import shlex
import sys

from runs.ccl import CCLFinetuneRun, CCLPretrainRun, run_ccl_evaluation
from runs.ccl_arguments import get_ccl_args_parser
from runs.errors import user_errors
from runs.training import run_training

RUNS = {"pretrain": CCLPretrainRun, "finetune": CCLFinetuneRun}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_ccl_args_parser().parse_args(argv)
    with user_errors(args.debug):
        if args.eval:
            return run_ccl_evaluation(args)
        return run_training(args, RUNS[args.ccl_stage], shlex.join(["python", "train_ccl.py", *argv]))


if __name__ == "__main__":
    main()
