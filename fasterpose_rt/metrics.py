"""Accuracy metrics shared by training validation, ``fasterpose eval`` and the benchmarks (numpy only)."""
from __future__ import annotations

import numpy as np

from .skeletons import flip_permutation, torso_pairs


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
    hit, use = _hits(pred, gt, visible, names, threshold)
    counted = use.sum(axis=0)
    per_kp = np.where(counted > 0, hit.sum(axis=0) / np.maximum(counted, 1), np.nan)
    overall = float(hit.sum() / max(use.sum(), 1))
    return overall, per_kp, int(use.sum())


def pck_interval(pred, gt, visible, names, threshold=0.2, level=0.95, reps=2000, seed=0, baseline=None):
    """Bootstrap confidence interval of PCK: persons are resampled with replacement ``reps`` times (a person's
    joints stay together, as they are not independent). It says how much the figure owes to which persons the
    validation set happens to hold.

    With ``baseline`` (another model's predictions (N, K, 2) for the same persons) it is the interval of the
    difference PCK(pred) − PCK(baseline), both scored on each resample (paired): much narrower than the two
    separate intervals, and the one to read when asking whether a model is better.

    pred, gt (N, K, 2); visible (N, K). Returns (low, high); (nan, nan) when no joint is counted.
    """
    hit, use = _hits(pred, gt, visible, names, threshold)
    if baseline is not None:
        hit = hit.astype(np.int64) - _hits(baseline, gt, visible, names, threshold)[0]
    keep = use.any(axis=1)
    hits, counted = hit[keep].sum(axis=1), use[keep].sum(axis=1)
    if not len(counted):
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(counted), (reps, len(counted)))
    values = hits[idx].sum(axis=1) / counted[idx].sum(axis=1)
    tail = 50 * (1 - level)
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _hits(pred, gt, visible, names, threshold):
    """(hit, use), both (N, K) bool: joint within threshold × torso; joint counted (labelled, torso measurable)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool)
    torso = torso_sizes(gt, vis, names)
    use = vis & np.isfinite(torso)[:, None] & (torso[:, None] > 0)
    hit = (np.linalg.norm(pred - gt, axis=2) <= threshold * np.nan_to_num(torso)[:, None]) & use
    return hit, use


def left_right_confusions(pred, gt, visible, names, flip_pairs, threshold=0.2):
    """How many PCK misses are left/right confusions — the model's or the label's (sports photos and
    crowd-sourced labels mix up "the person's left" and "the left of the photo").

    pred, gt (N, K, 2); visible (N, K); flip_pairs: [[left, right], ...] keypoint indices. Returns a dict:
    ``misses`` (joints that miss), ``mirror_hits`` (of those, joints whose prediction lands on the label of
    their mirror partner), ``persons_mirrored`` (persons whose prediction, with every left and right
    exchanged, hits more joints than as it is) and ``pck_mirror_forgiven`` (PCK when each person may be
    scored as predicted or mirrored, whichever hits more: an upper bound of what fixing the sides would buy).
    """
    perm = flip_permutation(len(names), flip_pairs)
    pred = np.asarray(pred, dtype=np.float64)
    hit, use = _hits(pred, gt, visible, names, threshold)
    mirrored, _ = _hits(pred[:, perm], gt, visible, names, threshold)
    total = max(int(use.sum()), 1)
    return {
        "misses": int((use & ~hit).sum()),
        "mirror_hits": int((mirrored & ~hit).sum()),
        "persons_mirrored": int((mirrored.sum(axis=1) > hit.sum(axis=1)).sum()),
        "pck_mirror_forgiven": float(np.maximum(hit.sum(axis=1), mirrored.sum(axis=1)).sum() / total),
    }
