"""Accuracy metrics shared by training validation, ``fasterpose eval`` and the benchmarks (numpy only)."""
from __future__ import annotations

import numpy as np

from .skeletons import torso_pairs


def torso_sizes(gt, visible, names):
    """Torso size per person: left shoulder to right hip, else right shoulder to left hip; NaN if neither.

    gt (N, K, 2), visible (N, K) bool, names: K keypoint names. Returns (N,) float64.
    """
    pairs = torso_pairs(names)
    if pairs is None:
        raise ValueError("PCK needs keypoints named left/right_shoulder and left/right_hip")
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool)
    sizes = np.full(gt.shape[0], np.nan)
    for a, b in reversed(pairs):  # the first pair wins where both are labelled
        ok = vis[:, a] & vis[:, b]
        sizes = np.where(ok, np.linalg.norm(gt[:, a] - gt[:, b], axis=1), sizes)
    return sizes


def pck(pred, gt, visible, names, threshold=0.2):
    """PCK@threshold, torso-normalised, over labelled joints of persons with a measurable torso.

    pred, gt (N, K, 2); visible (N, K). Returns (overall, per_keypoint (K,), counted joints).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool)
    torso = torso_sizes(gt, vis, names)
    use = vis & np.isfinite(torso)[:, None] & (torso[:, None] > 0)
    hit = (np.linalg.norm(pred - gt, axis=2) <= threshold * np.nan_to_num(torso)[:, None]) & use
    counted = use.sum(axis=0)
    per_kp = np.where(counted > 0, hit.sum(axis=0) / np.maximum(counted, 1), np.nan)
    overall = float(hit.sum() / max(use.sum(), 1))
    return overall, per_kp, int(use.sum())
