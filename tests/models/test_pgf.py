import math

import pytest
import torch

from models.pgf import DeformableAttention2D, fuse_hand_features, make_fusion_gate, sinusoid_table
from tests.models.test_efficientnet import official_entries

C, J = 256, 21


def perturb(module, std=0.05, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)


def inputs(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, C, J, generator=gen), torch.randn(n, C, 4, 4, generator=gen),
            torch.rand(n, J, 2, generator=gen))


@pytest.fixture
def modules():
    torch.manual_seed(0)
    return DeformableAttention2D().eval(), make_fusion_gate(C)


def batch_case(seed=0):
    """Features (B=3, C, T=6, J) and 4 crops: video 0 frames 1, 4; video 2 frames 0, 5."""
    gen = torch.Generator().manual_seed(seed)
    pose = torch.randn(3, C, 6, J, generator=gen)
    _, rgb, kp = inputs(4, seed + 1)
    return pose, rgb, kp, torch.tensor([0, 0, 2, 2]), torch.tensor([1, 4, 0, 5])


def test_state_dict_matches_official_listing(shared_dir, modules):
    da, gate = modules
    for prefix, module in (("fusion_pose_rgb_DA.", da), ("fusion_gate.", gate)):
        expected = official_entries(shared_dir, prefix)
        assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == expected
    assert [n for n, _ in da.named_buffers()] == ["pe_layer.positional_encoding_gaussian_matrix"]


def test_output_shapes(modules):
    da, _ = modules
    pose, rgb, kp = inputs(5)
    assert da(pose, rgb, kp).shape == (5, C, J)
    da.cross_attention_only = True
    assert da(pose, rgb, kp).shape == (5, C, J)


def test_cross_attention_only_skips_the_deformable_part(modules):
    da, _ = modules
    pose, rgb, kp = inputs(2)
    da_ca = DeformableAttention2D(cross_attention_only=True).eval()
    da_ca.load_state_dict(da.state_dict())
    with torch.no_grad():
        assert torch.equal(da_ca(pose, rgb, kp), da.cross_attend(pose, rgb, kp))
        assert not torch.allclose(da_ca(pose, rgb, kp), da(pose, rgb, kp))


def test_sinusoid_table():
    table = sinusoid_table(16, C)
    assert table.shape == (16, C)
    p, i = 5, 7  # odd column: cos(p / 10000^(2*3/256))
    assert table[p, i].item() == pytest.approx(math.cos(p / 10000 ** (6 / C)), abs=1e-6)
    assert table[p, 6].item() == pytest.approx(math.sin(p / 10000 ** (6 / C)), abs=1e-6)


def test_keypoints_steer_the_deformable_sampling(modules):
    da, _ = modules
    pose, rgb, kp = inputs(1)
    with torch.no_grad():
        base = da.deformable_attend(pose, rgb, kp)
        moved = da.deformable_attend(pose, rgb, (kp + 0.3).clamp(0, 1))
    assert not torch.allclose(base, moved)


def test_zero_gate_returns_input_exactly(modules):
    da, gate = modules
    pose, rgb, kp, b, t = batch_case()
    out = fuse_hand_features(pose, rgb, kp, b, t, da, gate)
    assert torch.equal(out, pose)


def test_empty_selection_returns_input(modules):
    da, gate = modules
    pose = torch.randn(2, C, 3, J)
    empty = torch.zeros(0, dtype=torch.long)
    out = fuse_hand_features(pose, torch.zeros(0, C, 4, 4), torch.zeros(0, J, 2), empty, empty, da, gate)
    assert out is pose


def test_perturbed_gate_changes_only_sampled_positions(modules):
    da, gate = modules
    perturb(gate, std=0.2)
    pose, rgb, kp, b, t = batch_case()
    with torch.no_grad():
        out = fuse_hand_features(pose, rgb, kp, b, t, da, gate)
    changed = (out != pose).any(dim=1).any(dim=-1)  # (B, T)
    expected = torch.zeros(3, 6, dtype=torch.bool)
    expected[b, t] = True
    assert torch.equal(changed, expected)


