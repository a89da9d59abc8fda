"""The official training recipe of a stage (and stage-3 task) as train.py flags, from config/recipes.json.

    python script/recipe.py --stage 3 --task ISLR
    --batch-size 8 --global-batch-size 32 --epochs 20 --lr 0.0003 --max_length 64

The stage scripts call it, then apply their environment overrides the same way (BATCH_SIZE, EPOCHS, LR,
MAX_LENGTH; ACCUM sets a fixed --gradient-accumulation-steps instead of the global batch; GLOBAL_BATCH
changes the global batch, GLOBAL_BATCH=0 turns it off). The table runner reads the same table.
"""
import argparse
import json
import os
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "config" / "recipes.json"
STAGES = (1, 2, 3)
EVAL_FLAGS = ("--batch-size", "--max_length")


def recipe_tasks() -> list[str]:
    """The tasks the stage-3 recipes cover (config/recipes.json)."""
    return list(json.loads(RECIPES.read_text(encoding="utf-8"))["stage3_tasks"])


def official_recipe(stage, task="SLT") -> dict:
    """{batch_size, gradient_accumulation_steps, global_batch_size, epochs, lr, max_length} of the official run."""
    table = json.loads(RECIPES.read_text(encoding="utf-8"))
    recipe = dict(table["stages"][str(stage)])
    if stage == 3:
        recipe.update(table["stage3_tasks"][task])
    return recipe


def recipe_flags(stage, task="SLT", environ=None, global_batch=True) -> list[str]:
    """train.py flags: the official recipe with the environment's overrides applied.

    global_batch: pass --global-batch-size (accumulation derived from the process count) rather than the
    official per-process accumulation (the table runner, which runs one process, keeps the official 4-GPU one)."""
    environ = os.environ if environ is None else environ
    recipe = official_recipe(stage, task)
    values = {"--batch-size": environ.get("BATCH_SIZE") or recipe["batch_size"],
              "--epochs": environ.get("EPOCHS") or recipe["epochs"],
              "--lr": environ.get("LR") or recipe["lr"],
              "--max_length": environ.get("MAX_LENGTH") or recipe["max_length"]}
    global_batch_size = environ.get("GLOBAL_BATCH") or recipe["global_batch_size"]
    if environ.get("ACCUM") or not global_batch or str(global_batch_size) == "0":
        values["--gradient-accumulation-steps"] = environ.get("ACCUM") or recipe["gradient_accumulation_steps"]
    else:
        values["--global-batch-size"] = global_batch_size
    return [item for flag, value in values.items() for item in (flag, str(value))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", type=int, required=True, choices=STAGES)
    parser.add_argument("--task", default="SLT", choices=sorted(recipe_tasks()))
    parser.add_argument("--eval", action="store_true", help="only what evaluation uses: batch size and max_length")
    args = parser.parse_args(argv)
    flags = recipe_flags(args.stage, args.task)
    if args.eval:
        flags = [item for flag, value in zip(flags[::2], flags[1::2]) if flag in EVAL_FLAGS for item in (flag, value)]
    print(" ".join(flags))


if __name__ == "__main__":
    main()
