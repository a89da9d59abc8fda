"""Quickstart: the whole Uni-Sign pipeline on the embedded default, on a CPU, in minutes.

synthetic sign corpus -> data check -> embedded LM (SentencePiece + small MT5, saved and reloaded through
from_pretrained) -> stage 1 pre-training on the news-style set (script/train_stage1.sh) -> stage 3
fine-tuning for SLT, CSLR and ISLR (script/train_stage3.sh; two runs side by side, each with half the cores)
-> evaluation (script/eval_stage3.sh) -> one table of test metrics beside chance / constant-output baselines.

    python script/quickstart.py                 # the README's main command runs this
    python script/quickstart.py --size tiny --stage1-epochs 1 --stage3-epochs 1   # a smoke run
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from datasets.check_data import check_dataset  # noqa: E402
from datasets.formats import read_labels  # noqa: E402
from datasets.synthetic import generate_corpus  # noqa: E402
from evaluation.metrics import islr_accuracy, translation_metrics, wer  # noqa: E402
from models.language_model import EmbeddedLMConfig, build_embedded_lm  # noqa: E402
from runs.folder import holds_run  # noqa: E402

# The README's names of the test metrics.
METRIC_NAMES = {"bleu4": "BLEU-4", "wer": "WER (lower is better)", "top1_acc_pi": "per-instance top-1"}
BASELINE_NAMES = {"SLT": "most frequent training sentence", "CSLR": "most frequent gloss sequence",
                  "ISLR": "chance, {classes} classes"}
# Per task: registry name, subset folder, selection metric, whether larger is better.
TASKS = {
    "SLT": ("Synthetic", "sentences", "bleu4", True),
    "CSLR": ("Synthetic", "sentences", "wer", False),
    "ISLR": ("Synthetic_ISLR", "isolated", "top1_acc_pi", True),
}
# Stage-3 epochs per task within the 10-minute CPU budget: CSLR needs the most optimizer steps, ISLR clips are short.
STAGE3_EPOCHS = {"SLT": 4, "CSLR": 7, "ISLR": 5}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/quickstart", help="output folder (default: %(default)s)")
    parser.add_argument("--size", default="default", choices=["tiny", "small", "default"], help="corpus size")
    parser.add_argument("--lang", default="en", choices=["en", "zh"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage1-epochs", type=int, default=1)
    parser.add_argument("--stage3-epochs", type=int, default=None,
                        help="stage-3 epochs of every task (default: " + ", ".join(f"{task} {epochs}" for task, epochs
                                                                           in STAGE3_EPOCHS.items()) + ")")
    parser.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate (default: the paper's Table 2)")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--autocast", default="off", choices=["bf16", "off"],
                        help="'bf16' runs forward passes in bfloat16 (x1.75 per training step on a CPU with AMX; "
                             "one without bf16 instructions emulates it); default %(default)s: the official fp32 "
                             "numerics (docs/performance.md compares the two)")
    parser.add_argument("--fused-adamw", default="on", choices=["on", "off"],
                        help="train.py --fused-adamw: 'off' steps with torch's default AdamW, as the official run "
                             "and as the README's rows measured before 2026-12-06 (the same update up to rounding)")
    parser.add_argument("--batches", default="random", choices=["random", "length-grouped"],
                        help="'length-grouped' batches clips of similar length (train.py --length-grouped): about a "
                             "quarter fewer padded frames to compute on the sentences; default %(default)s, the "
                             "official random batches")
    parser.add_argument("--prune-vocabulary", action="store_true",
                        help="stage 3 keeps only its training targets' tokens in the LM's embedding and head "
                             "(train.py --prune-vocabulary; docs/performance.md)")
    parser.add_argument("--concurrent-runs", type=int, default=default_concurrent_runs(),
                        help="stage-3 fine-tunings run side by side, the cores shared among them (default: "
                             "%(default)s here: 2 on a machine with two or more cores). On 2 cores two one-thread runs "
                             "do 1.2x the steps of one two-thread run; 1 runs them one after another with every core "
                             "(another thread count sums in another order, so the digits differ slightly)")
    parser.add_argument("--keep-states", action="store_true",
                        help="keep each finished stage's resumable training states (checkpoints/, ~70 MB a stage); "
                             "by default only the final and best checkpoints stay")
    parser.add_argument("--rgb", action="store_true",
                        help="also render the videos and fine-tune an RGB-pose SLT model (PGF hand branch, "
                             "P_samp 10%%) from the stage-1 checkpoint; adds several minutes on a CPU")
    args = parser.parse_args()
    if args.concurrent_runs < 1:
        parser.error(f"--concurrent-runs must be 1 or more, not {args.concurrent_runs}")
    return args


@dataclass
class Job:
    """One stage script to run: its command, environment overrides, log, and the run folder its bar follows."""

    label: str
    script: str
    env: dict
    log_path: Path
    run_dir: Path | None = None  # None: an evaluation, no optimizer steps to count
    epochs: int = 1
    command: list = field(default_factory=list)  # default: bash script/<script>

    def argv(self) -> list:
        return self.command or ["bash", str(REPO_ROOT / "script" / self.script)]


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_concurrent_runs() -> int:
    """Two stage-3 runs side by side on a machine with two or more cores, else one."""
    return 2 if available_cores() >= 2 else 1


def thread_env(threads) -> dict:
    """Environment that gives a run `threads` torch threads (OpenMP and MKL); {} leaves torch's default."""
    return {} if threads is None else {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run_script(script, env_overrides, log_path, label, run_dir=None, epochs=1):
    """Run one of script/*.sh with environment overrides and all the cores; its output goes to log_path."""
    run_jobs([Job(label, script, env_overrides, log_path, run_dir, epochs)], concurrent=1)


def run_jobs(jobs, concurrent, threads=None):
    """Run the jobs in order, `concurrent` at a time, each with `threads` torch threads (None: torch's default);
    a live bar per job follows its run's optimizer steps (train_log.csv) with the ETA and the current loss. A
    failed job stops the others and exits naming its log."""
    waiting = [(job, job_bar(job, k, waiting=k >= concurrent)) for k, job in enumerate(jobs)]
    bars, running = [bar for _, bar in waiting], {}
    try:
        while waiting or running:
            while waiting and len(running) < concurrent:
                job, bar = waiting.pop(0)
                bar.set_description_str(job.label)  # no longer waiting
                bar.reset()  # its clock starts now
                running[start_job(job, threads)] = (job, bar, time.time())
            time.sleep(0.5)
            for process in list(running):
                if follow_job(process, *running[process]):
                    del running[process]
    finally:
        stop_jobs(running)
        for bar in bars:
            bar.close()


def job_bar(job, position, waiting) -> tqdm:
    return tqdm(desc=job.label + (" (waiting)" if waiting else ""), unit="step", dynamic_ncols=True, leave=True,
                position=position, bar_format=None if job.run_dir else "{desc}: running {elapsed}")


def follow_job(process, job, bar, started) -> bool:
    """Update the job's bar; when it has ended, say so (-> True), or exit naming its log if it failed. One poll
    decides both, so a run that ends between two looks is never taken as finished without its exit code."""
    ended = process.poll() is not None
    follow_run(bar, job.label, job.log_path, job.run_dir, job.epochs)  # after the poll: an ended run's last step
    if not ended:
        return False
    if process.returncode != 0:
        sys.exit(f"{job.script} failed (exit {process.returncode}); see {job.log_path}")
    tqdm.write(f"  {job.script} ({job.label}) done in {time.time() - started:.0f} s (log: {job.log_path})")
    return True


def start_job(job, threads) -> subprocess.Popen:
    env = {**os.environ, **{key: str(value) for key, value in job.env.items()}, **thread_env(threads)}
    with open(job.log_path, "w") as log:  # the child keeps its own handle
        return subprocess.Popen(job.argv(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                start_new_session=True)  # its own process group: the script and its train.py


def stop_jobs(running):
    """Terminate runs still going (after another one failed or the user pressed Ctrl-C) and wait for them: the
    whole process group, since bash does not pass SIGTERM on to the train.py it waits for."""
    for process in running:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:  # already gone
            pass
    for process in running:
        process.wait()


def follow_run(bar, label, log_path, run_dir, epochs):
    """Move `bar` to the run's last logged optimizer step; total = epochs x the steps per epoch it announced."""
    if bar.total is None:
        announced = re.search(r"(\d+) optimizer steps per epoch", Path(log_path).read_text(errors="replace"))
        if announced:
            bar.total = int(announced.group(1)) * epochs
    train_log = Path(run_dir) / "train_log.csv" if run_dir else None
    if train_log is None or not train_log.is_file():
        return
    lines = train_log.read_text().splitlines()
    if len(lines) < 2:
        return
    step, _, loss = lines[-1].split(",")[:3]
    bar.n = int(step)
    if bar.total and bar.n >= bar.total:
        bar.set_description(f"{label} (evaluating)")
    bar.set_postfix(loss=f"{float(loss):.3f}")
    bar.refresh()


def drop_training_states(run_dir, keep):
    """A finished stage needs no resumable states (its checkpoints/ folder); the quickstart keeps only
    best_checkpoint.pth and checkpoint.pth unless --keep-states."""
    states = Path(run_dir) / "checkpoints"
    if not keep and states.is_dir():
        shutil.rmtree(states)


def prepare_corpus(args, data_dir):
    summary = generate_corpus(data_dir, seed=args.seed, lang=args.lang, size=args.size, videos=args.rgb)
    print(f"corpus: {summary['vocabulary_size']} signs, {summary['counts']} ({summary['seconds']:.0f} s)")
    for subset, label_file in (("sentences", "labels.train"), ("isolated", "labels.test"), ("news", "labels.json")):
        report = check_dataset(data_dir / subset / label_file, data_dir / subset / "pose_format")
        if report.problems:
            sys.exit(f"data check failed for {subset}: {report.problems[:3]}")
    print("data check: clean")


def corpus_texts(data_dir) -> list:
    """Every training text (news, sentences, glosses, words): what the embedded tokenizer is trained on."""
    texts = [entry.text for entry in read_labels(data_dir / "news" / "labels.json")]
    for subset in ("sentences", "isolated"):
        for entry in read_labels(data_dir / subset / "labels.train"):
            texts += [entry.text] + ([entry.gloss] if entry.gloss else [])
    return texts


def baselines(data_dir) -> dict:
    """Test metrics of the best constant output (the most frequent training target) and of chance."""
    sentences = {split: read_labels(data_dir / "sentences" / f"labels.{split}") for split in ("train", "test")}
    isolated = {split: read_labels(data_dir / "isolated" / f"labels.{split}") for split in ("train", "test")}
    slt_constant = Counter(e.text for e in sentences["train"]).most_common(1)[0][0]
    cslr_constant = Counter(e.gloss for e in sentences["train"]).most_common(1)[0][0]
    islr_constant = Counter(e.text for e in isolated["train"]).most_common(1)[0][0]
    slt_refs = [e.text for e in sentences["test"]]
    cslr_refs = [e.gloss for e in sentences["test"]]
    islr_refs = [e.text for e in isolated["test"]]
    classes = len({e.text for e in isolated["train"]})
    return {
        "SLT": translation_metrics([slt_constant] * len(slt_refs), slt_refs)["bleu4"],
        "CSLR": wer([cslr_constant] * len(cslr_refs), cslr_refs)["wer"],
        "ISLR": max(100.0 / classes, islr_accuracy([islr_constant] * len(islr_refs), islr_refs)["top1_acc_pi"]),
        "ISLR_chance": 100.0 / classes,
    }


def script_env(args, lm_dir, data_dir, subset, **overrides) -> dict:
    """Environment for script/*.sh: the embedded LM, the tiny pose preset and this corpus subset's paths."""
    extra = (f"--pose-preset tiny --batch-hands --max-new-tokens {args.max_new_tokens} --no-progress --seed {args.seed}"
             f" --autocast {args.autocast} --fused-adamw {args.fused_adamw} --keep-checkpoints 1"
             f"{' --length-grouped' if args.batches == 'length-grouped' else ''}"
             f" --labels-dir {data_dir / subset} --pose-dir {data_dir / subset / 'pose_format'}")
    return {"LM_PATH": lm_dir, "LR": args.lr, "BATCH_SIZE": 8, "ACCUM": 1, "EXTRA_ARGS": extra, **overrides}


def fine_tune_job(args, out, lm_dir, data_dir, name, dataset, subset, task, extra_args="") -> Job:
    """Stage 3 from the stage-1 checkpoint (script/train_stage3.sh) into OUT/stage3_<name>."""
    run_dir, epochs = out / f"stage3_{name}", args.stage3_epochs or STAGE3_EPOCHS[task]
    env = script_env(args, lm_dir, data_dir, subset, DATASET=dataset, TASK=task, EPOCHS=epochs,
                     FINETUNE=out / "stage1" / "best_checkpoint.pth", OUTPUT_DIR=run_dir)
    env["EXTRA_ARGS"] += f" --eval-every {epochs}{extra_args}"  # dev once, at the end: beam search is slow on CPU
    env["EXTRA_ARGS"] += " --prune-vocabulary" if args.prune_vocabulary else ""
    return Job(f"stage 3 {name}", "train_stage3.sh", env, out / f"stage3_{name}.log", run_dir, epochs)


def fine_tune_all(args, out, lm_dir, data_dir) -> dict:
    """Every stage-3 run, --concurrent-runs at a time (most epochs first), each with its share of the cores;
    -> {name: test metric}."""
    jobs = {task: fine_tune_job(args, out, lm_dir, data_dir, task.lower(), dataset, subset, task)
            for task, (dataset, subset, _, _) in TASKS.items()}
    if args.rgb:
        rgb_args = f" --rgb_support --efficientnet-init random --rgb-dir {data_dir / 'sentences' / 'rgb_format'}"
        jobs["SLT (RGB-pose)"] = fine_tune_job(args, out, lm_dir, data_dir, "slt_rgb", "Synthetic", "sentences", "SLT",
                                               rgb_args)
    concurrent = min(args.concurrent_runs, len(jobs))
    threads = max(1, available_cores() // concurrent) if concurrent > 1 else None
    print(f"stage 3: {', '.join(jobs)} fine-tuning, " + (
        f"{concurrent} at a time with {threads} torch thread(s) each" if threads else "one after another"))
    run_jobs(sorted(jobs.values(), key=lambda job: -job.epochs), concurrent, threads)
    results = {}
    for name, job in jobs.items():
        drop_training_states(job.run_dir, args.keep_states)
        test = json.loads((job.run_dir / "results.json").read_text())["test"]
        results[name] = test[TASKS[name.split()[0]][2]]
    return results


def learned(task, value, baseline, chance) -> bool:
    """The quickstart's bar: ISLR top-1 >= 5x chance; SLT BLEU-4 >= 2x baseline + 5; CSLR WER <= 0.8x baseline."""
    if task == "ISLR":
        return value >= 5 * chance
    if task == "SLT":
        return value >= 2 * baseline + 5
    return value <= 0.8 * baseline


def replace_previous_runs(out):
    """A new quickstart replaces the run folders of the previous one in `out` (train.py never mixes two runs)."""
    previous = sorted(path for path in out.iterdir() if path.is_dir() and holds_run(path))
    if previous:
        print(f"replacing the previous quickstart's runs in {out}: {', '.join(path.name for path in previous)}")
    for path in previous:
        shutil.rmtree(path)


def exit_on_sigterm():
    """SIGTERM (a `timeout`, a job scheduler) ends the quickstart through its cleanup, which stops the stage runs;
    they run in their own process groups, so the signal does not reach them by itself."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))


def main():
    args = parse_args()
    exit_on_sigterm()
    started = time.time()
    out = (REPO_ROOT / args.out).resolve()
    data_dir, lm_dir = out / "data", out / "embedded_lm"
    out.mkdir(parents=True, exist_ok=True)
    replace_previous_runs(out)
    prepare_corpus(args, data_dir)
    build_embedded_lm(corpus_texts(data_dir), lm_dir, EmbeddedLMConfig(), seed=args.seed)
    print(f"embedded LM saved to {lm_dir}")

    print("stage 1: pose-only pre-training on the news-style set")
    env = script_env(args, lm_dir, data_dir, "news", DATASET="Synthetic_News", EPOCHS=args.stage1_epochs,
                     OUTPUT_DIR=out / "stage1")
    env["EXTRA_ARGS"] += f" --eval-every {args.stage1_epochs}"
    run_script("train_stage1.sh", env, out / "stage1.log", "stage 1", out / "stage1", args.stage1_epochs)
    drop_training_states(out / "stage1", args.keep_states)
    results = fine_tune_all(args, out, lm_dir, data_dir)
    print("evaluation: script/eval_stage3.sh on the SLT checkpoint")
    env = script_env(args, lm_dir, data_dir, "sentences", DATASET="Synthetic", TASK="SLT",
                     FINETUNE=out / "stage3_slt" / "best_checkpoint.pth", OUTPUT_DIR=out / "eval_slt")
    run_script("eval_stage3.sh", env, out / "eval_slt.log", "evaluation")
    print_table(results, baselines(data_dir), out, time.time() - started)


def print_table(results, baseline, out, seconds):
    """The README's table: task, test metric, ours, the constant / chance baseline, whether the task learned."""
    lines = ["| task | test metric | Uni-Sign (ours) | constant / chance baseline | learned |", "|---|---|---|---|---|"]
    for name, value in results.items():
        task = name.split()[0]
        ok = learned(task, value, baseline[task], baseline["ISLR_chance"])
        what = BASELINE_NAMES[task].format(classes=round(100 / baseline["ISLR_chance"]))
        lines.append(f"| {name} | {METRIC_NAMES[TASKS[task][2]]} | {value:.2f} | {baseline[task]:.2f} ({what}) | "
                     f"{'yes' if ok else 'NO'} |")
    table = "\n".join(lines)
    print(f"\n{table}\n\ntotal time: {seconds / 60:.1f} min")
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps({"results": results, "baselines": baseline, "seconds": seconds},
                                                 indent=2))


if __name__ == "__main__":
    main()
