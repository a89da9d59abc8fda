"""Vocabulary pruning: keep only the tokens the training corpora use (mT5: 250,112 -> a few thousand).

The embedding and the LM head keep the rows of the kept tokens; the pruned model's token i is the original
token `kept_ids[i]` (sorted, so the special tokens pad 0, </s> 1, <unk> 2 keep their ids and generation needs
no other change). The SentencePiece tokenizer stays as it is: `PrunedTokenizer` wraps it and translates ids
both ways (a token outside the kept set becomes <unk>), so everything that tokenises through
`model.tokenizer` (targets, prompts, decoding, closed-set ranking, constrained decoding) works unchanged.
`UniSignConfig.vocabulary` holds `kept_ids`: the map back to the original ids, saved with every checkpoint.
"""
import numpy as np
import torch
from torch import nn


def corpus_token_ids(tokenizer, texts) -> list[int]:
    """Sorted original ids of every token of `texts` (tokenised as targets are), plus the special tokens."""
    specials = sorted({tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id})
    if specials != list(range(len(specials))):
        raise ValueError(f"vocabulary pruning needs the special tokens first (ids {specials}), as in T5/mT5")
    used = {token for ids in tokenizer(list(texts)).input_ids for token in ids}
    return sorted(used | set(specials))


def prune_language_model(mt5_model, kept_ids):
    """Keep the rows of `kept_ids` in the shared embedding and the (untied) LM head, in place."""
    index = torch.as_tensor(kept_ids, dtype=torch.long)
    old_embedding = mt5_model.get_input_embeddings()
    embedding = nn.Embedding(len(index), old_embedding.embedding_dim, dtype=old_embedding.weight.dtype,
                             device=old_embedding.weight.device)
    embedding.weight.data.copy_(old_embedding.weight.data[index.to(old_embedding.weight.device)])
    mt5_model.set_input_embeddings(embedding)  # shared, encoder.embed_tokens and decoder.embed_tokens
    old_head = mt5_model.get_output_embeddings()
    head = nn.Linear(old_head.in_features, len(index), bias=False, dtype=old_head.weight.dtype,
                     device=old_head.weight.device)
    head.weight.data.copy_(old_head.weight.data[index.to(old_head.weight.device)])
    mt5_model.set_output_embeddings(head)
    mt5_model.config.vocab_size = len(index)


class PrunedTokenizer:
    """A Hugging Face tokenizer whose ids are those of the pruned vocabulary `kept_ids`."""

    def __init__(self, tokenizer, kept_ids):
        self.base = tokenizer
        self.kept_ids = torch.as_tensor(kept_ids, dtype=torch.long)  # pruned id -> original id
        size = max(len(tokenizer), int(self.kept_ids.max()) + 1)
        self.to_pruned = torch.full((size,), tokenizer.unk_token_id, dtype=torch.long)
        self.to_pruned[self.kept_ids] = torch.arange(len(self.kept_ids))  # original id -> pruned id (<unk> if cut)

    def __getattr__(self, name):  # special token ids, save_pretrained, vocab_file, ...: the base tokenizer's
        if name == "base" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def __len__(self):
        return len(self.kept_ids)

    def __call__(self, texts, **kwargs):
        encoded = self.base(texts, **kwargs)
        encoded["input_ids"] = map_ids(encoded["input_ids"], self.to_pruned)
        return encoded

    def decode(self, ids, **kwargs) -> str:
        return self.base.decode(map_ids(ids, self.kept_ids), **kwargs)

    def batch_decode(self, sequences, **kwargs) -> list[str]:
        return self.base.batch_decode(map_ids(sequences, self.kept_ids), **kwargs)


def map_ids(ids, table: torch.Tensor):
    """Token ids looked up in `table`: a tensor stays a tensor (on its device), lists stay (nested) lists."""
    if torch.is_tensor(ids):
        return table.to(ids.device)[ids]
    if len(ids) and not isinstance(ids[0], (int, np.integer)):
        return [map_ids(row, table) for row in ids]
    return table[torch.as_tensor(list(ids), dtype=torch.long)].tolist()
