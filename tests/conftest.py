"""Shared test fixtures. The repository root is put on sys.path so `models`, `datasets`, `utils` import."""
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture
def shared_dir():
    """The ../shared reference data (golden files, official labels); skip when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is not present beside the repository")
    return SHARED_DIR


def random_parts(batch, frames, seed=0):
    """Random normalised part tensors {part: (B, T, V, 3)} and a full frame mask (B, T)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    sizes = {"body": 9, "left": 21, "right": 21, "face_all": 18}
    parts = {name: torch.rand(batch, frames, nodes, 3, generator=generator) * 2 - 1 for name, nodes in sizes.items()}
    return parts, torch.ones(batch, frames, dtype=torch.long)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    """A tiny MT5 + SentencePiece directory built through the embedded-default code path."""
    from models.language_model import EmbeddedLMConfig, build_embedded_lm

    texts = [f"I will go to the store {day}." for day in ("today", "tomorrow", "soon")] * 10
    texts += ["TOMORROW I STORE GO", "hello", "world", "我明天去商店。"] * 10
    config = EmbeddedLMConfig(vocab_size=80, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
                              num_heads=2)
    return build_embedded_lm(texts, tmp_path_factory.mktemp("tiny_lm"), config)


@pytest.fixture
def tiny_model(tiny_lm_dir):
    """A small pose-only Uni-Sign model on the tiny LM (tiny pose widths)."""
    import torch

    from models.pose_encoder import PoseEncoderConfig
    from models.uni_sign import UniSign, UniSignConfig

    torch.manual_seed(0)
    config = UniSignConfig(lang="English", pose=PoseEncoderConfig(proj_dim=8, spatial_widths=(8, 16, 16)))
    return UniSign.from_lm_path(config, tiny_lm_dir)