def test_batched_equals_per_sample_loop(modules):
    da, gate = modules
    perturb(gate, std=0.2)
    pose, rgb, kp, b, t = batch_case()
    with torch.no_grad():
        out = fuse_hand_features(pose, rgb, kp, b, t, da, gate)
        expected = pose.clone()
        for video in b.unique():  # the official loop: one DA call per video
            rows = (b == video).nonzero().squeeze(1)
            p = pose[video][:, t[rows]].transpose(0, 1)  # (t, C, J)
            fused = da(p, rgb[rows], kp[rows])
            g = gate(torch.cat([fused, p], dim=1))
            expected[video][:, t[rows]] = (g * fused + (1 - g) * p).transpose(0, 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_gradients_reach_attention_and_pose_when_gate_is_open(modules):
    da, gate = modules
    perturb(gate, std=0.2)
    pose, rgb, kp, b, t = batch_case()
    pose.requires_grad_(True)
    rgb.requires_grad_(True)
    fuse_hand_features(pose, rgb, kp, b, t, da, gate).square().sum().backward()
    for name in ("to_offsets.0.weight", "to_q.weight", "to_k.weight", "to_out.weight",
                 "rel_pos_bias.mlp.0.0.weight", "cross_attn.in_proj_weight"):
        assert dict(da.named_parameters())[name].grad.abs().sum() > 0, name
    assert rgb.grad.abs().sum() > 0
    unsampled = torch.ones(3, 6, dtype=torch.bool)
    unsampled[b, t] = False
    torch.testing.assert_close(pose.grad.permute(0, 2, 1, 3)[unsampled], 2 * pose.permute(0, 2, 1, 3)[unsampled].detach())


def test_zero_initialised_gate_receives_no_gradient(modules):
    """Documents the official behaviour: relu'(0) = 0, so the zero-initialised gate is a fixed point."""
    da, gate = modules
    pose, rgb, kp, b, t = batch_case()
    fuse_hand_features(pose, rgb, kp, b, t, da, gate).square().sum().backward()
    for p in list(gate.parameters()) + list(da.parameters()):
        assert p.grad is None or not p.grad.any()


def test_rejects_duplicate_and_out_of_range_pairs(modules):
    da, gate = modules
    pose, rgb, kp, _, _ = batch_case()
    with pytest.raises(ValueError, match="more than once"):
        fuse_hand_features(pose, rgb, kp, torch.tensor([0, 0, 1, 1]), torch.tensor([2, 2, 0, 1]), da, gate)
    with pytest.raises(ValueError, match="out of range"):
        fuse_hand_features(pose, rgb, kp, torch.tensor([0, 0, 1, 3]), torch.tensor([2, 3, 0, 1]), da, gate)


def test_collate_output_drives_the_fusion(modules):
    from datasets.rgb import collate_rgb

    def sample(left):
        k = max(len(left), 1)
        return {"left_sampled_indices": torch.tensor(left or [-1]), "left_hands": torch.randn(k, 3, 8, 8),
                "left_skeletons_norm": torch.rand(k, J, 2), "right_sampled_indices": torch.tensor([-1]),
                "right_hands": torch.zeros(1, 3, 8, 8), "right_skeletons_norm": torch.zeros(1, J, 2)}

    da, gate = modules
    perturb(gate, std=0.2)
    batch = collate_rgb([sample([0, 3]), sample([]), sample([2])])
    pose = torch.randn(3, C, 5, J)
    valid = batch["left_valid"]
    maps = torch.randn(len(valid), C, 4, 4)[valid]  # rgb_proj(backbone(left_hands))[valid]
    with torch.no_grad():
        out = fuse_hand_features(pose, maps, batch["left_skeletons_norm"][valid], batch["left_sample_index"],
                                 batch["left_frame_index"], da, gate)
    changed = (out != pose).any(dim=1).any(dim=-1)
    assert changed.nonzero().tolist() == [[0, 0], [0, 3], [2, 2]]
    empty = collate_rgb([sample([])])
    assert empty["right_sample_index"].numel() == 0
