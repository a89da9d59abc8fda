"""The optimizer: AdamW with timm's no-decay rule, torch's fused kernel by default (--fused-adamw); what a
resumed state keeps of it."""
import copy

import torch

from engine import build_optimizer, build_scheduler, command_hyperparameters, cosine_multiplier


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


def optimizer_and_schedule(model, lr=1e-2, **settings):
    optimizer = build_optimizer(model, lr, **settings)
    return optimizer, build_scheduler(optimizer, epochs=4, batches_per_epoch=5, grad_accum=1, warmup_epochs=1)


def train_scheduled_steps(model, optimizer, scheduler, steps):
    for _ in range(steps):
        train_steps(model, optimizer, steps=1)
        scheduler.step()


def resumed(model, saved_optimizer, saved_scheduler, **command):
    optimizer, scheduler = optimizer_and_schedule(model, **command)
    with command_hyperparameters(optimizer, scheduler):
        optimizer.load_state_dict(saved_optimizer.state_dict())
        scheduler.load_state_dict(saved_scheduler.state_dict())
    return optimizer, scheduler


def test_a_resumed_state_steps_with_the_commands_hyperparameters_and_the_states_moments():
    model = small_model()
    saved, saved_schedule = optimizer_and_schedule(model, weight_decay=0.1, eps=1e-8, betas=(0.9, 0.999), fused=False)
    train_scheduled_steps(model, saved, saved_schedule, steps=7)
    optimizer, scheduler = resumed(model, saved, saved_schedule, lr=5e-3, weight_decay=0.05, eps=1e-6,
                                   betas=(0.8, 0.99))
    settings = [(group["weight_decay"], group["eps"], group["betas"], group["fused"], group["initial_lr"])
                for group in optimizer.param_groups]
    assert settings == [(0.05, 1e-6, (0.8, 0.99), True, 5e-3), (0.0, 1e-6, (0.8, 0.99), True, 5e-3)]
    assert scheduler.last_epoch == 7 and scheduler.base_lrs == [5e-3, 5e-3]
    assert optimizer.param_groups[0]["lr"] == 5e-3 * cosine_multiplier(7, warmup_steps=5, total_steps=20)
    first = next(model.parameters())
    assert int(optimizer.state[first]["step"]) == 7
    assert torch.equal(optimizer.state[first]["exp_avg"], saved.state[first]["exp_avg"])


def test_unchanged_settings_resume_bit_exactly():
    model = small_model()
    uninterrupted_model = copy.deepcopy(model)
    uninterrupted, uninterrupted_schedule = optimizer_and_schedule(uninterrupted_model)
    train_scheduled_steps(uninterrupted_model, uninterrupted, uninterrupted_schedule, steps=6)

    saved, saved_schedule = optimizer_and_schedule(model)
    train_scheduled_steps(model, saved, saved_schedule, steps=3)
    optimizer, scheduler = resumed(model, saved, saved_schedule)
    assert [group["lr"] for group in optimizer.param_groups] == [group["lr"] for group in saved.param_groups]
    train_scheduled_steps(model, optimizer, scheduler, steps=3)
    for trained, reference in zip(model.parameters(), uninterrupted_model.parameters()):
        assert torch.equal(trained, reference)
