"""Collect the metrics of several runs into tables laid out like the paper's Tables 3-6, paper numbers alongside.

    python -m evaluation.collect_results out/wlasl out/msasl out/csl_slt out/csl_cslr [--table 3|4|5|6]
        [--format markdown|latex] [--out FILE] [--dataset NAME --task SLT|CSLR|ISLR --rgb]

A run folder is what train.py / eval.py write: `args.json` (dataset, task, rgb_support), `results.json`
({"dev": metrics, "test": metrics}) or `<split>_metrics.json`, and for ISLR optionally
`test_islr_topk.json` from evaluation/islr_topk.py (benchmark subsets such as WLASL100). Runs without args.json
(eval.py writes none) take --dataset/--task/--rgb.

Tables (rows: the paper's two Uni-Sign rows, then one row per run; '-' = not available):
  3  ISLR, per-instance (P-I) and per-class (P-C) top-1 on MSASL100/200/1000 and WLASL100/300/2000
     (the full layout of the paper's appendix Table 18; extra subsets of the runs, e.g. MSASL500, are appended)
  4  CSLR on CSL-Daily: dev and test WER
  5  SLT on CSL-Daily: dev and test BLEU-1..4 and ROUGE-L (appendix Table 19 layout)
  6  SLT on How2Sign and OpenASL (test): BLEU-1..4, ROUGE-L, BLEURT (Table 6 with BLEU-2/3 of Tables 20/21)
ISLR cells of a full benchmark (WLASL2000 / MSASL1000) come from results.json (official top-1, free beam search);
subset cells from test_islr_topk.json, whose mode (beams / rank, constrained or not) is named in a note.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------- the paper's numbers
# Uni-Sign, ICLR 2025 (../shared/seeds/paper_uni_sign.txt). Strings keep the paper's precision.
PAPER_ROWS = ("pose", "rgb")
PAPER_LABELS = {"pose": "Uni-Sign (paper, pose)", "rgb": "Uni-Sign (paper, RGB-pose)"}
PAPER = {
    # Table 3 / appendix Table 18, rows "Uni-Sign (Ours)" (pose; pose + RGB): P-I, P-C per benchmark.
    3: {
        "pose": {("MSASL100", "top1_acc_pi"): "93.26", ("MSASL100", "top1_acc_pc"): "93.16",
                 ("MSASL200", "top1_acc_pi"): "90.95", ("MSASL200", "top1_acc_pc"): "91.38",
                 ("MSASL1000", "top1_acc_pi"): "77.88", ("MSASL1000", "top1_acc_pc"): "76.55",
                 ("WLASL100", "top1_acc_pi"): "92.24", ("WLASL100", "top1_acc_pc"): "92.75",
                 ("WLASL300", "top1_acc_pi"): "88.17", ("WLASL300", "top1_acc_pc"): "88.69",
                 ("WLASL2000", "top1_acc_pi"): "63.13", ("WLASL2000", "top1_acc_pc"): "60.90"},
        "rgb": {("MSASL100", "top1_acc_pi"): "93.79", ("MSASL100", "top1_acc_pc"): "94.02",
                ("MSASL200", "top1_acc_pi"): "91.02", ("MSASL200", "top1_acc_pc"): "91.56",
                ("MSASL1000", "top1_acc_pi"): "78.16", ("MSASL1000", "top1_acc_pc"): "76.97",
                ("WLASL100", "top1_acc_pi"): "92.25", ("WLASL100", "top1_acc_pc"): "92.67",
                ("WLASL300", "top1_acc_pi"): "88.47", ("WLASL300", "top1_acc_pc"): "88.92",
                ("WLASL2000", "top1_acc_pi"): "63.52", ("WLASL2000", "top1_acc_pc"): "61.32"},
    },
    # Table 4 (CSL-Daily WER). Its cells are not in our text copy of the paper; the same two results appear
    # as: pose-only = Table 7 row "Ours" / Table 8 row "100%" / Table 9 row "0 %" (dev 28.2, test 27.4);
    # RGB-pose = Table 9 row "10 %" (the default P_smp) / Table 10 row "DA" (dev 26.7, test 26.0).
    4: {
        "pose": {("dev", "wer"): "28.2", ("test", "wer"): "27.4"},
        "rgb": {("dev", "wer"): "26.7", ("test", "wer"): "26.0"},
    },
    # Table 5 / appendix Table 19 (CSL-Daily SLT), rows "Uni-Sign (Ours)".
    5: {
        "pose": {("dev", "bleu1"): "53.24", ("dev", "bleu2"): "40.54", ("dev", "bleu3"): "31.65",
                 ("dev", "bleu4"): "25.27", ("dev", "rouge_l"): "54.34",
                 ("test", "bleu1"): "53.86", ("test", "bleu2"): "40.96", ("test", "bleu3"): "32.02",
                 ("test", "bleu4"): "25.61", ("test", "rouge_l"): "54.92"},
        "rgb": {("dev", "bleu1"): "55.30", ("dev", "bleu2"): "42.21", ("dev", "bleu3"): "32.94",
                ("dev", "bleu4"): "26.25", ("dev", "rouge_l"): "56.03",
                ("test", "bleu1"): "55.08", ("test", "bleu2"): "42.14", ("test", "bleu3"): "32.98",
                ("test", "bleu4"): "26.36", ("test", "rouge_l"): "56.51"},
    },
    # Table 6 (test BLEU-1, BLEU-4, ROUGE, BLEURT), BLEU-2/3 from Table 21 (How2Sign) and Table 20 (OpenASL),
    # rows "Uni-Sign (Ours)".
    6: {
        "pose": {("How2Sign", "bleu1"): "40.4", ("How2Sign", "bleu2"): "26.8", ("How2Sign", "bleu3"): "19.3",
                 ("How2Sign", "bleu4"): "14.5", ("How2Sign", "rouge_l"): "34.3", ("How2Sign", "bleurt"): "48.6",
                 ("OpenASL", "bleu1"): "49.10", ("OpenASL", "bleu2"): "35.91", ("OpenASL", "bleu3"): "28.12",
                 ("OpenASL", "bleu4"): "22.67", ("OpenASL", "rouge_l"): "42.77", ("OpenASL", "bleurt"): "60.08"},
        "rgb": {("How2Sign", "bleu1"): "40.2", ("How2Sign", "bleu2"): "27.1", ("How2Sign", "bleu3"): "19.7",
                ("How2Sign", "bleu4"): "14.9", ("How2Sign", "rouge_l"): "36.0", ("How2Sign", "bleurt"): "49.4",
                ("OpenASL", "bleu1"): "49.35", ("OpenASL", "bleu2"): "36.32", ("OpenASL", "bleu3"): "28.55",
                ("OpenASL", "bleu4"): "23.14", ("OpenASL", "rouge_l"): "43.22", ("OpenASL", "bleurt"): "60.40"},
    },
}

METRIC_HEADERS = {"top1_acc_pi": "P-I", "top1_acc_pc": "P-C", "wer": "WER", "bleu1": "BLEU-1", "bleu2": "BLEU-2",
                  "bleu3": "BLEU-3", "bleu4": "BLEU-4", "rouge_l": "ROUGE-L", "bleurt": "BLEURT"}
SLT_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l")
ISLR_BENCHMARKS = ("MSASL100", "MSASL200", "MSASL1000", "WLASL100", "WLASL300", "WLASL2000")
FULL_BENCHMARK = {"WLASL": "WLASL2000", "MSASL": "MSASL1000"}  # what a whole-dataset ISLR run is
TITLES = {
    3: "Table 3: ISLR top-1 accuracy (%), per instance (P-I) and per class (P-C), test set",
    4: "Table 4: CSLR on CSL-Daily, WER (%)",
    5: "Table 5: SLT on CSL-Daily (character level), BLEU (sacreBLEU 1.4.2, cumulative) and ROUGE-L",
    6: "Table 6: gloss-free SLT on How2Sign and OpenASL, test set",
}


# --------------------------------------------------------------------------- runs


class RunError(ValueError):
    """A run folder that cannot be read; the message names the folder and the file."""


@dataclass
class Run:
    path: Path
    dataset: str
    task: str
    rgb: bool
    metrics: dict  # split -> metrics
    islr_subsets: dict = field(default_factory=dict)  # benchmark subset -> metrics (test)
    islr_note: str = ""
    label: str = ""

    @property
    def modality(self) -> str:
        return "RGB-pose" if self.rgb else "pose"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path}: not readable JSON ({error})") from error


def read_run(path, dataset=None, task=None, rgb=None) -> Run:
    """Read one run folder; dataset/task/rgb fill in what args.json does not say."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run folder {path} does not exist")
    args = _read_json(path / "args.json") if (path / "args.json").is_file() else {}
    metrics = {}
    if (path / "results.json").is_file():
        metrics = {split: values for split, values in _read_json(path / "results.json").items()
                   if isinstance(values, dict)}
    for split in ("dev", "test"):
        file = path / f"{split}_metrics.json"
        if split not in metrics and file.is_file():
            metrics[split] = _read_json(file)
    subsets, note = {}, ""
    topk_file = path / "test_islr_topk.json"
    if topk_file.is_file():
        topk = _read_json(topk_file)
        subsets = {name: values for name, values in topk.get("subsets", {}).items() if values.get("n")}
        note = f"mode {topk.get('mode')}" + (", constrained" if topk.get("constrained") else "")
        if topk.get("mode") == "rank":
            note += f", length penalty {topk.get('length_penalty', 0.0)}"
        dataset = dataset or topk.get("dataset")
    dataset = args.get("dataset") or dataset
    task = args.get("task") or task or ("ISLR" if subsets else None)
    if not dataset or not task:
        raise RunError(f"{path}: no args.json saying the dataset and task; pass --dataset and --task")
    if not metrics and not subsets:
        raise RunError(f"{path}: no results.json, <split>_metrics.json or test_islr_topk.json")
    rgb_flag = args.get("rgb_support", rgb if rgb is not None else False)
    return Run(path, dataset, task, bool(rgb_flag), metrics, subsets, note)


