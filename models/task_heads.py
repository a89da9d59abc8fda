"""Task-specific fine-tuning baselines of the paper's Table 7 (pose-only setting).

The paper (Sec. 4.4, "Impact of fine-tuning paradigms") takes two feature sequences of a pre-trained
Uni-Sign and fine-tunes a task-specific head on them instead of generating text:

* F_sign: "features from the temporal encoders". We read this as the pose encoder's concatenated per-part
  temporal-encoder outputs (+ the learned part embedding) **before** `pose_proj`, i.e. C x parts channels
  per frame (1024 with the official widths). `pose_proj` only maps into the LM's embedding space, which the
  LM encoder consumes; it is not part of the temporal encoders. `feature_point="post_proj"` takes the
  `pose_proj` output (d_model channels) instead, for comparison.
* F_lm,enc: "features from the language model encoder": the mT5 encoder's output over [prompt; sign
  features] (`UniSign.encoder_inputs` -> `mt5_model.get_encoder()`). The head sees the frame positions
  only (the prompt positions are dropped; through self-attention they carry no extra sign information), so
  both feature types are (B, T, C) sequences with the same frame mask.

Heads:
* ISLR: masked mean pooling over frames + an MLP classifier, cross-entropy over the class vocabulary.
* CSLR: a bi-directional LSTM + linear layer over the gloss vocabulary (index 0 = CTC blank),
  `torch.nn.CTCLoss`, greedy CTC decoding (arg-max per frame, collapse repeats, drop blanks).

The backbone (the whole Uni-Sign) is fine-tuned with the head unless `freeze_backbone` is set.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datasets.targets import IGNORE_INDEX
from datasets.tasks import get_task

FEATURES = ("sign", "lm_enc")
FEATURE_POINTS = ("pre_proj", "post_proj")
BLANK = 0
UNK = "<unk>"


def masked_mean(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """features (B, T, C), mask (B, T) 1 for real frames -> (B, C) mean over the real frames."""
    mask = mask.to(features.dtype).unsqueeze(-1)
    return (features * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class MLPClassificationHead(nn.Module):
    """Mean pooling + Linear -> GELU -> Dropout -> Linear; logits over `num_classes`."""

    def __init__(self, in_dim: int, num_classes: int, hidden_dim: int = 512, dropout: float = 0.1):
        super().__init__()
        self.mlp = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden_dim), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden_dim, num_classes))

    def forward(self, features, mask):
        return self.mlp(masked_mean(features, mask))  # (B, num_classes)

    @staticmethod
    def loss(logits, labels, label_smoothing: float = 0.0):
        """Cross-entropy; labels -100 (a class unseen in training) are ignored."""
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing)


class CTCHead(nn.Module):
    """Bi-directional LSTM + Linear; per-frame log-probabilities over the gloss vocabulary (0 = blank)."""

    def __init__(self, in_dim: int, vocab_size: int, hidden_dim: int = 256, num_layers: int = 1,
                 dropout: float = 0.1):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden_dim, num_layers=num_layers, batch_first=True, bidirectional=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_dim, vocab_size)
        self.ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)

    def forward(self, features, mask):
        """-> log-probabilities (B, T, V) and lengths (B,)."""
        lengths = mask.sum(1).long()
        packed = nn.utils.rnn.pack_padded_sequence(features.float(), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        output, _ = self.lstm(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=features.shape[1])
        return self.classifier(self.dropout(output)).log_softmax(-1), lengths

    def loss(self, log_probs, lengths, targets, target_lengths):
        """CTC over (T, B, V) log-probs; targets (B, S) padded, target_lengths (B,). Mean over the batch."""
        return self.ctc(log_probs.transpose(0, 1).float(), targets, lengths, target_lengths)


def ctc_greedy_decode(log_probs: torch.Tensor, lengths, blank: int = BLANK) -> list[list[int]]:
    """Greedy CTC: arg-max per frame (within each length), collapse repeats, then drop blanks."""
    best = log_probs.argmax(-1).tolist()  # (B, T)
    decoded = []
    for row, length in zip(best, [int(n) for n in lengths]):
        tokens, previous = [], None
        for index in row[:length]:
            if index != previous and index != blank:
                tokens.append(index)
            previous = index
        decoded.append(tokens)
    return decoded


class Vocabulary:
    """Class names (ISLR) or gloss tokens (CSLR) <-> indices. CTC vocabularies reserve 0 for the blank."""

    def __init__(self, tokens, ctc: bool = False):
        self.ctc = ctc
        specials = ["<blank>", UNK] if ctc else []
        self.itos = specials + sorted(set(tokens) - set(specials))
        self.stoi = {token: index for index, token in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def encode(self, token):
        """Index of a token; unknown: <unk> in a CTC vocabulary, -100 (ignored by the loss) for classes."""
        return self.stoi.get(token, self.stoi[UNK] if self.ctc else IGNORE_INDEX)

    def decode(self, index):
        return self.itos[index]

    def to_dict(self):
        return {"tokens": self.itos, "ctc": self.ctc}

    @classmethod
    def from_dict(cls, values):
        vocab = cls([], values["ctc"])
        vocab.itos = list(values["tokens"])
        vocab.stoi = {token: index for index, token in enumerate(vocab.itos)}
        return vocab


@dataclass(frozen=True)
class VocabularyTargets:
    """A head's target encoder (the collate calls it, datasets/targets.py): ISLR class ids (B,), -100 for a
    class unseen in training; CSLR gloss ids (B, S) padded with IGNORE_INDEX."""

    vocab: Vocabulary

    def __call__(self, texts) -> torch.Tensor:
        if not self.vocab.ctc:
            return torch.tensor([self.vocab.encode(text) for text in texts], dtype=torch.long)
        sequences = [[self.vocab.encode(token) for token in text.split()] for text in texts]
        labels = torch.full((len(sequences), max(1, *map(len, sequences))), IGNORE_INDEX, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            labels[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        return labels


@dataclass
class TaskHeadOutput:
    logits: torch.Tensor  # ISLR (B, classes); CSLR per-frame log-probs (B, T, V)
    lengths: torch.Tensor | None = None  # CSLR frame lengths
    loss: torch.Tensor | None = None  # only when labels were given


class TaskHeadModel(nn.Module):
    """A Uni-Sign backbone + a task-specific head. forward() and target_encoder as UniSign's (engine.train_one_epoch)."""

    def __init__(self, backbone, task: str, features: str, vocab: Vocabulary, feature_point: str = "pre_proj",
                 hidden_dim: int = 512, lstm_layers: int = 1, dropout: float = 0.1, label_smoothing: float = 0.0,
                 freeze_backbone: bool = False):
        super().__init__()
        self.head_kind = get_task(task).head  # "classification" (ISLR) or "ctc" (CSLR)
        if self.head_kind is None:
            raise ValueError(f"task-specific heads exist for ISLR and CSLR, not {task}")
        if features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, not {features!r}")
        if feature_point not in FEATURE_POINTS:
            raise ValueError(f"feature_point must be one of {FEATURE_POINTS}, not {feature_point!r}")
        self.backbone, self.task, self.features, self.feature_point = backbone, task, features, feature_point
        self.vocab, self.label_smoothing = vocab, label_smoothing
        pose = backbone.pose_encoder
        if features == "lm_enc" or feature_point == "post_proj":
            in_dim = pose.pose_proj.out_features
        else:
            in_dim = pose.pose_proj.in_features
        if self.head_kind == "classification":
            self.head = MLPClassificationHead(in_dim, len(vocab), hidden_dim, dropout)
        else:
            self.head = CTCHead(in_dim, len(vocab), hidden_dim // 2, lstm_layers, dropout)
        if freeze_backbone:
            for parameter in backbone.parameters():
                parameter.requires_grad_(False)

    def sign_features(self, parts, frame_mask, rgb=None, langs=None):
        """The chosen feature sequence (B, T, C) over the frame positions."""
        if self.features == "sign":
            if self.feature_point == "post_proj":
                return self.backbone.pose_encoder(parts, frame_mask, rgb)
            captured = {}
            hook = self.backbone.pose_encoder.pose_proj.register_forward_hook(
                lambda module, inputs, output: captured.__setitem__("x", inputs[0]))
            try:
                self.backbone.pose_encoder(parts, frame_mask, rgb)
            finally:
                hook.remove()
            return captured["x"]  # (B, T, C * parts), the temporal encoders' output
        inputs_embeds, attention_mask = self.backbone.encoder_inputs(parts, frame_mask, rgb, langs)
        states = self.backbone.mt5_model.get_encoder()(inputs_embeds=inputs_embeds,
                                                       attention_mask=attention_mask)[0]
        return states[:, states.shape[1] - frame_mask.shape[1]:]  # drop the prompt positions

    @property
    def target_encoder(self) -> VocabularyTargets:
        return VocabularyTargets(self.vocab)

    def forward(self, parts, frame_mask, labels=None, rgb=None, langs=None) -> TaskHeadOutput:
        """Head outputs; the loss only when labels (the collate's, from `target_encoder`) are given."""
        features = self.sign_features(parts, frame_mask, rgb, langs)
        if self.head_kind == "classification":
            logits = self.head(features, frame_mask)
            loss = None if labels is None else self.head.loss(logits, labels, self.label_smoothing)
            return TaskHeadOutput(logits, loss=loss)
        log_probs, lengths = self.head(features, frame_mask)
        if labels is None:
            return TaskHeadOutput(log_probs, lengths)
        target_lengths = (labels != IGNORE_INDEX).sum(1)
        return TaskHeadOutput(log_probs, lengths, self.head.loss(log_probs, lengths, labels.clamp(min=0),
                                                                 target_lengths))

    @torch.no_grad()
    def predict(self, parts, frame_mask, rgb=None, langs=None) -> list[str]:
        """Predicted class names (ISLR) or gloss strings (CSLR)."""
        features = self.sign_features(parts, frame_mask, rgb, langs)
        if self.head_kind == "classification":
            return [self.vocab.decode(index) for index in self.head(features, frame_mask).argmax(-1).tolist()]
        log_probs, lengths = self.head(features, frame_mask)
        return [" ".join(self.vocab.decode(index) for index in tokens)
                for tokens in ctc_greedy_decode(log_probs, lengths)]
