"""Heatmap codec: keypoints in crop pixels <-> Gaussian heatmaps, one symmetric object (mmpose style).

Pixel conventions are those of ``fasterpose_rt/geometry.py`` (unbiased: heatmap pixel (i, j) sits at crop
coordinate ((i+0.5)·s-0.5, (j+0.5)·s-0.5); UDP, Huang et al. 2020). Decoding is the runtime's own
``decode_heatmaps`` with the runtime's defaults, so training, validation and the shipped runtime cannot drift apart:
its default blur whatever ``sigma`` drew the targets (``models.train --sigma``; the round trip holds within 0.01
crop px for target sigmas 0.7-3 heatmap px, tests/test_codec.py, where blurring with the targets' own sigma does
worse at 3), and "blurred" edge peaks, which every export records until ``export.edge_peaks`` chooses otherwise.
"""
from __future__ import annotations

import numpy as np

from fasterpose_rt.decode import decode_heatmaps, default_blur_sigma
from fasterpose_rt.geometry import crop_to_heatmap, heatmap_to_crop


class HeatmapCodec:
    """input_size (W, H) crop px; heatmap_size (w, h); sigma in heatmap px (default 2 at 48 px wide, scaled)."""

    def __init__(self, input_size, heatmap_size=None, sigma=None):
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if heatmap_size is None:
            heatmap_size = (self.input_size[0] // 4, self.input_size[1] // 4)
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.stride = (self.input_size[0] / self.heatmap_size[0], self.input_size[1] / self.heatmap_size[1])
        self.sigma = default_blur_sigma(self.heatmap_size[0]) if sigma is None else float(sigma)  # (DARK's rule)
        w, h = self.heatmap_size
        self._gx = np.arange(w, dtype=np.float32)
        self._gy = np.arange(h, dtype=np.float32)

    def encode(self, keypoints, visible=None):
        """keypoints (K, 2) crop px, visible (K,) bool/0-1 -> heatmaps (K, h, w) float32 in [0, 1], weights (K,).

        Unlabelled keypoints and keypoints outside the crop get weight 0 and an all-zero map.
        """
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
        k = kp.shape[0]
        vis = np.ones(k, bool) if visible is None else np.asarray(visible).reshape(k) > 0
        W, H = self.input_size
        inside = (kp[:, 0] >= -0.5) & (kp[:, 0] <= W - 0.5) & (kp[:, 1] >= -0.5) & (kp[:, 1] <= H - 0.5)
        weights = (vis & inside & np.isfinite(kp).all(axis=1)).astype(np.float32)
        mu = crop_to_heatmap(np.nan_to_num(kp), self.stride).astype(np.float32)
        inv = np.float32(-0.5 / self.sigma**2)
        ex = np.exp(inv * (self._gx[None, :] - mu[:, 0:1]) ** 2)  # (K, w) separable Gaussian
        ey = np.exp(inv * (self._gy[None, :] - mu[:, 1:2]) ** 2)  # (K, h)
        heatmaps = ey[:, :, None] * ex[:, None, :] * weights[:, None, None]
        return heatmaps.astype(np.float32), weights

    def decode(self, heatmaps, blur_sigma=None):
        """heatmaps (N, K, h, w) probabilities -> keypoints (N, K, 2) crop px float32, scores (N, K)."""
        xy, scores = decode_heatmaps(heatmaps, blur_sigma=blur_sigma)
        return heatmap_to_crop(xy, self.stride).astype(np.float32), scores
