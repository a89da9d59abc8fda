"""Padding of random vs length-grouped batches (datasets/samplers.py) on real and modelled length distributions.

Padding fraction = padded frames / all frames of the padded batches (each batch padded to its longest
sample, lengths capped at --max-length as the dataset does). Averaged over --epochs epochs of one process.

    python -m bench.padding                               # generates the default synthetic corpus in a temp dir
    python -m bench.padding --data data/synthetic --json out/bench/padding.json

Length sets:
  synthetic news / sentences: the frame counts of the synthetic corpus's train files (read from the pose files).
  CSL-Daily-like (gloss model): one clip per CSL-Daily train label (the official label files), frames =
      fps * (rest + per_gloss * number_of_glosses) * tempo, tempo ~ log-normal(sigma 0.15), with rest = 1.0 s
      and per_gloss chosen so that the mean clip lasts 23 h / 20,654 clips = 4.01 s (CSL-Daily: 23 hours,
      Uni-Sign paper Table 1; 18,401 + 1,077 + 1,176 clips in the official label files). fps 25 by default.
      rest, tempo spread and fps are assumptions (see docs/training_at_scale.md).
  CSL-Daily-like (log-normal): when the label file is absent: 18,401 log-normal lengths with the same mean
      (4.01 s * fps) and log-spread (0.30) as the gloss model.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from datasets.formats import read_labels  # noqa: E402
from datasets.samplers import (  # noqa: E402
    LengthGroupedBatchSampler,
    ResumableRandomBatchSampler,
    frame_counts,
    padding_stats,
)

CSL_DAILY_HOURS = 23.0  # Uni-Sign paper, Table 1
CSL_DAILY_CLIPS = 18401 + 1077 + 1176  # official label files: train + dev + test
CSL_DAILY_MEAN_SECONDS = CSL_DAILY_HOURS * 3600 / CSL_DAILY_CLIPS  # 4.01 s
REST_SECONDS = 1.0  # assumption: hands-down time at the start and end of a clip
TEMPO_SIGMA = 0.15  # assumption: per-clip signing-speed spread (log-normal)
LOG_SPREAD = 0.30  # log-std of the gloss model's lengths (measured), used by the log-normal fallback
DEFAULT_CSL_LABELS = REPO_ROOT.parent / "shared" / "official_labels" / "CSL_Daily" / "labels.train"


def csl_daily_gloss_lengths(label_file, fps, seed=0):
    """Modelled frame counts for the clips of a CSL-Daily label file, from their gloss counts."""
    glosses = np.array([max(1, len(entry.gloss.split())) for entry in read_labels(label_file)])
    per_gloss = (CSL_DAILY_MEAN_SECONDS - REST_SECONDS) / glosses.mean()
    tempo = np.random.default_rng(seed).lognormal(-TEMPO_SIGMA ** 2 / 2, TEMPO_SIGMA, len(glosses))
    return np.maximum(1, np.round(fps * (REST_SECONDS + per_gloss * glosses) * tempo)).astype(int)


def csl_daily_lognormal_lengths(fps, count=18401, seed=0):
    mean = CSL_DAILY_MEAN_SECONDS * fps
    values = np.random.default_rng(seed).lognormal(np.log(mean) - LOG_SPREAD ** 2 / 2, LOG_SPREAD, count)
    return np.maximum(1, np.round(values)).astype(int)


def synthetic_lengths(data_dir, max_length):
    """{name: lengths} for the synthetic corpus's news and sentence train sets (cached beside the labels)."""
    data_dir = Path(data_dir)
    sets = {"synthetic news (train)": ("news", "labels.json"),
            "synthetic sentences (train)": ("sentences", "labels.train")}
    found = {}
    for name, (subset, label_name) in sets.items():
        labels = data_dir / subset / label_name
        if labels.is_file():
            cache = labels.with_name(labels.name + ".frames.json")
            found[name] = frame_counts(read_labels(labels), data_dir / subset / "pose_format", max_length,
                                       cache_path=cache)
    return found


