"""Skeleton overlays meant for a person to look at.

Left-side joints and limbs are orange, right-side blue, the centre line green (sides from the keypoint names'
"left"/"right"); brightness follows confidence, joints under the threshold and limbs touching them are hidden,
line widths grow with the photo so a 4K photo is as readable as a VGA one. A dark outline keeps the colours
visible on any background.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

__all__ = ["SIDE_COLORS_BGR", "keypoint_sides", "line_width", "draw_poses"]

SIDE_COLORS_BGR = np.array([[80, 200, 60], [0, 140, 255], [255, 140, 0]], np.float64)  # centre, left, right
_SHIFT = 4  # fixed-point bits: sub-pixel positions for cv2 drawing
_ONE = 1 << _SHIFT


def keypoint_sides(names: Sequence[str]) -> np.ndarray:
    """(K,) int: 1 for names containing "left", 2 for "right", 0 otherwise (case-insensitive)."""
    low = np.array([n.lower() for n in names], dtype=object)
    left = np.array(["left" in n for n in low], bool)
    right = np.array(["right" in n for n in low], bool)
    return np.where(left, 1, np.where(right, 2, 0)).astype(np.int64)


def line_width(image_shape) -> int:
    """Limb width in px for a photo (H, W, ...): about 1/200 of the shorter side, at least 1."""
    return max(1, int(round(min(image_shape[:2]) / 200.0)))


def _colors(sides: np.ndarray, conf: np.ndarray, threshold: float) -> np.ndarray:
    """Side colours (..., 3) BGR dimmed by confidence: 45 % brightness at the threshold, full at 1."""
    t = np.clip((conf - threshold) / max(1.0 - threshold, 1e-6), 0.0, 1.0)
    return SIDE_COLORS_BGR[sides] * (0.45 + 0.55 * t)[..., None]


def draw_poses(image: np.ndarray, keypoints, scores, skeleton, names, threshold: float = 0.3,
               boxes: Optional[np.ndarray] = None, labels: Optional[Sequence[str]] = None,
               note: str = "") -> np.ndarray:
    """Draw N skeletons on a copy of ``image`` (H, W, 3) uint8 BGR.

    keypoints (N, K, 2) photo px; scores (N, K); skeleton: index pairs into the K names; threshold: joints
    scoring below it are not drawn; boxes (N, 4) [x, y, w, h] or None: drawn as thin grey rectangles; labels:
    N short texts (e.g. track ids) written at each box's top left corner (needs boxes); note: a text written at
    the picture's top left corner when there is nobody to draw (N = 0), e.g. "nobody found".
    Returns the annotated (H, W, 3) uint8 BGR copy.
    """
    if labels is not None and (boxes is None or len(labels) != len(np.asarray(boxes).reshape(-1, 4))):
        raise ValueError("labels need boxes, one label per box")
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.number)) \
            or np.isnan(threshold):
        raise ValueError(f"threshold must be a number (a joint score, e.g. 0.3), got {threshold!r}")
    out = np.ascontiguousarray(image.copy())
    kp = np.asarray(keypoints, np.float64).reshape(-1, len(names), 2)
    sc = np.asarray(scores, np.float64).reshape(kp.shape[:2])
    sides = keypoint_sides(names)
    width = line_width(out.shape)
    radius = width + 1
    shown = (sc >= threshold) & np.isfinite(kp).all(axis=2)  # (N, K)
    # cv2 takes int32 fixed-point (x16) points, which a box at 1e8 px overflowed: points are clipped to a square
    # reaching past the photo by more than any line is wide, which changes nothing drawn
    far = 2.0 * max(out.shape[:2]) + 1024.0
    kp = np.clip(np.nan_to_num(kp), -1e300, 1e300)  # differences of two stay finite; joints not shown are not drawn
    pts = np.round(np.clip(kp, -far, far) * _ONE).astype(np.int64)  # fixed point for cv2's shift argument
    joint_colors = _colors(sides[None, :], sc, threshold)  # (N, K, 3)

    if boxes is not None:
        grey = (200, 200, 200)
        for x, y, w, h in np.asarray(boxes, np.float64).reshape(-1, 4):
            if np.isfinite([x, y, w, h]).all():  # an axis-aligned outline: its corners clip on their own
                x0, y0, x1, y1 = np.round(np.clip([x, y, x + w, y + h], -far, far) * _ONE).astype(np.int64).tolist()
                cv2.rectangle(out, (x0, y0), (x1, y1), grey, max(1, width // 2), cv2.LINE_AA, _SHIFT)

    sk = np.asarray(skeleton, np.int64).reshape(-1, 2)
    if sk.size:
        a, b = sk[:, 0], sk[:, 1]
        # A limb takes the side its two joints share, else centre; its confidence is the weaker joint's.
        limb_sides = np.where(sides[a] == sides[b], sides[a], 0)
        limb_ok = shown[:, a] & shown[:, b]  # (N, L)
        limb_colors = _colors(limb_sides[None, :], np.minimum(sc[:, a], sc[:, b]), threshold)  # (N, L, 3)
        n_, l_ = np.nonzero(limb_ok)
        # a limb is cut along itself to the square, so the part within the photo keeps its direction
        p, q, inside = _clip_segments(kp[n_, a[l_]], kp[n_, b[l_]], far)
        p, q = np.round(p * _ONE).astype(np.int64), np.round(q * _ONE).astype(np.int64)
        ends = [(tuple(p[i].tolist()), tuple(q[i].tolist()), limb_colors[n_[i], l_[i]].tolist())
                for i in np.flatnonzero(inside)]
        for p, q, _ in ends:  # outlines first so no outline covers a limb
            cv2.line(out, p, q, (20, 20, 20), width + 2, cv2.LINE_AA, _SHIFT)
        for p, q, color in ends:
            cv2.line(out, p, q, tuple(color), width, cv2.LINE_AA, _SHIFT)
    for n, k in zip(*np.nonzero(shown)):
        center = tuple(pts[n, k].tolist())
        cv2.circle(out, center, radius * _ONE, tuple(joint_colors[n, k].tolist()), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(out, center, radius * _ONE, (20, 20, 20), 1, cv2.LINE_AA, _SHIFT)
    if labels is not None:
        for text, (x, y, _, _) in zip(labels, np.asarray(boxes, np.float64).reshape(-1, 4)):
            if np.isfinite([x, y]).all():
                _write(out, str(text), x, y, width)  # inside the box
    if not len(kp) and note:
        _write(out, note, 0.0, 0.0, width)
    return out


def _clip_segments(p: np.ndarray, q: np.ndarray, far: float):
    """Segments p -> q ((M, 2) each) cut to their part within [-far, far]^2 (Liang-Barsky) -> (p, q, inside): the
    cut ends (M, 2) and inside (M,) bool, False for a segment wholly outside the square."""
    d = q - p
    lo, hi = np.zeros(len(p)), np.ones(len(p))
    inside = np.ones(len(p), bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for step, room in ((-d, p + far), (d, far - p)):  # the low and the high side of each axis, (M, 2)
            inside &= ~((step == 0) & (room < 0)).any(axis=1)  # parallel to that side and beyond it
            t = room / step
            lo = np.maximum(lo, np.where(step < 0, t, -np.inf).max(axis=1))
            hi = np.minimum(hi, np.where(step > 0, t, np.inf).min(axis=1))
    inside &= lo <= hi
    return p + lo[:, None] * d, p + hi[:, None] * d, inside


def _write(out: np.ndarray, text: str, x: float, y: float, width: int) -> None:
    """White text with a dark outline on ``out`` (in place), its top left corner just inside (x, y)."""
    scale = max(0.4, width / 3.0)
    (_, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, width)
    at = (int(round(max(x, 0) + 2 * width)), int(round(max(y, 0) + th + 2 * width)))
    cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), width + 2, cv2.LINE_AA)
    cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), width, cv2.LINE_AA)
