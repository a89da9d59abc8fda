"""datasets/targets.py: the official target tokenisation, done in the collate."""
from datasets.targets import IGNORE_INDEX, TextTargets
from models.language_model import load_language_model


def test_targets_end_with_eos_are_truncated_and_padded_with_the_ignore_index(tiny_lm_dir):
    _, tokenizer = load_language_model(tiny_lm_dir)
    labels = TextTargets(tokenizer, max_tokens=6)(["hello", "store " * 20])
    eos = tokenizer.eos_token_id
    assert labels.shape == (2, 6) and labels[1, -1] == eos  # truncated to 6 tokens, still ending with </s>
    short = tokenizer("hello").input_ids
    assert labels[0].tolist() == short + [IGNORE_INDEX] * (6 - len(short)) and short[-1] == eos
