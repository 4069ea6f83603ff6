"""Pose networks (backbone + head) and the registry that builds them by name (timm-style)."""
from __future__ import annotations

import inspect
from typing import Callable, Dict

import torch
from torch import nn

from .backbones import ResNet
from .efficientnet_lite import LITE_STAGES, EfficientNetLite
from .heads import DeconvHead, LRHead


class PoseNet(nn.Module):
    """Top-down pose network: (N, 3, H, W) float32 -> (N, K, H/4, W/4) heatmaps.

    What the maps mean depends on the loss they were trained with, not on the architecture: logits for RCE
    (the runtime applies the sigmoid), Gaussian-like maps for MSE. Checkpoints record the loss.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, architecture: str):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.architecture = architecture

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


_REGISTRY: Dict[str, Callable[..., PoseNet]] = {}


def register(name: str):
    def deco(fn):
        _REGISTRY[name] = fn
        return fn

    return deco


def list_models():
    return sorted(_REGISTRY)


def build_model(name: str, num_keypoints: int = 17, **options) -> PoseNet:
    """Build a registered model by name, e.g. ``build_model("fasterpose_r18", 14)``.

    FasterPose options: ``output_stride`` (16 or 32), ``head_width`` (256), ``final_bias`` (-4), ``blocks`` (residual
    blocks per stage instead of the depth's standard ones, e.g. ``[1, 2, 6]``: a thinner network of the same kind).
    FasterPose-EfficientNet-Lite (``fasterpose_lite0``, ``fasterpose_lite2``): ``output_stride``, ``head_width``,
    ``final_bias`` as above; a trunk that loads released ImageNet weights (``backbone.load_pretrained``).
    SimpleBaseline options: ``head_width`` (256), ``final_bias`` (0; use -4 for RCE training).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    if num_keypoints < 1:
        raise ValueError("num_keypoints must be >= 1")
    taken = inspect.signature(_REGISTRY[name]).parameters
    unknown = [k for k in options if k not in taken]
    if unknown:  # a clear error, not a TypeError from inside the builder
        raise ValueError(f"model {name!r} takes no option {', '.join(map(repr, unknown))}; its options: "
                         f"{', '.join(k for k in taken if k != 'num_keypoints')}")
    return _REGISTRY[name](num_keypoints=num_keypoints, **options)


def _fasterpose(depth: int):
    def make(num_keypoints: int = 17, output_stride: int = 16, head_width: int = 256, final_bias: float = -4.0,
             blocks=None):
        if output_stride not in (16, 32):
            raise ValueError("output_stride must be 16 or 32")
        backbone = ResNet(depth, num_stages=3 if output_stride == 16 else 4, blocks=blocks)
        head = LRHead(backbone.out_channels, num_keypoints, output_stride // 4, head_width, final_bias)
        return PoseNet(backbone, head, f"fasterpose_r{depth}")

    return make


def _fasterpose_lite(variant: str):
    def make(num_keypoints: int = 17, output_stride: int = 16, head_width: int = 256, final_bias: float = -4.0):
        backbone = EfficientNetLite(variant, output_stride)
        head = LRHead(backbone.out_channels, num_keypoints, output_stride // 4, head_width, final_bias)
        return PoseNet(backbone, head, f"fasterpose_{variant}")

    return make


def _simplebaseline(depth: int):
    def make(num_keypoints: int = 17, head_width: int = 256, final_bias: float = 0.0):
        backbone = ResNet(depth, num_stages=4)
        head = DeconvHead(backbone.out_channels, num_keypoints, 3, head_width, final_bias)
        return PoseNet(backbone, head, f"simplebaseline_r{depth}")

    return make


for _d in (18, 34, 50, 101, 152):
    register(f"fasterpose_r{_d}")(_fasterpose(_d))
for _v in LITE_STAGES:
    register(f"fasterpose_{_v}")(_fasterpose_lite(_v))
for _d in (18, 34, 50, 101, 152):
    register(f"simplebaseline_r{_d}")(_simplebaseline(_d))
