"""The RGB hand branch: EfficientNet-B0 features of hand crops fused into the hand pose features by PGF.

Runs between the spatial and the temporal GCN chains of the two hands (official_defaults.md 3.4).
Submodules map one-to-one onto the official checkpoint entries (see utils/checkpoint.py):
  backbone.0.*              <-> rgb_support_backbone.0.*   (torchvision efficientnet_b0 `features`)
  rgb_proj.*                <-> rgb_proj.*
  deformable_attention.*    <-> fusion_pose_rgb_DA.*
  gate.*                    <-> fusion_gate.*
  unused_linear.*           <-> fusion_pose_rgb_linear.*   (created but never used, as officially)
"""
from dataclasses import dataclass, fields

import torch
from torch import nn

from models.efficientnet import efficientnet_b0_features, load_torchvision_weights
from models.pgf import DeformableAttention2D, fuse_hand_features, make_fusion_gate

HANDS = ("left", "right")


@dataclass
class RGBConfig:
    """The RGB branch's model settings; defaults are the official ones. Which frames' crops it sees is a
    dataset setting (datasets/rgb.py RGBSampling)."""

    fusion: str = "da"  # "da": cross + deformable attention (PGF); "ca": cross-attention only (Table 10)
    gate_init: str = "trainable"  # or "official" (never trains): see make_gate
    backbone_weights: str = ""  # torchvision ImageNet EfficientNet-B0 file

    @classmethod
    def from_dict(cls, values: dict) -> "RGBConfig":
        """Ignores the sampling fields that model configs of earlier releases held (now RGBSampling's)."""
        return cls(**{field.name: values[field.name] for field in fields(cls) if field.name in values})


class ReLUWithGradientAtZero(torch.autograd.Function):
    """ReLU whose gradient at exactly 0 is 1 (PyTorch's ReLU uses 0 there)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x >= 0).to(grad_output.dtype)


class OpenReLU(nn.Module):
    def forward(self, x):
        return ReLUWithGradientAtZero.apply(x)


def make_gate(hidden, gate_init):
    """The fusion gate. Both variants output exactly 0 at initialisation (stage 2 starts at stage 1).

    "official": both convs zero -> the pre-activation is 0 and ReLU passes no gradient there, so the gate
    (and through it the whole RGB branch) never trains. "trainable": the first conv keeps PyTorch's default
    init, the second stays zero, and the final ReLU passes gradient at 0, so the gate can open.
    """
    gate = make_fusion_gate(hidden)
    if gate_init == "trainable":
        gate[0].reset_parameters()
        gate[4] = OpenReLU()
    elif gate_init != "official":
        raise ValueError(f"unknown gate init '{gate_init}'; expected 'official' or 'trainable'")
    return gate


class HandRGBFusion(nn.Module):
    def __init__(self, config: RGBConfig, hidden_dim=256):
        super().__init__()
        if config.fusion not in ("da", "ca"):
            raise ValueError(f"unknown fusion '{config.fusion}'; expected 'da' or 'ca'")
        self.config = config
        self.backbone = nn.Sequential(efficientnet_b0_features())
        if config.backbone_weights:
            load_torchvision_weights(self.backbone[0], config.backbone_weights)
        self.rgb_proj = nn.Conv2d(1280, hidden_dim, 1)
        self.unused_linear = nn.Linear(hidden_dim, hidden_dim)
        self.deformable_attention = DeformableAttention2D(
            dim=hidden_dim, dim_head=hidden_dim // 8, heads=8, cross_attention_only=config.fusion == "ca"
        )
        self.gate = make_gate(hidden_dim, config.gate_init)

    def forward(self, features, rgb):
        """features[hand]: (B, C, T, 21) spatial-GCN output; rgb: the collate_rgb batch -> updated features."""
        fused = dict(features)
        for hand in HANDS:
            if hand not in features:
                continue
            valid = rgb[f"{hand}_valid"]
            crops = rgb[f"{hand}_hands"].to(self.rgb_proj.weight.dtype)  # (N, 3, 112, 112)
            rgb_maps = self.rgb_proj(self.backbone(crops))[valid]  # (M, C, 4, 4)
            fused[hand] = fuse_hand_features(
                features[hand], rgb_maps, rgb[f"{hand}_skeletons_norm"][valid],
                rgb[f"{hand}_sample_index"], rgb[f"{hand}_frame_index"], self.deformable_attention, self.gate,
            )
        return fused
