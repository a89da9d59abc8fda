"""CCL-SLR pre-training model (models/ccl_slr.py): objectives, queue, momentum keys, SPM, checkpoints, transfer."""
from dataclasses import asdict

import pytest
import torch
from conftest import random_parts

from models.ccl_slr import CCLSLR, CCLConfig
from models.pose_encoder import POSE_PRESETS, PoseEncoderConfig
from models.video_encoder import VIDEO_PRESETS


def tiny_config(**overrides) -> CCLConfig:
    values = dict(pose=asdict(PoseEncoderConfig(**POSE_PRESETS["tiny"], output_dim=32)),
                  video=dict(VIDEO_PRESETS["tiny"]), embed_dim=16, queue_size=32)
    return CCLConfig(**{**values, **overrides})


def views(batch=6, frames=5, seed=0):
    """Two pose views and two RGB views of `batch` random clips."""
    generator = torch.Generator().manual_seed(seed)
    pose = []
    for view in range(2):
        parts, mask = random_parts(batch, frames, seed=seed + view)
        pose.append({"parts": parts, "frame_mask": mask})
    rgb = [torch.randn(batch, 4, 3, 32, 32, generator=generator) for _ in range(2)]
    return pose, rgb


def train_steps(model, pose, rgb, steps=6, lr=3e-3):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        output = model(pose=pose, rgb=rgb)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(output.loss.item())
    return losses


def test_in_batch_losses_are_finite_and_fall_on_a_fixed_batch():
    torch.manual_seed(0)
    model = CCLSLR(tiny_config(objective="in_batch", spm=False)).train()
    pose, rgb = views()
    losses = train_steps(model, pose, rgb)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_moco_loss_has_the_four_terms_weighted_by_cross_weight():
    torch.manual_seed(0)
    model = CCLSLR(tiny_config(cross_weight=0.5, spm=False)).eval()
    output = model(*views())
    assert set(output.terms) == {"intra_pose", "intra_rgb", "cross_rgb_pose", "cross_pose_rgb"}
    terms = output.terms
    expected = terms["intra_pose"] + terms["intra_rgb"] + 0.5 * (terms["cross_rgb_pose"] + terms["cross_pose_rgb"])
    assert output.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_pose_only_has_no_rgb_or_cross_terms_and_needs_no_video():
    model = CCLSLR(tiny_config(modalities=("pose",))).train()
    pose, _ = views()
    output = model(pose=pose)
    assert set(output.terms) == {"intra_pose"} and not output.spm_active
    assert "rgb" not in model.encoders


def test_training_enqueues_keys_in_the_same_rows_of_both_queues():
    model = CCLSLR(tiny_config(queue_size=8)).train()
    pose, rgb = views(batch=6)
    model(pose=pose, rgb=rgb)
    model(pose=pose, rgb=rgb)  # 12 keys into 8 rows: wraps
    assert model.queue_ptr.item() == 4 and model.queue_filled.item() == 8
    keys = {m: model.key_embed(m, inputs[1]) for m, inputs in (("pose", pose), ("rgb", rgb))}
    for modality, key in keys.items():  # rows 6, 7, 0..3 hold the second batch's keys
        rows = torch.tensor([6, 7, 0, 1, 2, 3])
        assert torch.allclose(model.queue(modality)[rows], key, atol=1e-5)


def test_evaluation_changes_neither_queue_nor_key_encoders():
    model = CCLSLR(tiny_config()).eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    model(*views())
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_momentum_update_moves_keys_towards_queries():
    model = CCLSLR(tiny_config(momentum=0.9))
    with torch.no_grad():
        for parameter in model.encoders.parameters():
            parameter.add_(1.0)
    key_before = next(model.key_encoders.parameters()).clone()
    query = next(model.encoders.parameters())
    model.momentum_update()
    assert torch.allclose(next(model.key_encoders.parameters()), 0.9 * key_before + 0.1 * query)
    assert not any(p.requires_grad for p in model.key_encoders.parameters())


@pytest.mark.parametrize("objective", ["moco", "in_batch"])
def test_spm_starts_after_the_warm_up_and_changes_the_intra_modal_loss(objective):
    torch.manual_seed(0)
    model = CCLSLR(tiny_config(objective=objective, spm_warmup_steps=2, spm_topk=2)).train()
    pose, rgb = views()
    active = [model(pose=pose, rgb=rgb).spm_active for _ in range(3)]
    assert active == [False, False, True]
    model.eval()
    with_spm = model(pose=pose, rgb=rgb).terms["intra_rgb"]
    model.config.spm = False
    assert not torch.allclose(with_spm, model(pose=pose, rgb=rgb).terms["intra_rgb"])


def test_bad_inputs_get_clear_errors():
    pose, rgb = views(batch=1)
    with pytest.raises(ValueError, match="at least 2 clips per batch"):
        CCLSLR(tiny_config(objective="in_batch"))(pose=pose, rgb=rgb)
    with pytest.raises(ValueError, match="needs two 'rgb' views"):
        CCLSLR(tiny_config())(pose=pose)
    with pytest.raises(ValueError, match="modalities"):
        CCLConfig(modalities=("depth",))


def test_checkpoint_round_trip_and_pose_transfer_to_uni_sign(tmp_path, tiny_lm_dir):
    from models.pose_transfer import load_pose_encoder
    from models.uni_sign import UniSign, UniSignConfig
    from utils.checkpoint import atomic_save

    torch.manual_seed(0)
    model = CCLSLR(tiny_config())
    model.train()(*views())
    atomic_save({"kind": "ccl_slr", "config": model.config.to_dict(), "model": model.state_dict()}, tmp_path / "c.pth")
    loaded = CCLSLR.from_checkpoint(tmp_path / "c.pth")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))

    uni_sign = UniSign.from_lm_path(UniSignConfig(lang="English", pose=model.config.pose_config()), tiny_lm_dir)
    state = {"model": model.state_dict()}
    assert load_pose_encoder(uni_sign.pose_encoder, state, "c.pth") == []
    parts, mask = random_parts(2, 5)
    expected = model.encoders["pose"].pose_encoder.eval()(parts, mask)
    assert torch.allclose(uni_sign.pose_encoder.eval()(parts, mask), expected)


def test_the_cross_modal_weight_can_grow_from_zero():
    model = CCLSLR(tiny_config(cross_weight=2.0, cross_warmup_steps=4, spm=False)).train()
    pose, rgb = views()
    weights = []
    for _ in range(5):
        weights.append(model.cross_weight())
        model(pose=pose, rgb=rgb)
    assert weights == [0.0, 0.5, 1.0, 1.5, 2.0]
    output = model.eval()(pose=pose, rgb=rgb)
    terms = output.terms
    expected = terms["intra_pose"] + terms["intra_rgb"] + 2.0 * (terms["cross_rgb_pose"] + terms["cross_pose_rgb"])
    assert output.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_config_saved_before_pool_grid_existed_builds_the_global_average_rgb_branch():
    saved = tiny_config(video=dict(VIDEO_PRESETS["tiny"], pool_grid=3)).to_dict()
    saved["video"] = {key: value for key, value in saved["video"].items() if key != "pool_grid"}
    model = CCLSLR(CCLConfig.from_dict(saved))
    assert model.encoders["rgb"].proj.in_features == VIDEO_PRESETS["tiny"]["widths"][-1]
