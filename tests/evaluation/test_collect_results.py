"""The results collector: run folders -> tables laid out like the paper's Tables 3-6, paper numbers alongside."""
import json
import re

import pytest

from evaluation.collect_results import PAPER, RunError, build_table, collect, main, read_run


def make_run(folder, args, results=None, topk=None, split_files=None):
    folder.mkdir(parents=True)
    if args is not None:
        (folder / "args.json").write_text(json.dumps(args))
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))
    for split, metrics in (split_files or {}).items():
        (folder / f"{split}_metrics.json").write_text(json.dumps(metrics))
    if topk is not None:
        (folder / "test_islr_topk.json").write_text(json.dumps(topk))
    return folder


def row(text, label):
    """The cells of the markdown row starting with `label`."""
    for line in text.splitlines():
        if line.startswith(f"| {label} "):
            return [cell.strip() for cell in line.strip("|").split("|")][1:]
    raise AssertionError(f"no row {label!r} in\n{text}")


def header(text, title_start):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"**{title_start}"))
    return [cell.strip() for cell in lines[start + 2].strip("|").split("|")][1:]


@pytest.fixture
def runs(tmp_path):
    slt = {"bleu1": 50.0, "bleu2": 40.0, "bleu3": 30.0, "bleu4": 20.0, "rouge_l": 52.346}
    return {
        "wlasl": make_run(tmp_path / "wlasl", {"dataset": "WLASL", "task": "ISLR", "rgb_support": False},
                          {"dev": {"top1_acc_pi": 1.0}, "test": {"top1_acc_pi": 62.5, "top1_acc_pc": 60.25}},
                          {"mode": "rank", "length_penalty": 0.0, "subsets": {
                              "WLASL100": {"n": 258, "top1_acc_pi": 91.0, "top1_acc_pc": 92.0},
                              "WLASL2000": {"n": 2878, "top1_acc_pi": 11.0, "top1_acc_pc": 11.0}}}),
        "msasl": make_run(tmp_path / "msasl", {"dataset": "MSASL", "task": "ISLR", "rgb_support": True}, None,
                          {"mode": "beams", "constrained": True, "subsets": {
                              "MSASL500": {"n": 100, "top1_acc_pi": 80.0, "top1_acc_pc": 79.0}}}),
        "cslr": make_run(tmp_path / "cslr", {"dataset": "CSL_Daily", "task": "CSLR"},
                         split_files={"dev": {"wer": 28.0}, "test": {"wer": 27.25}}),
        "slt": make_run(tmp_path / "slt", {"dataset": "CSL_Daily", "task": "SLT", "rgb_support": True},
                        {"dev": slt, "test": {**slt, "bleu4": 21.0}}),
        "openasl": make_run(tmp_path / "openasl", {"dataset": "OpenASL", "task": "SLT"},
                            {"dev": slt, "test": {**slt, "bleurt": 55.5}}),
        "synthetic": make_run(tmp_path / "synthetic", {"dataset": "Synthetic", "task": "SLT"}, {"test": slt}),
    }


def test_every_table_places_run_values_beside_the_paper(runs, capsys):
    text = collect([runs[name] for name in ("wlasl", "msasl", "cslr", "slt", "openasl", "synthetic")])
    assert "synthetic" in capsys.readouterr().err  # not a paper table: left out with a note
    # Table 3: MSASL100, MSASL200, MSASL1000, WLASL100, WLASL300, WLASL2000 (P-I, P-C), then extra subsets.
    columns = header(text, "Table 3")
    assert columns[:2] == ["MSASL100 P-I", "MSASL100 P-C"] and columns[-2:] == ["MSASL500 P-I", "MSASL500 P-C"]
    assert row(text, "Uni-Sign (paper, pose)")[columns.index("WLASL2000 P-I")] == "63.13"
    assert row(text, "Uni-Sign (paper, RGB-pose)")[columns.index("MSASL1000 P-C")] == "76.97"
    wlasl = row(text, "wlasl (pose)")
    assert wlasl[columns.index("WLASL100 P-I")] == "91.00"
    assert wlasl[columns.index("WLASL2000 P-I")] == "62.50"  # the official top-1 of results.json wins
    assert wlasl[columns.index("WLASL2000 P-C")] == "60.25" and wlasl[columns.index("MSASL100 P-I")] == "-"
    assert row(text, "msasl (RGB-pose)")[columns.index("MSASL500 P-C")] == "79.00"
    assert "msasl (RGB-pose): subset cells from test_islr_topk.json (mode beams, constrained)" in text
    # Table 4
    assert header(text, "Table 4") == ["Dev WER", "Test WER"]
    assert row(text, "cslr (pose)") == ["28.00", "27.25"]
    # Table 5
    assert header(text, "Table 5")[4:6] == ["Dev ROUGE-L", "Test BLEU-1"]
    assert row(text, "slt (RGB-pose)") == ["50.00", "40.00", "30.00", "20.00", "52.35",
                                           "50.00", "40.00", "30.00", "21.00", "52.35"]
    # Table 6: How2Sign then OpenASL, test only, BLEURT last.
    columns = header(text, "Table 6")
    assert columns[0] == "How2Sign BLEU-1" and columns[-1] == "OpenASL BLEURT"
    openasl = row(text, "openasl (pose)")
    assert openasl[:6] == ["-"] * 6 and openasl[-1] == "55.50" and openasl[6] == "50.00"


def test_tables_from_other_paper_rows():
    table = build_table(6, [])
    assert [label for label, _ in table["rows"]] == ["Uni-Sign (paper, pose)", "Uni-Sign (paper, RGB-pose)"]
    assert table["rows"][1][1][table["columns"].index(("OpenASL", "bleurt"))] == "60.40"
    assert table["rows"][0][1][table["columns"].index(("How2Sign", "bleu4"))] == "14.5"


def test_paper_numbers_are_in_the_paper(shared_dir):
    paper = (shared_dir / "seeds" / "paper_uni_sign.txt").read_text(encoding="utf-8")
    numbers = set(re.findall(r"\d+\.\d+", paper))
    for table, rows in PAPER.items():
        for modality, cells in rows.items():
            for cell, value in cells.items():
                assert value in numbers, f"Table {table} {modality} {cell}: {value} not in the paper text"


def test_latex_and_out_file(runs, tmp_path, capsys):
    out = tmp_path / "tables" / "t5.tex"
    text = main([str(runs["slt"]), "--table", "5", "--format", "latex", "--out", str(out)])
    assert out.read_text(encoding="utf-8") == text == capsys.readouterr().out
    assert r"\multicolumn{5}{c}{Dev} & \multicolumn{5}{c}{Test} \\" in text
    assert r"slt (RGB-pose) & 50.00 & 40.00" in text and "Table 3" not in text
    assert text.count(r"\midrule") == 2  # below the header, between the paper rows and ours


def test_runs_without_args_json(tmp_path):
    folder = make_run(tmp_path / "eval_only", None, {"dev": {"wer": 30.0}, "test": {"wer": 29.0}})
    with pytest.raises(RunError, match="no args.json"):
        read_run(folder)
    text = collect([folder], dataset="CSL_Daily", task="CSLR", rgb=True)
    assert row(text, "eval_only (RGB-pose)") == ["30.00", "29.00"]
    with pytest.raises(RunError, match="does not exist"):
        read_run(tmp_path / "missing")
    empty = make_run(tmp_path / "empty", {"dataset": "CSL_Daily", "task": "SLT"})
    with pytest.raises(RunError, match="no results.json"):
        read_run(empty)
