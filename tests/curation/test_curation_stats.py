"""Corpus statistics, histograms, and the `python -m curation.stats LABELS.json` command."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from curation.stats import compute_stats, format_table, main, write_report
from datasets.formats import LabelEntry, write_csl_news_labels

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_compute_stats():
    stats = compute_stats([2.0, 4.0, None], ["今天好。", "we go home.", "今天 home"])
    assert stats["clips"] == 3 and stats["clips_with_duration"] == 2
    assert stats["hours"] == pytest.approx(6 / 3600)
    assert stats["mean_duration_s"] == 3.0
    assert stats["mean_text_length"] == pytest.approx((3 + 3 + 3) / 3)
    assert stats["vocabulary_size"] == 6  # 今 天 好 we go home
    table = format_table(stats)
    assert "clips with a duration  2" in table and "mean duration" in table and "3.00 s" in table


def test_write_report(tmp_path):
    stats = write_report(tmp_path, [1.5, 2.5, 9.0], ["一二三。", "四五。", "六"])
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    for name in ("duration_histogram.png", "text_length_histogram.png"):
        assert cv2.imread(str(tmp_path / name)).shape == (320, 500, 3)


def test_empty_corpus_report(tmp_path):
    stats = write_report(tmp_path, [], [])
    assert stats["clips"] == 0 and stats["mean_duration_s"] is None
    assert "n/a" in format_table(stats)


def _labels(tmp_path):
    entries = [LabelEntry(f"clip_{index}", text, "", f"clip_{index}.mp4", f"clip_{index}.pkl")
               for index, text in enumerate(["今天下雨。", "明天晴天！"])]
    write_csl_news_labels(tmp_path / "labels.json", entries)
    manifest = {"video": "v", "status": "done", "clips": [{"name": "clip_0", "duration": 2.5},
                                                         {"name": "clip_1", "duration": 3.5}]}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(manifest) + "\n")
    return tmp_path / "labels.json"


def test_cli_reads_durations_from_the_manifest(tmp_path, capsys):
    main([str(_labels(tmp_path)), "--out", str(tmp_path / "report")])
    output = capsys.readouterr().out
    assert "clips               2" in output and "mean duration       3.00 s" in output
    assert "vocabulary size     6" in output  # 今 天 下 雨 明 晴
    assert (tmp_path / "report" / "duration_histogram.png").is_file()


def test_cli_runs_as_a_module(tmp_path):
    result = subprocess.run([sys.executable, "-m", "curation.stats", str(_labels(tmp_path))], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    assert "hours               0.0017" in result.stdout


def test_cli_without_durations_and_with_a_bad_file(tmp_path, capsys):
    labels = _labels(tmp_path)
    (tmp_path / "manifest.jsonl").unlink()
    main([str(labels)])
    assert "clips with a duration  0" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="expected a JSON list"):
        main([str(tmp_path / "bad.json")])
