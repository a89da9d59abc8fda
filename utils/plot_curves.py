"""Plot the training curves of one or several runs to a PNG.

    python -m utils.plot_curves out/stage1 [out/stage1_lr1e-4 ...] --out curves.png [--metrics loss,lr,dev_bleu4]
                                [--smooth 0.9] [--labels A,B] [--title T]

A run folder holds the CSV logs written by utils/logger.py RunLogger:
  train_log.csv  step (micro-step), loss, lr, ... one row per training batch;
  epoch_log.csv  step (= epoch), train_loss, samples_per_s, dev_* metrics, one row per epoch.
Every metric gets one subplot with one line per run. A metric name is looked up in the train log first,
then in the epoch log; prefix it with 'train:' or 'epoch:' to choose (e.g. epoch:samples_per_s).
Without --metrics: loss, lr and the dev metrics present (bleu4, wer, top1_acc_pi, loss).
--smooth A (0 <= A < 1) adds a debiased exponential moving average (TensorBoard's) of the train-log
metrics except lr; the raw curve is kept, faint. When a resumed run re-logs steps, the last row of a
step wins and the curve is ordered by step.
"""
import argparse
import csv
import math
import sys
from pathlib import Path

STREAMS = {"train": "train_log.csv", "epoch": "epoch_log.csv"}
X_LABELS = {"train": "step", "epoch": "epoch"}
DEFAULT_TRAIN_METRICS = ("loss", "lr")
DEFAULT_EPOCH_METRICS = ("dev_bleu4", "dev_wer", "dev_top1_acc_pi", "dev_loss")
UNSMOOTHED = {"lr"}


class CurveError(ValueError):
    """Bad input: a missing run or log file, a malformed CSV, an unknown metric. The message names it."""


def read_log(path) -> dict:
    """One CSV log -> {column: (steps, values)} with numeric values only, last row per step, sorted by step."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: log file not found")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0] != "step":
            raise CurveError(f"{path}: not a RunLogger CSV (the first column must be 'step', got {header})")
        rows = {}
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) > len(header):
                raise CurveError(f"{path}, line {line_number}: {len(row)} fields, the header has {len(header)}")
            try:
                step = float(row[0])
            except ValueError:
                raise CurveError(f"{path}, line {line_number}: step {row[0]!r} is not a number") from None
            rows[step] = row  # a resumed run re-logs steps: the last row wins
    columns = {}
    for index, name in enumerate(header[1:], start=1):
        steps, values = [], []
        for step in sorted(rows):
            row = rows[step]
            cell = row[index] if index < len(row) else ""
            try:
                value = float(cell)
            except ValueError:
                continue  # '' (no value this row) or a non-numeric column
            if math.isfinite(value):
                steps.append(step)
                values.append(value)
        if steps:
            columns[name] = (steps, values)
    return columns


def load_run(run_dir) -> dict:
    """{'train': columns or None, 'epoch': columns or None} of one run folder; at least one log must exist."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run folder not found")
    logs = {stream: read_log(run_dir / name) if (run_dir / name).is_file() else None
            for stream, name in STREAMS.items()}
    if all(log is None for log in logs.values()):
        raise FileNotFoundError(f"{run_dir}: neither {STREAMS['train']} nor {STREAMS['epoch']} found")
    return logs


def resolve_metric(metric, runs):
    """'loss' / 'train:loss' / 'epoch:dev_bleu4' -> (stream, column)."""
    if ":" in metric:
        stream, column = metric.split(":", 1)
        if stream not in STREAMS:
            raise CurveError(f"metric {metric!r}: unknown log {stream!r} (use train: or epoch:)")
        return stream, column
    for stream in STREAMS:
        if any(run[stream] is not None and metric in run[stream] for run in runs.values()):
            return stream, metric
    available = sorted({f"{stream}:{column}" for run in runs.values() for stream in STREAMS
                        for column in (run[stream] or {})})
    raise CurveError(f"metric {metric!r} is in no run's logs; available: {', '.join(available) or 'none'}")


