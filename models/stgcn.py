"""Spatial-temporal graph convolution (ST-GCN) layers as the official Uni-Sign code builds them.

Graph: 'distance' partitioning with max_hop 1 -> K = 2 adjacency slices (self-links, neighbours),
column-normalised. Each block: out = ReLU(tcn(gcn(x)) + residual(x)); the adjacency A is learnable.
"""
import numpy as np
import torch
from torch import nn

HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
              (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
PART_EDGES = {
    "body": [(0, 1), (0, 2), (0, 3), (0, 4), (3, 5), (5, 7), (4, 6), (6, 8)],
    "left": HAND_EDGES,
    "right": HAND_EDGES,
    # jaw chain 0-8, mouth ring 9-16, nose tip (17) linked to every other node
    "face_all": [(i, i + 1) for i in range(8)] + [(i, i + 1) for i in range(9, 16)] + [(16, 9)]
    + [(17, i) for i in range(17)],
}
PART_NUM_NODES = {"body": 9, "left": 21, "right": 21, "face_all": 18}


def distance_partition_adjacency(num_nodes, edges) -> np.ndarray:
    """(2, V, V) adjacency: slice 0 = self-links, slice 1 = neighbours, normalised by column degree."""
    adjacency = np.eye(num_nodes)
    for i, j in edges:
        adjacency[i, j] = adjacency[j, i] = 1
    degree = adjacency.sum(axis=0)  # column degree d_j
    normalised = adjacency / degree[None, :]  # N = Ahat * diag(1/d)
    self_links = np.eye(num_nodes, dtype=bool)
    return np.stack([np.where(self_links, normalised, 0), np.where(~self_links, normalised, 0)])


class GraphConvolution(nn.Module):
    """1x1 conv to K*C_out channels, aggregation over the K adjacency slices, BatchNorm, ReLU."""

    def __init__(self, in_channels, out_channels, adjacency: np.ndarray):
        super().__init__()
        self.num_slices = adjacency.shape[0]
        self.A = nn.Parameter(torch.tensor(adjacency, dtype=torch.float32))  # (K, V, V), adaptive
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_slices, kernel_size=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x):  # (B, C_in, T, V) -> (B, C_out, T, V)
        batch, _, frames, nodes = x.shape
        x = self.conv(x).view(batch, self.num_slices, -1, frames, nodes)
        x = torch.einsum("bkctv,kvw->bctw", x, self.A)
        return self.relu(self.bn(x))


class STGCNBlock(nn.Module):
    """out = ReLU(tcn(gcn(x)) + residual(x)); tcn is a (kt x 1) temporal conv when kt > 1.

    `frame_mask` (B, T), when given, zeroes padded frames before the temporal convolution so that real
    frames never see the padding (batch-independent mode; the official code does not do this).
    """

    def __init__(self, in_channels, out_channels, adjacency, temporal_kernel=1):
        super().__init__()
        self.gcn = GraphConvolution(in_channels, out_channels, adjacency)
        if temporal_kernel > 1:
            self.tcn = nn.Sequential(
                nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), padding=((temporal_kernel - 1) // 2, 0)),
                nn.BatchNorm2d(out_channels),
                nn.Dropout(0.0),
            )
        else:
            self.tcn = nn.Identity()
        if in_channels == out_channels:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU()

    def forward(self, x, frame_mask=None):  # (B, C_in, T, V) -> (B, C_out, T, V)
        y = self.gcn(x)
        if frame_mask is not None and not isinstance(self.tcn, nn.Identity):
            y = y * frame_mask[:, None, :, None].to(y.dtype)
        return self.relu(self.tcn(y) + self.residual(x))


class GCNChain(nn.Module):
    """Blocks run in order, registered under the official names (`layer0_0`, `layer1_0`, ... / `layer0_1`, ...)."""

    def __init__(self, blocks: dict):
        super().__init__()
        for name, block in blocks.items():
            self.add_module(name, block)

    def forward(self, x, frame_mask=None):
        for block in self.children():
            x = block(x, frame_mask)
        return x


def spatial_chain(part, widths=(64, 128, 256), in_channels=64) -> GCNChain:
    """Three kernel-1 blocks in_channels -> widths[0] -> widths[1] -> widths[2] (official: 64->64->128->256)."""
    adjacency = distance_partition_adjacency(PART_NUM_NODES[part], PART_EDGES[part])
    channels = [in_channels, *widths]
    return GCNChain({f"layer{i}_0": STGCNBlock(channels[i], channels[i + 1], adjacency) for i in range(len(widths))})


def temporal_chain(part, width=256, depth=3, temporal_kernel=5) -> GCNChain:
    """`depth` blocks width -> width with a temporal kernel (official: 3 x 256, kernel 5)."""
    adjacency = distance_partition_adjacency(PART_NUM_NODES[part], PART_EDGES[part])
    return GCNChain({f"layer0_{i}": STGCNBlock(width, width, adjacency, temporal_kernel) for i in range(depth)})
