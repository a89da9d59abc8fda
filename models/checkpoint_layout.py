"""The key layout of Uni-Sign checkpoints (ours and the official one), loading a state dict into a model, conversion.

Our checkpoints: {'format': 'uni-sign/1', 'model': state_dict, 'config': UniSignConfig dict, ...}.
Official checkpoints: {'model': state_dict} with the official names (official_state_dict.txt); the
only difference is that our pose encoder (and the RGB modules inside it) live under `pose_encoder.`:

    ours                                               official
    pose_encoder.{proj_linear,gcn_modules,...}.*       {proj_linear,gcn_modules,...}.*
    pose_encoder.hand_fusion.backbone.*                rgb_support_backbone.*
    pose_encoder.hand_fusion.rgb_proj.*                rgb_proj.*
    pose_encoder.hand_fusion.deformable_attention.*    fusion_pose_rgb_DA.*
    pose_encoder.hand_fusion.gate.*                    fusion_gate.*
    pose_encoder.hand_fusion.unused_linear.*           fusion_pose_rgb_linear.*
    mt5_model.*                                        mt5_model.*  (unchanged)

Aliases: a state dict lists a tensor once per name that reaches it. Both layouts therefore hold the
shared hand encoder under `left` and `right`, and mT5's tied input embedding under `shared`,
`encoder.embed_tokens` and `decoder.embed_tokens`. Loading checks that the copies of one tensor agree
(a checkpoint whose left and right hands differ cannot be represented by the model and is refused).

Floating tensors are cast to the model's dtype (official checkpoints are bf16, saved from DeepSpeed bf16
training). Files are read and written by utils/checkpoint.py (safe loading, atomic saving).
"""
from dataclasses import asdict

import torch

from models.hand_fusion import RGBConfig
from models.pose_encoder import ALL_PARTS, PoseEncoderConfig
from utils.checkpoint import FORMAT, CheckpointError, load_checkpoint_file, nonfinite_keys, strip_module_prefix

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
LAYOUTS = ("official", "ours")
# Key fragments that only the RGB branch has, in either layout: how an RGB-pose checkpoint is recognised.
RGB_KEY_MARKERS = ("hand_fusion.", "rgb_support_backbone.", "rgb_proj.", "fusion_pose_rgb_DA.", "fusion_gate.")


# ----------------------------------------------------------------------------- key layout


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


