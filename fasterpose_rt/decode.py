"""Heatmaps -> sub-pixel keypoints: argmax, then DARK's second-order step on the modulated log-heatmap.

DARK (Zhang et al., "Distribution-Aware Coordinate Representation for Human Pose Estimation", CVPR 2020):
blur the map with a Gaussian (modulation against noise), take the log, and step from the integer peak by
``-H⁻¹·∇`` of the log. Only the 3×3 blurred neighbourhood of each peak is needed, so we blur a small patch
around every peak instead of whole maps. Everything is vectorised over persons and keypoints.

Coordinates are heatmap pixels: ``heatmaps[n, k, j, i]`` sits at (x=i, y=j). See ``geometry.py`` for how
heatmap pixels map to crop pixels.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np

__all__ = ["decode_heatmaps", "argmax_heatmaps", "default_blur_sigma", "EDGE_PEAKS"]

_EPS = 1e-10
# How a peak one pixel from the map's edge is refined (a model's metadata, ``edge_peaks``, chooses): "blurred" as
# every other peak; "unblurred" from the map itself, whose 3x3 around it is all on the map, because the blur would
# copy the border pixel into the neighbourhood and push the peak outwards (``python -m benchmarks.decoding``).
EDGE_PEAKS = ("blurred", "unblurred")


def default_blur_sigma(heatmap_width: int) -> float:
    """DARK's modulation kernel (sigma 2 at a 48-px-wide heatmap), scaled with the heatmap size."""
    return 2.0 * heatmap_width / 48.0


