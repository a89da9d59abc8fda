"""bench/evaluation.py: a smoke run (no timing assertions): both evaluation paths run and agree exactly."""
from bench import evaluation


def test_one_pass_and_two_passes_agree_and_are_timed(tmp_path):
    summary = evaluation.main(["--lm-width", "32", "--batch-size", "2", "--batches", "2", "--max-new-tokens", "4",
                               "--json", str(tmp_path / "evaluation.json")])
    assert summary["identical_outputs"] is True
    assert summary["one_pass"]["median_s"] > 0 and summary["two_passes"]["median_s"] > 0 and summary["speedup"] > 0
    assert (tmp_path / "evaluation.json").is_file()
