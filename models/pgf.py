"""Prior-Guided Fusion (PGF) of hand RGB features into hand pose features (paper section 3.3).

Parameter and buffer names follow the official `DeformableAttention2D` / `fusion_gate`, so the
official checkpoint entries `fusion_pose_rgb_DA.*` and `fusion_gate.*` load unchanged.

Shapes (C = 256 channels, J = 21 hand joints, an RGB map of H x W = 4 x 4 cells):
    pose tokens  P   (N, C, J)     one hand's spatial-GCN features at N sampled frames
    RGB map      R   (N, C, H, W)  rgb_proj(EfficientNet features) of the N hand crops
    keypoints    kp  (N, J, 2)     (x, y) in the crop, normalised to [0, 1] -- the collate's
                                   `{part}_skeletons_norm` layout (the official module takes
                                   (N, 2, J) and transposes internally; only the layout differs)

DeformableAttention2D(P, R, kp) -> F (N, C, J):
    1. PE = [sin z ; cos z], z = 2*pi * (2*kp - 1) @ G, G a fixed Gaussian (2, C/2) buffer.
    2. kv tokens = R flattened to H*W tokens + a fixed sinusoidal table (not in the state dict).
    3. X = MultiheadAttention(query = P + PE, key = value = kv tokens).
    4. q = to_q(P + X), a grouped 1x1 conv (one group per offset group).
    5. per group: offsets = tanh(conv(gelu(depthwise conv(q_g)))) * 4/6, one (dx, dy) per joint.
    6. sampling points = (2*kp - 1) + offsets in grid_sample units; R (group g's channels) is
       bilinearly sampled there (zero padding, align_corners=False).
    7. k, v = grouped 1x1 convs of the sampled features; every joint attends over the J sampled
       points (heads of dim_head, scale dim_head^-0.5) with a relative position bias
       MLP(sign(d) * log(1 + |d|)), d = reference point of the query - sampled point of the key;
       F = to_out(heads concatenated).
With `cross_attention_only=True` (the paper's Table 10 "CA" variant) F = X: steps 4-7 are
skipped; their parameters stay in the module so checkpoints keep the same keys.

The gate (`make_fusion_gate`) is zero-initialised: g = relu(tanh(0)) = 0 and the fusion returns P.
"""
from functools import lru_cache

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn


class Scale(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


class PositionEmbeddingRandom(nn.Module):
    """Random-Fourier point embedding of [0, 1] coordinates (the official `pe_layer`)."""

    def __init__(self, num_pos_feats: int):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def forward(self, coords):  # (..., 2) in [0, 1] -> (..., 2 * num_pos_feats)
        z = 2 * torch.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([z.sin(), z.cos()], dim=-1)


class RelativePositionBias(nn.Module):
    """SwinV2-style continuous position bias (the official `rel_pos_bias`, class CPB)."""

    def __init__(self, hidden: int, heads_per_group: int, depth: int = 2):
        super().__init__()
        layers = [nn.Sequential(nn.Linear(2, hidden), nn.ReLU())]
        layers += [nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU()) for _ in range(depth - 1)]
        layers.append(nn.Linear(hidden, heads_per_group))
        self.mlp = nn.ModuleList(layers)

    def forward(self, query_points, key_points, groups: int):
        """(N*G, J, 2), (N*G, J, 2) grid coordinates -> bias (N, heads, J, J)."""
        d = rearrange(query_points, "b i c -> b i 1 c") - rearrange(key_points, "b j c -> b 1 j c")
        bias = torch.sign(d) * torch.log1p(d.abs())  # (N*G, J, J, 2)
        for layer in self.mlp:
            bias = layer(bias)
        return rearrange(bias, "(n g) i j o -> n (g o) i j", g=groups)


@lru_cache(maxsize=8)
def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """(n_position, dim) table: angle p / 10000^(2*(i//2)/dim), sin on even i, cos on odd i."""
    position = torch.arange(n_position, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim) // 2).to(torch.float64) / dim
    angle = position / torch.pow(10000.0, exponent)  # (n, dim)
    table = torch.where(torch.arange(dim) % 2 == 0, angle.sin(), angle.cos())
    return table.to(torch.float32)


