"""Reproduce one of the paper's tables (3-10, 13) from its config (config/tables/table<N>.json), or the project's
CCL-SLR ablation (config/tables/ccl_slr.json).

    python script/reproduce_table.py --table 9 --out out/tables --dry-run          # print every command
    python script/reproduce_table.py --table 9 --out out/tables                    # run them, then the table
    python script/reproduce_table.py --table 13 --out out/smoke --synthetic --in-process   # CPU smoke, synthetic data
    python script/reproduce_table.py --table 6 --out out/tables --bleurt-checkpoint /models/BLEURT-20
    python script/reproduce_table.py --table ccl_slr --out out/ccl_slr --synthetic   # docs/ccl_slr.md's proof

A config lists named runs (`runs`: entry script, training stage 1/2/3, its flags; "{run:ID}" is run ID's
best_checkpoint.pth) and table rows (`rows`: name, settings, the paper's numbers, and which run fills each
column source). The runner adds the paper's Table 2 recipe of the run's stage and task (config/recipes.json,
as script/train_stage{1,2,3}.sh: the official global batch on any number of processes), runs every run in dependency order into OUT/<run id>/ (a run whose
results.json exists is skipped unless --force; run ids are shared across tables, so stage-1 pre-training is
trained once per OUT folder), then writes OUT/table<N>.md with the paper's numbers beside ours. For tables
3-6 the evaluation.collect_results layout of the same runs is appended (real runs only).

OUT/<run id>/runner.json records each run's command, its wall time and the machine (Table 9's time column).
BLEURT (Table 6) is not computed by train.py: with --bleurt-checkpoint DIR the runner scores the runs' dev/test
prediction files with evaluation/bleurt.py and adds `bleurt` to their results; without it the cells read "n/c".
--in-process runs each command inside this Python process (the same argv, main() of train.py or
train_task_head.py; output to the same log): it saves the ~5-7 s of imports per run, which dominate the
synthetic runs. Real runs should keep the default (one process per run, or your own launcher).

--table ccl_slr: the project's CCL-SLR ablation (config/tables/ccl_slr.json, no paper numbers): its "seeds" run every
run once per seed (<run>_seed<S>) and its cells show the mean ± sample standard deviation (n seeds); a run's
"stage" null means no Table 2 recipe; its "synthetic" section (size, subsets, flags) and the runs' "synthetic_args"
make --synthetic the measured proof of docs/ccl_slr.md rather than a smoke run.

--synthetic: the reduced CPU version. It generates the tiny synthetic corpus (with videos when the table has
RGB runs) and a small embedded LM as script/quickstart.py does, maps the datasets (CSL_Daily/How2Sign/OpenASL ->
Synthetic sentences, MSASL/WLASL -> Synthetic_ISLR, CSL_News/YouTube_ASL -> Synthetic_News) and trains every
run for 1 epoch with the tiny pose preset on at most 16 frames per sample, greedy decoding of at most 8 tokens.
Its numbers only show that the pipeline runs (every row of every table: a few minutes on a 2-core CPU).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from runs.folder import holds_run  # noqa: E402
from script.recipe import recipe_flags  # noqa: E402

TABLES_DIR = REPO_ROOT / "config" / "tables"
TABLES = (3, 4, 5, 6, 7, 8, 9, 10, 13)  # the paper's tables: config/tables/table<N>.json
OWN_TABLES = ("ccl_slr",)  # the project's own: config/tables/<name>.json
# --synthetic: dataset -> (registry name, corpus subset)
SYNTHETIC_DATASETS = {
    "CSL_Daily": ("Synthetic", "sentences"), "How2Sign": ("Synthetic", "sentences"),
    "OpenASL": ("Synthetic", "sentences"), "MSASL": ("Synthetic_ISLR", "isolated"),
    "WLASL": ("Synthetic_ISLR", "isolated"), "CSL_News": ("Synthetic_News", "news"),
    "YouTube_ASL": ("Synthetic_News", "news"),
}
# 16 frames per sample keep the RGB runs (EfficientNet-B0 on P_samp x frames hand crops) at seconds on a CPU.
SYNTHETIC_ARGS = [("--epochs", "1"), ("--batch-size", "4"), ("--gradient-accumulation-steps", "1"), ("--lr", "1e-3"),
                  ("--max_length", "16"), ("--pose-preset", "tiny"), ("--num-beams", "1"), ("--max-new-tokens", "8"),
                  ("--keep-checkpoints", "1"), ("--seed", "0"), ("--no-progress", None),
                  ("--efficientnet-init", "random"), ("--global-batch-size", "0")]
# --synthetic: the embedded LM (models.language_model.EmbeddedLMConfig) at a quarter of the quickstart's width.
SYNTHETIC_LM = dict(d_model=64, d_kv=16, d_ff=128, num_layers=1, num_decoder_layers=1, num_heads=2)
BLEURT_METRIC = "bleurt"
NOT_COMPUTED = "n/c"


def selected_rows(config, rows=None) -> list[dict]:
    """The config's rows, or those at the 0-based indices `rows`."""
    return config["rows"] if rows is None else [config["rows"][i] for i in rows]


