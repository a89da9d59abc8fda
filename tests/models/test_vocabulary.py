"""models/vocabulary.py: a pruned vocabulary keeps the kept tokens' rows exactly, speaks pruned ids through the
tokenizer, and saves / loads with its map back to the original ids."""
import copy

import pytest
import torch

from datasets.targets import TextTargets
from models.uni_sign import UniSign
from models.vocabulary import PrunedTokenizer, corpus_token_ids
from tests.conftest import random_parts
from utils.checkpoint import FORMAT

TEXTS = ["hello world", "I will go to the store today."]


def pruned_copy(model):
    """The same weights with the vocabulary pruned to TEXTS and the prompts."""
    copy = UniSign(model.config.__class__.from_dict(model.config.to_dict()), *clone_language_model(model))
    copy.load_state_dict(model.state_dict())
    kept = corpus_token_ids(model.tokenizer, TEXTS + [model.prompt_text("English"), model.prompt_text("Chinese")])
    copy.prune_vocabulary(kept)
    return copy.eval(), kept


def clone_language_model(model):
    return copy.deepcopy(model.mt5_model), model.tokenizer


def test_the_pruned_model_computes_the_kept_tokens_logits_exactly(tiny_model):
    tiny_model.eval()
    pruned, kept = pruned_copy(tiny_model)
    assert len(pruned.tokenizer) == len(kept) < len(tiny_model.tokenizer) and kept[:3] == [0, 1, 2]
    assert pruned.mt5_model.lm_head.weight.shape[0] == pruned.mt5_model.shared.weight.shape[0] == len(kept)
    parts, mask = random_parts(2, 6)
    full_labels, pruned_labels = tiny_model.tokenize_targets(TEXTS), pruned.tokenize_targets(TEXTS)
    assert torch.equal(torch.as_tensor(kept)[pruned_labels.clamp(min=0)].masked_fill(pruned_labels < 0, -100),
                       full_labels)  # the same targets, in pruned ids
    full_logits = tiny_model(parts, mask, full_labels).logits
    torch.testing.assert_close(pruned(parts, mask, pruned_labels).logits, full_logits[..., kept], rtol=0, atol=1e-6)
    assert torch.equal(pruned.prompt_ids, torch.searchsorted(torch.as_tensor(kept), tiny_model.prompt_ids))


def test_tokens_outside_the_kept_set_become_unk_and_decoding_maps_back(tiny_model):
    kept = corpus_token_ids(tiny_model.tokenizer, ["hello"])
    tokenizer = PrunedTokenizer(tiny_model.tokenizer, kept)
    ids = tokenizer(["hello store"]).input_ids[0]
    assert tiny_model.tokenizer.unk_token_id in ids and max(ids) < len(kept)
    assert tokenizer.decode(tokenizer(["hello"]).input_ids[0], skip_special_tokens=True) == "hello"
    labels = TextTargets(tokenizer)(["hello", "hello hello"])
    assert labels.max() < len(kept) and (labels == -100).sum() > 0


def test_a_pruned_model_saves_and_loads_with_its_map_back(tiny_model, tiny_lm_dir, tmp_path):
    pruned, kept = pruned_copy(tiny_model)
    parts, mask = random_parts(2, 6, seed=4)
    expected = pruned.generate(parts, mask, max_new_tokens=5)
    pruned.save_pretrained(tmp_path / "saved")
    loaded = UniSign.from_pretrained(tmp_path / "saved")
    assert loaded.config.vocabulary == kept and loaded.generate(parts, mask, max_new_tokens=5) == expected
    torch.save({"format": FORMAT, "model": pruned.state_dict(), "config": pruned.config.to_dict()}, tmp_path / "p.pth")
    from_file = UniSign.from_pretrained(tmp_path / "p.pth", lm_path=tiny_lm_dir)  # full LM, pruned on load
    assert from_file.mt5_model.config.vocab_size == len(kept)
    assert from_file.generate(parts, mask, max_new_tokens=5) == expected


def test_pruning_twice_is_refused(tiny_model):
    pruned, _ = pruned_copy(tiny_model)
    with pytest.raises(ValueError, match="already pruned"):
        pruned.prune_vocabulary([0, 1, 2])
