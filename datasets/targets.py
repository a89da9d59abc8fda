"""Target texts -> label ids, done in the collate so that models receive tensors, never strings.

A model says how its targets are encoded with a `target_encoder` (a callable: list of B texts -> labels
tensor); `collate_samples(samples, target_encoder)` adds the batch's `labels`. Uni-Sign's encoder is
`TextTargets` (its tokenizer); the task heads of models/task_heads.py encode against their vocabulary.
"""
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100  # label positions the loss skips (padding), as in Hugging Face models


@dataclass(frozen=True)
class TextTargets:
    """Tokenised targets (B, L): ids ending with </s>, at most `max_tokens`, padding -> IGNORE_INDEX (official)."""

    tokenizer: object
    max_tokens: int = 50

    def __call__(self, texts) -> torch.Tensor:
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                                 return_tensors="pt")
        return encoded.input_ids.masked_fill(encoded.attention_mask == 0, IGNORE_INDEX)
