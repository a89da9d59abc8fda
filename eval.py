"""Evaluate Uni-Sign, or score existing prediction files.

  # evaluate a checkpoint (ours or official) on dev and test; writes <split>_pres.txt, _refs.txt, _metrics.json
  python eval.py --dataset CSL_Daily --task SLT --finetune out/stage3/best_checkpoint.pth --output_dir out/eval

  # score official-format files (prints one JSON object)
  python eval.py --score test_pres.txt test_refs.txt --task SLT --char-level

Every training flag of train.py is accepted (see `python train.py --help`).
"""
import argparse
import json
import sys

from train import get_args_parser, run_evaluation
from utils.prediction_files import score_files


def score_main(argv):
    parser = argparse.ArgumentParser(description="Score official-format prediction/reference files.")
    parser.add_argument("--score", nargs=2, metavar=("PRED_FILE", "REF_FILE"), required=True)
    parser.add_argument("--task", required=True, choices=["SLT", "CSLR", "ISLR"])
    parser.add_argument("--char-level", action="store_true",
                        help="CSL-Daily SLT: the official character-level post-processing before scoring")
    parser.add_argument("--symmetric-punct", action="store_true",
                        help="with --char-level: fold full-width punctuation on both sides (official: refs only)")
    args = parser.parse_args(argv)
    try:
        metrics = score_files(*args.score, args.task, args.char_level, args.symmetric_punct)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    print(json.dumps(metrics, ensure_ascii=False))
    return metrics


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--score" in argv:
        return score_main(argv)
    parser = get_args_parser()
    parser.description = __doc__
    args = parser.parse_args(argv)
    args.eval = True
    return run_evaluation(args)


if __name__ == "__main__":
    main()