def table_name(table) -> str:
    """The file stem of a table's config and markdown: table<N> for the paper's tables, else the name."""
    return f"table{table}" if str(table).isdigit() else str(table)


def load_table(table, seeds=None) -> dict:
    """The table's config, its runs expanded per seed (`seeds` replaces the config's "seeds" when given)."""
    path = TABLES_DIR / f"{table_name(table)}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config for table {table}: {path}")
    config = json.loads(path.read_text(encoding="utf-8"))
    return expand_seeds({**config, "seeds": seeds} if seeds else config)


def expand_seeds(config) -> dict:
    """A config with "seeds": every run once per seed (id <run>_seed<S>, its parents the same seed's), each row's
    sources a list of those runs (the table shows their mean and spread)."""
    if "seeds" not in config:
        return config
    runs = {}
    for run_id, run in config["runs"].items():
        for seed in config["seeds"]:
            args = [f"{{run:{arg[5:-1]}_seed{seed}}}" if arg.startswith("{run:") else arg for arg in run["args"]]
            runs[f"{run_id}_seed{seed}"] = {**run, "args": args, "seed": seed}
    rows = [{**row, "runs": {source: [f"{run_id}_seed{seed}" for seed in config["seeds"]]
                             for source, run_id in row["runs"].items()}} for row in config["rows"]]
    return {**config, "runs": runs, "rows": rows}


def row_run_ids(row) -> list[str]:
    return [run_id for value in row["runs"].values() for run_id in (value if isinstance(value, list) else [value])]


def _flag_value(args, flag):
    value = None
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            value = args[index + 1]
    return value


def set_flag(args, flag, value=None) -> list[str]:
    """args with `flag` set to `value` (replacing an earlier value), or the switch `flag` added (value None)."""
    args = list(args)
    if flag in args:
        if value is not None:
            args[args.index(flag) + 1] = value
        return args
    return args + ([flag] if value is None else [flag, value])


def run_argv(run: dict, run_id: str, out: Path, synthetic: dict | None = None, extra=()) -> list[str]:
    """The full command of one run: python ENTRY <stage recipe> <run flags> --output_dir OUT/ID [synthetic] [extra]."""
    task = _flag_value(run["args"], "--task") or "SLT"
    args = recipe_flags(run["stage"], task, environ={}) if run["stage"] else []  # config/recipes.json
    for arg in run["args"]:
        if arg.startswith("{run:") and arg.endswith("}"):
            arg = str(out / arg[5:-1] / "best_checkpoint.pth")
        args.append(arg)
    args += ["--output_dir", str(out / run_id)]
    if synthetic is not None:
        args = synthetic_args(args, synthetic) + run.get("synthetic_args", [])
    if "seed" in run:  # after the synthetic defaults (later flags win)
        args += ["--seed", str(run["seed"])]
    return [sys.executable, run["entry"], *args, *extra]


