"""Heatmap heads: the paper's low-resolution head (FasterPose) and SimpleBaseline's deconvolution head."""
from __future__ import annotations

import torch
from torch import nn


class LRHead(nn.Module):
    """FasterPose head: works entirely at the backbone's low resolution, then rearranges channels into space.

    (N, C, h, w) -> 3x3 conv + BN + ReLU (``width`` channels) -> 1x1 conv to K·r² -> PixelShuffle(r)
    -> (N, K, h·r, w·r) heatmap logits. No high-resolution feature map is ever computed.
    """

    def __init__(self, in_channels: int, num_keypoints: int, upscale: int, width: int = 256, final_bias: float = -4.0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.final = nn.Conv2d(width, num_keypoints * upscale * upscale, 1)
        self.shuffle = nn.PixelShuffle(upscale)
        nn.init.normal_(self.final.weight, std=0.001)
        # Start the sigmoid near the targets' background (mostly ~0): logit -4 ≈ probability 0.018.
        nn.init.constant_(self.final.bias, final_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.final(self.relu(self.bn(self.conv(x)))))


class DeconvHead(nn.Module):
    """SimpleBaseline head (Xiao et al., 2018): ``num_deconv`` × (4x4 stride-2 transposed conv, BN, ReLU), 1x1 conv."""

    def __init__(
        self, in_channels: int, num_keypoints: int, num_deconv: int = 3, width: int = 256, final_bias: float = 0.0
    ):
        super().__init__()
        layers = []
        for i in range(num_deconv):
            layers += [
                nn.ConvTranspose2d(in_channels if i == 0 else width, width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(width, num_keypoints, 1)
        for m in self.deconv.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, std=0.001)
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.constant_(self.final.bias, final_bias)  # 0 for MSE; -4 when trained with RCE on sigmoids

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(x))
