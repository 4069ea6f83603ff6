"""Person boxes -> normalised model input: validation, one affine warp per person, colour order, mean/std.

Geometry is ``geometry.py``'s (conventions 1-3); this file only applies it to pixels.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .geometry import box_centers_and_sizes, crop_affine
from .metadata import ModelMetadata

__all__ = ["check_boxes", "crop_transforms", "warp_crops", "Normalizer"]


def check_boxes(boxes, image_shape) -> np.ndarray:
    """Person boxes as (N, 4) float64 [x, y, w, h] photo px.

    boxes: anything array-like of shape (N, 4), or one box (4,); None -> one box over the whole photo,
    [-0.5, -0.5, W, H] (its edges are the photo's edges). image_shape: (H, W, ...) of the photo.
    Raises ValueError naming the first box with a non-finite value or w <= 0 or h <= 0.
    """
    if boxes is None:
        h, w = image_shape[:2]
        return np.array([[-0.5, -0.5, w, h]], dtype=np.float64)
    try:
        b = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"boxes must be numbers of shape (N, 4) [x, y, w, h]: {e}") from None
    if b.ndim == 1 and b.size == 4:
        b = b[None, :]
    if b.size == 0:
        return np.zeros((0, 4), np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) [x, y, w, h], got {b.shape}")
    finite = np.asarray(np.isfinite(b).all(axis=1), bool)
    positive = (b[:, 2] > 0) & (b[:, 3] > 0)
    bad = np.flatnonzero(~(finite & positive))
    if bad.size:
        i = int(bad[0])
        why = "has a non-finite value" if not finite[i] else "has width or height <= 0"
        raise ValueError(f"box {i} [x, y, w, h] = {b[i].tolist()} {why}")
    return b


def crop_transforms(boxes, meta: ModelMetadata) -> np.ndarray:
    """Photo -> crop affine maps (N, 2, 3) for boxes (N, 4): aspect fixed to the model's, ``box_padding`` applied."""
    centers, sizes = box_centers_and_sizes(boxes, meta.input_size, meta.box_padding)
    return crop_affine(centers, sizes, meta.input_size)


def warp_crops(image_bgr, affines: np.ndarray, input_size, owners: Optional[np.ndarray] = None) -> np.ndarray:
    """Bilinear warps of a (H, W, 3) uint8 photo by affines (N, 2, 3) -> crops (N, h, w, 3) uint8, zero outside.

    owners (N,): with several photos, ``image_bgr`` is their sequence and crop n is cut from image_bgr[owners[n]].
    """
    w, h = input_size
    crops = np.empty((affines.shape[0], h, w, 3), np.uint8)
    for n in range(affines.shape[0]):  # one OpenCV call per person; the pixel work is inside OpenCV
        cv2.warpAffine(
            image_bgr if owners is None else image_bgr[owners[n]], affines[n], (w, h), dst=crops[n],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
        )
    return crops


class Normalizer:
    """BGR uint8 crops (N, h, w, 3) -> model input (N, 3, h, w) float32: colour order, then (x - mean) / std.

    ``mean`` and ``std`` are in the model's channel order (``color``), on the 0..255 pixel scale.
    """

    def __init__(self, meta: ModelMetadata):
        # Tensor channel c reads BGR channel src[c].
        self.src = (2, 1, 0) if meta.color == "RGB" else (0, 1, 2)
        self.scale = (1.0 / np.asarray(meta.std, np.float64)).astype(np.float32)
        self.bias = (-np.asarray(meta.mean, np.float64) / np.asarray(meta.std, np.float64)).astype(np.float32)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        n, h, w, _ = crops.shape
        out = np.empty((n, 3, h, w), np.float32)
        for c, s in enumerate(self.src):  # three vectorised passes, each writing one channel plane
            np.multiply(crops[..., s], self.scale[c], out=out[:, c], dtype=np.float32)
            out[:, c] += self.bias[c]
        return out