def argmax_heatmaps(heatmaps):
    """Integer peaks. heatmaps (N, K, H, W) -> xy (N, K, 2) int64 (x=column, y=row), scores (N, K)."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    idx = flat.argmax(axis=2)
    scores = np.take_along_axis(flat, idx[:, :, None], axis=2)[:, :, 0]
    return np.stack([idx % w, idx // w], axis=2), scores


@lru_cache(maxsize=16)
def _gaussian_rows(sigma: float, radius: int):
    """(3, 2·(radius+1)+1) weights: row a blurs the patch onto offset a-1 around the peak. sigma 0: no blur.

    Cached (read-only) because every call with the same heatmap size needs the same weights.
    """
    offs = np.arange(-(radius + 1), radius + 2)
    d = offs[None, :] - np.array([-1, 0, 1])[:, None]
    if sigma > 0:
        g = np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= radius)
    else:
        g = (d == 0).astype(np.float64)
    g = g / g.sum(axis=1, keepdims=True)
    g.flags.writeable = False
    return g


def decode_heatmaps(heatmaps, blur_sigma=None, edge_peaks: str = "blurred") -> Tuple[np.ndarray, np.ndarray]:
    """Sub-pixel keypoints from probability heatmaps.

    heatmaps (N, K, H, W) float, values in [0, 1] (apply the sigmoid to logits first).
    blur_sigma: DARK modulation in heatmap px; None -> :func:`default_blur_sigma`; 0 -> no modulation
    (exact for noise-free Gaussians). edge_peaks: one of EDGE_PEAKS, for peaks one pixel from the map's edge.
    Returns xy (N, K, 2) float32 in heatmap pixels and scores (N, K) float32 (the peak values).
    A peak on a border pixel is refined along the other axis by the usual step and along its own axis by a
    one-sided step (:func:`_border_steps`); flat or all-zero maps keep the integer peak (never NaN). Maps holding
    NaN (a broken model) are refused.
    """
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {hm.shape}")
    n, k, h, w = hm.shape
    sigma = default_blur_sigma(w) if blur_sigma is None else float(blur_sigma)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"blur_sigma must be a finite number >= 0, got {blur_sigma!r}")
    if edge_peaks not in EDGE_PEAKS:
        raise ValueError(f"edge_peaks must be one of {', '.join(EDGE_PEAKS)}, got {edge_peaks!r}")
    if h == 0 or w == 0:
        raise ValueError(f"heatmaps must have at least one pixel, got shape {hm.shape}")
    if n * k == 0:
        return np.zeros((n, k, 2), np.float32), np.zeros((n, k), np.float32)
    peak, scores = argmax_heatmaps(hm)
    if np.isnan(scores).any():  # argmax stops at a NaN, so a map holding one has a NaN score
        raise ValueError("heatmaps contain NaN: the model's output is broken")
    px, py = peak[..., 0], peak[..., 1]
    # Beyond the map's size a wider blur only copies border pixels, so the radius is capped there.
    radius = min(int(np.ceil(3 * sigma)), max(h, w)) if sigma > 0 else 0
    offs = np.arange(-(radius + 1), radius + 2)
    # Gather a (P, P) patch around each peak, replicating the border (indices clipped into the map).
    ys = np.clip(py[..., None] + offs, 0, h - 1)  # (N, K, P)
    xs = np.clip(px[..., None] + offs, 0, w - 1)
    ni = np.arange(n)[:, None, None, None]
    ki = np.arange(k)[None, :, None, None]
    patch = hm[ni, ki, ys[..., :, None], xs[..., None, :]].astype(np.float64)  # (N, K, P, P)
    g = _gaussian_rows(sigma, radius)
    b = g @ patch @ g.T  # (N, K, 3, 3): the blurred 3x3 around the peak, [row, col]
    if edge_peaks == "unblurred":
        one_in = np.minimum(np.minimum(px, w - 1 - px), np.minimum(py, h - 1 - py)) == 1  # (N, K)
        b = np.where(one_in[..., None, None], patch[..., radius:radius + 3, radius:radius + 3], b)
    lg = np.log(np.maximum(b, _EPS))
    dx = 0.5 * (lg[..., 1, 2] - lg[..., 1, 0])
    dy = 0.5 * (lg[..., 2, 1] - lg[..., 0, 1])
    dxx = lg[..., 1, 2] - 2 * lg[..., 1, 1] + lg[..., 1, 0]
    dyy = lg[..., 2, 1] - 2 * lg[..., 1, 1] + lg[..., 0, 1]
    dxy = 0.25 * (lg[..., 2, 2] - lg[..., 2, 0] - lg[..., 0, 2] + lg[..., 0, 0])
    det = dxx * dyy - dxy * dxy
    inner_x = (px > 0) & (px < w - 1)
    inner_y = (py > 0) & (py < h - 1)
    found = scores > _EPS
    ok = inner_x & inner_y & (det > 1e-12) & (dxx < 0) & (dyy < 0) & found
    # A peak on one border still has both neighbours along the other axis: a 1-D step there.
    only_x = inner_x & ~inner_y & (dxx < 0) & found
    only_y = inner_y & ~inner_x & (dyy < 0) & found
    safe_det = np.where(ok, det, 1.0)
    ox = np.where(ok, -(dyy * dx - dxy * dy) / safe_det, -dx / np.where(only_x, dxx, -1.0))
    oy = np.where(ok, -(dxx * dy - dxy * dx) / safe_det, -dy / np.where(only_y, dyy, -1.0))
    ox = np.where(ok | only_x, np.clip(ox, -1.0, 1.0), 0.0)
    oy = np.where(ok | only_y, np.clip(oy, -1.0, 1.0), 0.0)
    on_x, step_x = _border_steps(hm, px, py, True, found)
    on_y, step_y = _border_steps(hm, px, py, False, found)
    ox = np.where(on_x, step_x, ox)
    oy = np.where(on_y, step_y, oy)
    xy = np.stack([px + ox, py + oy], axis=2).astype(np.float32)
    return xy, scores.astype(np.float32)


def _border_steps(hm, px, py, along_x: bool, found):
    """One-sided sub-pixel steps for peaks on a border pixel, along x (the peak's row) or y (its column).

    hm (N, K, H, W) float32; px, py (N, K) the integer peaks; found (N, K) bool.
    Returns on (N, K) bool (refined here) and offsets (N, K) float64 in heatmap px, 0 where not on.
    The central step needs a neighbour on both sides, so a border peak would keep its integer position: up to
    half a pixel off for a true centre between the pixel and the map's edge. A log-parabola through the peak and
    the next two pixels inwards is exact for a Gaussian; unblurred, since the blur there would copy the border
    pixel. The offset stays on the map (at most half a pixel outwards); lines shorter than 3 or holding a zero
    among the three pixels (nothing to fit) are not refined.
    """
    n, k, h, w = hm.shape
    p, size = (px, w) if along_x else (py, h)
    border = (p == 0) | (p == size - 1)
    if not border.any():  # the usual case: nothing to gather (a quarter of a 1-person predict's decoding time)
        return border, np.zeros(p.shape)
    inward = np.where(p == 0, 1, -1)
    line = np.clip(p[..., None] + inward[..., None] * np.arange(3), 0, size - 1)  # (N, K, 3): the peak, inwards
    ni, ki = np.arange(n)[:, None, None], np.arange(k)[None, :, None]
    u = (hm[ni, ki, py[..., None], line] if along_x else hm[ni, ki, line, px[..., None]]).astype(np.float64)
    on = border & (size >= 3) & (u.min(axis=-1) > _EPS) & found
    lu = np.log(np.maximum(u, _EPS))
    d1 = 0.5 * (-3 * lu[..., 0] + 4 * lu[..., 1] - lu[..., 2])  # slope at the peak, inwards
    d2 = lu[..., 0] - 2 * lu[..., 1] + lu[..., 2]
    on &= d2 < 0
    step = -d1 / np.where(on, d2, -1.0)
    return on, np.where(on, inward * np.clip(step, -0.5, 0.5), 0.0)