def synthetic_args(args, synthetic) -> list[str]:
    """Map the datasets onto the synthetic corpus and shrink the recipe (later flags win in argparse)."""
    args = list(args)
    index = args.index("--dataset")
    name, subset = SYNTHETIC_DATASETS[args[index + 1]]
    args[index + 1] = name
    data = Path(synthetic["data_dir"]) / subset
    for flag, value in SYNTHETIC_ARGS + [("--lm-path", str(synthetic["lm_dir"])), ("--labels-dir", str(data)),
                                         ("--pose-dir", str(data / "pose_format")),
                                         ("--rgb-dir", str(data / "rgb_format"))]:
        args = set_flag(args, flag, value)
    return args + list(synthetic.get("args", []))  # the config's own synthetic settings win


def table_commands(config: dict, out: Path, synthetic=None, extra=(), rows=None) -> list[tuple[str, list[str]]]:
    """(run id, argv) for the runs the selected rows need, parents first (the config's order)."""
    needed = set()
    selected = selected_rows(config, rows)

    def add(run_id):
        if run_id in needed:
            return
        needed.add(run_id)
        for arg in config["runs"][run_id]["args"]:
            if arg.startswith("{run:"):
                add(arg[5:-1])

    for row in selected:
        for run_id in row_run_ids(row):
            add(run_id)
    return [(run_id, run_argv(run, run_id, out, synthetic, extra))
            for run_id, run in config["runs"].items() if run_id in needed]


def synthetic_paths(out: Path, config) -> dict:
    """Where --synthetic data go: OUT/synthetic (the tiny corpus) or OUT/synthetic_<size> (a config's "synthetic"
    section: {"size", "subsets", "args": flags appended to every run})."""
    own = config.get("synthetic", {})
    root = out / ("synthetic" if own.get("size", "tiny") == "tiny" else f"synthetic_{own['size']}")
    return {"data_dir": root / "data", "lm_dir": root / "embedded_lm", "args": own.get("args", [])}


def prepare_synthetic(out: Path, videos: bool, config=None) -> dict:
    """The synthetic corpus (tiny, or the config's size and subsets) + the embedded LM when a train.py run needs it
    (as script/quickstart.py), built once per OUT folder."""
    from datasets.synthetic import SUBSETS, generate_corpus

    config = config or {}
    paths, own = synthetic_paths(out, config), config.get("synthetic", {})
    root = paths["data_dir"].parent
    marker = root / ("corpus_videos.done" if videos else "corpus.done")
    if not marker.is_file() and not (root / "corpus_videos.done").is_file():
        summary = generate_corpus(paths["data_dir"], seed=0, size=own.get("size", "tiny"), videos=videos,
                                  subsets=tuple(own.get("subsets", SUBSETS)))
        print(f"synthetic corpus: {summary['counts']} ({summary['seconds']:.0f} s)")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("ok\n")
    if needs_language_model(config) and not (paths["lm_dir"] / "config.json").is_file():
        from models.language_model import EmbeddedLMConfig, build_embedded_lm
        from script.quickstart import corpus_texts

        build_embedded_lm(corpus_texts(paths["data_dir"]), paths["lm_dir"], EmbeddedLMConfig(**SYNTHETIC_LM), seed=0)
    return paths


def needs_language_model(config) -> bool:
    """Whether some run trains Uni-Sign (train_ccl.py runs do not)."""
    return not config.get("runs") or any(run["entry"] != "train_ccl.py" for run in config["runs"].values())


def needs_rgb(config, rows=None) -> bool:
    """Whether a run reads videos: Uni-Sign's RGB branch, or CCL-SLR with its RGB branch."""
    commands = table_commands(config, Path("."), rows=rows)
    return any("--rgb_support" in argv or (argv[1] == "train_ccl.py" and _flag_value(argv, "--modalities") != "pose")
               for _, argv in commands)


