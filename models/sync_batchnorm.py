"""Synchronised BatchNorm: training statistics of the global batch over all processes, on any device.

The official launch converts every BatchNorm to `torch.nn.SyncBatchNorm` under the distributed launcher
(`fine_tuning.py`). PyTorch's SyncBatchNorm runs on GPUs only; `CrossProcessBatchNorm` computes the same
statistics with differentiable all-reduces (`torch.distributed.nn.functional.all_reduce`), so it also runs
on CPU processes over gloo. `convert_sync_batchnorm` uses PyTorch's on CUDA (the official module) and ours
elsewhere. Outside training, or with one process, both are plain BatchNorm.
"""
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce

LOW_PRECISION = (torch.float16, torch.bfloat16)  # statistics are computed in float32 for these


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class CrossProcessBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm{1,2,3}d whose batch statistics are reduced over every process of the default group."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input):  # (B, C, *) -> (B, C, *)
        if not (self.training and _distributed()):
            return super().forward(input)
        return self._global_batch_norm(input.float() if input.dtype in LOW_PRECISION else input).to(input.dtype)

    def _global_batch_norm(self, input):
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = input.new_tensor([input.numel() / input.shape[1]])
        totals = all_reduce(torch.cat([input.sum(dims), count]))  # (C + 1,) summed over processes
        samples = totals[-1]
        mean = totals[:-1] / samples  # (C,)
        centered = input - mean.view(shape)
        variance = all_reduce(centered.pow(2).sum(dims)) / samples  # (C,) biased, as BatchNorm normalises
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), variance.detach() * samples / max(samples.item() - 1, 1))
        output = centered * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output

    @torch.no_grad()
    def _update_running_stats(self, mean, unbiased_variance):
        self.num_batches_tracked.add_(1)
        factor = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased_variance, alpha=factor)


def _cross_process_copy(module: nn.modules.batchnorm._BatchNorm) -> CrossProcessBatchNorm:
    """A CrossProcessBatchNorm holding `module`'s parameters and buffers (the same tensors)."""
    converted = CrossProcessBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                      module.track_running_stats)
    if module.affine:
        converted.weight, converted.bias = module.weight, module.bias
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(converted, name, getattr(module, name))
    converted.train(module.training)
    return converted


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CrossProcessBatchNorm):
        return _cross_process_copy(module)
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child))
    return module


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Every BatchNorm of `module` synchronised across processes; returns the converted module.

    Parameter and buffer names are unchanged, so checkpoints load either way."""
    if next(module.parameters()).is_cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def count_batchnorms(module: nn.Module) -> int:
    return sum(isinstance(child, nn.modules.batchnorm._BatchNorm) for child in module.modules())
