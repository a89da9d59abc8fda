"""The Uni-Sign pose encoder: four part encoders (body, left hand, right hand, face) -> one feature per frame.

Per part: Linear(3 -> 64) -> spatial GCN chain (64 -> 128 -> 256) -> [+ detached body context]
-> temporal ST-GCN chain (3 x 256, kernel 5) -> mean over joints. The parts are concatenated,
a learned part embedding is added and the result projected to the language model width.
Left and right hands share one encoder (the very same modules, as in the official code).
"""
from dataclasses import dataclass

import torch
from torch import nn

from models.stgcn import spatial_chain, temporal_chain

ALL_PARTS = ("body", "left", "right", "face_all")
# Body joint (index within the body part) whose spatial feature is added to each part.
BODY_CONTEXT_JOINT = {"left": 7, "right": 8, "face_all": 0}  # left wrist, right wrist, nose
# Pose encoder widths: the official (hard-coded) sizes, and a small one for CPU runs of the embedded default.
POSE_PRESETS = {
    "official": dict(proj_dim=64, spatial_widths=(64, 128, 256)),
    "tiny": dict(proj_dim=32, spatial_widths=(32, 64, 64)),
}
# Paper Table 13 sub-pose groups.
SUB_POSE_GROUPS = {
    "hands": ("left", "right"),
    "hands_body": ("body", "left", "right"),
    "all": ALL_PARTS,
}


@dataclass
class PoseEncoderConfig:
    """Widths of the pose encoder. The defaults are the official (hard-coded) sizes."""

    parts: tuple = ALL_PARTS
    proj_dim: int = 64
    spatial_widths: tuple = (64, 128, 256)
    temporal_depth: int = 3
    temporal_kernel: int = 5
    output_dim: int = 768  # the language model width
    batch_independent: bool = False  # zero padded frames before temporal convs (not official)
    # Run both hands as one batch through their shared spatial and temporal chains (not official). In training the
    # BatchNorm layers then see both hands' statistics, as their shared running statistics do at evaluation.
    batch_hands: bool = False

    @property
    def hidden_dim(self) -> int:
        return self.spatial_widths[-1]


def trunc_normal_init(module):
    """Official `_init_weights`: trunc-normal(0.02, cut at +-2) Linear weights, zero bias."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class PoseEncoder(nn.Module):
    def __init__(self, config: PoseEncoderConfig):
        super().__init__()
        self.config = config
        unknown = set(config.parts) - set(ALL_PARTS)
        if unknown or not config.parts:
            raise ValueError(f"unknown pose parts {sorted(unknown)}; choose from {ALL_PARTS}")
        self.parts = tuple(part for part in ALL_PARTS if part in config.parts)  # official order
        self.proj_linear = nn.ModuleDict()
        self.gcn_modules = nn.ModuleDict()
        self.fusion_gcn_modules = nn.ModuleDict()
        for part in self.parts:
            self.proj_linear[part] = nn.Linear(3, config.proj_dim)
            self.gcn_modules[part] = spatial_chain(part, config.spatial_widths, config.proj_dim)
            self.fusion_gcn_modules[part] = temporal_chain(
                part, config.hidden_dim, config.temporal_depth, config.temporal_kernel
            )
        if "left" in self.parts and "right" in self.parts:  # share: left becomes the right modules
            for modules in (self.proj_linear, self.gcn_modules, self.fusion_gcn_modules):
                modules["left"] = modules["right"]
        self.part_para = nn.Parameter(torch.zeros(config.hidden_dim * len(self.parts)))
        self.pose_proj = nn.Linear(config.hidden_dim * len(self.parts), config.output_dim)
        self.apply(trunc_normal_init)
        self.hand_fusion = None  # set by UniSign when the RGB branch is on

    def _hands_jointly(self) -> bool:
        return self.config.batch_hands and "left" in self.parts and "right" in self.parts

    def spatial_features(self, parts):
        """Per part: Linear + spatial GCN (kernel 1: frames do not mix). parts[p]: (B, T, V, 3) -> {p: (B, C, T, V)}."""
        features = {}
        if self._hands_jointly():
            both = torch.cat([parts["left"], parts["right"]], dim=0)  # (2B, T, 21, 3)
            features["left"], features["right"] = self._spatial(both, "right").chunk(2, dim=0)
        for part in self.parts:
            if part not in features:
                features[part] = self._spatial(parts[part], part)
        return features

    def _spatial(self, points, part):
        points = points.to(self.part_para.dtype)  # the engine dtype (bf16 under DeepSpeed), as officially cast
        x = self.proj_linear[part](points).permute(0, 3, 1, 2)  # (B, T, V, 3) -> (B, C0, T, V)
        return self.gcn_modules[part](x)

    def temporal_features(self, features, temporal_mask):
        """Per part: + detached body context, then the temporal ST-GCN chain. {p: (B, C, T, V)} -> same shapes."""
        contexts = {}
        for part in self.parts:
            contexts[part] = features[part]
            if part in BODY_CONTEXT_JOINT and "body" in features:
                contexts[part] = contexts[part] + features["body"][..., BODY_CONTEXT_JOINT[part]].detach().unsqueeze(-1)
        temporal = {}
        if self._hands_jointly():
            both = torch.cat([contexts["left"], contexts["right"]], dim=0)  # (2B, C, T, 21)
            both_mask = None if temporal_mask is None else temporal_mask.repeat(2, 1)  # (2B, T)
            temporal["left"], temporal["right"] = self.fusion_gcn_modules["right"](both, both_mask).chunk(2, dim=0)
        for part in self.parts:
            if part not in temporal:
                temporal[part] = self.fusion_gcn_modules[part](contexts[part], temporal_mask)
        return temporal

    def forward(self, parts, frame_mask, rgb=None):
        """parts[p]: (B, T, V_p, 3); frame_mask: (B, T) 1 for real frames -> (B, T, output_dim)."""
        temporal_mask = frame_mask if self.config.batch_independent else None
        features = self.spatial_features(parts)
        if rgb is not None and self.hand_fusion is not None:
            features = self.hand_fusion(features, rgb)
        temporal = self.temporal_features(features, temporal_mask)
        pooled = [temporal[part].mean(dim=-1).transpose(1, 2) for part in self.parts]  # each (B, T, C)
        sign_features = torch.cat(pooled, dim=-1) + self.part_para  # (B, T, C * parts)
        return self.pose_proj(sign_features)  # (B, T, output_dim)
