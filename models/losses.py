"""Heatmap losses with per-keypoint target weights (unlabelled joints contribute nothing).

RCE, regressive cross-entropy (the FasterPose paper): binary cross-entropy generalised to continuous targets
y ∈ [0, 1] on sigmoid heatmaps, L = -[y·log σ(z) + (1-y)·log(1-σ(z))], computed from logits z as
softplus(z) - y·z (stable for any z). Its gradient with respect to z is σ(z) - y.
MSE is SimpleBaseline's loss on raw heatmaps, for comparison.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _weighted_mean(per_pixel: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """per_pixel (N, K, H, W), weights (N, K) -> mean over pixels and weighted keypoints (0 if no weight)."""
    per_kp = per_pixel.flatten(2).mean(dim=2)  # (N, K)
    w = weights.to(per_kp.dtype)
    return (per_kp * w).sum() / w.sum().clamp_min(1.0)


def target_entropy(targets: torch.Tensor) -> torch.Tensor:
    """Binary entropy of continuous targets, elementwise: the RCE a perfect prediction attains."""
    y = targets.clamp(1e-12, 1 - 1e-12)
    return -(y * y.log() + (1 - y) * (1 - y).log())


class RCELoss(nn.Module):
    """Regressive cross-entropy on logits. forward(logits (N,K,H,W), targets (N,K,H,W), weights (N,K)) -> scalar.

    ``relative=True`` subtracts the targets' own entropy, so a perfect prediction reads 0 (same gradient).
    """

    def __init__(self, relative: bool = False):
        super().__init__()
        self.relative = relative

    def forward(self, logits, targets, weights):
        z = logits.float()
        y = targets.float()
        per_pixel = F.softplus(z) - y * z
        if self.relative:
            per_pixel = per_pixel - target_entropy(y)
        return _weighted_mean(per_pixel, weights)


class MSELoss(nn.Module):
    """SimpleBaseline's heatmap MSE with the same weighting. forward(pred, targets, weights) -> scalar."""

    def forward(self, pred, targets, weights):
        return _weighted_mean((pred.float() - targets.float()) ** 2, weights)


LOSSES = {"rce": RCELoss, "mse": MSELoss}


def build_loss(name: str) -> nn.Module:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    return LOSSES[name]()