def run_cells(run: Run, table: int) -> dict:
    """{(group, metric): value} of a run for one table ({} when the run does not belong there)."""
    cells = {}
    if table == 3 and run.task == "ISLR":
        full = FULL_BENCHMARK.get(run.dataset)
        if full and "test" in run.metrics:
            for metric in ("top1_acc_pi", "top1_acc_pc"):
                if metric in run.metrics["test"]:
                    cells[(full, metric)] = run.metrics["test"][metric]
        for name, values in run.islr_subsets.items():
            name = full if name == "all" and full else name
            for metric in ("top1_acc_pi", "top1_acc_pc"):
                if metric in values:
                    cells.setdefault((name, metric), values[metric])
    elif table == 4 and run.task == "CSLR" and run.dataset == "CSL_Daily":
        cells = {(split, "wer"): run.metrics[split]["wer"] for split in ("dev", "test")
                 if "wer" in run.metrics.get(split, {})}
    elif table == 5 and run.task == "SLT" and run.dataset == "CSL_Daily":
        cells = {(split, metric): run.metrics[split][metric] for split in ("dev", "test")
                 for metric in SLT_METRICS if metric in run.metrics.get(split, {})}
    elif table == 6 and run.task == "SLT" and run.dataset in ("How2Sign", "OpenASL"):
        cells = {(run.dataset, metric): run.metrics["test"][metric] for metric in SLT_METRICS + ("bleurt",)
                 if metric in run.metrics.get("test", {})}
    return cells


