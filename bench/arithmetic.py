"""How close a measured step is to what the CPU can do: FLOPs counted, the fp32 GEMM peak, the floor.

A step that does F GFLOP of matrix products cannot take less than F / peak seconds, whatever the code around the
products does. `bench/compare_official.py --arithmetic` prints, for each side and measurement, the counted
GFLOP, the rate it reached (GFLOP / median seconds) as a share of the peak, the floor F / peak, and the rate a
given speed-up over the official side would need: when that rate is close to (or above) the peak, no re-ordering
of the same fp32 arithmetic gets there (docs/performance.md, "What is and is not reached").

The peak is that of one large square fp32 matrix product in this process (torch's threads as set, per CPU
second); the FLOPs are torch's own count (torch.utils.flop_counter: matrix products, convolutions and attention;
element-wise work such as BatchNorm, activations and the optimizer counts as 0, so the floor is a lower bound).
"""
import math
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from models.packed_linear import packing_available


def gemm_peak_gflops(size=2048, repeats=5) -> float:
    """GFLOP per CPU second of a (size x size) @ (size x size) fp32 product (CPU seconds, as the benchmark times
    its steps): the median of `repeats` after one untimed."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    left @ right
    seconds = []
    for _ in range(repeats):
        started = time.process_time()
        left @ right
        seconds.append(time.process_time() - started)
    return 2 * size ** 3 / statistics.median(seconds) / 1e9


def packed_linear_flop(input_shape, packed_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    """MKL's packed linear (models/packed_linear.py, beam search on a CPU): (rows, in) x (out, in)^T."""
    return 2 * math.prod(input_shape[:-1]) * weight_shape[0] * weight_shape[1]


def counted_gflop(function, *args) -> float:
    """GFLOP that torch counts while function(*args) runs (forward and backward alike), the packed linear of our
    beam search included (torch's counter does not know that operator)."""
    formulas = {torch.ops.mkl._mkl_linear: packed_linear_flop} if packing_available() else {}
    with FlopCounterMode(display=False, custom_mapping=formulas) as counter:
        function(*args)
    return counter.get_total_flops() / 1e9


def floor_report(gflop, seconds, peak_gflops, reference_seconds=None, speedup=1.5) -> dict:
    """The arithmetic of one side: reached rate and share of the peak, the floor; with the reference side's
    seconds, the rate (and share of the peak) that `speedup` x the reference would need for the same GFLOP."""
    report = {"gflop": gflop, "seconds": seconds, "gflops": gflop / seconds, "peak_share": gflop / seconds / peak_gflops,
              "floor_seconds": gflop / peak_gflops}
    if reference_seconds:
        needed_seconds = reference_seconds / speedup
        report.update(speedup=speedup, needed_seconds=needed_seconds, needed_gflops=gflop / needed_seconds,
                      needed_peak_share=gflop / needed_seconds / peak_gflops)
    return report


def describe(name, report) -> str:
    line = (f"  {name:18s} {report['gflop']:.1f} GFLOP in {report['seconds']:.3f} s: {report['gflops']:.0f} GFLOP/s "
            f"({report['peak_share']:.0%} of the peak); floor {report['floor_seconds']:.3f} s")
    if "needed_seconds" in report:
        line += (f"; x{report['speedup']:g} over the official: <= {report['needed_seconds']:.3f} s, "
                 f"{report['needed_gflops']:.0f} GFLOP/s ({report['needed_peak_share']:.0%} of the peak)")
    return line