def machine_description() -> str:
    """Where a run was timed: the GPU when one is visible, else the CPU model and its core count."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    model = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"{os.cpu_count()}-core {model} CPU"


def run_in_process(argv, log, threads=None) -> int:
    """argv = [python, ENTRY, *args]: ENTRY's main(args) in this process, its output into `log`; the exit status."""
    import torch

    module = importlib.import_module(Path(argv[1]).stem)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            try:
                module.main(argv[2:])
            except SystemExit as stop:  # sys.exit("message") or sys.exit(code), as the script would exit
                if stop.code in (None, 0):
                    return 0
                print(stop.code, file=log)
                return stop.code if isinstance(stop.code, int) else 1
            except Exception:  # noqa: BLE001 (the run failed; its traceback goes to its log like a subprocess's)
                traceback.print_exc(file=log)
                return 1
        return 0
    finally:
        torch.set_num_threads(previous_threads)


def execute(commands, out: Path, force=False, threads=None, in_process=False):
    """Run the commands in order; OUT/<id>/runner.json records the command, its wall time and the machine."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    (out / "logs").mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    for run_id, argv in commands:
        run_dir = out / run_id
        if (run_dir / "results.json").is_file() and not force:
            print(f"[skip] {run_id}: {run_dir / 'results.json'} exists")
            continue
        if holds_run(run_dir):  # a forced re-run, or a run that failed: the old one is moved aside, never mixed in
            argv = [*argv, "--overwrite"]
        log_path = out / "logs" / f"{run_id}.log"
        print(f"[run] {run_id} (log: {log_path})", flush=True)
        started = time.time()
        with open(log_path, "w") as log:
            if in_process:
                returncode = run_in_process(argv, log, threads)
            else:
                returncode = subprocess.run(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        seconds = time.time() - started
        if returncode != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{run_id} failed (exit {returncode}); {log_path}:\n" + "\n".join(tail))
        run_dir.mkdir(parents=True, exist_ok=True)
        record = {"command": shlex.join(argv), "seconds": seconds, "machine": machine,
                  "launch": "in-process" if in_process else "subprocess"}
        (run_dir / "runner.json").write_text(json.dumps(record, indent=1))
        print(f"      done in {seconds:.0f} s", flush=True)


def add_bleurt(config, out: Path, checkpoint, rows=None) -> list[str]:
    """Score BLEURT (evaluation.bleurt.add_bleurt_to_run) for the runs behind the table's BLEURT cells that lack it.

    Returns the run ids it scored. BleurtUnavailable when the checkpoint or its package is missing."""
    from evaluation.bleurt import add_bleurt_to_run

    selected = selected_rows(config, rows)
    wanted = {}  # run id -> splits
    for column in config["columns"]:
        if column["metric"] != BLEURT_METRIC:
            continue
        for row in selected:
            wanted.setdefault(row["runs"][column["source"]], set()).add(column["split"])
    scored = []
    for run_id, splits in wanted.items():
        results_file = out / run_id / "results.json"
        if not results_file.is_file():
            continue
        results = json.loads(results_file.read_text(encoding="utf-8"))
        missing = tuple(sorted(split for split in splits if BLEURT_METRIC not in results.get(split, {})))
        if missing:
            add_bleurt_to_run(out / run_id, checkpoint, missing)
            scored.append(run_id)
    return scored


# --------------------------------------------------------------------------- the table


def _fmt(value) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value:.2f}"


def timed_runs(config, run_ids) -> set[str]:
    """The runs and their ancestors except stage-1 pre-training (shared by every row of Table 9): what a row costs."""
    timed = set()
    for run_id in run_ids:
        timed.add(run_id)
        parents = [arg[5:-1] for arg in config["runs"][run_id]["args"] if arg.startswith("{run:")]
        timed |= timed_runs(config, [parent for parent in parents if config["runs"][parent]["stage"] != 1])
    return timed


def row_time(config, row, out: Path) -> tuple[float, set[str]] | None:
    """(seconds, machines) of a row's timed runs, each counted once, from their runner.json; None if one is missing."""
    seconds, machines = 0.0, set()
    for run_id in sorted(timed_runs(config, row_run_ids(row))):
        record = out / run_id / "runner.json"
        if not record.is_file():
            return None
        values = json.loads(record.read_text())
        seconds += values["seconds"]
        machines.add(values.get("machine", "unknown machine"))
    return seconds, machines


