"""Linear layers with weights packed for MKL's GEMM: beam search on a CPU in fp32.

Each step of beam search multiplies a few rows (batch x beams) by every decoder weight and by the LM head. For
such a product torch's CPU linear packs the weight into the GEMM's blocked layout on every call; for
mT5-Base's 250,112 x 768 head at 8 rows that copy is most of the 0.19 s product. With the weight packed once
and kept (a dict of `Pack`s, while the weights stay the same), MKL's packed GEMM takes 0.08 s. The product is the
same sums in another order (~1e-6 relative), so it is switchable (`--packed-decoding`,
docs/official_differences.md).
"""
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

# Weights smaller than this stay unpacked: their pack costs several times their size (768 x 768: 4.9x) for little
# time (docs/performance.md: at mT5-Base packing them too saves ~4% more evaluation time for 46% more memory).
MIN_PACKED_ELEMENTS = 1 << 20


def packing_available() -> bool:
    """MKL's packed GEMM is in this torch build (x86 CPU builds; not on ARM)."""
    return torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, "_mkl_reorder_linear_weight")


@dataclass
class Pack:
    weight: torch.Tensor  # the parameter it was packed from
    version: int  # the parameter's version counter then (an in-place update, as an optimizer step, moves it)
    rows: int  # the row count the GEMM is packed for
    packed: torch.Tensor  # MKL's blocked layout (1.5x - 4.9x the weight's size, by shape)

    def fits(self, weight, rows) -> bool:
        return self.weight is weight and self.version == weight._version and self.rows == rows


class PackedLinear(nn.Linear):
    """Stands in for `linear` inside `packed_linears`, holding the same parameters (code that reads `.weight`
    sees them). The second of two consecutive calls with the same number of rows packs the weight for that
    number into `packs[key]` (a one-off product, as cross-attention's keys, is not worth a pack); later calls
    with it use the pack while the weight is unchanged. Autograd, autocast, other devices and dtypes compute as
    nn.Linear does."""

    def __init__(self, linear: nn.Linear, packs: dict, key: str):
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.packs, self.key, self.last_rows = packs, key, None

    def forward(self, inputs):  # (..., in_features) -> (..., out_features)
        rows = inputs.numel() // inputs.shape[-1]
        packed = self.pack_for(rows) if self.packable(inputs) else None
        if packed is None:
            return super().forward(inputs)
        outputs = torch.ops.mkl._mkl_linear(inputs.reshape(rows, -1), packed, self.weight, self.bias, rows)
        return outputs.reshape(*inputs.shape[:-1], -1)  # from (rows, out_features)

    def packable(self, inputs) -> bool:
        return (not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu") and inputs.device.type == "cpu"
                and inputs.dtype == self.weight.dtype == torch.float32 and self.weight.device.type == "cpu")

    def pack_for(self, rows) -> torch.Tensor | None:
        """The weight packed for `rows` rows, or None (it is packed on the second consecutive call with `rows`)."""
        pack = self.packs.get(self.key)
        if pack is not None and pack.fits(self.weight, rows):
            return pack.packed
        if rows != self.last_rows:
            self.last_rows = rows
            return None
        packed = torch.ops.mkl._mkl_reorder_linear_weight(self.weight, rows)
        self.packs[self.key] = Pack(self.weight, self.weight._version, rows, packed)
        return packed


@contextmanager
def packed_linears(root: nn.Module, packs: dict, enabled: bool = True, min_elements: int | None = None):
    """Within it every nn.Linear under `root` with at least `min_elements` weights (default MIN_PACKED_ELEMENTS)
    computes through a PackedLinear that keeps its pack in `packs` ({name: Pack}; they hold 1.5-3x the packed
    weights' memory until the caller clears them). On leaving, the original modules are back. A no-op when
    disabled or where MKL's packed GEMM is missing."""
    if not enabled or not packing_available():
        yield
        return
    min_elements = MIN_PACKED_ELEMENTS if min_elements is None else min_elements
    linears = [(name, module) for name, module in root.named_modules()
               if name and type(module) is nn.Linear and module.weight.numel() >= min_elements]  # root stays
    for name, linear in linears:
        root.set_submodule(name, PackedLinear(linear, packs, name))
    try:
        yield
    finally:
        for name, linear in linears:
            root.set_submodule(name, linear)
