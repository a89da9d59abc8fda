"""Uni-Sign: pose encoder + prompt + mT5, one generative objective for every stage and task.

Encoder input = [embed(prompt tokens) ; pose features], fed to MT5ForConditionalGeneration as
`inputs_embeds`; the target text (sentence for SLT, gloss string for CSLR, word for ISLR) is learned
with label-smoothed token cross-entropy and produced by beam search.
"""
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from datasets.targets import IGNORE_INDEX, TextTargets
from models.beam_search_cache import BeamSearchCache
from models.hand_fusion import HandRGBFusion, RGBConfig
from models.language_model import PROMPT_TEMPLATE, load_language_model
from models.packed_linear import packed_linears
from models.pose_encoder import PoseEncoder, PoseEncoderConfig
from models.pretrained import load_pretrained, save_pretrained
from models.vocabulary import PrunedTokenizer, prune_language_model


@dataclass
class UniSignConfig:
    """Task-independent model settings (official defaults)."""

    lang: str = "Chinese"  # prompt language: "Chinese" for CSL datasets, else "English"
    label_smoothing: float = 0.2
    max_target_tokens: int = 50
    num_beams: int = 4
    max_new_tokens: int = 100
    pose: PoseEncoderConfig = field(default_factory=PoseEncoderConfig)
    rgb: RGBConfig | None = None  # the RGB hand branch (stage 2 on); None = pose-only
    vocabulary: list | None = None  # pruned vocabulary: the original id of each kept token (models/vocabulary.py)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "UniSignConfig":
        values = dict(values)
        pose = PoseEncoderConfig(**{key: tuple(v) if isinstance(v, list) else v for key, v in values.pop("pose").items()})
        rgb = values.pop("rgb", None)
        return cls(pose=pose, rgb=RGBConfig.from_dict(rgb) if rgb else None, **values)


@dataclass
class UniSignOutput:
    logits: torch.Tensor | None  # (B, L, vocab); None from the chunked (memory-lean) loss
    loss: torch.Tensor | None = None  # label-smoothed token-mean cross-entropy, only when labels were given


def chunked_cross_entropy(lm_head, states, labels, label_smoothing, chunk_tokens) -> torch.Tensor:
    """F.cross_entropy(lm_head(states), labels) (token mean, label smoothing, IGNORE_INDEX skipped) without ever
    holding more than `chunk_tokens` rows of logits: each chunk's logits are recomputed in the backward pass
    (activation checkpointing), so a 250k-token head never materialises (B, L, vocab) in fp32."""
    states, labels = states.flatten(0, 1), labels.flatten()  # (B*L, D), (B*L,)

    def chunk_loss(chunk_states, chunk_labels):
        return F.cross_entropy(lm_head(chunk_states).float(), chunk_labels, ignore_index=IGNORE_INDEX,
                               label_smoothing=label_smoothing, reduction="sum")

    total = sum(checkpoint(chunk_loss, states[start:start + chunk_tokens], labels[start:start + chunk_tokens],
                           use_reentrant=False) for start in range(0, len(labels), chunk_tokens))
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)


