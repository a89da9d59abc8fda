"""Prefix-trie constrained beam search over a closed label vocabulary (ISLR)."""
import pytest
import torch

from conftest import random_parts
from models.constrained_decoding import LabelTrie, constrained_generate, decoded_label_map

EOS = 1
LABELS = ["hello", "world", "store", "go to", "go", "tomorrow"]


def small_trie():
    # go = [7, 5], go to = [7, 5, 8], gone = [7, 9]
    return LabelTrie([[7, 5, EOS], [7, 5, 8, EOS], [7, 9, EOS]], ["go", "go to", "gone"], EOS)


def test_trie_allows_exactly_the_label_continuations():
    trie = small_trie()
    assert trie.allowed([]) == [7]
    assert sorted(trie.allowed([7])) == [5, 9]
    assert sorted(trie.allowed([7, 5])) == [EOS, 8]  # "go" may end here or continue to "go to"
    assert trie.allowed([7, 5, 8]) == [EOS]
    assert trie.allowed([7, 5, EOS]) == [EOS]  # a finished label only pads with </s>
    assert trie.allowed([3]) == [EOS]  # outside the trie: end at once (never an empty list)
    assert trie.label_of([7, 5, 8, EOS]) == "go to" and trie.label_of([7, 5]) is None
    assert trie.max_length == 4 and len(trie) == 3


def test_prefix_function_skips_the_decoder_start_token():
    fn = small_trie().prefix_allowed_tokens_fn()
    assert fn(0, torch.tensor([0])) == [7]
    assert sorted(fn(1, torch.tensor([0, 7]))) == [5, 9]


def test_trie_rejects_bad_sequences_and_records_collisions():
    with pytest.raises(ValueError, match="must end with the EOS"):
        LabelTrie([[7, 5]], ["go"], EOS)
    with pytest.raises(ValueError, match="at least one label"):
        LabelTrie([], [], EOS)
    trie = LabelTrie([[7, EOS], [7, EOS]], ["go", "Go"], EOS)
    assert trie.collisions == [("go", "Go")] and len(trie) == 1


def test_trie_from_the_model_tokenises_like_training_targets(tiny_model):
    trie = LabelTrie.from_model(LABELS, tiny_model)
    for label in LABELS:
        target = tiny_model.tokenize_targets([label])[0]
        assert list(trie.sequence_of[label]) == target[target != -100].tolist()
    assert decoded_label_map(trie, tiny_model.tokenizer)["go to"] == "go to"


def test_constrained_outputs_are_labels_and_match_exhaustive_ranking(tiny_model):
    tiny_model.eval()
    parts, mask = random_parts(3, 6, seed=1)
    free = tiny_model.generate(parts, mask, max_new_tokens=8)
    assert any(text not in LABELS for text in free)  # the untrained model decodes garbage without the switch
    trie = LabelTrie.from_model(LABELS, tiny_model)
    best = constrained_generate(tiny_model, parts, mask, trie)
    assert all(len(row) == 1 and row[0][0] in LABELS for row in best)
    # With at least as many beams as labels the search keeps every trie prefix, so it is exhaustive: the
    # K-best list is every label, ordered by per-token mean log-likelihood (mT5 length_penalty 1.0).
    ranked = constrained_generate(tiny_model, parts, mask, trie, num_beams=8, num_return_sequences=8)
    summed = tiny_model.score_candidates(parts, mask, LABELS)
    lengths = torch.tensor([float(len(trie.sequence_of[label])) for label in LABELS])
    mean = summed / lengths
    for row, sample_scores in zip(ranked, mean):
        assert sorted(label for label, _ in row) == sorted(LABELS)  # fill-up beams dropped, no repeats
        expected = [LABELS[j] for j in torch.argsort(sample_scores, descending=True).tolist()]
        assert [label for label, _ in row] == expected
        for label, score in row:
            assert score == pytest.approx(sample_scores[LABELS.index(label)].item(), abs=1e-4)
    assert [row[0][0] for row in best] == [row[0][0] for row in ranked]


def test_generate_passes_the_constraint_through(tiny_model):
    tiny_model.eval()
    parts, mask = random_parts(2, 5, seed=2)
    calls = []

    def only_eos(batch_id, input_ids):
        calls.append(batch_id)
        return [tiny_model.tokenizer.eos_token_id]

    assert tiny_model.generate(parts, mask, max_new_tokens=5, prefix_allowed_tokens_fn=only_eos) == ["", ""]
    assert set(calls) == {0, 1}
