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


@pytest.fixture
def private_check_cache(tmp_path, monkeypatch):
    """The data check's cache (UNI_SIGN_CACHE) in this test's own folder: a test never sees another's results."""
    monkeypatch.setenv("UNI_SIGN_CACHE", str(tmp_path / "cache"))


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


@pytest.fixture(scope="session")
def tiny_bleurt_checkpoint(tmp_path_factory):
    """A tiny BERT sequence-regression checkpoint (1 output), the layout of the BERT-based BLEURT ports."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny_bleurt")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat", "."]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sentence_corpus(tmp_path_factory):
    """The tiny synthetic corpus (sentences/, isolated/, news/); copy it before changing any file."""
    from datasets.synthetic import generate_corpus

    out = tmp_path_factory.mktemp("synthetic_corpus")
    generate_corpus(out, seed=0, size="tiny")
    return out


@pytest.fixture(scope="session")
def isolated_video_corpus(tmp_path_factory):
    """The tiny synthetic corpus's isolated/ subset with rendered videos (41 signs x 1 clip per split)."""
    from datasets.synthetic import generate_corpus

    out = tmp_path_factory.mktemp("isolated_videos")
    generate_corpus(out, seed=0, size="tiny", videos=True, subsets=("isolated",))
    return out / "isolated"


def train_argv(corpus, lm_dir, output_dir, *extra) -> list:
    """train.py / eval.py flags for a tiny run on the synthetic sentences (later flags win)."""
    return ["--dataset", "Synthetic", "--labels-dir", str(corpus / "sentences"),
            "--pose-dir", str(corpus / "sentences" / "pose_format"), "--lm-path", str(lm_dir),
            "--pose-preset", "tiny", "--batch-size", "4", "--gradient-accumulation-steps", "2", "--epochs", "1",
            "--lr", "1e-3", "--max-new-tokens", "4", "--no-progress", "--output_dir", str(output_dir), *extra]


@pytest.fixture(scope="session")
def local_ray_cluster():
    """A local 2-CPU Ray cluster shared by the session's Ray tests (the `ray` module, connected). Skips without
    Ray, except where UNI_SIGN_REQUIRE_RAY=1 (CI installs requirements-scale.txt) makes that a failure."""
    import os

    try:
        import ray
    except ImportError:
        if os.environ.get("UNI_SIGN_REQUIRE_RAY") == "1":
            pytest.fail("ray is not installed (UNI_SIGN_REQUIRE_RAY=1)")
        pytest.skip("ray is not installed (pip install -r requirements-scale.txt)")
    from utils import ray_engine

    ray_engine.connect(ray_engine.RaySettings(local_cpus=2))
    yield ray
    ray_engine.shutdown()


def lose_ray_cluster_after(ray, monkeypatch, waits):
    """Make `ray.wait` fail as when the head node dies, after `waits` successful calls."""
    original, calls = ray.wait, []

    def wait_then_lose_the_cluster(*args, **kwargs):
        calls.append(1)
        if len(calls) > waits:
            raise ray.exceptions.RaySystemError("the head node is gone")
        return original(*args, **kwargs)

    monkeypatch.setattr(ray, "wait", wait_then_lose_the_cluster)
