"""Beam search constrained to a closed label vocabulary (ISLR): a prefix trie over the tokenised labels.

Every class label is tokenised exactly as a training target (`tokenizer(label, truncation=True,
max_length=50)`: the SentencePiece pieces followed by `</s>`) and inserted into a trie. During generation
transformers (5.x, `PrefixConstrainedLogitsProcessor`) calls `prefix_allowed_tokens_fn(batch_id, input_ids)`
for every running beam at every step, with `input_ids` = the decoder sequence so far (starting with the decoder
start token, id 0 for mT5); every token it does not return gets score -inf. We return the trie children of the
generated prefix, so a finished hypothesis is always one complete label followed by `</s>`.

Off by default (the paper decodes freely); turned on with `--constrained` in `evaluation/islr_topk.py` / `eval.py`.

Notes
* When the vocabulary has fewer reachable labels than there are beams, transformers fills the remaining
  beams with hypotheses of score about -1e9 / length (masked steps); prefixes not in the trie are allowed
  `</s>` only, so they end at once. `constrained_generate` drops every hypothesis whose length-normalised
  score is below `INVALID_SCORE` (-1e6; a real log-probability per token is never that low) or repeats a
  label already returned.
* Two labels with the same token sequence cannot be told apart by the model; the first one wins and the
  collision is recorded in `LabelTrie.collisions`.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

_END = "__label__"  # key under which a trie node stores the label that ends there
INVALID_SCORE = -1e6  # hypotheses scored below this are masked fill-ups, not labels


class LabelTrie:
    """A token-id trie over tokenised class labels (each sequence ends with the EOS id)."""

    def __init__(self, sequences: Sequence[Sequence[int]], labels: Sequence[str], eos_token_id: int,
                 decoder_start_token_id: int = 0):
        if len(sequences) != len(labels):
            raise ValueError(f"{len(sequences)} token sequences but {len(labels)} labels")
        if not labels:
            raise ValueError("a constrained vocabulary needs at least one label")
        self.eos_token_id = int(eos_token_id)
        self.decoder_start_token_id = int(decoder_start_token_id)
        self.root: dict = {}
        self.collisions: list[tuple[str, str]] = []  # (label kept, label dropped)
        self.sequence_of: dict[str, tuple[int, ...]] = {}
        self.max_length = 0
        for ids, label in zip(sequences, labels):
            ids = tuple(int(i) for i in ids)
            if not ids or ids[-1] != self.eos_token_id:
                raise ValueError(f"label {label!r}: its token sequence must end with the EOS id {eos_token_id}")
            node = self.root
            for token in ids:
                node = node.setdefault(token, {})
            if _END in node:
                if node[_END] != label:
                    self.collisions.append((node[_END], label))
                continue
            node[_END] = label
            self.sequence_of[label] = ids
            self.max_length = max(self.max_length, len(ids))
        self._allowed_cache: dict[int, list[int]] = {}

    @classmethod
    def from_tokenizer(cls, labels: Iterable[str], tokenizer, max_length: int = 50,
                       decoder_start_token_id: int = 0) -> "LabelTrie":
        """Tokenise the labels as training targets (truncated to `max_length` tokens, ending with </s>)."""
        labels = list(labels)
        sequences = tokenizer(labels, truncation=True, max_length=max_length).input_ids
        return cls(sequences, labels, tokenizer.eos_token_id, decoder_start_token_id)

    @classmethod
    def from_model(cls, labels: Iterable[str], model) -> "LabelTrie":
        """The trie for a `UniSign` model (its tokenizer, target length and decoder start token)."""
        start = model.mt5_model.config.decoder_start_token_id
        return cls.from_tokenizer(labels, model.tokenizer, model.config.max_target_tokens,
                                  0 if start is None else start)

    def __len__(self) -> int:
        return len(self.sequence_of)

    def _node(self, prefix: Sequence[int]):
        node = self.root
        for token in prefix:
            node = node.get(int(token))
            if node is None:
                return None
        return node

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Token ids that may follow `prefix` (generated tokens, no start token); never empty."""
        node = self._node(prefix)
        if node is None:
            return [self.eos_token_id]
        key = id(node)
        if key not in self._allowed_cache:
            children = [token for token in node if token != _END]
            self._allowed_cache[key] = children or [self.eos_token_id]
        return self._allowed_cache[key]

    def label_of(self, token_ids: Sequence[int]) -> str | None:
        """The label whose full token sequence (ending with </s>) is `token_ids`, else None."""
        node = self._node(token_ids)
        return None if node is None else node.get(_END)

    def prefix_allowed_tokens_fn(self) -> Callable[[int, "torch.Tensor"], list[int]]:
        """The callable for `generate(prefix_allowed_tokens_fn=...)` (same trie for every sample)."""
        start = self.decoder_start_token_id

        def allowed_tokens(batch_id, input_ids):
            ids = input_ids.tolist()
            if ids and ids[0] == start:
                ids = ids[1:]
            return self.allowed(ids)

        return allowed_tokens


def decoded_label_map(trie: LabelTrie, tokenizer) -> dict[str, str]:
    """Decoded text (as `batch_decode(skip_special_tokens=True)` gives it) -> label, for mapping outputs back."""
    mapping = {}
    for label, ids in trie.sequence_of.items():
        mapping.setdefault(tokenizer.decode(list(ids), skip_special_tokens=True), label)
    return mapping


def constrained_generate(model, parts, frame_mask, trie: LabelTrie, num_beams=None, max_new_tokens=None,
                         num_return_sequences=1, rgb=None) -> list[list[tuple[str, float]]]:
    """Beam search restricted to the trie's labels -> per sample a list of (label, score), best first.

    Returned texts are the labels themselves (mapped back from the decoded text). Masked fill-up beams
    (score < INVALID_SCORE, when there are fewer reachable labels than beams) and repeated labels are
    dropped, so a list can be shorter than `num_return_sequences`. With `num_return_sequences == 1` the score
    is NaN (not requested from generate). `max_new_tokens` is raised to the longest label when it is shorter.
    """
    mapping = decoded_label_map(trie, model.tokenizer)
    max_new_tokens = max(max_new_tokens or model.config.max_new_tokens, trie.max_length)
    outputs = model.generate(parts, frame_mask, rgb=rgb, num_beams=num_beams, max_new_tokens=max_new_tokens,
                             num_return_sequences=num_return_sequences,
                             prefix_allowed_tokens_fn=trie.prefix_allowed_tokens_fn())
    if num_return_sequences == 1:
        outputs = [[(text, math.nan)] for text in outputs]
    results = []
    for candidates in outputs:
        kept, seen = [], set()
        for text, score in candidates:
            label = mapping.get(text, text)
            if score < INVALID_SCORE or label in seen:  # NaN (not requested) compares False: kept
                continue
            seen.add(label)
            kept.append((label, score))
        results.append(kept)
    return results
