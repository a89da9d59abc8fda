"""Table configs (config/tables/*.json) and the table runner (script/reproduce_table.py), including every row of
every table run on the synthetic corpus (about 4 min on a 2-core CPU)."""
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from evaluation.bleurt import bleurt_for_files
from script import reproduce_table as rt

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = {"data_dir": Path("/data/synthetic"), "lm_dir": Path("/data/lm")}


def parser_for(entry):
    if entry == "train.py":
        from runs.arguments import get_args_parser

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


def test_seeds_flag_replaces_the_configs_seeds(capsys, tmp_path):
    rt.main(["--table", "ccl_slr", "--out", str(tmp_path), "--dry-run", "--rows", "1", "--seeds", "3,4"])
    printed = capsys.readouterr().out
    assert "# ccl_pretrain_seed3" in printed and "# ccl_finetune_full_seed4" in printed
    assert "_seed0" not in printed and "scratch" not in printed  # only row 1, only seeds 3 and 4


def ours_cells(text, config) -> list[dict]:
    """{column key: cell text} of every 'ours' line of a rendered table, in row order."""
    lines = [line for line in text.splitlines() if line.split("|")[2:3] == [" ours "]]
    cells = [[cell.strip() for cell in line.split("|")[3:-1]] for line in lines]
    return [dict(zip([column["key"] for column in config["columns"]], row)) for row in cells]


@pytest.fixture(scope="module")
def all_tables(tmp_path_factory):
    """Every row of every table, --synthetic --in-process, into one --out folder (shared runs are trained once)."""
    out = tmp_path_factory.mktemp("tables")
    launched = []
    original = rt.run_in_process

    def counting(argv, log, threads=None):
        launched.append(Path(argv[argv.index("--output_dir") + 1]).name)
        return original(argv, log, threads)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rt, "run_in_process", counting)
        texts = {table: rt.main(["--table", str(table), "--out", str(out), "--synthetic", "--in-process",
                                 "--threads", "1"]) for table in rt.TABLES}
    return out, texts, launched


def test_every_row_of_every_table_runs_on_the_synthetic_corpus(all_tables):
    out, texts, launched = all_tables
    run_ids = {run_id for table in rt.TABLES for run_id in rt.load_table(table)["runs"]}
    assert sorted(launched) == sorted(run_ids)  # each run once, however many tables share it
    for table in rt.TABLES:
        config = rt.load_table(table)
        assert (out / f"table{table}.md").read_text() == texts[table]
        rows = ours_cells(texts[table], config)
        assert len(rows) == len(config["rows"]), table
        for row, cells in zip(config["rows"], rows):
            assert len(cells) == len(config["columns"]), (table, row["name"])
            for column in config["columns"]:
                cell = cells[column["key"]]
                if column["source"] == "time":
                    assert re.fullmatch(r"\d+ s \(\d+\.\dx\)", cell), (table, row["name"], cell)
                elif column["metric"] == "bleurt":
                    assert cell == rt.NOT_COMPUTED, (table, row["name"])  # no --bleurt-checkpoint given
                else:
                    assert re.fullmatch(r"\d+\.\d\d", cell), (table, row["name"], column["key"], cell)
    assert "n/c: BLEURT not computed" in texts[6]
    assert "Time (ours) was measured on" in texts[9] and "seconds of wall time" in texts[9]
    assert rows_of(texts[9], "P_samp 0 %")[1].split("|")[3].strip().endswith("(1.0x)")
    record = json.loads((out / "stage2_csl_news_p50" / "runner.json").read_text())
    assert record["launch"] == "in-process" and "--rgb-sample-ratio 0.5" in record["command"]
    assert (out / "synthetic" / "data" / "news" / "rgb_format").is_dir()  # videos for the RGB-pose runs


def rows_of(text, name) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"| {name} |")]


def test_in_process_runs_give_the_numbers_of_subprocess_runs(all_tables, tmp_path):
    """The same command launched as its own process (the default) gives the same results as --in-process."""
    out, texts, _ = all_tables
    shutil.copytree(out / "synthetic", tmp_path / "synthetic")
    rt.main(["--table", "13", "--rows", "0", "--out", str(tmp_path), "--synthetic", "--threads", "1"])
    for run_id in ("t13_hands_msasl_islr", "t13_hands_csl_daily_cslr"):
        assert json.loads((tmp_path / run_id / "runner.json").read_text())["launch"] == "subprocess"
        subprocess_results = json.loads((tmp_path / run_id / "results.json").read_text())
        assert subprocess_results == json.loads((out / run_id / "results.json").read_text()), run_id


def test_a_failing_run_stops_the_runner_with_its_log(tmp_path):
    argv = [sys.executable, "train.py", "--dataset", "No_Such_Dataset", "--output_dir", str(tmp_path / "bad")]
    with pytest.raises(RuntimeError, match=r"(?s)bad failed \(exit 1\).*unknown dataset .No_Such_Dataset"):
        rt.execute([("bad", argv)], tmp_path, in_process=True)
    assert not (tmp_path / "bad" / "runner.json").exists()