def build_rows(config, out: Path, rows=None) -> list[dict]:
    """Per selected row: {'name', 'paper': {key: str}, 'ours': {key: value, str or None}, 'machines'}.

    A time cell is "<seconds> s (<ratio to the first row>x)"; a BLEURT cell of a finished run without BLEURT is
    NOT_COMPUTED."""

    selected = selected_rows(config, rows)
    built, base_seconds = [], None
    for row in selected:
        ours, machines = {}, set()
        timed = row_time(config, row, out) if any(c["source"] == "time" for c in config["columns"]) else None
        if timed is not None:
            machines = timed[1]
            base_seconds = timed[0] if base_seconds is None else base_seconds
        for column in config["columns"]:
            if column["source"] == "time":
                ours[column["key"]] = (f"{timed[0]:.0f} s ({timed[0] / base_seconds:.1f}x)" if timed and base_seconds
                                       else None)
                continue
            source = row["runs"].get(column["source"])
            if isinstance(source, list):  # one run per seed
                ours[column["key"]] = mean_and_spread([run_metric(out, run_id, column) for run_id in source])
                continue
            ours[column["key"]] = run_metric(out, source, column)
        paper = {key: str(value) for key, value in row["paper"].items()}  # as printed in the config
        built.append({"name": row["name"], "paper": paper, "ours": ours, "machines": machines})
    return built


def run_metric(out: Path, run_id, column):
    """A finished run's metric (NOT_COMPUTED for a BLEURT cell never scored), None when it is not there."""
    from evaluation.collect_results import RunError, read_run

    if not run_id or not (out / run_id).is_dir():
        return None
    try:
        metrics = read_run(out / run_id).metrics
    except RunError:
        return None
    value = metrics.get(column["split"], {}).get(column["metric"])
    if value is None and column["metric"] == BLEURT_METRIC and metrics:
        return NOT_COMPUTED
    return value


def mean_and_spread(values) -> str | None:
    """'mean ± sample standard deviation (n=N)' over the seeds that finished; None when none did."""
    import statistics

    done = [value for value in values if isinstance(value, (int, float))]
    if not done:
        return None
    spread = statistics.stdev(done) if len(done) > 1 else 0.0
    return f"{statistics.mean(done):.2f} ± {spread:.2f} (n={len(done)})"


