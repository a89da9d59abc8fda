"""Import the official Uni-Sign code (a checkout the user fetched) next to ours, in the same process.

The official repository's top-level modules are called `models`, `datasets`, `utils` and `config`, like our
packages. They are imported with those names removed from `sys.modules` for the duration, a generated `config`
module in place of theirs (paths to the LM and the pose files of the benchmark), and then put back, so both
code bases live side by side. Nothing of the official code is copied into this project.

torchvision on a CPU-only machine: the wheel on the package registry is built for CUDA; its C extension does not
load, and `import torchvision` then fails while registering fake (meta) kernels for operators that do not exist
(`RuntimeError: operator torchvision::nms does not exist`). `torchvision_without_missing_fake_kernels` lets
those registrations pass over missing operators (everything the official model uses, EfficientNet and
transforms, is plain PyTorch). Install it without dependencies so that torch is not replaced:
`pip install --no-deps torchvision==0.28.0` (the release that matches torch 2.13).
"""
import contextlib
import importlib
import sys
import types

import torch

OFFICIAL_TOP_LEVEL = ("config", "utils", "models", "datasets", "stgcn_layers", "deformable_attention_2d",
                      "SLRT_metrics", "external_metrics")


class OfficialCodeMissing(RuntimeError):
    """The official checkout or one of its imports is not available; the message says what to do."""


@contextlib.contextmanager
def torchvision_without_missing_fake_kernels():
    """During the block, torch.library.register_fake skips operators that do not exist (see the module doc)."""
    original = torch.library.register_fake

    def register_fake(op, func=None, /, **kwargs):
        decorator = original(op, **kwargs)

        def tolerant(fn):
            try:
                return decorator(fn)
            except RuntimeError as error:
                if "does not exist" in str(error):
                    return fn
                raise

        return tolerant if func is None else tolerant(func)

    torch.library.register_fake = register_fake
    try:
        yield
    finally:
        torch.library.register_fake = original


def preload_torchvision():
    """Import torchvision (when installed) through the tolerant registration, before transformers looks for it:
    transformers imports torchvision when it is installed, and the CUDA-built one would fail that import."""
    with torchvision_without_missing_fake_kernels():
        try:
            import torchvision  # noqa: F401
        except ImportError:
            pass


@contextlib.contextmanager
def swapped_top_level_modules(names):
    """Hide our modules called `names` (and their submodules); afterwards drop theirs and restore ours."""
    def owned(key):
        return key.split(".")[0] in names

    ours = {key: module for key, module in sys.modules.items() if owned(key)}
    for key in ours:
        del sys.modules[key]
    try:
        yield
    finally:
        for key in [key for key in sys.modules if owned(key)]:
            del sys.modules[key]
        sys.modules.update(ours)


def config_module(mt5_path, pose_dir, rgb_dir="") -> types.ModuleType:
    """Stand-in for the official config.py: every dataset name points at the benchmark's files."""
    module = types.ModuleType("config")
    names = ("CSL_News", "CSL_Daily", "WLASL", "How2Sign", "OpenASL")
    module.mt5_path = str(mt5_path)
    module.pose_dirs = {name: str(pose_dir) for name in names}
    module.rgb_dirs = {name: str(rgb_dir) for name in names}
    return module


def import_official(repo, mt5_path, pose_dir) -> types.SimpleNamespace:
    """-> namespace(models=official models.py, datasets=official datasets.py)."""
    with swapped_top_level_modules(OFFICIAL_TOP_LEVEL), torchvision_without_missing_fake_kernels():
        sys.modules["config"] = config_module(mt5_path, pose_dir)
        sys.path.insert(0, str(repo))
        try:
            return types.SimpleNamespace(models=importlib.import_module("models"),
                                         datasets=importlib.import_module("datasets"))
        except ImportError as error:
            raise OfficialCodeMissing(
                f"cannot import the official code from {repo}: {error} (it needs torchvision, einops and decord; "
                f"see bench/official_import.py)") from error
        finally:
            sys.path.remove(str(repo))
