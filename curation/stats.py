"""Corpus statistics and histograms of clip durations and text lengths (the paper's Figure 2).

    python -m curation.stats LABELS.json [--manifest M] [--video-dir DIR] [--out DIR]

Text length counts CJK characters plus words of other scripts (`curation.segment.text_tokens`); the
vocabulary is the set of those units. Clip durations come from the curation manifest (default: manifest.jsonl
beside the labels), else from the clip videos (default: rgb_format/ beside the labels); clips with neither
are counted but have no duration. With --out, stats.json and the two histogram PNGs are written there.
"""
import argparse
import json
import math
from pathlib import Path

from curation.manifest import MANIFEST_NAME, RGB_DIR, read_manifest
from curation.segment import text_tokens

DURATION_PNG = "duration_histogram.png"
TEXT_LENGTH_PNG = "text_length_histogram.png"
STATS_JSON = "stats.json"


def compute_stats(durations, texts) -> dict:
    """Clip count, hours, mean duration, mean text length, vocabulary size (durations may hold None)."""
    known = [duration for duration in durations if duration is not None]
    tokens = [text_tokens(text) for text in texts]
    lengths = [len(units) for units in tokens]
    return {
        "clips": len(texts),
        "clips_with_duration": len(known),
        "hours": sum(known) / 3600,
        "mean_duration_s": sum(known) / len(known) if known else None,
        "min_duration_s": min(known, default=None),
        "max_duration_s": max(known, default=None),
        "mean_text_length": sum(lengths) / len(lengths) if lengths else None,
        "max_text_length": max(lengths, default=None),
        "vocabulary_size": len({unit for units in tokens for unit in units}),
    }


def format_table(stats) -> str:
    """The statistics as an aligned two-column text table."""
    def show(value, unit=""):
        if value is None:
            return "n/a"
        return f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"

    rows = [
        ("clips", show(stats["clips"])),
        ("hours", f"{stats['hours']:.4f}"),
        ("mean duration", show(stats["mean_duration_s"], " s")),
        ("min / max duration", f"{show(stats['min_duration_s'], ' s')} / {show(stats['max_duration_s'], ' s')}"),
        ("mean text length", show(stats["mean_text_length"])),
        ("vocabulary size", show(stats["vocabulary_size"])),
    ]
    if stats["clips_with_duration"] != stats["clips"]:
        rows.insert(1, ("clips with a duration", show(stats["clips_with_duration"])))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def bin_width(top, bins=40, integer=False):
    """The smallest 1-2-5 step (0.1, 0.2, 0.5, 1, 2, ...) that covers [0, top] in at most `bins` bins."""
    steps = [mantissa * 10.0 ** exponent for exponent in range(-1, 7) for mantissa in (1, 2, 5)]
    step = next(step for step in steps if step * bins >= top)
    return max(1, round(step)) if integer else step


def _histogram(values, width, xlabel, title, mean_unit, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(values, default=1)
    bins = [index * width for index in range(math.ceil(top / width) + 2)]
    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=100)
    axis.hist(values, bins=bins, color="#4878a8", edgecolor="white", linewidth=0.5)
    if values:
        mean = sum(values) / len(values)
        axis.axvline(mean, color="#c03030", linestyle="--", linewidth=1, label=f"mean {mean:.1f}{mean_unit}")
        axis.legend(frameon=False)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("clips")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_histograms(durations, texts, out_dir) -> list:
    """Duration and text-length histogram PNGs in out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    known = [duration for duration in durations if duration is not None]
    lengths = [len(text_tokens(text)) for text in texts]
    _histogram(known, bin_width(max(known, default=1)), "duration (s)", f"Clip duration ({len(known)} clips)", " s",
               out_dir / DURATION_PNG)
    _histogram(lengths, bin_width(max(lengths, default=1), integer=True), "text length (characters / words)",
               f"Text length ({len(lengths)} clips)", "", out_dir / TEXT_LENGTH_PNG)
    return [out_dir / DURATION_PNG, out_dir / TEXT_LENGTH_PNG]


def write_report(out_dir, durations, texts) -> dict:
    """stats.json and both histograms in out_dir; returns the statistics."""
    stats = compute_stats(durations, texts)
    write_histograms(durations, texts, out_dir)
    (Path(out_dir) / STATS_JSON).write_text(json.dumps(stats, indent=1), encoding="utf-8")
    return stats


def manifest_durations(manifest_path) -> dict:
    """Clip name -> duration (s) from the latest 'done' record of each video in a curation manifest."""
    return {clip["name"]: clip["duration"] for record in read_manifest(manifest_path).values()
            if record["status"] == "done" for clip in record["clips"]}


def video_duration(path):
    """Seconds of a video file by its frame count and rate, or None when it cannot be read."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames / fps if frames > 0 and fps > 0 else None


def clip_durations(entries, manifest_path, video_dir) -> list:
    """Duration per label entry: from the manifest when it lists the clip, else from its video file."""
    known = manifest_durations(manifest_path) if Path(manifest_path).is_file() else {}
    durations = []
    for entry in entries:
        duration = known.get(entry.name)
        if duration is None and (Path(video_dir) / entry.video_path).is_file():
            duration = video_duration(Path(video_dir) / entry.video_path)
        durations.append(duration)
    return durations


def main(argv=None):
    from datasets.formats import DataFormatError, read_csl_news_labels

    parser = argparse.ArgumentParser(description="Statistics of a CSL-News-style label file (paper Figure 2).")
    parser.add_argument("labels", help="CSL-News JSON labels (list of {video, pose, text})")
    parser.add_argument("--manifest", default=None, help=f"curation manifest (default: {MANIFEST_NAME} beside the labels)")
    parser.add_argument("--video-dir", default=None, help=f"clip videos (default: {RGB_DIR}/ beside the labels)")
    parser.add_argument("--out", default=None, help="write stats.json and the histogram PNGs here")
    args = parser.parse_args(argv)
    labels = Path(args.labels)
    try:
        entries = read_csl_news_labels(labels)
    except DataFormatError as error:
        raise SystemExit(f"error: {error}") from error
    durations = clip_durations(entries, args.manifest or labels.parent / MANIFEST_NAME,
                               args.video_dir or labels.parent / RGB_DIR)
    texts = [entry.text for entry in entries]
    stats = write_report(args.out, durations, texts) if args.out else compute_stats(durations, texts)
    print(format_table(stats))
    if args.out:
        print(f"wrote {Path(args.out) / STATS_JSON}, {DURATION_PNG} and {TEXT_LENGTH_PNG}")


if __name__ == "__main__":
    main()