class DeformableAttention2D(nn.Module):
    """PGF attention: cross-attention with point embeddings, then keypoint-guided deformable attention.

    forward(pose (N, C, J), rgb (N, C, H, W), keypoints (N, J, 2) in [0, 1]) -> (N, C, J).
    Requires dim == heads * dim_head (as the official configuration, 256 = 8 * 32).
    """

    def __init__(self, dim=256, dim_head=32, heads=8, offset_groups=None, dropout=0.0,
                 cross_attention_only=False):
        super().__init__()
        offset_groups = heads if offset_groups is None else offset_groups
        if dim != heads * dim_head or heads % offset_groups:
            raise ValueError(f"need dim == heads*dim_head and heads % offset_groups == 0, got "
                             f"dim={dim}, heads={heads}, dim_head={dim_head}, offset_groups={offset_groups}")
        self.heads, self.offset_groups, self.scale = heads, offset_groups, dim_head ** -0.5
        self.cross_attention_only = cross_attention_only
        group_dim = dim // offset_groups

        self.to_offsets = nn.Sequential(
            nn.Conv1d(group_dim, group_dim, 1, groups=group_dim),  # depthwise, with bias
            nn.GELU(),
            nn.Conv1d(group_dim, 2, 1, bias=False),
            nn.Tanh(),
            Scale(4 / 6),
        )
        self.rel_pos_bias = RelativePositionBias(dim // 4, heads // offset_groups)
        self.dropout = nn.Dropout(dropout)
        self.to_q = nn.Conv1d(dim, dim, 1, groups=offset_groups, bias=False)
        self.to_k = nn.Conv2d(dim, dim, 1, groups=offset_groups, bias=False)
        self.to_v = nn.Conv2d(dim, dim, 1, groups=offset_groups, bias=False)
        self.to_out = nn.Conv1d(dim, dim, 1)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.pe_layer = PositionEmbeddingRandom(dim // 2)

    def forward(self, pose, rgb, keypoints):
        cross = self.cross_attend(pose, rgb, keypoints)  # (N, C, J)
        if self.cross_attention_only:
            return cross
        return self.deformable_attend(pose + cross, rgb, keypoints)

    def cross_attend(self, pose, rgb, keypoints):
        """Steps 1-3: pose tokens (+ point embedding) attend to the RGB cells -> (N, C, J)."""
        n, c, h, w = rgb.shape
        query = rearrange(pose, "n c j -> n j c") + self.pe_layer(keypoints.detach())  # (N, J, C)
        kv = rearrange(rgb, "n c h w -> n (h w) c") + sinusoid_table(h * w, c).to(rgb)  # (N, HW, C)
        out, _ = self.cross_attn(query, kv, kv, need_weights=False)
        return rearrange(out, "n j c -> n c j")

    def deformable_attend(self, query_tokens, rgb, keypoints):
        """Steps 4-7 for query tokens (N, C, J) -> (N, C, J)."""
        g, h = self.offset_groups, self.heads
        q = self.to_q(query_tokens)  # (N, C, J)
        offsets = self.to_offsets(rearrange(q, "n (g d) j -> (n g) d j", g=g))  # (N*G, 2, J)
        reference = repeat(2 * keypoints - 1, "n j xy -> (n g) j xy", g=g)  # (N*G, J, 2)
        points = reference + rearrange(offsets, "b xy j -> b j xy")  # (N*G, J, 2)
        sampled = F.grid_sample(rearrange(rgb, "n (g d) y x -> (n g) d y x", g=g), points[:, None],
                                mode="bilinear", padding_mode="zeros", align_corners=False)  # (N*G, D, 1, J)
        sampled = rearrange(sampled, "(n g) d 1 j -> n (g d) 1 j", g=g)  # (N, C, 1, J)
        k = rearrange(self.to_k(sampled), "n (h d) 1 j -> n h j d", h=h)
        v = rearrange(self.to_v(sampled), "n (h d) 1 j -> n h j d", h=h)
        q = rearrange(q * self.scale, "n (h d) j -> n h j d", h=h)
        sim = q @ k.transpose(-1, -2) + self.rel_pos_bias(reference, points, g)  # (N, H, J, J)
        attn = self.dropout(sim.softmax(dim=-1))
        out = rearrange(attn @ v, "n h j d -> n (h d) j")  # (N, C, J)
        return self.to_out(out)


def make_fusion_gate(hidden: int = 256) -> nn.Sequential:
    """Gate [F ; P] (N, 2C, J) -> g (N, 1, J) in [0, 1); both convs zero-initialised (g = 0).

    Note: with both convs at zero the pre-activation is exactly 0 and ReLU's gradient there is 0,
    so no gradient reaches the gate (or, through g, the attention) from this initialisation --
    the same holds for the official module. See docs/rgb_branch.md.
    """
    gate = nn.Sequential(nn.Conv1d(2 * hidden, hidden, 1), nn.GELU(), nn.Conv1d(hidden, 1, 1), nn.Tanh(), nn.ReLU())
    for conv in (gate[0], gate[2]):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return gate


def fuse_hand_features(pose_features, rgb_maps, crop_keypoints, sample_index, frame_index,
                       deformable_attention, fusion_gate):
    """Fuse the RGB maps of the sampled frames into one hand's pose features, batched.

    pose_features   (B, C, T, J)  the hand's spatial-GCN output
    rgb_maps        (N, C, H, W)  rgb_proj(backbone(crops)) of the N real (non-placeholder) crops
    crop_keypoints  (N, J, 2)     keypoints in the crop, [0, 1]
    sample_index    (N,) long     video b of each crop
    frame_index     (N,) long     frame t of each crop (position in the clip)
    Returns a new (B, C, T, J) tensor: at each (b, t), g*F + (1-g)*P with P = pose_features[b, :, t],
    F = DA(P, R, kp), g = gate([F ; P]); every other position is unchanged. The (b, t) pairs must
    be distinct. N = 0 returns `pose_features` itself.
    The attention runs with autocast disabled in its own parameter dtype (the official code wraps
    it in autocast(float32)); its output is cast back to the pose dtype.
    """
    if sample_index.numel() == 0:
        return pose_features
    _check_indices(pose_features, rgb_maps, crop_keypoints, sample_index, frame_index)
    pose = pose_features[sample_index, :, frame_index]  # (N, C, J)
    fused = _attend(deformable_attention, pose, rgb_maps, crop_keypoints).to(pose.dtype)  # (N, C, J)
    g = fusion_gate(torch.cat([fused, pose], dim=1))  # (N, 1, J)
    out = g * fused + (1 - g) * pose  # (N, C, J)
    by_frame = rearrange(pose_features, "b c t j -> b t c j")
    by_frame = by_frame.index_put((sample_index, frame_index), out)  # out of place
    return rearrange(by_frame, "b t c j -> b c t j")


def _attend(module, pose, rgb, keypoints):
    dtype = next(module.parameters()).dtype
    with torch.autocast(device_type=pose.device.type, enabled=False):
        return module(pose.to(dtype), rgb.to(dtype), keypoints.to(dtype))


def _check_indices(pose_features, rgb_maps, crop_keypoints, sample_index, frame_index):
    b, _, t, j = pose_features.shape
    n = sample_index.shape[0]
    if not (rgb_maps.shape[0] == crop_keypoints.shape[0] == frame_index.shape[0] == n):
        raise ValueError(f"fuse_hand_features: {n} sample indices, {frame_index.shape[0]} frame indices, "
                         f"{rgb_maps.shape[0]} RGB maps, {crop_keypoints.shape[0]} keypoint sets")
    if crop_keypoints.shape[1:] != (j, 2):
        raise ValueError(f"fuse_hand_features: crop_keypoints must be (N, {j}, 2), got {tuple(crop_keypoints.shape)}")
    if sample_index.min() < 0 or sample_index.max() >= b or frame_index.min() < 0 or frame_index.max() >= t:
        raise ValueError(f"fuse_hand_features: indices out of range for features of batch {b}, length {t}")
    if torch.unique(sample_index * t + frame_index).numel() != n:
        raise ValueError("fuse_hand_features: a (sample, frame) pair occurs more than once")
