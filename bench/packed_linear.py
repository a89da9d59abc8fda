"""The products of one beam-search step at mT5-Base dimensions: torch's linear vs MKL's packed GEMM.

For each weight shape of the mT5-Base decoder and its LM head, at batch x beams rows (default 2 x 4 = 8), one
torch thread: the median seconds of torch's linear and of the packed product (models/packed_linear.py), the
time to pack once, the pack's size against the weight's, and the largest relative difference of the outputs.
Then the whole decoding step (12 decoder layers + the head) from those figures.

    python -m bench.packed_linear
    python -m bench.packed_linear --rows 16 --json out/bench/packed_linear.json
    python -m bench.packed_linear --vocabulary 31250 --repeats 1      # a pruned head; CI's smoke form
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from engine import write_json  # noqa: E402
from models.packed_linear import packing_available  # noqa: E402

D_MODEL, D_FF, VOCABULARY, DECODER_LAYERS = 768, 2048, 250112, 12  # mT5-Base
# (out_features, in_features): uses per decoder layer and step (self-attention q, k, v, o; cross-attention
# q, o, its keys and values are computed once per search; the gated FFN's wi_0, wi_1 and wo)
STEP_PRODUCTS = {(D_MODEL, D_MODEL): 6, (D_FF, D_MODEL): 2, (D_MODEL, D_FF): 1}


def median_seconds(function, repeats) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_shape(out_features, in_features, rows, repeats) -> dict:
    weight, inputs = torch.randn(out_features, in_features), torch.randn(rows, in_features)
    start = time.perf_counter()
    packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
    pack_seconds = time.perf_counter() - start
    expected = torch.nn.functional.linear(inputs, weight)
    outputs = torch.ops.mkl._mkl_linear(inputs, packed, weight, None, rows)
    return {
        "linear_s": median_seconds(lambda: torch.nn.functional.linear(inputs, weight), repeats),
        "packed_s": median_seconds(lambda: torch.ops.mkl._mkl_linear(inputs, packed, weight, None, rows), repeats),
        "pack_s": pack_seconds,
        "pack_size": packed.numel() / weight.numel(),
        "max_relative_difference": ((outputs - expected).abs().max() / expected.abs().max()).item(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8, help="batch x beams (default: 2 x 4)")
    parser.add_argument("--vocabulary", type=int, default=VOCABULARY, help="LM head rows (default: mT5's %(default)s)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not packing_available():
        print("this torch build has no MKL packed GEMM: --packed-decoding has no effect here")
        return {}
    torch.set_num_threads(args.threads)
    shapes = {**{shape: DECODER_LAYERS * uses for shape, uses in STEP_PRODUCTS.items()}, (args.vocabulary, D_MODEL): 1}
    results = {}
    for (out_features, in_features), uses in shapes.items():
        figures = measure_shape(out_features, in_features, args.rows, args.repeats)
        results[f"{out_features}x{in_features}"] = {**figures, "uses_per_step": uses}
        print(f"{out_features:>6} x {in_features:<4} x{uses:<3} linear {figures['linear_s'] * 1e3:8.3f} ms  packed "
              f"{figures['packed_s'] * 1e3:8.3f} ms  (x{figures['linear_s'] / figures['packed_s']:.2f})  pack once "
              f"{figures['pack_s'] * 1e3:7.1f} ms, {figures['pack_size']:.2f}x the weight  max relative difference "
              f"{figures['max_relative_difference']:.1e}")
    step = {key: sum(figures[key] * figures["uses_per_step"] for figures in results.values())
            for key in ("linear_s", "packed_s")}
    print(f"one decoding step's products at {args.rows} rows: linear {step['linear_s']:.3f} s, packed "
          f"{step['packed_s']:.3f} s (x{step['linear_s'] / step['packed_s']:.2f})")
    results["step"] = step
    if args.json:
        write_json(Path(args.json), results)
    return results


if __name__ == "__main__":
    main()
