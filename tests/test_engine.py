"""The optimizer: AdamW with timm's no-decay rule, torch's fused kernel by default (--fused-adamw)."""
import copy

import torch

from engine import build_optimizer, use_fused_adamw


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3))


def train_steps(model, optimizer, steps=5):
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        model(torch.randn(4, 6, generator=generator)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def test_no_weight_decay_for_biases_and_norm_weights():
    decay, no_decay = build_optimizer(small_model(), 1e-3, weight_decay=0.1).param_groups
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    assert [tuple(p.shape) for p in decay["params"]] == [(8, 6), (3, 8)]
    assert len(no_decay["params"]) == 4  # two biases, the LayerNorm's weight and bias


def test_the_fused_default_updates_as_torchs_default_adamw_up_to_rounding():
    fused_model = small_model()
    official_model = copy.deepcopy(fused_model)
    fused, official = build_optimizer(fused_model, 1e-2), build_optimizer(official_model, 1e-2, fused=False)
    assert [group["fused"] for group in fused.param_groups] == [True, True]
    assert [group["fused"] for group in official.param_groups] == [None, None]
    train_steps(fused_model, fused)
    train_steps(official_model, official)
    for trained, reference in zip(fused_model.parameters(), official_model.parameters()):
        torch.testing.assert_close(trained, reference, rtol=1e-6, atol=1e-7)


def test_a_loaded_state_takes_the_kernel_asked_for():
    model = small_model()
    official = build_optimizer(model, 1e-2, fused=False)
    train_steps(model, official, steps=1)
    resumed = build_optimizer(model, 1e-2)
    resumed.load_state_dict(official.state_dict())
    assert [group["fused"] for group in resumed.param_groups] == [None, None]  # the saved kernel came with it
    use_fused_adamw(resumed, True)
    assert [group["fused"] for group in resumed.param_groups] == [True, True]
    train_steps(model, resumed, steps=1)
    assert int(resumed.state[next(model.parameters())]["step"]) == 2
