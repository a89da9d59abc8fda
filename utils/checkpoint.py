"""Checkpoints: atomic saving, safe loading, and the official Uni-Sign key layout.

Our checkpoints: {'format': 'uni-sign/1', 'model': state_dict, 'config': UniSignConfig dict, ...}.
Official checkpoints: {'model': state_dict} with the official names (official_state_dict.txt); the
only difference is that our pose encoder (and the RGB modules inside it) live under `pose_encoder.`.
Everything is loaded with `torch.load(weights_only=True)`: a checkpoint that needs arbitrary
unpickling is refused.
"""
import os
import tempfile
from pathlib import Path

import torch

FORMAT = "uni-sign/1"
# (our prefix, official prefix); the first match wins.
OFFICIAL_PREFIXES = [
    ("pose_encoder.hand_fusion.backbone.", "rgb_support_backbone."),
    ("pose_encoder.hand_fusion.rgb_proj.", "rgb_proj."),
    ("pose_encoder.hand_fusion.deformable_attention.", "fusion_pose_rgb_DA."),
    ("pose_encoder.hand_fusion.gate.", "fusion_gate."),
    ("pose_encoder.hand_fusion.unused_linear.", "fusion_pose_rgb_linear."),
    ("pose_encoder.", ""),
]
OUR_TOP_LEVEL = ("mt5_model.",)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the model; the message says which key and why."""


def to_official_key(key: str) -> str:
    for ours, official in OFFICIAL_PREFIXES:
        if key.startswith(ours):
            return official + key[len(ours):]
    return key


def from_official_key(key: str) -> str:
    if key.startswith(OUR_TOP_LEVEL):
        return key
    for ours, official in OFFICIAL_PREFIXES:
        if official and key.startswith(official):
            return ours + key[len(official):]
    return "pose_encoder." + key


def to_official_state_dict(state_dict) -> dict:
    return {to_official_key(key): value for key, value in state_dict.items()}


def from_official_state_dict(state_dict) -> dict:
    return {from_official_key(key): value for key, value in state_dict.items()}


def is_official_layout(state_dict) -> bool:
    return not any(key.startswith("pose_encoder.") for key in state_dict)


def atomic_save(obj, path):
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint_file(path) -> dict:
    """torch.load(weights_only=True); refuses pickles that need arbitrary code, naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path}: cannot be loaded safely with torch.load(weights_only=True) ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}). Checkpoints that need arbitrary unpickling are refused."
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict")
    return checkpoint


def _check_shared_hands(state_dict, source):
    """Left/right hand modules are one object: the two copies in a checkpoint must agree."""
    for key, value in state_dict.items():
        twin = key.replace(".right.", ".left.")
        if ".right." in key and twin in state_dict and not torch.equal(state_dict[twin].to(value.dtype), value):
            raise CheckpointError(f"{source}: '{key}' differs from '{twin}', but both hands share one encoder")


def load_model_weights(model, path, partial=False) -> dict:
    """Load ours or an official checkpoint into `model`; returns {'missing': [...], 'unexpected': [...]}.

    Shapes must match (the error names the key). Missing/unexpected keys fail unless partial=True.
    """
    checkpoint = load_checkpoint_file(path)
    state_dict = checkpoint["model"]
    if is_official_layout(state_dict):
        state_dict = from_official_state_dict(state_dict)
    _check_shared_hands(state_dict, path)
    expected = model.state_dict()
    for key, value in state_dict.items():
        if key in expected and expected[key].shape != value.shape:
            raise CheckpointError(
                f"{path}: '{to_official_key(key)}' has shape {tuple(value.shape)} in the checkpoint but "
                f"{tuple(expected[key].shape)} in the model (is --lm-path the LM the checkpoint was trained with?)"
            )
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if (missing or unexpected) and not partial:
        raise CheckpointError(
            f"{path}: checkpoint does not fit the model: {len(missing)} missing keys "
            f"{[to_official_key(k) for k in missing[:5]]}, {len(unexpected)} unexpected keys "
            f"{[to_official_key(k) for k in unexpected[:5]]}. Pass --partial-load to load the overlap."
        )
    model.load_state_dict({k: v for k, v in state_dict.items() if k in expected}, strict=False)
    return {"missing": missing, "unexpected": unexpected}
