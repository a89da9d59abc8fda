"""What makes a run the run it is: the settings, model config and data a training state was made with.

A training state stores `run_fingerprint(...)`; `--resume` compares it with the command's and refuses
to continue when they differ (`fingerprint_differences` names each one), unless
`--allow-changed-settings` is given. Settings that do not change the trajectory of the weights
(output and logging, evaluation-only decoding, worker counts, paths: data is compared by content)
are left out.
"""
import hashlib
from pathlib import Path

# argparse names that may change between an interrupted run and its resume without changing its weights.
IGNORED_SETTINGS = frozenset({
    "output_dir", "resume", "overwrite", "allow_changed_settings", "num_workers", "progress", "eval", "debug",
    "local_rank", "keep_checkpoints", "save_every_steps", "eval_every", "num_beams", "max_new_tokens",
    "symmetric_punct", "nonfinite", "skip_data_check", "max_frames", "crop_cache", "labels_dir", "pose_dir",
    "rgb_dir", "dataset_config", "lm_path", "finetune", "bleurt_checkpoint",
    "packed_decoding",
})
# Settings added after training states were first written: the value a state without them was made with.
SETTINGS_OF_OLDER_STATES = {"fused_adamw": "off"}
IGNORED_MODEL_FIELDS = ("num_beams", "max_new_tokens")  # decoding settings of the config, evaluation only


def file_digest(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_fingerprint(settings: dict, model_config: dict, label_files: dict) -> dict:
    """settings: vars(args); model_config: UniSignConfig.to_dict(); label_files: {'<dataset>/<split>': path}."""
    kept = {key: value for key, value in sorted(settings.items())
            if key not in IGNORED_SETTINGS and isinstance(value, (str, int, float, bool, list, tuple, type(None)))}
    model = {key: value for key, value in model_config.items() if key not in IGNORED_MODEL_FIELDS}
    data = {name: file_digest(path) for name, path in sorted(label_files.items()) if Path(path).is_file()}
    return {"settings": kept, "model": model, "data": data}


def _flatten(values, prefix="") -> dict:
    if isinstance(values, dict):
        flat = {}
        for key, value in values.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: list(values) if isinstance(values, tuple) else values}


def fingerprint_differences(saved: dict, current: dict) -> list[str]:
    """'name: <saved> in the state, <current> now' for every value that differs."""
    before, now = _flatten(saved), _flatten(current)
    for key, value in SETTINGS_OF_OLDER_STATES.items():
        if f"settings.{key}" in now:
            before.setdefault(f"settings.{key}", value)
    lines = []
    for key in sorted(set(before) | set(now)):
        if before.get(key, "<absent>") != now.get(key, "<absent>"):
            label = key.removeprefix("settings.")
            lines.append(f"{label}: {before.get(key, '<absent>')!r} in the state, {now.get(key, '<absent>')!r} now")
    return lines
