"""The RGB hand branch inside Uni-Sign: stage 2 starts exactly at the stage-1 function."""
import pytest
import torch
from conftest import random_parts

from models.hand_fusion import HandRGBFusion, RGBConfig, make_gate
from models.pose_encoder import PoseEncoderConfig
from models.uni_sign import UniSign, UniSignConfig


def fake_rgb_batch(batch, frames, crops_per_hand=2, seed=0):
    """A collate_rgb-like batch: crops at frames 0..k-1 of every video (random pixels and keypoints)."""
    generator = torch.Generator().manual_seed(seed)
    rgb = {}
    for hand in ("left", "right"):
        count = batch * crops_per_hand
        rgb[f"{hand}_hands"] = torch.randn(count, 3, 112, 112, generator=generator)
        rgb[f"{hand}_skeletons_norm"] = torch.rand(count, 21, 2, generator=generator)
        rgb[f"{hand}_valid"] = torch.ones(count, dtype=torch.bool)
        rgb[f"{hand}_sample_index"] = torch.arange(batch).repeat_interleave(crops_per_hand)
        rgb[f"{hand}_frame_index"] = torch.arange(crops_per_hand).repeat(batch)
    return rgb


def build(tiny_lm_dir, rgb=None):
    torch.manual_seed(0)
    pose = PoseEncoderConfig(proj_dim=8, spatial_widths=(8, 16, 16))
    return UniSign.from_lm_path(UniSignConfig(lang="English", pose=pose, rgb=rgb), tiny_lm_dir)


@pytest.mark.parametrize("gate_init", ["official", "trainable"])
def test_stage2_from_stage1_gives_the_stage1_loss_before_its_first_update(tiny_lm_dir, gate_init):
    stage1 = build(tiny_lm_dir).eval()
    stage2 = build(tiny_lm_dir, RGBConfig(gate_init=gate_init)).eval()
    missing = set(stage2.state_dict()) - set(stage1.state_dict())
    assert missing and all(".hand_fusion." in key for key in missing)
    stage2.load_state_dict(stage1.state_dict(), strict=False)
    parts, mask = random_parts(2, 6)
    labels = stage1.tokenize_targets(["hello", "go"])
    expected = stage1(parts, mask, labels).loss
    torch.testing.assert_close(stage2(parts, mask, labels, fake_rgb_batch(2, 6)).loss, expected,
                               rtol=0, atol=0)


def test_official_gate_never_trains_but_the_trainable_gate_does(tiny_lm_dir):
    for gate_init, trains in (("official", False), ("trainable", True)):
        model = build(tiny_lm_dir, RGBConfig(gate_init=gate_init)).train()
        parts, mask = random_parts(2, 6)
        model(parts, mask, model.tokenize_targets(["hello", "go"]), fake_rgb_batch(2, 6)).loss.backward()
        gate_gradient = model.pose_encoder.hand_fusion.gate[2].bias.grad
        assert (gate_gradient is not None and gate_gradient.abs().sum() > 0) == trains


def test_cross_attention_only_variant_and_bad_settings():
    fusion = HandRGBFusion(RGBConfig(fusion="ca"), hidden_dim=64)
    assert fusion.deformable_attention.cross_attention_only
    with pytest.raises(ValueError, match="unknown fusion"):
        HandRGBFusion(RGBConfig(fusion="xx"), hidden_dim=64)
    with pytest.raises(ValueError, match="unknown gate init"):
        make_gate(64, "open")


def test_official_checkpoint_names_of_the_rgb_branch(tiny_lm_dir):
    from models.checkpoint_layout import to_official_key

    keys = {to_official_key(key) for key in build(tiny_lm_dir, RGBConfig()).state_dict()}
    for expected in ("rgb_support_backbone.0.0.0.weight", "rgb_proj.weight", "fusion_pose_rgb_linear.weight",
                     "fusion_pose_rgb_DA.pe_layer.positional_encoding_gaussian_matrix", "fusion_gate.2.bias"):
        assert expected in keys
