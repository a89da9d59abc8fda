"""Evaluate Uni-Sign, or score existing prediction files.

  # evaluate a checkpoint (ours or official) on dev and test; writes <split>_pres.txt, _refs.txt, _metrics.json
  python eval.py --dataset CSL_Daily --task SLT --finetune out/stage3/best_checkpoint.pth --output_dir out/eval

  # score official-format files (prints one JSON object); --bleurt-checkpoint DIR adds BLEURT (English SLT)
  python eval.py --score test_pres.txt test_refs.txt --task SLT --char-level

  # ISLR top-K / benchmark subsets (utils/islr_eval.py; any of its flags routes there)
  python eval.py --dataset WLASL --task ISLR --finetune ckpt.pth --topk 1,3,5,7,10 --topk-mode rank \
      --class-lists WLASL_v0.3.json --subsets 100,300,1000,2000 [--constrained]

Every training flag of train.py is accepted (see `python train.py --help`).
"""
import argparse
import json
import sys

from runs.errors import user_errors
from train import get_args_parser, run_evaluation
from utils import islr_eval
from utils.bleurt import BleurtUnavailable, add_bleurt_to_run, bleurt_for_files
from utils.prediction_files import score_files


def score_main(argv):
    parser = argparse.ArgumentParser(description="Score official-format prediction/reference files.")
    parser.add_argument("--score", nargs=2, metavar=("PRED_FILE", "REF_FILE"), required=True)
    parser.add_argument("--task", required=True, choices=["SLT", "CSLR", "ISLR"])
    parser.add_argument("--char-level", action="store_true",
                        help="CSL-Daily SLT: the official character-level post-processing before scoring")
    parser.add_argument("--symmetric-punct", action="store_true",
                        help="with --char-level: fold full-width punctuation on both sides (official: refs only)")
    parser.add_argument("--bleurt-checkpoint", default=None, help="local BLEURT checkpoint: add BLEURT (SLT)")
    args = parser.parse_args(argv)
    try:
        metrics = score_files(*args.score, args.task, args.char_level, args.symmetric_punct)
        if args.bleurt_checkpoint:
            metrics.update(bleurt_for_files(*args.score, args.bleurt_checkpoint))
    except BleurtUnavailable as error:
        print(error, file=sys.stderr)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps(metrics, ensure_ascii=False))
    return metrics


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--score" in argv:
        return score_main(argv)
    if any(arg.split("=")[0] in islr_eval.FLAGS for arg in argv):
        return islr_eval.main(argv)
    parser = get_args_parser()
    parser.description = __doc__
    parser.add_argument("--bleurt-checkpoint", default=None, help="local BLEURT checkpoint: add BLEURT (SLT)")
    args = parser.parse_args(argv)
    args.eval = True
    with user_errors(args.debug):
        results = run_evaluation(args)
    if args.bleurt_checkpoint:
        try:
            for split, value in add_bleurt_to_run(args.output_dir, args.bleurt_checkpoint).items():
                results[split]["bleurt"] = value
        except BleurtUnavailable as error:
            print(error, file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
