"""EfficientNet-B0 `features` in plain PyTorch, laid out exactly like torchvision's.

torchvision cannot be imported on CPU-only machines here (its wheel needs CUDA), so the RGB
backbone of Uni-Sign lives in the project. The module tree below reproduces
`torchvision.models.efficientnet_b0().features` name for name and shape for shape:

    0        Conv2dNormActivation(3 -> 32, k3, s2)            keys 0.0.weight, 0.1.*
    1..7     stages of MBConv blocks                          keys N.M.block.{0,1,2,3}.*
    8        Conv2dNormActivation(320 -> 1280, k1)            keys 8.0.weight, 8.1.*

so torchvision's ImageNet weights (`features.*` entries) and the official Uni-Sign checkpoint
(`rgb_support_backbone.0.*`) load into it unchanged. BatchNorm uses PyTorch defaults
(eps 1e-5, momentum 0.1), as torchvision does for B0 (only B5-B7 and V2 change them).
A 112x112 input gives a (N, 1280, 4, 4) map.
"""
import os
from pathlib import Path

import torch
from torch import nn

# (expand_ratio, kernel, stride, in_channels, out_channels, num_layers): torchvision's B0 table.
B0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
LAST_CHANNELS = 1280


class Conv2dNormActivation(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d [-> SiLU], 'same' padding for odd kernels."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, groups=1, activation=True):
        layers = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if activation:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """x * sigmoid(fc2(silu(fc1(avgpool(x))))), with 1x1 convs named fc1/fc2 as torchvision."""

    def __init__(self, channels, squeeze_channels):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):  # (N, C, H, W)
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))  # (N, C, 1, 1)
        return x * self.scale_activation(scale)


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth in 'row' mode: drops whole samples while training."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self):
        return f"p={self.p}, mode=row"


class MBConv(nn.Module):
    """Inverted residual: [expand 1x1] -> depthwise kxk -> squeeze-excitation -> project 1x1."""

    def __init__(self, expand_ratio, kernel, stride, in_ch, out_ch, stochastic_depth_prob):
        super().__init__()
        self.use_res_connect = stride == 1 and in_ch == out_ch
        expanded = in_ch * expand_ratio  # B0 widths are all multiples of 8 already
        layers = []
        if expanded != in_ch:
            layers.append(Conv2dNormActivation(in_ch, expanded, 1))
        layers += [
            Conv2dNormActivation(expanded, expanded, kernel, stride, groups=expanded),
            SqueezeExcitation(expanded, max(1, in_ch // 4)),
            Conv2dNormActivation(expanded, out_ch, 1, activation=False),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob)

    def forward(self, x):
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


def _init_like_torchvision(module):
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def efficientnet_b0_features(stochastic_depth_prob: float = 0.2) -> nn.Sequential:
    """torchvision's `efficientnet_b0().features`, randomly initialised the way torchvision does.

    Stochastic depth grows linearly with the block index (prob * i / 16), as in torchvision; it is
    inactive in eval mode.
    """
    total_blocks = sum(stage[-1] for stage in B0_STAGES)
    layers = [Conv2dNormActivation(3, B0_STAGES[0][3], 3, stride=2)]
    block_id = 0
    for expand, kernel, stride, in_ch, out_ch, num_layers in B0_STAGES:
        stage = []
        for i in range(num_layers):
            sd_prob = stochastic_depth_prob * block_id / total_blocks
            stage.append(MBConv(expand, kernel, stride if i == 0 else 1, in_ch if i == 0 else out_ch, out_ch, sd_prob))
            block_id += 1
        layers.append(nn.Sequential(*stage))
    layers.append(Conv2dNormActivation(B0_STAGES[-1][4], LAST_CHANNELS, 1))
    features = nn.Sequential(*layers)
    _init_like_torchvision(features)
    return features


# torchvision's ImageNet EfficientNet-B0 file names (EfficientNet_B0_Weights.IMAGENET1K_V1; the older release first
# named it -3dd342df), as torch.hub stores them in its checkpoints folder.
TORCHVISION_B0_FILES = ("efficientnet_b0_rwightman-7f5810bc.pth", "efficientnet_b0_rwightman-3dd342df.pth")


def torchvision_cache() -> Path:
    """Where torch.hub (and so torchvision) keeps downloaded weights: $TORCH_HOME/hub/checkpoints."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def find_torchvision_weights() -> Path | None:
    """torchvision's EfficientNet-B0 ImageNet file in its cache, or None."""
    for name in TORCHVISION_B0_FILES:
        if (torchvision_cache() / name).is_file():
            return torchvision_cache() / name
    return None


def load_torchvision_weights(module: nn.Module, path) -> None:
    """Load the `features.*` entries of a torchvision EfficientNet-B0 ImageNet file into `module`.

    `path` is the plain state dict torchvision downloads (`efficientnet_b0_rwightman-*.pth`, keys
    `features.*` and `classifier.*`). Loading is strict: every key of `module` must be present
    with the same shape. Raises FileNotFoundError / ValueError with the reason otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-B0 weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise ValueError(f"{path}: no 'features.*' entries (is this a torchvision EfficientNet-B0 state dict?)")
    expected = module.state_dict()
    missing = sorted(set(expected) - set(features))
    unexpected = sorted(set(features) - set(expected))
    wrong_shape = [f"{k}: file {tuple(features[k].shape)} vs model {tuple(v.shape)}"
                   for k, v in expected.items() if k in features and features[k].shape != v.shape]
    problems = [f"missing {_head(missing)}" if missing else "",
                f"unexpected {_head(unexpected)}" if unexpected else "",
                f"shape mismatch {_head(wrong_shape)}" if wrong_shape else ""]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"{path}: not an EfficientNet-B0 features state dict: " + "; ".join(problems))
    module.load_state_dict(features, strict=True)


def _head(items, n=5):
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more
