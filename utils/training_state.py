"""Resumable training state: model, optimizer, scheduler, progress, sampler position and RNG states.

Written atomically (utils.checkpoint.atomic_save) to `<output_dir>/checkpoints/step-XXXXXXXX.pth`; the newest
`keep` files are kept. Loaded with torch.load(weights_only=True): every entry is a tensor, a number, a string
or a container of those (numpy's RNG state is stored as a list).
"""
import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from utils.checkpoint import CheckpointError, atomic_save, load_checkpoint_file

STATE_PATTERN = re.compile(r"^step-(\d{8})\.pth$")


def capture_rng() -> dict:
    """The global RNG states a training step can consume (dropout uses torch's)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state):
    python_state = state["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def state_dir(output_dir) -> Path:
    return Path(output_dir) / "checkpoints"


def save_training_state(output_dir, payload, step, keep) -> Path:
    """Write step-XXXXXXXX.pth atomically, then delete all but the newest `keep` training states."""
    path = state_dir(output_dir) / f"step-{step:08d}.pth"
    atomic_save(payload, path)
    for old in list_states(output_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_states(output_dir) -> list:
    """Training states of a run, oldest first."""
    folder = state_dir(output_dir)
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if STATE_PATTERN.match(path.name))


def state_step(path) -> int:
    return int(STATE_PATTERN.match(Path(path).name).group(1))


def load_resume_state(path):
    """(state, its file) for --resume: a state file as given, or the newest *valid* state of a run folder
    (or its checkpoints/ folder); a corrupt or truncated newer state is reported and passed over."""
    path = Path(path)
    if path.is_file():
        return load_training_state(path), path
    states = list_states(path.parent if path.name == "checkpoints" else path)
    if not states:
        raise CheckpointError(f"{path}: no training state (checkpoints/step-*.pth) to resume from")
    for candidate in reversed(states):
        try:
            return load_training_state(candidate), candidate
        except CheckpointError as error:
            print(f"warning: passing over {candidate.name}: {error}; falling back to an older training state",
                  file=sys.stderr)
    raise CheckpointError(f"{path}: none of its {len(states)} training states is valid (all corrupt or unreadable)")


def set_aside_later_states(output_dir, step) -> list[Path]:
    """Move states newer than `step` (a corrupt one passed over, or the future of an older state resumed from)
    into checkpoints/superseded/, so that pruning by step number never deletes the states of the resumed run."""
    later = [path for path in list_states(output_dir) if state_step(path) > step]
    if later:
        target = state_dir(output_dir) / "superseded"
        target.mkdir(exist_ok=True)
        for path in later:
            shutil.move(str(path), str(target / path.name))
        print(f"moved {len(later)} later training state(s) ({', '.join(p.name for p in later)}) to {target}",
              file=sys.stderr)
    return later


def load_training_state(path) -> dict:
    state = load_checkpoint_file(path)
    for key in ("optimizer", "scheduler", "progress", "sampler", "rng"):
        if key not in state:
            raise CheckpointError(f"{path}: not a resumable training state (no '{key}'); use --finetune for weights")
    return state
