"""Synchronised BatchNorm on CPU processes (gloo): two processes with half a batch each give what one
BatchNorm gives on the whole batch - outputs, input and parameter gradients, running statistics."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from models.sync_batchnorm import CrossProcessBatchNorm, convert_sync_batchnorm, count_batchnorms

FEATURES = 6


def whole_batch():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(8, FEATURES, 5, 7, generator=generator) * 3 + 1  # (B, C, T, V)
    upstream = torch.randn(8, FEATURES, 5, 7, generator=generator)  # dL/dy
    return inputs, upstream


def reference(momentum=0.1):
    """One process, plain BatchNorm2d, the whole batch, two training steps."""
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(FEATURES, momentum=momentum)
    nn.init.uniform_(norm.weight)
    nn.init.uniform_(norm.bias)
    inputs, upstream = whole_batch()
    for _ in range(2):
        x = inputs.clone().requires_grad_()
        norm.zero_grad()
        output = norm(x)
        (output * upstream).sum().backward()
    return output.detach(), x.grad, norm.weight.grad, norm.bias.grad, norm.running_mean, norm.running_var


def half_batch_worker(rank, init_file, results, momentum):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(FEATURES, momentum=momentum)
    nn.init.uniform_(norm.weight)
    nn.init.uniform_(norm.bias)
    norm = convert_sync_batchnorm(nn.Sequential(norm))[0]
    assert isinstance(norm, CrossProcessBatchNorm)
    inputs, upstream = (tensor[rank * 4:(rank + 1) * 4] for tensor in whole_batch())
    for _ in range(2):
        x = inputs.clone().requires_grad_()
        norm.zero_grad()
        output = norm(x)
        (output * upstream).sum().backward()
    results[rank] = [t.detach().clone() for t in (output, x.grad, norm.weight.grad, norm.bias.grad,
                                                  norm.running_mean, norm.running_var)]
    dist.destroy_process_group()


@pytest.mark.parametrize("momentum", [0.1, None])
def test_two_processes_with_half_a_batch_each_equal_one_batchnorm_on_the_whole_batch(tmp_path, momentum):
    results = mp.Manager().dict()
    mp.spawn(half_batch_worker, args=(str(tmp_path / "init"), results, momentum), nprocs=2, join=True)
    output, input_grad, weight_grad, bias_grad, running_mean, running_var = reference(momentum)
    torch.testing.assert_close(torch.cat([results[0][0], results[1][0]]), output, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([results[0][1], results[1][1]]), input_grad, rtol=1e-5, atol=1e-5)
    # parameter gradients: each process holds its half's share; data parallelism sums (then averages) them
    torch.testing.assert_close(results[0][2] + results[1][2], weight_grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(results[0][3] + results[1][3], bias_grad, rtol=1e-5, atol=1e-5)
    for rank in (0, 1):
        torch.testing.assert_close(results[rank][4], running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(results[rank][5], running_var, rtol=1e-5, atol=1e-6)


def test_conversion_keeps_names_tensors_and_single_process_behaviour():
    model = nn.Sequential(nn.Conv2d(3, FEATURES, 1), nn.BatchNorm2d(FEATURES), nn.Sequential(nn.BatchNorm1d(4)))
    before = dict(model.state_dict())
    converted = convert_sync_batchnorm(model)
    assert count_batchnorms(converted) == 2
    assert sum(isinstance(m, CrossProcessBatchNorm) for m in converted.modules()) == 2
    assert all(after.data_ptr() == before[name].data_ptr() for name, after in converted.state_dict().items())
    x = torch.randn(4, 3, 5, 5)
    plain = nn.BatchNorm2d(FEATURES)
    plain.load_state_dict(converted[1].state_dict())
    torch.testing.assert_close(converted[1](converted[0](x)), plain(converted[0](x)))  # no process group: plain
