"""script/train_ccl_{pretrain,finetune}.sh launch train_ccl.py: their commands parse, and DeepSpeed on a launcher."""
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from runs.ccl_arguments import get_ccl_args_parser

REPO = Path(__file__).resolve().parents[2]


def dry_run(script, launcher="python", **environ):
    env = {key: value for key, value in os.environ.items() if key not in ("EPOCHS", "BATCH_SIZE", "EXTRA_ARGS")}
    env.update(DRY_RUN="1", LAUNCHER=launcher, **environ)
    completed = subprocess.run(["bash", f"script/{script}"], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 0, completed.stderr
    argv = shlex.split(completed.stdout.strip().splitlines()[-1])
    entry = argv.index("train_ccl.py")
    return argv[:entry], get_ccl_args_parser().parse_args(argv[entry + 1:])


def test_pretraining_script_defaults():
    launcher, args = dry_run("train_ccl_pretrain.sh", DATASET="WLASL,MSASL")
    assert launcher == ["python"] and not args.deepspeed
    assert args.ccl_stage == "pretrain" and args.dataset == "WLASL,MSASL" and args.modalities == "pose,rgb"
    assert args.epochs == 100 and args.spm_warmup_epochs == 10 and args.output_dir == "out/ccl_pretrain_WLASL_MSASL"


@pytest.mark.parametrize("script", ["train_ccl_pretrain.sh", "train_ccl_finetune.sh"])
def test_a_deepspeed_launcher_gets_the_engine_flags(script):
    launcher, args = dry_run(script, "deepspeed --num_gpus 2", DTYPE="bf16")
    assert launcher[0] == "deepspeed" and args.deepspeed and args.dtype == "bf16"


def test_fine_tuning_script_starts_from_the_pretraining_run():
    _, args = dry_run("train_ccl_finetune.sh", MODALITIES="pose")
    assert args.ccl_stage == "finetune" and args.finetune == "out/ccl_pretrain_WLASL/best_checkpoint.pth"
    assert args.modalities == "pose"
    _, scratch = dry_run("train_ccl_finetune.sh", FINETUNE="")
    assert scratch.finetune == ""