def default_metrics(runs) -> list:
    present = {stream: {column for run in runs.values() for column in (run[stream] or {})} for stream in STREAMS}
    metrics = [f"train:{name}" for name in DEFAULT_TRAIN_METRICS if name in present["train"]]
    metrics += [f"epoch:{name}" for name in DEFAULT_EPOCH_METRICS if name in present["epoch"]]
    if not metrics:
        raise CurveError("no default metric (loss, lr, dev_bleu4, dev_wer, dev_top1_acc_pi, dev_loss) in the logs")
    return metrics


def ema(values, weight):
    """TensorBoard's debiased exponential moving average."""
    smoothed, last, debias = [], 0.0, 1.0
    for value in values:
        last = weight * last + (1 - weight) * value
        debias *= weight
        smoothed.append(last / (1 - debias) if debias < 1 else value)
    return smoothed


def run_labels(run_dirs, labels=None) -> list:
    if labels:
        if len(labels) != len(run_dirs):
            raise CurveError(f"{len(labels)} labels for {len(run_dirs)} runs")
        return list(labels)
    names = [Path(run).resolve().name for run in run_dirs]
    return names if len(set(names)) == len(names) else [str(run) for run in run_dirs]


def plot_curves(run_dirs, out, metrics=None, smooth=0.0, labels=None, title=None, dpi=100) -> Path:
    """Plot `metrics` (default: see module doc) of the runs in `run_dirs` to the PNG `out`; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not run_dirs:
        raise CurveError("no run folder given")
    if not 0 <= smooth < 1:
        raise CurveError(f"--smooth must be in [0, 1), not {smooth}")
    names = run_labels(run_dirs, labels)
    runs = {name: load_run(run_dir) for name, run_dir in zip(names, run_dirs)}
    run_paths = dict(zip(names, run_dirs))
    metrics = list(metrics) if metrics else default_metrics(runs)
    resolved = [resolve_metric(metric, runs) for metric in metrics]
    for stream, column in resolved:  # a requested log must exist in every run
        for name, run in runs.items():
            if run[stream] is None:
                raise FileNotFoundError(f"{Path(run_paths[name]) / STREAMS[stream]}: log file not found "
                                        f"(needed for metric '{column}')")

    columns = min(len(resolved), 3)
    rows = math.ceil(len(resolved) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (stream, column) in zip(axes.flat, resolved):
        plotted = 0
        for index, (name, run) in enumerate(runs.items()):
            if column not in run[stream]:
                print(f"note: {Path(run_paths[name]) / STREAMS[stream]} has no column '{column}'", file=sys.stderr)
                continue
            steps, values = run[stream][column]
            colour = colours[index % len(colours)]
            marker = "o" if stream == "epoch" and len(steps) <= 30 else None
            if smooth > 0 and stream == "train" and column not in UNSMOOTHED:
                axis.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
                axis.plot(steps, ema(values, smooth), color=colour, label=name, linewidth=1.5)
            else:
                axis.plot(steps, values, color=colour, label=name, marker=marker, markersize=3, linewidth=1.3)
            plotted += 1
        axis.set_title(column if stream == "train" or column.startswith("dev_") else f"{column} (per epoch)")
        axis.set_xlabel(X_LABELS[stream])
        if stream == "epoch":
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if column == "lr":
            axis.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if plotted:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(resolved):]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    plt.close(figure)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (train.py --output_dir)")
    parser.add_argument("--out", default="curves.png", help="output PNG (default: %(default)s)")
    parser.add_argument("--metrics", default=None, help="comma-separated, e.g. loss,lr,dev_bleu4")
    parser.add_argument("--smooth", type=float, default=0.0, help="EMA weight for step metrics, e.g. 0.9")
    parser.add_argument("--labels", default=None, help="comma-separated legend names, one per run")
    parser.add_argument("--title", default=None)
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args(argv)
    metrics = [metric.strip() for metric in args.metrics.split(",") if metric.strip()] if args.metrics else None
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
    try:
        out = plot_curves(args.runs, args.out, metrics, args.smooth, labels, args.title, args.dpi)
    except (FileNotFoundError, CurveError) as error:
        sys.exit(f"plot_curves: {error}")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
