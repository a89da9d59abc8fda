"""bench/arithmetic.py: FLOPs as torch counts them, the floor and the rate a speed-up would need."""
import pytest
import torch

from bench.arithmetic import counted_gflop, describe, floor_report, gemm_peak_gflops


def test_a_matrix_product_counts_two_flops_per_multiply_add():
    left, right = torch.randn(30, 40), torch.randn(40, 50)
    assert counted_gflop(torch.mm, left, right) == pytest.approx(2 * 30 * 40 * 50 / 1e9)


def test_a_backward_pass_counts_twice_its_forward():
    weight = torch.randn(40, 50, requires_grad=True)
    inputs = torch.randn(30, 40, requires_grad=True)
    assert counted_gflop(lambda: (inputs @ weight).sum().backward()) == pytest.approx(3 * 2 * 30 * 40 * 50 / 1e9)


def test_floor_and_the_rate_a_speedup_needs():
    report = floor_report(gflop=150.0, seconds=1.5, peak_gflops=200.0, reference_seconds=1.5, speedup=1.5)
    assert report["gflops"] == pytest.approx(100.0) and report["peak_share"] == pytest.approx(0.5)
    assert report["floor_seconds"] == pytest.approx(0.75)
    assert report["needed_seconds"] == pytest.approx(1.0) and report["needed_peak_share"] == pytest.approx(0.75)
    assert "75% of the peak" in describe("ours", report)
    assert "needed_seconds" not in floor_report(150.0, 1.5, 200.0)  # no reference side: no target


def test_the_gemm_peak_is_a_rate():
    assert gemm_peak_gflops(size=256, repeats=3) > 0


def test_a_packed_linear_counts_as_the_linear_it_stands_for():
    from models.packed_linear import PackedLinear, packing_available

    if not packing_available():
        pytest.skip("this torch build has no MKL packed GEMM")
    linear = torch.nn.Linear(64, 48, bias=False)
    packed, inputs = PackedLinear(linear, {}, "head"), torch.randn(2, 3, 64)
    with torch.no_grad():
        for _ in range(2):  # the second call with the same rows packs the weight
            packed(inputs)
        assert "head" in packed.packs
        assert counted_gflop(packed, inputs) == counted_gflop(linear, inputs) == pytest.approx(2 * 6 * 64 * 48 / 1e9)
