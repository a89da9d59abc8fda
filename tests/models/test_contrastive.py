"""InfoNCE (queue and in-batch), multi-positive InfoNCE and Semantic Positive Mining (models/contrastive.py)."""
import pytest
import torch
import torch.nn.functional as F

from models.contrastive import info_nce, mined_positives, multi_positive_nce


def unit(rows, dim=8, seed=0):
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_one_positive_is_cross_entropy():
    logits = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    positives = torch.zeros(5, 7, dtype=torch.bool)
    positives[torch.arange(5), torch.tensor([0, 3, 6, 1, 2])] = True
    expected = F.cross_entropy(logits, torch.tensor([0, 3, 6, 1, 2]))
    assert torch.allclose(multi_positive_nce(logits, positives), expected)


def test_multi_positive_averages_the_positives_log_probabilities():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    positives = torch.tensor([[True, True, False]])
    log_probs = F.log_softmax(logits, 1)[0]
    assert multi_positive_nce(logits, positives).item() == pytest.approx(-(log_probs[0] + log_probs[1]).item() / 2)


def test_queue_info_nce_is_moco_v2():
    queries, keys, queue = unit(4, seed=1), unit(4, seed=2), unit(10, seed=3)
    logits = torch.cat([(queries * keys).sum(1, keepdim=True), queries @ queue.t()], 1) / 0.07
    expected = F.cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(info_nce(queries, keys, 0.07, queue), expected)


def test_in_batch_info_nce_uses_the_other_keys_as_negatives():
    queries, keys = unit(6, seed=4), unit(6, seed=5)
    expected = F.cross_entropy(queries @ keys.t() / 0.1, torch.arange(6))
    assert torch.allclose(info_nce(queries, keys, 0.1), expected)


def test_mining_picks_the_top_k_and_skips_the_own_key_in_batch():
    queries = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    mined = mined_positives(F.normalize(queries, dim=1), F.normalize(queries, dim=1), 1, exclude_diagonal=True)
    assert mined.tolist() == [[False, True, False], [True, False, False], [False, True, False]]
    assert mined_positives(unit(3), unit(9, seed=7), 4, False).sum(1).tolist() == [4, 4, 4]


def test_extra_positives_change_the_loss():
    queries, keys, queue = unit(4, seed=1), unit(4, seed=2), unit(10, seed=3)
    extra = torch.zeros(4, 10, dtype=torch.bool)
    extra[:, 2] = True
    assert not torch.allclose(info_nce(queries, keys, 0.07, queue, extra), info_nce(queries, keys, 0.07, queue))
