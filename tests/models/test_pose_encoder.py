"""The four-part pose encoder (official_defaults.md 3.1)."""
import pytest
import torch

from conftest import random_parts
from models.pose_encoder import PoseEncoder, PoseEncoderConfig


def small_config(**overrides):
    return PoseEncoderConfig(proj_dim=8, spatial_widths=(8, 16, 16), output_dim=12, **overrides)


def test_output_is_one_feature_per_frame():
    encoder = PoseEncoder(small_config())
    parts, mask = random_parts(3, 10)
    assert encoder(parts, mask).shape == (3, 10, 12)


def test_left_and_right_hands_share_one_encoder_but_state_dict_lists_both():
    encoder = PoseEncoder(PoseEncoderConfig())
    assert encoder.gcn_modules["left"] is encoder.gcn_modules["right"]
    assert encoder.proj_linear["left"] is encoder.proj_linear["right"]
    state = encoder.state_dict()
    assert "proj_linear.right.weight" in state and "proj_linear.left.weight" in state
    names = [name for name, _ in encoder.named_parameters()]
    assert "proj_linear.left.weight" in names and "proj_linear.right.weight" not in names
    assert state["part_para"].shape == (1024,) and state["pose_proj.weight"].shape == (768, 1024)
    assert torch.count_nonzero(state["part_para"]) == 0  # zero-initialised


def test_body_context_is_detached():
    encoder = PoseEncoder(small_config(parts=("body", "left")))
    parts, mask = random_parts(2, 6)
    parts = {name: parts[name] for name in ("body", "left")}
    # Only the left-hand output path: no gradient may reach the body branch through the added context.
    features = encoder.spatial_features(parts)
    body_context = features["body"][..., 7].detach().unsqueeze(-1)
    left = encoder.fusion_gcn_modules["left"](features["left"] + body_context)
    left.sum().backward()
    assert encoder.proj_linear["body"].weight.grad is None


def test_sub_pose_groups_change_the_width():
    hands = PoseEncoder(small_config(parts=("left", "right")))
    assert hands.part_para.shape == (32,)
    parts, mask = random_parts(2, 5)
    assert hands(parts, mask).shape == (2, 5, 12)
    with pytest.raises(ValueError, match="unknown pose parts"):
        PoseEncoder(small_config(parts=("tail",)))


def test_batch_independent_mode_makes_a_sample_independent_of_its_batch():
    torch.manual_seed(0)
    encoder = PoseEncoder(small_config(batch_independent=True)).eval()
    long_parts, _ = random_parts(1, 12, seed=1)
    short_parts, _ = random_parts(1, 7, seed=2)
    batch = {name: torch.cat([long_parts[name], torch.cat(
        [short_parts[name], short_parts[name][:, -1:].expand(-1, 5, -1, -1)], dim=1)]) for name in long_parts}
    mask = torch.tensor([[1] * 12, [1] * 7 + [0] * 5])
    together = encoder(batch, mask)[1, :7]
    alone = encoder(short_parts, torch.ones(1, 7, dtype=torch.long))[0]
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    encoder.config.batch_independent = False  # official: the padding leaks into the last real frames
    assert not torch.allclose(encoder(batch, mask)[1, :7], alone, atol=1e-5)


def test_batched_hands_match_separate_hands_in_eval():
    torch.manual_seed(0)
    encoder = PoseEncoder(small_config()).eval()
    parts, mask = random_parts(2, 6)
    separate = encoder(parts, mask)
    encoder.config.batch_hands = True
    torch.testing.assert_close(encoder(parts, mask), separate)
