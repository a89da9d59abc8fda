"""bench/packed_linear.py: its smoke form runs every mT5-Base decoder shape and a small head (no timing
assertions): the packed products equal torch's linear up to summation order."""
import pytest

from bench import packed_linear
from models.packed_linear import packing_available


@pytest.mark.skipif(not packing_available(), reason="this torch build has no MKL packed GEMM")
def test_smoke_run_measures_every_shape_and_the_step(tmp_path):
    results = packed_linear.main(["--vocabulary", "4096", "--repeats", "1", "--json", str(tmp_path / "packed.json")])
    assert set(results) == {"768x768", "2048x768", "768x2048", "4096x768", "step"}
    for shape in ("768x768", "2048x768", "768x2048", "4096x768"):
        assert results[shape]["pack_size"] >= 1 and results[shape]["max_relative_difference"] < 1e-5
    assert results["step"]["packed_s"] > 0
    assert (tmp_path / "packed.json").is_file()
