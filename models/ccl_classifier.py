"""ISLR fine-tuning of CCL-SLR encoders: per modality pooled features -> LayerNorm -> Dropout -> Linear;
the modalities' logits are summed (late fusion). Encoders start from a pre-training checkpoint or at random.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datasets.targets import IGNORE_INDEX
from models.ccl_slr import CCLConfig, build_encoder, encoder_width


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, classes)
    loss: torch.Tensor | None = None  # only when labels were given


class CCLClassifier(nn.Module):
    def __init__(self, config: CCLConfig, num_classes: int, dropout: float = 0.1, label_smoothing: float = 0.0):
        """config.modalities: the branches used (a pose-only pre-training can be fine-tuned with both)."""
        super().__init__()
        self.config, self.label_smoothing = config, label_smoothing
        self.encoders = nn.ModuleDict({m: build_encoder(config, m) for m in config.modalities})
        self.classifiers = nn.ModuleDict({
            m: nn.Sequential(nn.LayerNorm(encoder_width(config, m)), nn.Dropout(dropout),
                             nn.Linear(encoder_width(config, m), num_classes))
            for m in config.modalities})

    def load_pretrained(self, pretrained_state: dict) -> list:
        """Copy the query encoders of a CCL-SLR state dict ('encoders.<modality>.*'); -> the modalities loaded."""
        loaded = []
        for modality, encoder in self.encoders.items():
            prefix = f"encoders.{modality}."
            weights = {key[len(prefix):]: value for key, value in pretrained_state.items() if key.startswith(prefix)}
            if weights:
                encoder.load_state_dict(weights)
                loaded.append(modality)
        return loaded

    def forward(self, pose=None, rgb=None, labels=None) -> ClassifierOutput:
        """pose {parts, frame_mask} and/or rgb (B, T, 3, S, S), as the config's modalities need."""
        inputs = {"pose": pose, "rgb": rgb}
        missing = [m for m in self.config.modalities if inputs[m] is None]
        if missing:
            raise ValueError(f"the classifier uses {self.config.modalities} but got no {missing[0]} input")
        logits = sum(self.classifiers[m](self.encoders[m](inputs[m])).float() for m in self.config.modalities)
        if labels is None:
            return ClassifierOutput(logits)
        loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing)
        return ClassifierOutput(logits, loss)