def measure(lengths, batch_size, max_length, epochs, seed, mega_batch_mult):
    """Padding fractions of random and length-grouped batching, over `epochs` epochs."""
    lengths = np.minimum(np.asarray(lengths), max_length)
    samplers = {
        "random": ResumableRandomBatchSampler(len(lengths), batch_size, seed=seed),
        "grouped": LengthGroupedBatchSampler(lengths, batch_size, seed=seed, mega_batch_mult=mega_batch_mult),
    }
    result = {}
    for name, sampler in samplers.items():
        totals = {"real": 0, "total": 0}
        for epoch in range(epochs):
            stats = padding_stats(sampler.batches(epoch), lengths)
            totals["real"] += stats["real"]
            totals["total"] += stats["total"]
        result[name] = {"fraction": 1 - totals["real"] / totals["total"], "frames": totals["total"],
                        "real_frames": totals["real"]}
    # frames the pose encoder processes per real frame: grouped / random
    result["frames_ratio"] = ((result["grouped"]["frames"] / result["grouped"]["real_frames"])
                              / (result["random"]["frames"] / result["random"]["real_frames"]))
    return result


def describe(lengths, max_length):
    lengths = np.minimum(np.asarray(lengths), max_length)
    p5, p50, p95 = np.percentile(lengths, [5, 50, 95])
    return {"samples": int(len(lengths)), "mean": float(lengths.mean()), "p5": float(p5), "median": float(p50),
            "p95": float(p95), "max": int(lengths.max())}


def format_table(rows) -> str:
    lines = ["| length set | samples | frames mean (p5-p95) | batch | padding random | padding grouped | "
             "padded frames saved | frames processed (grouped / random) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        d, r = row["lengths"], row["result"]
        saved = 1 - (r["grouped"]["frames"] - r["grouped"]["real_frames"]) / max(
            1, r["random"]["frames"] - r["random"]["real_frames"])
        lines.append(f"| {row['name']} | {d['samples']} | {d['mean']:.1f} ({d['p5']:.0f}-{d['p95']:.0f}) | "
                     f"{row['batch_size']} | {100 * r['random']['fraction']:.1f}% | "
                     f"{100 * r['grouped']['fraction']:.1f}% | {100 * saved:.0f}% | {r['frames_ratio']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="synthetic corpus root (default: generate the default-size corpus in a temp dir)")
    parser.add_argument("--size", default="default", choices=["tiny", "small", "default"],
                        help="corpus size when generating")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3, help="epochs averaged per measurement")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--mega-batch-mult", type=int, default=50)
    parser.add_argument("--csl-daily-labels", default=str(DEFAULT_CSL_LABELS),
                        help="CSL-Daily train label file for the gloss model (default: %(default)s; "
                             "the log-normal model is used when it is absent)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate assumed for CSL-Daily-like lengths")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    length_sets = {}
    with tempfile.TemporaryDirectory() as temporary:
        data = args.data
        if data is None:
            from datasets.synthetic import generate_corpus

            data = Path(temporary) / "synthetic"
            print(f"generating the {args.size} synthetic corpus in {data} ...", flush=True)
            generate_corpus(data, size=args.size)
        length_sets.update(synthetic_lengths(data, args.max_length))
    if not length_sets:
        sys.exit(f"{args.data}: no synthetic corpus found (news/labels.json or sentences/labels.train)")
    if Path(args.csl_daily_labels).is_file():
        length_sets[f"CSL-Daily-like, gloss model ({args.fps:g} fps)"] = csl_daily_gloss_lengths(
            args.csl_daily_labels, args.fps, args.seed)
    else:
        print(f"{args.csl_daily_labels} not found: CSL-Daily-like lengths from the log-normal model")
        length_sets[f"CSL-Daily-like, log-normal ({args.fps:g} fps)"] = csl_daily_lognormal_lengths(
            args.fps, seed=args.seed)

    rows = []
    for name, lengths in length_sets.items():
        for batch_size in args.batch_sizes:
            rows.append({"name": name, "batch_size": batch_size, "lengths": describe(lengths, args.max_length),
                         "result": measure(lengths, batch_size, args.max_length, args.epochs, args.seed,
                                           args.mega_batch_mult)})
    print(f"max_length {args.max_length}, mega_batch_mult {args.mega_batch_mult}, {args.epochs} epochs, "
          f"seed {args.seed}")
    print(format_table(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
