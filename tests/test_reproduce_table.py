"""Table configs (config/tables/*.json) and the table runner (script/reproduce_table.py)."""
import json
from pathlib import Path

import pytest

from script import reproduce_table as rt

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = {"data_dir": Path("/data/synthetic"), "lm_dir": Path("/data/lm")}


def parser_for(entry):
    if entry == "train.py":
        from train import get_args_parser

        return get_args_parser()
    assert entry == "train_task_head.py"
    from train_task_head import get_task_head_parser

    return get_task_head_parser()


def test_every_listed_table_has_a_config():
    assert sorted(int(p.stem[5:]) for p in rt.TABLES_DIR.glob("table*.json")) == sorted(rt.TABLES)


@pytest.mark.parametrize("table", rt.TABLES)
def test_config_is_consistent(table):
    config = rt.load_table(table)
    registry = json.loads((REPO_ROOT / "config" / "datasets.json").read_text())
    keys = {column["key"] for column in config["columns"]}
    sources = {column["source"] for column in config["columns"]} - {"time"}
    assert config["rows"], "a table without rows"
    for row in config["rows"]:
        assert row["name"] and set(row["paper"]) == keys, row["name"]
        assert set(row["runs"]) == sources, row["name"]
        assert all(run_id in config["runs"] for run_id in row["runs"].values())
    for run_id, run in config["runs"].items():
        assert run["stage"] in (1, 2, 3) and run["entry"] in ("train.py", "train_task_head.py")
        dataset = rt._flag_value(run["args"], "--dataset")
        assert dataset in registry and dataset in rt.SYNTHETIC_DATASETS, run_id
        for arg in run["args"]:
            if arg.startswith("{run:"):
                assert arg[5:-1] in config["runs"], f"{run_id}: unknown parent {arg}"


@pytest.mark.parametrize("synthetic", [None, SYNTHETIC], ids=["real", "synthetic"])
@pytest.mark.parametrize("table", rt.TABLES)
def test_every_row_command_parses(table, synthetic, tmp_path):
    config = rt.load_table(table)
    commands = rt.table_commands(config, tmp_path, synthetic)
    assert {run_id for row in config["rows"] for run_id in row["runs"].values()} <= {r for r, _ in commands}
    seen = set()
    for run_id, argv in commands:
        entry = config["runs"][run_id]["entry"]
        assert argv[1] == entry
        args = parser_for(entry).parse_args(argv[2:])  # SystemExit on an unknown flag or bad value
        assert args.output_dir == str(tmp_path / run_id)
        if args.finetune:  # parents run first
            assert Path(args.finetune).parent.name in seen, run_id
        seen.add(run_id)
        if synthetic:
            assert args.epochs == 1 and args.pose_preset == "tiny" and args.dataset.startswith("Synthetic")
            assert args.lm_path == str(SYNTHETIC["lm_dir"])
        else:
            assert args.lr == 3e-4 and args.epochs == {1: 20, 2: 5, 3: 20}[config["runs"][run_id]["stage"]]
            if args.task == "ISLR" and config["runs"][run_id]["stage"] == 3:
                assert args.max_length == 64


def test_ablation_switches_reach_train_py(tmp_path):
    def parsed(table, run_id):
        argv = dict(rt.table_commands(rt.load_table(table), tmp_path))[run_id]
        return parser_for(argv[1]).parse_args(argv[2:])

    assert parsed(13, "t13_hands_msasl_islr").pose_parts == "hands"
    assert parsed(13, "t13_hands_msasl_islr").finetune == ""  # from scratch
    assert parsed(9, "stage2_csl_news_p25").rgb_sample_ratio == 0.25
    assert parsed(9, "t9_p50_csl_daily_slt").rgb_support
    assert parsed(10, "t10_ca_csl_daily_cslr").fusion == "ca"
    assert parsed(8, "stage1_csl_news_f50").data_fraction == 0.5
    head = parsed(7, "t7_msasl_islr_lm_enc")
    assert head.features == "lm_enc" and head.task == "ISLR"


def test_dry_run_prints_commands(capsys, tmp_path):
    rt.main(["--table", "10", "--out", str(tmp_path), "--dry-run"])
    printed = capsys.readouterr().out
    assert "--fusion ca" in printed and "python train.py" in printed
    assert not any(tmp_path.iterdir())  # nothing ran


def test_synthetic_smoke_run_produces_a_table(tmp_path):
    """Table 13, first row (hands only; ISLR + CSLR from scratch), 1 epoch on the tiny synthetic corpus."""
    text = rt.main(["--table", "13", "--out", str(tmp_path), "--synthetic", "--rows", "0", "--threads", "1"])
    assert (tmp_path / "table13.md").read_text() == text
    lines = [line for line in text.splitlines() if line.startswith("| hands |")]
    assert len(lines) == 2 and "| paper | 36.07 | 34.2 | 54.3 | 53.9 |" in lines[0]
    ours = lines[1].split("|")[3:-1]
    assert len(ours) == 4 and all(cell.strip() != "-" for cell in ours)  # all four metrics were produced
    results = json.loads((tmp_path / "t13_hands_csl_daily_cslr" / "results.json").read_text())
    assert "wer" in results["test"]
