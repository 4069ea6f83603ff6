"""Person boxes -> normalised model input: validation, one affine warp per person, colour order, mean/std.

Geometry is ``geometry.py``'s (conventions 1-3); this file only applies it to pixels.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .geometry import apply_affine, box_centers_and_sizes, crop_affine, invert_affine
from .metadata import ModelMetadata

__all__ = ["box_array", "detector_boxes", "check_boxes", "crop_transforms", "warp_crops", "Normalizer", "BOX_LIMIT",
           "MIN_BOX_SIDE"]

# check_boxes' limits, shared by the checks of files whose boxes reach it (evaluate.py, detections.py)
BOX_LIMIT = 1e8  # px: no photo is larger; beyond it float32 keypoints lose whole pixels and the crop maps overflow
MIN_BOX_SIDE = 1e-3  # px: a smaller side would scale its crop past what float64 inverts


def box_array(boxes, dtype=np.float32) -> np.ndarray:
    """Person boxes as an (N, 4) array [x, y, w, h] of ``dtype``, their shape checked but not their values
    (:func:`check_boxes` checks both): one box (4,) is (1, 4); nothing ([], (0, 4)) is (0, 4). Raises ValueError
    for anything else, e.g. a detector's (N, 5) rows with a score, which a reshape would cut into other boxes."""
    if isinstance(boxes, (str, bytes)):  # np.asarray would make a string one value
        raise ValueError(f"boxes must be numbers of shape (N, 4) [x, y, w, h], got {type(boxes).__name__}")
    try:
        b = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as e:
        if isinstance(boxes, tuple) and len(boxes) == 2 and _ndim(boxes[0]) == 2 and _ndim(boxes[1]) == 1:
            raise ValueError("boxes must be numbers of shape (N, 4) [x, y, w, h], not a detector's (boxes, scores) "
                             "pair as HogPeopleDetector returns: pass its boxes, found[0]") from None
        raise ValueError(f"boxes must be numbers of shape (N, 4) [x, y, w, h]: {e}") from None
    if b.ndim == 1 and b.size in (0, 4):
        b = b.reshape(-1, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        hint = (": a detector's rows [x, y, w, h, score] give boxes[:, :4]"
                if b.ndim == 2 and b.shape[1] == 5 else "")
        raise ValueError(f"boxes must have shape (N, 4) [x, y, w, h], got {b.shape}{hint}")
    return b.astype(dtype, copy=False)


def _ndim(value) -> int:
    """np.ndim, or -1 for what numpy cannot make an array of (ragged lists)."""
    try:
        return int(np.ndim(value))
    except (TypeError, ValueError):
        return -1


def detector_boxes(found) -> Optional[np.ndarray]:
    """A detector's answer as (N, 4) float32 boxes, or None when it gave None: boxes, or (boxes, scores) as
    HogPeopleDetector gives them (a pair whose first part is (N, 4) or empty; a tuple of two boxes is two boxes)."""
    if (isinstance(found, tuple) and len(found) == 2 and (np.ndim(found[0]) == 2 or np.size(found[0]) == 0)
            and np.ndim(found[1]) <= 1):
        found = found[0]
    return None if found is None else box_array(found)


def check_boxes(boxes, image_shape) -> np.ndarray:
    """Person boxes as (N, 4) float64 [x, y, w, h] photo px.

    boxes: anything array-like of shape (N, 4), or one box (4,); None -> one box over the whole photo,
    [-0.5, -0.5, W, H] (its edges are the photo's edges). image_shape: (H, W, ...) of the photo.
    Raises ValueError naming the first box with a non-finite value, w <= 0 or h <= 0, or a value no photo has
    (beyond +-1e8 px, or a side under 1e-3 px: its crop's scale would overflow).
    """
    if boxes is None:
        h, w = image_shape[:2]
        return np.array([[-0.5, -0.5, w, h]], dtype=np.float64)
    b = box_array(boxes, np.float64)
    if b.size == 0:
        return b
    finite = np.asarray(np.isfinite(b).all(axis=1), bool)
    positive = (b[:, 2] > 0) & (b[:, 3] > 0)
    sane = (np.abs(b) <= BOX_LIMIT).all(axis=1) & (b[:, 2] >= MIN_BOX_SIDE) & (b[:, 3] >= MIN_BOX_SIDE)
    bad = np.flatnonzero(~(finite & positive & sane))
    if bad.size:
        i = int(bad[0])
        why = ("has a non-finite value" if not finite[i] else "has width or height <= 0" if not positive[i]
               else f"is out of range (values within +-{BOX_LIMIT:g} px, sides at least {MIN_BOX_SIDE:g} px)")
        raise ValueError(f"box {i} [x, y, w, h] = {b[i].tolist()} {why}")
    return b


def crop_transforms(boxes, meta: ModelMetadata) -> np.ndarray:
    """Photo -> crop affine maps (N, 2, 3) for boxes (N, 4): aspect fixed to the model's, ``box_padding`` applied."""
    centers, sizes = box_centers_and_sizes(boxes, meta.input_size, meta.box_padding)
    return crop_affine(centers, sizes, meta.input_size)


# OpenCV's warpAffine refuses a source this wide or tall (SHRT_MAX), so each crop is warped from the part of
# the photo its region covers, and a region this large itself is sampled from every f-th pixel.
_WARP_LIMIT = 32000


def source_windows(affines: np.ndarray, input_size, photo_shapes) -> np.ndarray:
    """The photo pixels each crop samples: (N, 4) int64 [x0, y0, x1, y1], clamped to its photo, empty (x1 <= x0 or
    y1 <= y0) where the region lies wholly outside. photo_shapes (N, 2): (H, W) of each crop's photo.

    A bilinear sample reads the pixels around it, so the window is the region's bounding box grown by 2 px.
    """
    w, h = input_size
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    pts = apply_affine(np.broadcast_to(corners, (len(affines), 4, 2)), invert_affine(affines))  # (N, 4, 2)
    lo = np.floor(pts.min(axis=1)) - 2
    hi = np.ceil(pts.max(axis=1)) + 3
    limit = np.asarray(photo_shapes, np.float64)[:, ::-1]  # (W, H)
    lo = np.clip(lo, 0, limit)
    hi = np.clip(hi, 0, limit)
    return np.concatenate([lo, hi], axis=1).astype(np.int64)


def warp_crops(image_bgr, affines: np.ndarray, input_size, owners: Optional[np.ndarray] = None) -> np.ndarray:
    """Bilinear warps of a (H, W, 3) uint8 photo by affines (N, 2, 3) -> crops (N, h, w, 3) uint8, zero outside.

    owners (N,): with several photos, ``image_bgr`` is their sequence and crop n is cut from image_bgr[owners[n]].
    Photos of any size (OpenCV's warp alone stops at 32,767 px: a larger one is warped from each region's window).
    """
    w, h = input_size
    n_crops = affines.shape[0]
    crops = np.empty((n_crops, h, w, 3), np.uint8)
    photos = [image_bgr] * n_crops if owners is None else [image_bgr[o] for o in owners]
    huge = np.array([max(p.shape[:2]) >= _WARP_LIMIT for p in photos], bool)
    sources, maps = list(photos), affines
    if huge.any():  # rare: the windows' bookkeeping (and OpenCV's copy of a strided window) only where needed
        maps = affines.astype(np.float64, copy=True)
        rows = np.flatnonzero(huge)
        windows = source_windows(affines[rows], input_size, [photos[n].shape[:2] for n in rows])  # (M, 4)
        # a region of tens of thousands of px in a crop of ~100 px: every step-th pixel is plenty
        steps = np.maximum(1, -(-(windows[:, 2:] - windows[:, :2]).max(axis=1) // _WARP_LIMIT))  # (M,)
        maps[rows, :, 2] += np.einsum("nij,nj->ni", maps[rows, :, :2], windows[:, :2])  # window (0, 0) = (x0, y0)
        maps[rows, :, :2] *= steps[:, None, None]  # window pixel i is the photo's pixel x0 + i * step
        for r, (x0, y0, x1, y1), s in zip(rows, windows, steps):
            # a region that misses the photo has an empty window: an all-zero crop, as the warp would give
            sources[r] = photos[r][y0:y1:s, x0:x1:s] if x1 > x0 and y1 > y0 else None
    for n in range(n_crops):  # one OpenCV call per person; the pixel work is inside OpenCV
        if sources[n] is None:
            crops[n] = 0
            continue
        cv2.warpAffine(sources[n], maps[n], (w, h), dst=crops[n], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
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