def test_time_column_counts_shared_runs_once(tmp_path):
    """Table 9: a row's time = its stage-2/3 runs, each once (CSLR and SLT share one stage-2 run), no stage 1."""
    config = rt.load_table(9)
    seconds = {"stage1_csl_news": 1000.0, "stage2_csl_news": 50.0, "s3_csl_daily_cslr_pose": 10.0,
               "s3_csl_daily_slt_pose": 20.0, "s3_csl_daily_cslr_rgb": 15.0, "s3_csl_daily_slt_rgb": 25.0}
    for run_id, value in seconds.items():
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "runner.json").write_text(json.dumps({"seconds": value, "machine": "test machine"}))
    built = rt.build_rows(config, tmp_path, rows=[0, 1, 2])
    assert [row["ours"]["time"] for row in built] == ["30 s (1.0x)", "90 s (3.0x)", None]  # row 2 never ran
    text = rt.render_table(config, built)
    assert "| P_samp 10 % | paper | 1.3x |" in text and "| P_samp 10 % | ours | 90 s (3.0x) |" in text
    assert "Time (ours) was measured on test machine: seconds of wall time" in text


def test_bleurt_cells_are_scored_with_a_given_checkpoint(all_tables, tiny_bleurt_checkpoint, tmp_path):
    """--bleurt-checkpoint (with --table-only: nothing is trained) scores the Table 6 runs' test files."""
    out, texts, _ = all_tables
    config = rt.load_table(6)
    run_ids = {run_id for row in config["rows"] for run_id in row["runs"].values()}
    for run_id in run_ids:  # a copy: the shared folder keeps its results without BLEURT
        shutil.copytree(out / run_id, tmp_path / run_id, ignore=shutil.ignore_patterns("*.pth", "checkpoints"))
    text = rt.main(["--table", "6", "--out", str(tmp_path), "--synthetic", "--table-only",
                    "--bleurt-checkpoint", str(tiny_bleurt_checkpoint)])
    for row, cells in zip(config["rows"], ours_cells(text, config)):
        for source, key in (("How2Sign", "how2sign_bleurt"), ("OpenASL", "openasl_bleurt")):
            run_dir = tmp_path / row["runs"][source]
            expected = bleurt_for_files(run_dir / "test_pres.txt", run_dir / "test_refs.txt",
                                        tiny_bleurt_checkpoint)["bleurt"]
            assert cells[key] == f"{expected:.2f}", (row["name"], key)
            assert json.loads((run_dir / "results.json").read_text())["test"]["bleurt"] == pytest.approx(expected)
        assert cells["how2sign_bleu4"] == ours_cells(texts[6], config)[config["rows"].index(row)]["how2sign_bleu4"]
    assert rt.NOT_COMPUTED not in text


def test_an_unusable_bleurt_checkpoint_stops_before_any_run(tmp_path):
    with pytest.raises(SystemExit, match="BLEURT not computed: checkpoint folder .*nowhere does not exist"):
        rt.main(["--table", "6", "--out", str(tmp_path / "out"), "--synthetic", "--bleurt-checkpoint",
                 str(tmp_path / "nowhere")])
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- the CCL-SLR ablation (seeded)


def test_ccl_slr_runs_once_per_seed_and_every_command_parses(tmp_path):
    from runs.ccl_arguments import get_ccl_args_parser

    config = rt.load_table("ccl_slr")
    assert len(config["runs"]) == 9 * len(config["seeds"]) and len(config["seeds"]) >= 3
    for synthetic in (None, rt.synthetic_paths(tmp_path, config)):
        seen = set()
        for run_id, argv in rt.table_commands(config, tmp_path, synthetic):
            args = get_ccl_args_parser().parse_args(argv[2:])
            assert argv[1] == "train_ccl.py" and args.seed == config["runs"][run_id]["seed"]
            if args.finetune:  # the same seed's pre-training, run before
                assert Path(args.finetune).parent.name in seen and args.finetune.endswith(f"seed{args.seed}/"
                                                                                          "best_checkpoint.pth")
            if args.ccl_stage == "finetune":
                assert args.data_fraction == 0.1
            if synthetic:
                assert args.labels_dir.endswith("synthetic_default/data/isolated") and args.warmup_epochs == 0
            seen.add(run_id)
    parsed = {run_id: get_ccl_args_parser().parse_args(argv[2:])
              for run_id, argv in rt.table_commands(config, tmp_path)}
    assert parsed["ccl_pretrain_pose_only_seed1"].modalities == "pose"
    assert parsed["ccl_pretrain_no_mpm_seed1"].mpm_ratio == 0 and not parsed["ccl_pretrain_no_spm_seed1"].spm
    assert parsed["ccl_finetune_scratch_seed2"].finetune == ""


def test_a_seeded_table_shows_the_mean_and_spread_of_its_seeds(tmp_path):
    config = rt.load_table("ccl_slr")
    for index, run_id in enumerate(config["runs"]):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "args.json").write_text(json.dumps({"dataset": "WLASL", "task": "ISLR"}))
        seed = config["runs"][run_id]["seed"]
        metrics = {"top1_acc_pi": 10.0 + 2 * seed, "top1_acc_pc": 1.0, "top5_acc_pi": 50.0}
        (tmp_path / run_id / "results.json").write_text(json.dumps({"dev": metrics, "test": metrics}))
    text = rt.main(["--table", "ccl_slr", "--out", str(tmp_path), "--synthetic", "--table-only"])
    cells = ours_cells(text, config)
    assert len(cells) == 5 and cells[0]["top1_pi"] == "12.00 ± 2.00 (n=3)"
    assert cells[4]["top5_pi"] == "50.00 ± 0.00 (n=3)"
    assert (tmp_path / "ccl_slr.md").read_text() == text
