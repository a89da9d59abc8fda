"""The stage scripts launch the official runs: their effective arguments (DRY_RUN=1 prints the command) equal
the official scripts' on the official 4 GPUs, and keep the official global batch on any process count."""
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from runs.arguments import get_args_parser, resolve_accumulation

REPO = Path(__file__).resolve().parents[2]
# The official script/*.sh (4 GPUs): per-GPU batch, accumulation, epochs, lr, frames, dataset, RGB.
OFFICIAL = {
    "train_stage1.sh": dict(batch_size=16, accumulation=8, epochs=20, lr=3e-4, max_length=256, dataset="CSL_News",
                            rgb_support=False),
    "train_stage2.sh": dict(batch_size=4, accumulation=8, epochs=5, lr=3e-4, max_length=256, dataset="CSL_News",
                            rgb_support=True),
    "train_stage3.sh": dict(batch_size=8, accumulation=1, epochs=20, lr=3e-4, max_length=256, dataset="CSL_Daily",
                            rgb_support=False),
}
OFFICIAL_ISLR_FRAMES = 64  # the official ISLR example of train_stage3.sh
OFFICIAL_PROCESSES = 4


def dry_run(script, launcher, **environ):
    """The train.py / eval.py arguments the script would launch, parsed."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("BATCH_SIZE", "ACCUM", "GLOBAL_BATCH", "EPOCHS", "LR", "MAX_LENGTH", "EXTRA_ARGS", "TASK")}
    env.update(DRY_RUN="1", LAUNCHER=launcher, **environ)
    completed = subprocess.run(["bash", f"script/{script}"], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    argv = shlex.split(completed.stdout.strip().splitlines()[-1])
    entry = next(index for index, arg in enumerate(argv) if arg.endswith(".py"))
    return argv[:entry], get_args_parser().parse_args(argv[entry + 1:])


@pytest.mark.parametrize("script, task", [("train_stage1.sh", "SLT"), ("train_stage2.sh", "SLT"),
                                          ("train_stage3.sh", "SLT"), ("train_stage3.sh", "CSLR"),
                                          ("train_stage3.sh", "ISLR")])
def test_the_scripts_launch_the_official_runs_on_four_gpus(script, task):
    launcher, args = dry_run(script, "deepspeed --num_gpus 4", TASK=task)
    official = OFFICIAL[script]
    assert launcher == ["deepspeed", "--num_gpus", "4"] and args.deepspeed and args.dtype == "bf16"
    assert (args.batch_size, resolve_accumulation(args, OFFICIAL_PROCESSES), args.epochs, args.lr) == \
        (official["batch_size"], official["accumulation"], official["epochs"], official["lr"])
    assert args.max_length == (OFFICIAL_ISLR_FRAMES if task == "ISLR" else official["max_length"])
    assert (args.dataset, args.task, args.rgb_support, args.opt) == (official["dataset"], task, official["rgb_support"],
                                                                      "adamw")
    assert args.sync_bn == "auto" and args.efficientnet_init == "imagenet"  # SyncBN on 4 processes, ImageNet CNN


@pytest.mark.parametrize("processes, launcher", [(1, "python"), (2, "deepspeed --num_gpus 2"),
                                                 (8, "deepspeed --num_gpus 8")])
def test_the_global_batch_stays_official_on_any_process_count(processes, launcher):
    from runs.errors import UsageError

    for script, official in OFFICIAL.items():
        _, args = dry_run(script, launcher)
        global_batch = official["batch_size"] * official["accumulation"] * OFFICIAL_PROCESSES
        if args.batch_size * processes > global_batch:  # stage 3 on 8 GPUs: 8 x 8 > 32, lower BATCH_SIZE
            with pytest.raises(UsageError, match="is not a multiple of"):
                resolve_accumulation(args, processes)
            continue
        accumulation = resolve_accumulation(args, processes)
        assert args.batch_size * accumulation * processes == global_batch, script


def test_environment_overrides_win():
    _, args = dry_run("train_stage3.sh", "python", TASK="ISLR", MAX_LENGTH="32", ACCUM="3", BATCH_SIZE="2",
                      EPOCHS="1", LR="1e-3")
    assert (args.max_length, resolve_accumulation(args, 1), args.batch_size, args.epochs, args.lr) == (32, 3, 2, 1, 1e-3)
    assert args.global_batch_size == 0
    _, args = dry_run("train_stage1.sh", "python", GLOBAL_BATCH="64")
    assert resolve_accumulation(args, 1) == 4


def test_evaluation_uses_the_tasks_frames_and_batch():
    _, args = dry_run("eval_stage3.sh", "python", TASK="ISLR")
    assert (args.batch_size, args.max_length, args.task) == (8, OFFICIAL_ISLR_FRAMES, "ISLR")
    _, args = dry_run("eval_stage3.sh", "python", TASK="CSLR")
    assert (args.batch_size, args.max_length) == (8, 256)


def test_a_global_batch_that_does_not_divide_is_a_clear_error():
    from runs.errors import UsageError

    args = get_args_parser().parse_args(["--batch-size", "6", "--global-batch-size", "32"])
    with pytest.raises(UsageError, match=r"--global-batch-size 32 is not a multiple of --batch-size 6 x 2 process"):
        resolve_accumulation(args, 2)
    args = get_args_parser().parse_args(["--batch-size", "8", "--global-batch-size", "32",
                                         "--gradient-accumulation-steps", "2"])
    with pytest.raises(UsageError, match=r"--gradient-accumulation-steps 2 contradicts --global-batch-size 32"):
        resolve_accumulation(args, 1)
    args = get_args_parser().parse_args(["--batch-size", "8"])
    assert resolve_accumulation(args, 4) == 8  # neither flag: the official default accumulation
