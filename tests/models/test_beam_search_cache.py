"""Beam search keeps the cross-attention cache in place and still gives transformers' beams and scores exactly."""
import torch
from conftest import random_parts
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from models.beam_search_cache import BeamSearchCache


def filled_cache(rows=4, layers=2) -> BeamSearchCache:
    cache = BeamSearchCache(DynamicCache(), DynamicCache())
    for layer in range(layers):
        keys = torch.arange(rows, dtype=torch.float32).view(rows, 1, 1, 1).expand(rows, 2, 3, 4).clone()
        cache.self_attention_cache.update(keys, keys + 100, layer)
        cache.cross_attention_cache.update(keys + 200, keys + 300, layer)
    return cache


def test_reorder_moves_the_self_attention_rows_and_leaves_the_cross_attention_tensors():
    cache = filled_cache()
    cross_before = [(layer.keys, layer.values) for layer in cache.cross_attention_cache.layers]
    cache.reorder_cache(torch.tensor([1, 1, 3, 2]))
    for layer in cache.self_attention_cache.layers:
        assert layer.keys[:, 0, 0, 0].tolist() == [1, 1, 3, 2]
        assert layer.values[:, 0, 0, 0].tolist() == [101, 101, 103, 102]
    for layer, (keys, values) in zip(cache.cross_attention_cache.layers, cross_before):
        assert layer.keys is keys and layer.values is values  # not copied


def trained_to_branch(model):
    """A few steps towards three targets, so that beam search re-orders its beams."""
    torch.manual_seed(0)
    parts, mask = random_parts(3, 7)
    mask[1, 5:] = 0
    labels = model.tokenize_targets(["hello world", "go to the store", "tomorrow"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(20):
        loss = model(parts, mask, labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), parts, mask


def test_beams_and_scores_equal_those_of_transformers_own_cache(tiny_model, monkeypatch):
    model, parts, mask = trained_to_branch(tiny_model)
    reorders = []
    ours_reorder = BeamSearchCache.reorder_cache
    monkeypatch.setattr(BeamSearchCache, "reorder_cache",
                        lambda cache, beam_idx: reorders.append(beam_idx) or ours_reorder(cache, beam_idx))
    ours = model.generate(parts, mask, num_beams=4, max_new_tokens=8, num_return_sequences=4)
    moved = [idx for idx in reorders if not torch.equal(idx, torch.arange(len(idx)))]
    assert moved  # the beams did get re-ordered: the comparison below means something
    monkeypatch.setattr(BeamSearchCache, "reorder_cache", EncoderDecoderCache.reorder_cache)
    stock = model.generate(parts, mask, num_beams=4, max_new_tokens=8, num_return_sequences=4)
    assert ours == stock  # texts and sequence scores, exactly
