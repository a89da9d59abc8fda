"""Evaluate Uni-Sign, or score existing prediction files.

  # evaluate a checkpoint (ours or official) on dev and test; writes <split>_pres.txt, _refs.txt, _metrics.json
  python eval.py --dataset CSL_Daily --task SLT --finetune out/stage3/best_checkpoint.pth --output_dir out/eval

  # score official-format files (prints one JSON object); --bleurt-checkpoint DIR adds BLEURT (English SLT)
  python eval.py --score test_pres.txt test_refs.txt --task SLT --char-level

  # ISLR top-K / benchmark subsets (evaluation/islr_topk.py; any of its flags routes there)
  python eval.py --dataset WLASL --task ISLR --finetune ckpt.pth --topk 1,3,5,7,10 --topk-mode rank \
      --class-lists WLASL_v0.3.json --subsets 100,300,1000,2000 [--constrained]

Every training flag of train.py is accepted (see `python train.py --help`).
"""
import argparse
import json
import sys
from pathlib import Path

from datasets.registry import get_dataset_spec, load_split
from datasets.tasks import TASK_NAMES
from evaluation import islr_topk
from evaluation.bleurt import BleurtUnavailable, add_bleurt_to_run, bleurt_for_files
from evaluation.prediction_files import score_files
from runs.arguments import get_args_parser
from runs.building import build_model, rgb_dataset_settings, seed_everything
from runs.errors import user_errors
from runs.folder import owned_run_folder
from runs.training import run_evaluation


def score_main(argv):
    parser = argparse.ArgumentParser(description="Score official-format prediction/reference files.")
    parser.add_argument("--score", nargs=2, metavar=("PRED_FILE", "REF_FILE"), required=True)
    parser.add_argument("--task", required=True, choices=TASK_NAMES)
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


def islr_topk_parser() -> argparse.ArgumentParser:
    parser = get_args_parser()
    parser.description = islr_topk.__doc__
    parser.set_defaults(task="ISLR")
    return islr_topk.add_arguments(parser)


def islr_topk_main(argv):
    """ISLR top-K accuracy and benchmark subsets of one checkpoint (evaluation/islr_topk.py)."""
    args = islr_topk_parser().parse_args(argv)
    if args.task != "ISLR":
        sys.exit("ISLR top-K evaluation needs --task ISLR")
    if not args.finetune:
        sys.exit("ISLR top-K evaluation needs --finetune CHECKPOINT")
    seed_everything(args.seed)
    spec = get_dataset_spec(args.dataset, args.dataset_config, args.labels_dir, args.pose_dir, args.rgb_dir)
    vocabulary = islr_topk.dataset_vocabulary(spec)
    try:
        if args.class_lists:
            benchmark, classes = islr_topk.read_class_list(args.class_lists)
            subsets = islr_topk.benchmark_subsets(benchmark, islr_topk.align_classes(classes, vocabulary), args.subsets)
        else:
            if args.subsets:
                sys.exit("--subsets needs --class-lists FILE")
            subsets = {islr_topk.ALL_CLASSES: vocabulary}
    except (islr_topk.ClassListError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    settings = islr_topk.IslrEvalSettings(
        ks=args.topk, mode=args.topk_mode, constrained=args.constrained, length_penalty=args.length_penalty,
        chunk_size=args.rank_chunk_size, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, max_length=args.max_length, seed=args.seed, skip_policy=args.skip_policy,
        num_workers=args.num_workers, progress=args.progress, rgb=rgb_dataset_settings(args, spec, args.split),
    )
    try:
        settings.validate()
    except ValueError as error:
        sys.exit(f"error: {error}")
    with user_errors(args.debug), owned_run_folder(args.output_dir, training=False):
        model = build_model(args, spec)
        entries = load_split(spec, args.split)
        results, records = islr_topk.evaluate_topk(model, entries, spec.pose_dir_for(args.split), subsets, settings)
        results.update(dataset=args.dataset, split=args.split, checkpoint=str(args.finetune),
                       class_list=str(args.class_lists) if args.class_lists else None)
        output_dir = Path(args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / f"{args.split}_islr_topk.json").write_text(
            json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with open(output_dir / f"{args.split}_islr_predictions.jsonl", "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    islr_topk.print_results(results, args.table_format)
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--score" in argv:
        return score_main(argv)
    if any(arg.split("=")[0] in islr_topk.FLAGS for arg in argv):
        return islr_topk_main(argv)
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
