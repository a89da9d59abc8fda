"""CCL-SLR's RGB branch: a small (2+1)D CNN over signing-space crops of a clip -> one feature per clip.

Each block factorises a 3D convolution into a spatial (1 x 3 x 3, strided) and a temporal (3 x 1 x 1)
convolution with BatchNorm and ReLU after each, plus a residual (1x1x1 projection when the shape changes).
The last feature map is averaged over time and into `pool_grid` x `pool_grid` cells of the crop, then a Linear
layer maps the cells to `output_dim`. The cells keep where a hand or an arm is (a sign's location), which one
global average loses: on the synthetic corpus a 3 x 3 grid lifted the RGB branch's view retrieval (dev 6.5 ->
10.6%, test 1.0 -> 3.9%, 8 epochs, docs/ccl_slr.md). `pool_grid` 1 is the global average (configs saved before
the field existed).

Why not the EfficientNet-B0 hand branch per frame: it sees one frame at a time (motion only after pooling),
only the hands, and costs ~0.4 GFLOP per crop, so two views x query/key encoders x frames x two hands do not
train on a CPU; this CNN sees hands, arms and face together, mixes frames in every block, and trains in
minutes on the synthetic corpus (docs/ccl_slr.md).
"""
from dataclasses import asdict, dataclass

import torch
from torch import nn

VIDEO_PRESETS = {
    "tiny": dict(widths=(16, 32, 64), output_dim=128),
    "base": dict(widths=(32, 64, 128, 256), output_dim=512),
}


@dataclass
class VideoEncoderConfig:
    widths: tuple = (32, 64, 128, 256)  # channels of the stem and of each strided block after it
    output_dim: int = 512
    pool_grid: int = 1  # the last feature map is averaged over time into pool_grid x pool_grid cells (1: global)

    def to_dict(self) -> dict:
        return asdict(self)


def conv_bn_relu(in_channels, out_channels, kernel, stride, padding) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, kernel, stride, padding, bias=False),
                         nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))


class FactorisedBlock(nn.Module):
    """(2+1)D residual block: spatial conv (stride 2 in H, W) -> temporal conv; shapes (B, C, T, H, W)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.spatial = conv_bn_relu(in_channels, out_channels, (1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.temporal = nn.Sequential(nn.Conv3d(out_channels, out_channels, (3, 1, 1), 1, (1, 0, 0), bias=False),
                                      nn.BatchNorm3d(out_channels))
        self.residual = nn.Sequential(nn.Conv3d(in_channels, out_channels, 1, (1, 2, 2), bias=False),
                                      nn.BatchNorm3d(out_channels))

    def forward(self, x):
        return torch.relu(self.temporal(self.spatial(x)) + self.residual(x))


class VideoEncoder(nn.Module):
    def __init__(self, config: VideoEncoderConfig):
        super().__init__()
        self.config = config
        widths = tuple(config.widths)
        self.stem = conv_bn_relu(3, widths[0], (1, 5, 5), (1, 2, 2), (0, 2, 2))
        self.blocks = nn.Sequential(*[FactorisedBlock(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.pool = nn.AdaptiveAvgPool2d(config.pool_grid)
        self.proj = nn.Linear(widths[-1] * config.pool_grid ** 2, config.output_dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, T, 3, H, W), ImageNet-normalised -> (B, output_dim)."""
        x = video.to(self.proj.weight.dtype).transpose(1, 2)  # (B, 3, T, H, W)
        x = self.blocks(self.stem(x))  # (B, C, T, H / 2^(n+1), W / 2^(n+1))
        return self.proj(self.pool(x.mean(dim=2)).flatten(1))  # (B, C * grid^2) -> (B, output_dim)
