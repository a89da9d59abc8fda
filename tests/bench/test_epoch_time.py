"""bench/epoch_time.py: both settings train one epoch over the CSL-Daily-like clips (smoke form, no timing
assertions)."""
from bench import epoch_time


def test_both_settings_run_an_epoch(tmp_path):
    result = epoch_time.main(["--clips", "8", "--batch-size", "4", "--repeats", "1", "--json",
                              str(tmp_path / "epoch.json")])
    assert set(result["seconds"]) == {"official-equivalent", "recommended"}
    assert all(len(values) == 1 and values[0] > 0 for values in result["seconds"].values())
    assert (tmp_path / "epoch.json").is_file()
