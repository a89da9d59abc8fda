"""Runs side by side: N training processes with cores/N torch threads each against one process with every core.

A small model (the quickstart's: tiny pose preset, both hands as one batch, the embedded LM) does not keep several
threads busy: separate runs on separate cores do more optimizer steps per second in total. script/quickstart.py
uses this for its three stage-3 fine-tunings (--concurrent-runs).

    python -m bench.concurrent_runs                                    # 1 run x every core vs 2 runs x half
    python -m bench.concurrent_runs --runs 1,2,3 --repeats 3 --json out/bench/concurrent_runs.json

Each configuration starts its N processes at the same moment (bench/train_throughput.py --single: the model built as
train.py builds it, AdamW steps on collated batches of the tiny corpus' sentences, batch 8); each times --steps
optimizer steps after --warmup, and the configuration's throughput is the sum of their samples/s (the processes
start together and do the same work, so their timed steps overlap). The configurations alternate --repeats times;
medians and ranges are printed. Without --data / --lm-path the tiny corpus and the embedded LM are built first.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import train_throughput  # noqa: E402
from engine import write_json  # noqa: E402
from script.quickstart import available_cores, thread_env  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="1,2",
                        help="comma-separated numbers of side-by-side runs (default: %(default)s)")
    parser.add_argument("--cores", type=int, default=None, help="cores to share (default: those this process may use)")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per configuration, alternating")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps per run first")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--distinct-batches", type=int, default=4, help="batches collated once and cycled")
    parser.add_argument("--pose-preset", default="tiny", help="train.py --pose-preset (default: %(default)s)")
    parser.add_argument("--data", default=None, help="synthetic corpus root (default: generate the tiny one)")
    parser.add_argument("--lm-path", default=None, help="MT5 directory (default: build the embedded default LM)")
    parser.add_argument("--work-dir", default=None, help="where the corpus / LM are built (default: a temp dir)")
    parser.add_argument("--json", default=None, help="write the results here")
    return parser.parse_args(argv)


def run_command(args, data_dir, lm_path, threads) -> list:
    """One training process of bench/train_throughput.py, the quickstart's model, `threads` torch threads."""
    return [sys.executable, "-m", "bench.train_throughput", "--single", "--data", str(data_dir), "--lm-path",
            str(lm_path), "--subset", "sentences", "--pose-preset", args.pose_preset, "--batch-hands",
            "--batch-size", str(args.batch_size), "--distinct-batches", str(args.distinct_batches), "--warmup",
            str(args.warmup), "--steps", str(args.steps), "--threads", str(threads), "--no-flops", "--device", "cpu"]


def measure(args, data_dir, lm_path, runs, cores) -> dict:
    """Start `runs` processes together with cores // runs threads each; -> their summed samples/s."""
    threads = max(1, cores // runs)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **thread_env(threads)}  # threads as the quickstart sets them
    with tempfile.TemporaryDirectory() as logs:
        outputs = [open(Path(logs) / f"run{k}.log", "w+") for k in range(runs)]
        processes = [subprocess.Popen(run_command(args, data_dir, lm_path, threads), cwd=REPO_ROOT, env=env,
                                      stdout=output, stderr=subprocess.STDOUT, text=True) for output in outputs]
        results = [run_result(process, output) for process, output in zip(processes, outputs)]
    return {"runs": runs, "threads": threads, "samples_per_s": sum(r["samples_per_s"] for r in results),
            "step_seconds": [r["step_seconds_mean"] for r in results]}


def run_result(process, output) -> dict:
    process.wait()
    output.seek(0)
    text = output.read()
    output.close()
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        sys.exit(f"a training process failed (exit {process.returncode}):\n{text[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def summarise(measurements, configurations) -> list:
    """Per configuration: median and range of the total samples/s, and the speed-up over the first one."""
    rows = []
    for runs in configurations:
        totals = [m["samples_per_s"] for m in measurements if m["runs"] == runs]
        threads = next(m["threads"] for m in measurements if m["runs"] == runs)
        rows.append({"runs": runs, "threads_each": threads, "samples_per_s_median": statistics.median(totals),
                     "samples_per_s_min": min(totals), "samples_per_s_max": max(totals), "repeats": len(totals)})
    for row in rows:
        row["speed_up"] = row["samples_per_s_median"] / rows[0]["samples_per_s_median"]
    return rows


def format_table(rows) -> str:
    lines = ["| runs side by side | torch threads each | samples/s in total (median, range) | speed-up |",
             "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['runs']} | {row['threads_each']} | {row['samples_per_s_median']:.1f} "
                     f"({row['samples_per_s_min']:.1f} - {row['samples_per_s_max']:.1f}) | x{row['speed_up']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    configurations = [int(runs) for runs in args.runs.split(",")]
    cores = args.cores or available_cores()
    with tempfile.TemporaryDirectory() as temporary:
        data_dir, lm_path = train_throughput.prepare(args_for_prepare(args), Path(args.work_dir or temporary))
        measurements = []
        for repeat in range(args.repeats):
            for runs in configurations:
                measurements.append(measure(args, data_dir, lm_path, runs, cores))
                print(f"repeat {repeat + 1}: {runs} run(s): {measurements[-1]['samples_per_s']:.1f} samples/s",
                      flush=True)
    rows = summarise(measurements, configurations)
    print(format_table(rows))
    if args.json:
        write_json(Path(args.json), {"cores": cores, "rows": rows, "measurements": measurements})
    return rows


def args_for_prepare(args):
    """What train_throughput.prepare reads: the corpus, the LM and the seed of the embedded default."""
    return argparse.Namespace(data=args.data, lm_path=args.lm_path, seed=0)


if __name__ == "__main__":
    main()