def table_of(run: Run) -> int | None:
    for table in (3, 4, 5, 6):
        if run_cells(run, table):
            return table
    return None


# --------------------------------------------------------------------------- tables


def table_columns(table: int, runs=()) -> list[tuple[str, str]]:
    if table == 3:
        groups = list(ISLR_BENCHMARKS)
        extra = sorted({group for run in runs for group, _ in run_cells(run, 3)} - set(groups))
        return [(group, metric) for group in groups + extra for metric in ("top1_acc_pi", "top1_acc_pc")]
    if table == 4:
        return [("dev", "wer"), ("test", "wer")]
    if table == 5:
        return [(split, metric) for split in ("dev", "test") for metric in SLT_METRICS]
    return [(group, metric) for group in ("How2Sign", "OpenASL") for metric in SLT_METRICS + ("bleurt",)]


def _group_label(group: str) -> str:
    return {"dev": "Dev", "test": "Test"}.get(group, group)


def build_table(table: int, runs) -> dict:
    """{'title', 'columns', 'rows': [(label, [cell strings])], 'notes'} for one paper table."""
    runs = [run for run in runs if run_cells(run, table)]
    columns = table_columns(table, runs)
    rows = [(PAPER_LABELS[key], [PAPER[table][key].get(column, "-") for column in columns]) for key in PAPER_ROWS]
    notes = []
    for run in runs:
        cells = run_cells(run, table)
        label = f"{run.label or run.path.name} ({run.modality})"
        rows.append((label, [f"{cells[column]:.2f}" if column in cells else "-" for column in columns]))
        if run.islr_note and table == 3:
            notes.append(f"{label}: subset cells from test_islr_topk.json ({run.islr_note})")
    return {"table": table, "title": TITLES[table], "columns": columns, "rows": rows, "notes": notes}