class UniSign(nn.Module):
    config_class = UniSignConfig  # what models/pretrained.py builds the config of a saved model with

    def __init__(self, config: UniSignConfig, mt5_model, tokenizer):
        super().__init__()
        self.config = config
        config.pose.output_dim = mt5_model.config.d_model
        self.pose_encoder = PoseEncoder(config.pose)
        if config.rgb is not None:  # built after the pose modules' init, as officially
            self.pose_encoder.hand_fusion = HandRGBFusion(config.rgb, config.pose.hidden_dim)
        self.mt5_model = mt5_model
        self.tokenizer = tokenizer
        if config.vocabulary is not None:  # a pruned model: prune a full-vocabulary LM (a saved pruned LM is as is)
            self.tokenizer = PrunedTokenizer(tokenizer, config.vocabulary)
            if mt5_model.config.vocab_size != len(config.vocabulary):
                prune_language_model(mt5_model, config.vocabulary)
        self.register_buffer("prompt_ids", self._prompt_ids(), persistent=False)  # (P,), ends with </s>
        self.loss_chunk_tokens = 0  # > 0: the memory-lean loss over chunks of target tokens (a compute setting)
        self.packed_decoding = True  # beam search through MKL-packed weights on a CPU in fp32 (a compute setting)
        self.decoding_packs = {}  # those packed weights, kept from one beam search to the next until train()/eval()

    def train(self, mode: bool = True):
        self.decoding_packs.clear()  # switching modes (evaluate() starts with eval()) frees the packed weights
        return super().train(mode)

    def _prompt_ids(self) -> torch.Tensor:
        return self.tokenizer([self.prompt_text()], return_tensors="pt").input_ids[0]

    def prune_vocabulary(self, kept_ids):
        """Keep only the tokens `kept_ids` (original ids, sorted; models/vocabulary.py) in the embedding and the
        LM head; the tokenizer then speaks pruned ids. The map back is saved in the config."""
        if self.config.vocabulary is not None:
            raise ValueError("the vocabulary is already pruned")
        prune_language_model(self.mt5_model, kept_ids)
        self.config.vocabulary = [int(token) for token in kept_ids]
        self.tokenizer = PrunedTokenizer(self.tokenizer, self.config.vocabulary)
        self.prompt_ids = self._prompt_ids().to(self.prompt_ids.device)

    @classmethod
    def from_lm_path(cls, config: UniSignConfig, lm_path) -> "UniSign":
        """A new model (pose encoder initialised) on the language model saved in `lm_path`."""
        mt5_model, tokenizer = load_language_model(lm_path)
        return cls(config, mt5_model, tokenizer)

    @classmethod
    def load_pretrained(cls, source, lm_path=None, device="cpu", dtype=None, lang=None) -> tuple["UniSign", dict]:
        """`from_pretrained` and the flags the model was trained with (task, max_length, ... where recorded)."""
        return load_pretrained(cls, source, lm_path, device, dtype, lang)

    @classmethod
    def from_pretrained(cls, source, lm_path=None, device="cpu", dtype=None, lang=None) -> "UniSign":
        """A trained model in eval mode: a saved directory, our checkpoint file or an official one
        (models/pretrained.py; files need `lm_path`, official files may need `lang`)."""
        return load_pretrained(cls, source, lm_path, device, dtype, lang)[0]

    def save_pretrained(self, out_dir, card=None):
        """Save as a Hugging Face-style directory with a model card (models/pretrained.py); returns its path."""
        return save_pretrained(self, out_dir, card)

    def prompt_text(self, lang=None) -> str:
        return PROMPT_TEMPLATE.format(lang=lang or self.config.lang)

    def prompt_embeddings(self, batch, langs=None):
        """Embedded prompt (B, P, D) and its mask (B, P): the cached prompt, or one per sample's language."""
        embed = self.mt5_model.get_input_embeddings()
        if langs is None or all(lang == self.config.lang for lang in langs):
            ids = self.prompt_ids.unsqueeze(0).expand(batch, -1)  # (B, P), constant: tokenised once
            return embed(ids), torch.ones_like(ids)
        encoded = self.tokenizer([self.prompt_text(lang) for lang in langs], padding=True,
                                 return_tensors="pt").to(self.prompt_ids.device)  # mixed-language batch
        return embed(encoded.input_ids), encoded.attention_mask

    def encoder_inputs(self, parts, frame_mask, rgb=None, langs=None):
        """parts[p]: (B, T, V, 3), frame_mask: (B, T) -> inputs_embeds (B, P+T, D), attention_mask (B, P+T)."""
        pose_embeds = self.pose_encoder(parts, frame_mask, rgb)  # (B, T, D)
        prompt_embeds, prompt_mask = self.prompt_embeddings(pose_embeds.shape[0], langs)
        inputs_embeds = torch.cat([prompt_embeds.to(pose_embeds.dtype), pose_embeds], dim=1)
        attention_mask = torch.cat([prompt_mask.to(frame_mask.dtype), frame_mask], dim=1)
        return inputs_embeds, attention_mask

    @property
    def target_encoder(self) -> TextTargets:
        """Target texts -> labels (B, L): what the collate calls (datasets/targets.py)."""
        return TextTargets(self.tokenizer, self.config.max_target_tokens)

    def tokenize_targets(self, texts) -> torch.Tensor:
        """Target ids (B, L<=50, ending with </s>), padding -> IGNORE_INDEX, on the model's device."""
        return self.target_encoder(texts).to(self.prompt_ids.device)

    def forward(self, parts, frame_mask, labels=None, rgb=None, langs=None, decoder_input_ids=None) -> UniSignOutput:
        """Teacher-forced logits (B, L, vocab) of the labels (B, L) (or of `decoder_input_ids`); the loss only
        when labels are given. parts[p]: (B, T, V, 3), frame_mask: (B, T). For text, use generate()."""
        inputs_embeds, attention_mask = self.encoder_inputs(parts, frame_mask, rgb, langs)
        return self._teacher_forced(labels, attention_mask, decoder_input_ids, inputs_embeds=inputs_embeds)

    def _teacher_forced(self, labels, attention_mask, decoder_input_ids=None, **encoder) -> UniSignOutput:
        """Logits and label-smoothed loss; `encoder`: inputs_embeds (B, P+T, D) or encoder_outputs. With
        `loss_chunk_tokens` > 0 the loss is computed chunk by chunk and the logits are not returned."""
        if labels is None and decoder_input_ids is None:
            raise ValueError("UniSign.forward needs labels (B, L) or decoder_input_ids; generate() produces text")
        if decoder_input_ids is None:
            decoder_input_ids = self.mt5_model._shift_right(labels)
        if labels is not None and self.loss_chunk_tokens > 0:
            states = self._decoder_states(decoder_input_ids, attention_mask, **encoder)  # (B, L, D)
            return UniSignOutput(None, chunked_cross_entropy(self.mt5_model.get_output_embeddings(), states, labels,
                                                             self.config.label_smoothing, self.loss_chunk_tokens))
        logits = self.mt5_model(attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                                **encoder).logits  # (B, L, vocab)
        if labels is None:
            return UniSignOutput(logits)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(),
            ignore_index=IGNORE_INDEX, label_smoothing=self.config.label_smoothing,
        )
        return UniSignOutput(logits, loss)

    def _decoder_states(self, decoder_input_ids, attention_mask, inputs_embeds=None, encoder_outputs=None):
        """The mT5 decoder's output (B, L, D) before the LM head, as MT5ForConditionalGeneration computes it
        (transformers 5: no rescaling before the head; tests/models/test_uni_sign.py pins the equality)."""
        if encoder_outputs is None:
            encoder_outputs = self.mt5_model.get_encoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        return self.mt5_model.get_decoder()(input_ids=decoder_input_ids, encoder_hidden_states=encoder_outputs[0],
                                            encoder_attention_mask=attention_mask)[0]

    @torch.no_grad()
    def evaluate_batch(self, parts, frame_mask, labels, rgb=None, num_beams=None, max_new_tokens=None, langs=None):
        """(teacher-forced output, beam-search texts) of one batch, with one pass of the pose and mT5 encoders.

        Equal to forward() and generate() called one after the other (the official evaluation), in half the
        encoder work."""
        inputs_embeds, attention_mask = self.encoder_inputs(parts, frame_mask, rgb, langs)
        encoder_outputs = self.mt5_model.get_encoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        output = self._teacher_forced(labels, attention_mask, encoder_outputs=encoder_outputs)
        texts = self._beam_search(attention_mask, num_beams, max_new_tokens, encoder_outputs=encoder_outputs)
        return output, texts

    @torch.no_grad()
    def generate(self, parts, frame_mask, rgb=None, num_beams=None, max_new_tokens=None, num_return_sequences=1,
                 prefix_allowed_tokens_fn=None, langs=None):
        """Beam search -> list of B strings, or B lists of (text, score) when num_return_sequences > 1.

        `prefix_allowed_tokens_fn` is passed to transformers' generate (constrained decoding, see
        models/constrained_decoding.py); None (default) decodes freely as officially.
        """
        inputs_embeds, attention_mask = self.encoder_inputs(parts, frame_mask, rgb, langs)
        return self._beam_search(attention_mask, num_beams, max_new_tokens, num_return_sequences,
                                 prefix_allowed_tokens_fn, inputs_embeds=inputs_embeds)

    def _beam_search(self, attention_mask, num_beams=None, max_new_tokens=None, num_return_sequences=1,
                     prefix_allowed_tokens_fn=None, **encoder):
        """generate() from `encoder`: inputs_embeds (B, P+T, D) or encoder_outputs. The cross-attention cache is
        not re-ordered between steps (models/beam_search_cache.py: the same values, less copying)."""
        num_beams = max(num_beams or self.config.num_beams, num_return_sequences)
        with packed_linears(self.mt5_model, self.decoding_packs, self.packed_decoding):
            output = self.mt5_model.generate(
                attention_mask=attention_mask,
                max_new_tokens=max_new_tokens or self.config.max_new_tokens,
                num_beams=num_beams,
                num_return_sequences=num_return_sequences,
                prefix_allowed_tokens_fn=prefix_allowed_tokens_fn,
                do_sample=False,
                return_dict_in_generate=True,
                output_scores=num_return_sequences > 1,
                past_key_values=BeamSearchCache.empty(self.mt5_model.config),
                **encoder,
            )
        texts = self.tokenizer.batch_decode(output.sequences, skip_special_tokens=True)
        if num_return_sequences == 1:
            return texts
        scores = output.sequences_scores.tolist()
        ranked = list(zip(texts, scores))
        return [ranked[i : i + num_return_sequences] for i in range(0, len(ranked), num_return_sequences)]

    @torch.no_grad()
    def score_candidates(self, parts, frame_mask, candidates, rgb=None, chunk_size=512) -> torch.Tensor:
        """Closed-set ranking: summed log-likelihood of every candidate text for every sample -> (B, C).

        The encoder runs once; the decoder scores candidates in chunks of `chunk_size` (sample, candidate) pairs.
        """
        inputs_embeds, attention_mask = self.encoder_inputs(parts, frame_mask, rgb)
        encoder_states = self.mt5_model.get_encoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask)[0]
        labels = self.tokenize_targets(candidates)  # (C, L)
        batch, num_candidates = encoder_states.shape[0], labels.shape[0]
        pairs = torch.cartesian_prod(torch.arange(batch), torch.arange(num_candidates))  # (B*C, 2)
        scores = torch.empty(batch * num_candidates, device=encoder_states.device)
        for start in range(0, len(pairs), chunk_size):
            sample_ids, candidate_ids = pairs[start : start + chunk_size].T
            chunk_labels = labels[candidate_ids]
            logits = self.mt5_model(
                encoder_outputs=(encoder_states[sample_ids],),
                attention_mask=attention_mask[sample_ids],
                decoder_input_ids=self.mt5_model._shift_right(chunk_labels),
            ).logits
            log_probs = logits.float().log_softmax(-1)
            token_scores = log_probs.gather(-1, chunk_labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            scores[start : start + len(sample_ids)] = (token_scores * (chunk_labels != IGNORE_INDEX)).sum(-1)
        return scores.view(batch, num_candidates)