def alias_groups(state_dict) -> list:
    """Groups (lists of >= 2 keys, in state-dict order) that name one and the same tensor.

    In our model: the shared left/right hand modules and mT5's tied `shared` / `*.embed_tokens`
    (plus `lm_head` when the LM ties it). Works on any state dict whose aliases share storage.
    """
    groups = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor) or value.numel() == 0:
            continue
        identity = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape),
                    tuple(value.stride()), value.dtype, value.device)
        groups.setdefault(identity, []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def has_rgb_weights(state_dict) -> bool:
    """Whether a state dict (either layout) holds RGB-branch weights."""
    return any(marker in key for key in state_dict for marker in RGB_KEY_MARKERS)


# ----------------------------------------------------------------------------- loading into a model


def _display(key, official):
    """A key as the checkpoint names it (the official name for an official checkpoint)."""
    return to_official_key(key) if official else key


def _key_list(keys, official, limit=8):
    shown = [_display(key, official) for key in keys[:limit]]
    return ", ".join(shown) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _load_hint(missing, unexpected) -> str:
    rgb = "pose_encoder.hand_fusion."
    if any(k.startswith(rgb) for k in unexpected) and not any(k.startswith(rgb) for k in missing):
        return " The checkpoint has the RGB branch: pass --rgb_support."
    if any(k.startswith(rgb) for k in missing) and not any(k.startswith(rgb) for k in unexpected):
        return (" The checkpoint has no RGB branch (a pose-only / stage-1 checkpoint): drop --rgb_support, "
                "or pass --partial-load to start the RGB branch from its initialisation.")
    return " Pass --partial-load to load only the overlap."


def _architecture_hint(key, state_dict) -> str:
    if key.startswith("mt5_model."):
        return "--lm-path must be the language model the checkpoint was trained with (mT5-Base: vocabulary 250112, d_model 768)"
    try:
        pose = infer_pose_config(state_dict)
    except (CheckpointError, KeyError, IndexError):
        return "check --pose-preset, --pose-parts and --rgb_support"
    return (f"the checkpoint's pose encoder has parts {list(pose.parts)}, widths {pose.proj_dim} -> "
            f"{list(pose.spatial_widths)}, output {pose.output_dim}: check --pose-preset ('official' = 64 -> "
            f"[64, 128, 256]), --pose-parts, and that --lm-path has d_model {pose.output_dim}")


def check_aliases(state_dict, model_state, source, official=False) -> list:
    """Copies of one model tensor must agree in the checkpoint; fill copies the checkpoint lacks.

    Returns the keys that were filled from an alias. Modifies `state_dict` in place.
    """
    filled = []
    for group in alias_groups(model_state):
        present = [key for key in group if key in state_dict]
        if not present:
            continue
        first = state_dict[present[0]]
        for key in present[1:]:
            other = state_dict[key]
            if other.shape != first.shape or not torch.equal(other.to(first.dtype), first):
                if any(".left." in name or ".right." in name for name in group):
                    why = "the left and right hands share one encoder in the model (as in the official code)"
                elif any("lm_head" in name for name in group):
                    why = ("the --lm-path model ties lm_head to the input embedding (mT5-Base does not): use the "
                           "language model directory the checkpoint was trained with")
                else:
                    why = "they are one tied tensor in the model"
                raise CheckpointError(
                    f"{source}: '{_display(key, official)}' differs from '{_display(present[0], official)}', "
                    f"but {why}; the model cannot hold both."
                )
        for key in group:
            if key not in state_dict:
                state_dict[key] = first
                filled.append(key)
    return filled


def load_state_dict_into(model, state_dict, partial=False, source="checkpoint", official=None) -> dict:
    """Load a state dict (ours or the official layout) into `model`.

    - official layout -> our names; shared left/right and tied-embedding copies must agree;
    - every shape must match (CheckpointError naming the key as the checkpoint names it);
    - floating tensors are cast to the model's dtype (e.g. official bf16 -> float32);
    - missing or unexpected keys raise CheckpointError unless partial=True.
    Returns {'layout', 'missing', 'unexpected', 'filled_aliases', 'cast'} (our key names).
    """
    state_dict = strip_module_prefix(state_dict)
    if official is None:
        official = is_official_layout(state_dict)
    if official:
        state_dict = from_official_state_dict(state_dict)
    expected = model.state_dict()
    filled = check_aliases(state_dict, expected, source, official)
    for key, value in state_dict.items():
        if key in expected and expected[key].shape != value.shape:
            raise CheckpointError(
                f"{source}: '{_display(key, official)}' has shape {tuple(value.shape)} in the checkpoint but "
                f"{tuple(expected[key].shape)} in the model ({_architecture_hint(key, state_dict)})"
            )
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    if (missing or unexpected) and not partial:
        raise CheckpointError(
            f"{source}: checkpoint does not fit the model: {len(missing)} missing keys [{_key_list(missing, official)}]; "
            f"{len(unexpected)} unexpected keys [{_key_list(unexpected, official)}].{_load_hint(missing, unexpected)}"
        )
    nonfinite = nonfinite_keys({key: value for key, value in state_dict.items() if key in expected})
    if nonfinite:
        raise CheckpointError(
            f"{source}: tensor '{_display(nonfinite[0], official)}' holds NaN/inf values ({len(nonfinite)} tensors "
            f"do); refusing to load non-finite weights"
        )
    cast, loadable = {}, {}
    for key, value in state_dict.items():
        if key not in expected:
            continue
        target = expected[key]
        if value.dtype != target.dtype:
            label = f"{value.dtype} -> {target.dtype}".replace("torch.", "")
            cast[label] = cast.get(label, 0) + 1
            value = value.to(target.dtype)
        loadable[key] = value
    model.load_state_dict(loadable, strict=False)
    return {"layout": "official" if official else "ours", "missing": missing, "unexpected": unexpected,
            "filled_aliases": filled, "cast": cast}


def load_model_weights(model, path, partial=False, checkpoint=None) -> dict:
    """Load ours or an official checkpoint file into `model`; returns the report of `load_state_dict_into`.

    `checkpoint`: the already loaded dict of `path` (saves reading a large file twice).
    """
    checkpoint = checkpoint if checkpoint is not None else load_checkpoint_file(path)
    return load_state_dict_into(model, checkpoint["model"], partial=partial, source=str(path))


# ----------------------------------------------------------------------------- export


def infer_pose_config(state_dict):
    """The PoseEncoderConfig a state dict (ours or official layout) was built with, read from its shapes."""
    sd = from_official_state_dict(state_dict) if is_official_layout(state_dict) else state_dict
    prefix = "pose_encoder."
    parts = tuple(part for part in ALL_PARTS if f"{prefix}proj_linear.{part}.weight" in sd)
    if not parts:
        raise CheckpointError("no pose encoder in the state dict (no proj_linear.<part>.weight)")
    part = parts[0]
    widths, layer = [], 0
    while f"{prefix}gcn_modules.{part}.layer{layer}_0.gcn.bn.weight" in sd:
        widths.append(sd[f"{prefix}gcn_modules.{part}.layer{layer}_0.gcn.bn.weight"].shape[0])
        layer += 1
    depth = 0
    while f"{prefix}fusion_gcn_modules.{part}.layer0_{depth}.gcn.A" in sd:
        depth += 1
    kernel_key = f"{prefix}fusion_gcn_modules.{part}.layer0_0.tcn.0.weight"
    return PoseEncoderConfig(
        parts=parts,
        proj_dim=sd[f"{prefix}proj_linear.{part}.weight"].shape[0],
        spatial_widths=tuple(widths),
        temporal_depth=depth,
        temporal_kernel=sd[kernel_key].shape[2] if kernel_key in sd else 1,
        output_dim=sd[f"{prefix}pose_proj.weight"].shape[0],
    )


def is_official_architecture(pose_config) -> bool:
    """Whether the official code can build this pose encoder (all parts, official widths)."""
    default = PoseEncoderConfig()
    return (tuple(pose_config.parts) == ALL_PARTS and pose_config.proj_dim == default.proj_dim
            and tuple(pose_config.spatial_widths) == tuple(default.spatial_widths)
            and pose_config.temporal_depth == default.temporal_depth
            and pose_config.temporal_kernel == default.temporal_kernel)


def cast_floating(state_dict, dtype) -> dict:
    """Cast floating tensors to `dtype`, keeping aliases aliased (integer buffers are left alone)."""
    if dtype is None:
        return dict(state_dict)
    converted, out = {}, {}
    for key, value in state_dict.items():
        if not value.is_floating_point() or value.dtype == dtype:
            out[key] = value
            continue
        identity = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape), tuple(value.stride()))
        if identity not in converted:
            converted[identity] = value.to(dtype)
        out[key] = converted[identity]
    return out


def convert_checkpoint(checkpoint, to="official", dtype=None) -> dict:
    """A loaded checkpoint (either layout) -> the checkpoint dict to save in layout `to`.

    official: {'model': official state dict} only, as the official code saves it.
    ours: {'format', 'model', 'config'} with the architecture inferred from the shapes when the input has no
    config (a partial UniSignConfig dict: the prompt language and decoding settings are then the defaults;
    train.py/eval.py set them from flags).
    """
    if to not in LAYOUTS:
        raise ValueError(f"unknown layout '{to}'; expected one of {LAYOUTS}")
    state_dict = strip_module_prefix(checkpoint["model"])
    official = is_official_layout(state_dict)
    ours = from_official_state_dict(state_dict) if official else state_dict
    ours = cast_floating(ours, dtype)
    if to == "official":
        return {"model": to_official_state_dict(ours)}
    if "config" in checkpoint:
        config = checkpoint["config"]
    else:
        config = {"pose": asdict(infer_pose_config(ours)), "rgb": asdict(RGBConfig()) if has_rgb_weights(ours) else None}
    converted = {"format": FORMAT, "model": ours, "config": config}
    for key in ("args", "epoch", "metrics"):
        if key in checkpoint:
            converted[key] = checkpoint[key]
    return converted
