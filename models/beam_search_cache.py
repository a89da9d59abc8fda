"""A decoder cache for beam search that leaves the cross-attention keys and values where they are.

After every step transformers' beam search re-orders the cache along the batch x beams rows, so that each
surviving beam carries the keys and values of the beam it continues. For self-attention that is needed. The
cross-attention keys and values are the encoder states' projections, and the encoder states of a clip are
`num_beams` copies of one row block (transformers repeats them before decoding); a beam only ever continues a
beam of its own clip, so re-ordering them copies identical rows onto each other. Skipping that copy gives the
same values and the same beams, and saves reading and writing every layer's cross-attention cache at every step
(at the fixture scale of bench/compare_official.py x1.10 on an evaluation pass, at mT5-Base batch 2 x1.02;
docs/performance.md).
"""
from transformers import PretrainedConfig
from transformers.cache_utils import DynamicCache, EncoderDecoderCache


class BeamSearchCache(EncoderDecoderCache):
    """EncoderDecoderCache whose `reorder_cache` re-orders the self-attention cache only."""

    @classmethod
    def empty(cls, config: PretrainedConfig) -> "BeamSearchCache":
        """An empty cache for generate(past_key_values=...), built from the model's config as generate builds its
        own."""
        decoder_config = config.get_text_config(decoder=True)
        return cls(DynamicCache(config=decoder_config), DynamicCache(config=decoder_config))

    def reorder_cache(self, beam_idx):  # beam_idx: (B * num_beams,), each within its clip's block of rows
        self.self_attention_cache.reorder_cache(beam_idx)
