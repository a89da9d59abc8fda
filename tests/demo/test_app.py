"""demo/app.py without a browser: the ISLR table, the command line."""
import pytest

from demo.app import candidates_markdown, get_args_parser, main
from demo.service import DemoLimits, DemoResult


def test_islr_candidates_become_a_ranked_table_and_other_tasks_show_none():
    result = DemoResult("ISLR", "hello", [("hello", 0.61), ("world", 0.2)], score_kind="probability over the class list")
    assert candidates_markdown(result).splitlines() == [
        "Top 2 (probability over the class list)", "", "| rank | sign | score |", "|---|---|---|",
        "| 1 | hello | 0.6100 |", "| 2 | world | 0.2000 |"]
    assert candidates_markdown(DemoResult("SLT", "a sentence")) == ""


def test_the_command_line_defaults_and_a_missing_model(tmp_path):
    args = get_args_parser().parse_args(["--finetune", "m"])
    assert (args.host, args.port, args.share, args.max_seconds) == ("127.0.0.1", 7860, False, DemoLimits.max_seconds)
    with pytest.raises(SystemExit, match="error: .*missing"):
        main(["--finetune", str(tmp_path / "missing")])
