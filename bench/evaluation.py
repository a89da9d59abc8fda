"""Evaluation time per batch: the official two passes (forward for the loss, then generate) vs one encoder pass
(UniSign.evaluate_batch, what engine.evaluate runs), interleaved in one process, with the outputs compared.

    python -m bench.evaluation                                  # tiny synthetic corpus + embedded LM, 1 thread
    python -m bench.evaluation --size default --lm-width 256 --batches 12 --json out/bench/evaluation.json

Prints the median and the spread (min - max) of seconds per batch of each path, the speed-up, and whether the
losses and beams are identical. Model: the quickstart's (tiny pose preset, the embedded LM's architecture at
--lm-width), random weights; dev clips of the synthetic sentences.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from datasets.formats import read_labels  # noqa: E402
from datasets.sign_dataset import SignDataset, batch_to_device, collate_samples  # noqa: E402
from datasets.synthetic import generate_corpus  # noqa: E402
from engine import write_json  # noqa: E402
from models.language_model import EmbeddedLMConfig, build_embedded_lm  # noqa: E402
from models.pose_encoder import PoseEncoderConfig  # noqa: E402
from models.uni_sign import UniSign, UniSignConfig  # noqa: E402
from models.pose_encoder import POSE_PRESETS  # noqa: E402


def build(work_dir, size, lm_width):
    """(model in eval mode, dev batches) on a freshly generated synthetic corpus."""
    generate_corpus(work_dir / "data", seed=0, size=size)
    sentences = work_dir / "data" / "sentences"
    texts = [entry.text for entry in read_labels(sentences / "labels.train")]
    lm_config = EmbeddedLMConfig(vocab_size=300, d_model=lm_width, d_kv=lm_width // 8, d_ff=2 * lm_width)
    lm_dir = build_embedded_lm(texts, work_dir / "lm", lm_config)
    torch.manual_seed(0)
    model = UniSign.from_lm_path(UniSignConfig(lang="English", pose=PoseEncoderConfig(**POSE_PRESETS["tiny"])), lm_dir)
    dataset = SignDataset(read_labels(sentences / "labels.dev"), sentences / "pose_format")
    return model.eval(), dataset


def two_passes(model, batch, beams, tokens):
    with torch.no_grad():
        loss = model(batch["parts"], batch["frame_mask"], batch["labels"]).loss
        texts = model.generate(batch["parts"], batch["frame_mask"], num_beams=beams, max_new_tokens=tokens)
    return loss.item(), texts


def one_pass(model, batch, beams, tokens):
    output, texts = model.evaluate_batch(batch["parts"], batch["frame_mask"], batch["labels"], num_beams=beams,
                                         max_new_tokens=tokens)
    return output.loss.item(), texts


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def measure(model, dataset, batch_size, batches, beams, tokens) -> dict:
    """Interleaved: each batch runs both paths, in alternating order."""
    seconds = {"two_passes": [], "one_pass": []}
    identical = True
    for index in range(batches):
        start = (index * batch_size) % max(1, len(dataset) - batch_size + 1)
        batch = batch_to_device(collate_samples([dataset[i] for i in range(start, start + batch_size)],
                                                   model.target_encoder), "cpu")
        order = [("two_passes", two_passes), ("one_pass", one_pass)][:: 1 if index % 2 else -1]
        results = {}
        for name, path in order:
            elapsed, results[name] = timed(path, model, batch, beams, tokens)
            seconds[name].append(elapsed)
        identical &= results["two_passes"] == results["one_pass"]
    summary = {name: {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values)}
               for name, values in seconds.items()}
    summary["speedup"] = summary["two_passes"]["median_s"] / summary["one_pass"]["median_s"]
    summary["identical_outputs"] = identical
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "default"], help="synthetic corpus size")
    parser.add_argument("--lm-width", type=int, default=256, help="embedded LM d_model (quickstart: 256)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=8, help="batches timed per path")
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as work_dir:
        model, dataset = build(Path(work_dir), args.size, args.lm_width)
        summary = measure(model, dataset, args.batch_size, args.batches, args.num_beams, args.max_new_tokens)
    summary["settings"] = vars(args)
    for name in ("two_passes", "one_pass"):
        figures = summary[name]
        print(f"{name:>10}: {figures['median_s']:.3f} s/batch median ({figures['min_s']:.3f} - {figures['max_s']:.3f})")
    print(f"speed-up x{summary['speedup']:.2f}; identical losses and beams: {summary['identical_outputs']}")
    if args.json:
        write_json(Path(args.json), summary)
    return summary


if __name__ == "__main__":
    main()