def render_markdown(table: dict) -> str:
    header = ["Method"] + [f"{_group_label(group)} {METRIC_HEADERS[metric]}" for group, metric in table["columns"]]
    lines = [f"**{table['title']}**", "", "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join([label] + cells) + " |" for label, cells in table["rows"]]
    lines += [""] + [f"- {note}" for note in table["notes"]] if table["notes"] else []
    return "\n".join(lines)


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(char, escaped)
    return text


def render_latex(table: dict) -> str:
    columns = table["columns"]
    groups = []  # (group, span) in order
    for group, _ in columns:
        if groups and groups[-1][0] == group:
            groups[-1][1] += 1
        else:
            groups.append([group, 1])
    lines = [f"% {table['title']}", r"\begin{tabular}{l" + "c" * len(columns) + "}", r"\toprule",
             " & ".join(["Method"] + [rf"\multicolumn{{{span}}}{{c}}{{{_latex_escape(_group_label(group))}}}"
                                      for group, span in groups]) + r" \\",
             " & ".join([""] + [METRIC_HEADERS[metric] for _, metric in columns]) + r" \\", r"\midrule"]
    for index, (label, cells) in enumerate(table["rows"]):
        if index == len(PAPER_ROWS):
            lines.append(r"\midrule")
        lines.append(" & ".join([_latex_escape(label)] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% {_latex_escape(note)}" for note in table["notes"]]
    return "\n".join(lines)


def collect(run_dirs, tables=None, fmt="markdown", dataset=None, task=None, rgb=None, warn=None) -> str:
    """The rendered tables for the runs: the requested tables, or every table some run belongs to."""
    warn = warn or sys.stderr
    runs = []
    for path in run_dirs:
        run = read_run(path, dataset, task, rgb)
        if table_of(run) is None:
            print(f"note: {path} ({run.dataset}, {run.task}) has no metric of the paper's Tables 3-6; left out",
                  file=warn)
            continue
        runs.append(run)
    names = [run.path.name for run in runs]
    for run in runs:  # the same folder name twice: label with the path
        run.label = str(run.path) if names.count(run.path.name) > 1 else run.path.name
    if tables is None:
        tables = sorted({table for run in runs for table in (3, 4, 5, 6) if run_cells(run, table)}) or [3, 4, 5, 6]
    render = render_latex if fmt == "latex" else render_markdown
    return "\n\n".join(render(build_table(table, runs)) for table in tables) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--table", type=int, choices=[3, 4, 5, 6], action="append",
                        help="paper table to print (repeatable; default: every table a run belongs to)")
    parser.add_argument("--format", default="markdown", choices=["markdown", "latex"])
    parser.add_argument("--out", default=None, help="also write the tables to this file")
    parser.add_argument("--dataset", default=None, help="dataset of runs without args.json")
    parser.add_argument("--task", default=None, choices=["SLT", "CSLR", "ISLR"], help="task of runs without args.json")
    parser.add_argument("--rgb", action="store_true", default=None, help="runs without args.json are RGB-pose")
    args = parser.parse_args(argv)
    try:
        text = collect(args.run_dirs, args.table, args.format, args.dataset, args.task, args.rgb)
    except RunError as error:
        sys.exit(f"error: {error}")
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
