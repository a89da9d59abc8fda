"""Checkpoint files: atomic saving, safe loading, tensor checksums.

Our checkpoints: {'format': 'uni-sign/1', 'model': state_dict, 'config': UniSignConfig dict, ...}; the key
layout of 'model' (ours or the official one) and the conversion between them are models/checkpoint_layout.py.

Everything is loaded with `torch.load(weights_only=True)`: a checkpoint that needs arbitrary unpickling is
refused. A file is written to a temporary name and renamed, so a crash never leaves half a checkpoint.
"""
import hashlib
import os
import tempfile
from pathlib import Path

import torch

FORMAT = "uni-sign/1"
CHECKSUM_KEY = "tensor_sha256"  # sha256 over every tensor of the checkpoint (names, dtypes, shapes, bytes)


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the model; the message says which key and why."""


# ----------------------------------------------------------------------------- files


def _tensors(obj, prefix=""):
    """(dotted name, tensor) of every tensor in nested dicts / lists / tuples, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f"{prefix}{key}.")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _tensors(value, f"{prefix}{index}.")


def tensor_checksum(obj) -> str:
    """sha256 over the names, dtypes, shapes and bytes of every tensor in `obj` (CHECKSUM_KEY itself excluded)."""
    digest = hashlib.sha256()
    for name, tensor in _tensors({key: value for key, value in obj.items() if key != CHECKSUM_KEY}):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def nonfinite_keys(state_dict) -> list:
    """Names of floating tensors holding NaN or inf."""
    return [key for key, value in state_dict.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()]


def atomic_save(obj, path, checksum=True):
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A dict gets CHECKSUM_KEY (see tensor_checksum), verified by load_checkpoint_file. An interruption
    (exception, Ctrl-C) leaves the previous file untouched and no temporary file (a killed process can
    leave one: runs.folder.remove_leftover_temporaries deletes it at the next start).
    """
    if checksum and isinstance(obj, dict):
        obj = {**obj, CHECKSUM_KEY: tensor_checksum(obj)}
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


def replace_directory(new, target):
    """Put the finished directory `new` at `target`. An existing `target` is moved aside first and removed only
    once `new` is in place, so `target` is never half-written."""
    target = Path(target)
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        import shutil

        shutil.rmtree(old)


def _error_detail(error) -> str:
    """The 'Unsupported global: ...' line of a weights_only refusal, else the error's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported" in line:
            return line.split("error:", 1)[-1].strip().split(". Please")[0]
    return lines[0] if lines else type(error).__name__


def load_checkpoint_file(path) -> dict:
    """torch.load(weights_only=True); refuses pickles that need arbitrary code, naming the file.

    Returns the checkpoint dict, with any `module.` prefix of the state dict removed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if "Weights only load failed" in str(error):
            raise CheckpointError(
                f"{path}: refused: the checkpoint needs arbitrary unpickling ({_error_detail(error)}). Only "
                f"tensors and plain containers are loaded (torch.load(weights_only=True)); re-save it as "
                f"{{'model': state_dict}} with the code that wrote it, if you trust that code."
            ) from error
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({type(error).__name__}: {_error_detail(error)})"
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict")
    if CHECKSUM_KEY in checkpoint and checkpoint[CHECKSUM_KEY] != tensor_checksum(checkpoint):
        raise CheckpointError(
            f"{path}: corrupt: its tensors no longer match the checksum written with them (the file changed after "
            f"it was saved); refusing to load it"
        )
    bad = [key for key, value in checkpoint["model"].items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state dict entry '{bad[0]}' is not a tensor")
    checkpoint["model"] = strip_module_prefix(checkpoint["model"])
    return checkpoint


def strip_module_prefix(state_dict) -> dict:
    """Drop a DataParallel/DeepSpeed `module.` prefix when every key carries it."""
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module."):]: value for key, value in state_dict.items()}
    return dict(state_dict)
