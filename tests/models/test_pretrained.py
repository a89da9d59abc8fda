"""models/pretrained.py: a model saved as a directory, our checkpoint file or an official one loads in one call and
gives exactly the outputs of the model that was saved."""
import json

import pytest
import torch

from models.checkpoint_layout import convert_checkpoint
from models.language_model import LanguageModelError
from models.pretrained import ModelCard
from models.uni_sign import UniSign
from tests.conftest import random_parts
from utils.checkpoint import CheckpointError, atomic_save


def randomized(model):
    """Every weight away from its initial value (so that a weight left unloaded shows)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model.eval()


def same_model(first, second):
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    for key in first_state:
        assert torch.equal(first_state[key], second_state[key]), key
    parts, mask = random_parts(2, 10, seed=5)
    mask[1, 7:] = 0
    assert first.generate(parts, mask, max_new_tokens=6) == second.generate(parts, mask, max_new_tokens=6)
    labels = second.tokenize_targets(["hello world", "I will go"])
    assert torch.equal(first(parts, mask, labels).loss, second(parts, mask, labels).loss)


def test_a_saved_directory_loads_back_identical_with_its_model_card(tiny_model, tmp_path):
    model = randomized(tiny_model)
    card = ModelCard(task="CSLR", dataset="Synthetic", training_command="python train.py --task CSLR",
                     metrics={"test": {"wer": 41.5, "n": 8}})
    saved = model.save_pretrained(tmp_path / "model", card)
    assert {"config.json", "model.safetensors", "spiece.model", "tokenizer_config.json", "README.md"} <= {
        path.name for path in saved.iterdir()}
    config = json.loads((saved / "config.json").read_text())
    assert config["model_type"] == "uni_sign" and config["uni_sign"]["pose"]["spatial_widths"] == [8, 16, 16]
    readme = (saved / "README.md").read_text()
    assert "# Uni-Sign CSLR model (Synthetic)" in readme and "| test | wer | 41.50 |" in readme
    assert "python train.py --task CSLR" in readme and "Intended use and limits" in readme
    loaded = UniSign.from_pretrained(saved)
    assert not loaded.training
    assert loaded.mt5_model.lm_head.weight is not loaded.mt5_model.shared.weight  # untied, as saved
    same_model(model, loaded)


def test_our_checkpoint_file_needs_the_language_model_directory(tiny_model, tiny_lm_dir, tmp_path):
    model = randomized(tiny_model)
    atomic_save({"model": model.state_dict(), "config": model.config.to_dict()}, tmp_path / "best.pth")
    with pytest.raises(LanguageModelError, match="lm_path"):
        UniSign.from_pretrained(tmp_path / "best.pth")
    same_model(model, UniSign.from_pretrained(tmp_path / "best.pth", lm_path=tiny_lm_dir))


def test_an_official_checkpoint_is_recognised_and_its_language_set(tiny_model, tiny_lm_dir, tmp_path):
    model = randomized(tiny_model)
    official = convert_checkpoint({"model": model.state_dict()}, to="official")
    torch.save(official, tmp_path / "official.pth")
    loaded = UniSign.from_pretrained(tmp_path / "official.pth", lm_path=tiny_lm_dir, lang="English")
    assert loaded.config.lang == "English" and loaded.config.pose.spatial_widths == (8, 16, 16)
    same_model(model, loaded)


def test_device_and_dtype(tiny_model, tmp_path):
    saved = randomized(tiny_model).save_pretrained(tmp_path / "model")
    loaded = UniSign.from_pretrained(saved, dtype=torch.bfloat16)
    assert {parameter.dtype for parameter in loaded.parameters()} == {torch.bfloat16}


def test_saving_over_a_model_replaces_it_whole_or_not_at_all(tiny_model, tmp_path, monkeypatch):
    target = randomized(tiny_model).save_pretrained(tmp_path / "model")
    before = (target / "model.safetensors").read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("models.pretrained.save_file", fail)
    with pytest.raises(OSError, match="disk full"):
        tiny_model.save_pretrained(target)
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]  # no half-written folder left


def test_parameters_that_are_views_of_one_flat_buffer_save_and_load(tiny_model, tmp_path):
    """DeepSpeed ZeRO keeps parameters as views into flat buffers; safetensors stores whole storages only."""
    model = randomized(tiny_model)
    expected = {name: value.clone() for name, value in model.state_dict().items()}
    flat = torch.cat([parameter.detach().flatten() for parameter in model.parameters()])
    offset = 0
    for parameter in model.parameters():
        parameter.data = flat[offset: offset + parameter.numel()].view_as(parameter)
        offset += parameter.numel()
    loaded = UniSign.from_pretrained(model.save_pretrained(tmp_path / "model"))
    for name, value in expected.items():
        torch.testing.assert_close(loaded.state_dict()[name], value, rtol=0, atol=0)


def test_a_bare_language_model_directory_is_not_a_uni_sign_model(tiny_lm_dir):
    with pytest.raises(CheckpointError, match="model_type"):
        UniSign.from_pretrained(tiny_lm_dir)
