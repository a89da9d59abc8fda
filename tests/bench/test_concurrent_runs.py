"""bench/concurrent_runs.py: a smoke run on the tiny corpus and the tiny test LM (no timing asserted)."""
import json

from bench import concurrent_runs


def test_one_run_and_two_side_by_side_are_measured_and_compared(tiny_lm_dir, tmp_path):
    from datasets.synthetic import generate_corpus

    generate_corpus(tmp_path / "synthetic", size="tiny")
    rows = concurrent_runs.main(["--data", str(tmp_path / "synthetic"), "--lm-path", str(tiny_lm_dir), "--runs", "1,2",
                                 "--cores", "2", "--repeats", "1", "--steps", "1", "--warmup", "0", "--batch-size", "2",
                                 "--distinct-batches", "1", "--json", str(tmp_path / "runs.json")])
    assert [(row["runs"], row["threads_each"]) for row in rows] == [(1, 2), (2, 1)]
    assert rows[0]["speed_up"] == 1.0 and all(row["samples_per_s_median"] > 0 for row in rows)
    saved = json.loads((tmp_path / "runs.json").read_text())
    assert [len(m["step_seconds"]) for m in saved["measurements"]] == [1, 2]  # one process, then two