def render_table(config, built, synthetic=False) -> str:
    headers = ["Setting", "Source"] + [column["header"] for column in config["columns"]]
    suffix = ""
    if synthetic:  # a config's own synthetic section is a measurement; the others are smoke runs
        smoke = " (synthetic smoke run: not comparable to the paper)"
        suffix = " (synthetic corpus)" if config.get("synthetic") else smoke
    lines = [f"**{config['title']}**" + suffix,
             "", "| " + " | ".join(headers) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(headers) - 2)) + "|"]
    for row in built:
        keys = [column["key"] for column in config["columns"]]
        lines.append("| " + " | ".join([row["name"], "paper"] + [row["paper"].get(key, "-") for key in keys]) + " |")
        lines.append("| " + " | ".join([row["name"], "ours"] + [_fmt(row["ours"].get(key)) for key in keys]) + " |")
    notes = list(config.get("notes", []))
    machines = sorted({machine for row in built for machine in row["machines"]})
    if machines:
        notes.append(f"Time (ours) was measured on {' and '.join(machines)}: seconds of wall time (training and "
                     "the dev/test evaluation of each run), and the ratio to the first row; the paper's column is "
                     "its relative training time as printed.")
    if any(value == NOT_COMPUTED for row in built for value in row["ours"].values()):
        notes.append(f"{NOT_COMPUTED}: BLEURT not computed (no --bleurt-checkpoint given; with --table-only the "
                     "runner only scores, it trains nothing).")
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def collector_table(config, out: Path, commands) -> str:
    """The evaluation.collect_results layout of the same runs (tables 3-6; real dataset names only)."""
    from evaluation.collect_results import collect

    if not config.get("collector_table"):
        return ""
    dirs = [out / run_id for run_id, _ in commands if (out / run_id / "results.json").is_file()
            and config["runs"][run_id]["stage"] == 3]
    if not dirs:
        return ""
    import io

    return collect(dirs, tables=[config["collector_table"]], warn=io.StringIO())


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, choices=[str(table) for table in TABLES + OWN_TABLES],
                        help="a paper table's number, or ccl_slr (the CCL-SLR ablation, config/tables/ccl_slr.json)")
    parser.add_argument("--out", default="out/tables", help="run folders, logs and table<N>.md go here")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--synthetic", action="store_true", help="reduced CPU version on the tiny synthetic corpus")
    parser.add_argument("--rows", default="", help="comma-separated row indices (0-based) to run; default: all")
    parser.add_argument("--force", action="store_true", help="re-run runs whose results.json exists")
    parser.add_argument("--seeds", default="",
                        help="comma-separated seeds replacing the config's \"seeds\" (e.g. more seeds for some --rows)")
    parser.add_argument("--threads", type=int, default=None, help="OMP/MKL threads of each run (CPU)")
    parser.add_argument("--extra-args", default="",
                        help="flags appended to every command, e.g. '--dataset-config my.json --lm-path /m/mt5-base'")
    parser.add_argument("--table-only", action="store_true", help="only (re)build the table from OUT")
    parser.add_argument("--in-process", action="store_true",
                        help="run each command's main() inside this process (saves start-up time; CPU smoke runs)")
    parser.add_argument("--bleurt-checkpoint", default="",
                        help="local BLEURT checkpoint (e.g. BLEURT-20): score the BLEURT cells (Table 6)")
    args = parser.parse_args(argv)

    config = load_table(args.table, [int(seed) for seed in args.seeds.split(",") if seed.strip()])
    out = Path(args.out).resolve()
    if args.bleurt_checkpoint and not args.dry_run:
        from evaluation.bleurt import BleurtUnavailable, checkpoint_kind

        try:  # before hours of training: the folder exists and is a BLEURT checkpoint layout
            checkpoint_kind(args.bleurt_checkpoint)
        except BleurtUnavailable as error:
            sys.exit(str(error))
    rows = [int(index) for index in args.rows.split(",") if index.strip()] or None
    synthetic = None
    if args.synthetic:
        synthetic = synthetic_paths(out, config)
        if not args.dry_run and not args.table_only:
            synthetic = prepare_synthetic(out, needs_rgb(config, rows), config)
    commands = table_commands(config, out, synthetic, shlex.split(args.extra_args), rows)
    if args.dry_run:
        print(f"# {config['title']}: {len(commands)} runs")
        for run_id, argv_ in commands:
            print(f"# {run_id}\n{shlex.join(['python'] + argv_[1:])}")
        return ""
    if not args.table_only:
        execute(commands, out, args.force, args.threads, args.in_process)
    if args.bleurt_checkpoint:
        from evaluation.bleurt import BleurtUnavailable

        try:
            for run_id in add_bleurt(config, out, args.bleurt_checkpoint, rows):
                print(f"[bleurt] {run_id}: scored with {args.bleurt_checkpoint}")
        except BleurtUnavailable as error:
            sys.exit(str(error))
    text = render_table(config, build_rows(config, out, rows), args.synthetic)
    if not args.synthetic:
        extra = collector_table(config, out, commands)
        text += ("\n" + extra) if extra else ""
    (out / f"{table_name(args.table)}.md").write_text(text, encoding="utf-8")
    print(text)
    return text


if __name__ == "__main__":
    main()
