"""ST-GCN graph and blocks as the official code builds them (official_defaults.md 3.2)."""
import numpy as np
import torch

from models.stgcn import PART_EDGES, STGCNBlock, distance_partition_adjacency, spatial_chain, temporal_chain


def test_adjacency_is_column_normalised_and_split_by_hop():
    # path graph 0-1-2: Ahat column degrees are 2, 3, 2
    adjacency = distance_partition_adjacency(3, [(0, 1), (1, 2)])
    assert adjacency.shape == (2, 3, 3)
    np.testing.assert_allclose(np.diag(adjacency[0]), [1 / 2, 1 / 3, 1 / 2])
    assert adjacency[0][0, 1] == 0 and adjacency[1][0, 0] == 0
    np.testing.assert_allclose(adjacency[1][0, 1], 1 / 3)  # N[i, j] = Ahat[i, j] / d_j
    np.testing.assert_allclose(adjacency[1][1, 0], 1 / 2)
    np.testing.assert_allclose(adjacency.sum(axis=(0, 1)), np.ones(3))  # every column sums to 1


def test_part_graphs_have_the_official_sizes():
    assert len(PART_EDGES["body"]) == 8 and len(PART_EDGES["left"]) == 20
    face = distance_partition_adjacency(18, PART_EDGES["face_all"])
    assert (face[1][17, :17] > 0).all()  # the nose tip is linked to every other face point
    assert face[1][16, 9] > 0  # the mouth ring closes


def test_chains_use_official_names_and_shapes():
    spatial = spatial_chain("body")
    keys = spatial.state_dict().keys()
    assert "layer0_0.gcn.A" in keys and "layer1_0.residual.0.weight" in keys
    assert not any(key.startswith("layer0_0.residual") or ".tcn." in key for key in keys)
    temporal = temporal_chain("left")
    assert temporal.state_dict()["layer0_2.tcn.0.weight"].shape == (256, 256, 5, 1)
    out = temporal(spatial_chain("left")(torch.randn(2, 64, 7, 21)))
    assert out.shape == (2, 256, 7, 21)


def test_frame_mask_hides_padding_from_the_temporal_convolution():
    block = STGCNBlock(4, 4, distance_partition_adjacency(3, [(0, 1)]), temporal_kernel=5).eval()
    real = torch.randn(1, 4, 6, 3)
    padded = torch.cat([real, real[:, :, -1:].expand(-1, -1, 4, -1)], dim=2)  # official last-frame padding
    mask = torch.tensor([[1] * 6 + [0] * 4])
    alone = block(real)
    torch.testing.assert_close(block(padded, mask)[:, :, :6], alone)
    assert not torch.allclose(block(padded)[:, :, :6], alone)  # official behaviour leaks the padding
