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


def _weighted_mean(per_pixel: torch.Tensor, weights: torch.Tensor, topk: int = 0) -> torch.Tensor:
    """per_pixel (N, K, H, W), weights (N, K) -> mean over pixels and weighted keypoints (0 if no weight).

    ``topk`` > 0: online hard keypoint mining (Chen et al., CPN, CVPR 2018): per sample, only the ``topk``
    keypoints with the largest weighted loss count.
    """
    per_kp = per_pixel.flatten(2).mean(dim=2)  # (N, K)
    if weights.shape != per_kp.shape:  # (N, K, 1, 1) would broadcast silently into a wrong loss
        raise ValueError(f"weights must be (N, K) = {tuple(per_kp.shape)}, got {tuple(weights.shape)}")
    w = weights.to(per_kp.dtype)
    if topk:
        idx = (per_kp * w).detach().topk(min(topk, per_kp.shape[1]), dim=1).indices  # no gradient through the choice
        per_kp, w = per_kp.gather(1, idx), w.gather(1, idx)
    return (per_kp * w).sum() / w.sum().clamp_min(1.0)


def target_entropy(targets: torch.Tensor) -> torch.Tensor:
    """Binary entropy of continuous targets, elementwise: the RCE a perfect prediction attains.

    xlogy gives 0·log 0 = 0 exactly: a clamp to 1 - 1e-12 is 1.0 in float32, and a target of exactly 1 (a joint on
    a heatmap pixel's centre) made 0·log 0 = NaN, which OHKM then ranked as the hardest keypoint."""
    return -(torch.special.xlogy(targets, targets) + torch.special.xlogy(1 - targets, 1 - targets))


class RCELoss(nn.Module):
    """Regressive cross-entropy on logits. forward(logits (N,K,H,W), targets (N,K,H,W), weights (N,K)) -> scalar.

    ``relative=True`` subtracts the targets' own entropy, so a perfect prediction reads 0 (same gradient).
    ``topk``: online hard keypoint mining, only each sample's ``topk`` worst keypoints count (ranked by their
    excess over the targets' entropy, so that soft targets, whose entropy is high, are not taken for hard ones).
    """

    def __init__(self, relative: bool = False, topk: int = 0):
        super().__init__()
        self.relative, self.topk = relative, topk

    def forward(self, logits, targets, weights):
        z = logits.float()
        y = targets.float()
        per_pixel = F.softplus(z) - y * z
        if self.relative or self.topk:
            per_pixel = per_pixel - target_entropy(y)
        return _weighted_mean(per_pixel, weights, self.topk)


class MSELoss(nn.Module):
    """SimpleBaseline's heatmap MSE with the same weighting. forward(pred, targets, weights) -> scalar."""

    def forward(self, pred, targets, weights):
        return _weighted_mean((pred.float() - targets.float()) ** 2, weights)


LOSSES = {"rce": RCELoss, "mse": MSELoss}


def build_loss(name: str, topk: int = 0) -> nn.Module:
    """A loss by name; ``topk`` > 0: online hard keypoint mining (RCE only)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    if topk < 0:
        raise ValueError(f"hard keypoint mining needs topk >= 0, got {topk}")
    if topk:
        if name != "rce":
            raise ValueError("hard keypoint mining (--ohkm) is implemented for the RCE loss only")
        return RCELoss(topk=topk)
    return LOSSES[name]()
